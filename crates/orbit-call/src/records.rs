//! Records (call records, park events) leave the call manager through a
//! queue and are appended to the store in batches by one writer, retried
//! until stored, so a slow or briefly unavailable database never holds up
//! signalling and nothing finished is lost.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use orbit_store::{CallRecord, ParkEventRecord, Store, StoreError, SubscriptionOp};
use tokio::sync::{mpsc, oneshot};
use tracing::warn;

enum Job<T> {
    Record(Box<T>),
    Flush(oneshot::Sender<()>),
}

type Append<T> = Arc<
    dyn Fn(Vec<T>) -> Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send>> + Send + Sync,
>;

/// A queue in front of one batched, retried append to the store.
pub struct Writer<T> {
    tx: mpsc::UnboundedSender<Job<T>>,
}

impl<T> Clone for Writer<T> {
    fn clone(&self) -> Self {
        Writer {
            tx: self.tx.clone(),
        }
    }
}

const BATCH: usize = 64;

impl<T: Clone + Send + 'static> Writer<T> {
    fn start(what: &'static str, append: Append<T>) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(write(what, append, rx));
        Writer { tx }
    }

    pub fn record(&self, record: T) {
        if self.tx.send(Job::Record(Box::new(record))).is_err() {
            warn!("record writer has stopped; record lost");
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

/// Call records, one per finished call.
pub type Recorder = Writer<CallRecord>;
/// The park event log.
pub type ParkLog = Writer<ParkEventRecord>;

pub fn call_records(store: Store) -> Recorder {
    Writer::start(
        "call records",
        Arc::new(move |batch: Vec<CallRecord>| {
            let store = store.clone();
            Box::pin(async move { store.append_call_records(&batch).await })
        }),
    )
}

pub fn park_events(store: Store) -> ParkLog {
    Writer::start(
        "park events",
        Arc::new(move |batch: Vec<ParkEventRecord>| {
            let store = store.clone();
            Box::pin(async move { store.append_park_events(&batch).await })
        }),
    )
}

/// Saved and ended subscriptions, in order.
pub type SubscriptionLog = Writer<SubscriptionOp>;

pub fn subscription_ops(store: Store) -> SubscriptionLog {
    Writer::start(
        "subscriptions",
        Arc::new(move |batch: Vec<SubscriptionOp>| {
            let store = store.clone();
            Box::pin(async move { store.apply_subscription_ops(&batch).await })
        }),
    )
}

async fn write<T: Clone>(
    what: &'static str,
    append: Append<T>,
    mut rx: mpsc::UnboundedReceiver<Job<T>>,
) {
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
            match append(batch.clone()).await {
                Ok(()) => batch.clear(),
                Err(e) => {
                    // Ids make the append idempotent, so retrying is safe.
                    warn!(error = %e, records = batch.len(), what, "storing failed; retrying");
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
