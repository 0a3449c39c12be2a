//! Call records leave the call manager through a queue and are appended to
//! the store in batches by one writer, retried until stored, so a slow or
//! briefly unavailable database never holds up signalling and a finished
//! call is not lost.

use std::time::Duration;

use orbit_store::{CallRecord, Store};
use tokio::sync::{mpsc, oneshot};
use tracing::warn;

enum Job {
    Record(Box<CallRecord>),
    Flush(oneshot::Sender<()>),
}

#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::UnboundedSender<Job>,
}

const BATCH: usize = 64;

impl Recorder {
    pub fn start(store: Store) -> Recorder {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(write(store, rx));
        Recorder { tx }
    }

    pub fn record(&self, record: CallRecord) {
        metrics::counter!("orbit_call_records_total", "reason" => record.end_reason.clone())
            .increment(1);
        if self.tx.send(Job::Record(Box::new(record))).is_err() {
            warn!("call record writer has stopped; record lost");
        }
    }

    /// Wait until every record so far is stored.
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Job::Flush(tx)).is_ok() {
            let _ = rx.await;
        }
    }
}

async fn write(store: Store, mut rx: mpsc::UnboundedReceiver<Job>) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut waiters = Vec::new();
    while let Some(job) = rx.recv().await {
        let mut next = Some(job);
        while let Some(job) = next.take() {
            match job {
                Job::Record(r) => batch.push(*r),
                Job::Flush(w) => waiters.push(w),
            }
            if batch.len() < BATCH {
                next = rx.try_recv().ok();
            }
        }
        let mut delay = Duration::from_millis(100);
        while !batch.is_empty() {
            match store.append_call_records(&batch).await {
                Ok(()) => batch.clear(),
                Err(e) => {
                    // Ids make the append idempotent, so retrying is safe.
                    warn!(error = %e, records = batch.len(), "storing call records failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
        for w in waiters.drain(..) {
            let _ = w.send(());
        }
    }
}
