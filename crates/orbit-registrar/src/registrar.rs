//! REGISTER handling (RFC 3261 §10.3) over the in-memory location table,
//! with write-through to the store.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use orbit_sip::uri::parse_name_addr;
use orbit_sip::{Reply, Request, Response, Source};
use orbit_store::{now_ms, Binding, BindingOp, Store, StoreError, StoreEvent};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::authenticator::{AuthOutcome, Authenticator};
use crate::bindings::{ApplyError, ContactUpdate, Location, RegisterMeta};

#[derive(Debug, Clone)]
pub struct RegistrarConfig {
    pub min_expires: u32,
    pub max_expires: u32,
    pub default_expires: u32,
    pub max_contacts: usize,
}

impl Default for RegistrarConfig {
    fn default() -> Self {
        RegistrarConfig {
            min_expires: 60,
            max_expires: 7200,
            default_expires: 3600,
            max_contacts: 10,
        }
    }
}

enum Persist {
    Ops(Vec<BindingOp>),
    Flush(oneshot::Sender<()>),
}

pub struct Registrar {
    store: Store,
    auth: Arc<Authenticator>,
    config: RegistrarConfig,
    location: Mutex<Location>,
    persist: mpsc::UnboundedSender<Persist>,
    /// Set by the writer when a batch could not be stored.
    write_failed: Arc<AtomicBool>,
}

impl Registrar {
    /// Load the bindings that are still valid and start the background
    /// work: the store writer, expiry, and reacting to deletions.
    pub async fn start(
        store: Store,
        auth: Arc<Authenticator>,
        config: RegistrarConfig,
        cancel: CancellationToken,
    ) -> Result<Arc<Registrar>, StoreError> {
        let now = now_ms();
        store
            .apply_bindings(&[BindingOp::Expire { now_ms: now }])
            .await?;
        let loaded = store.bindings(None, now).await?;
        info!(bindings = loaded.len(), "registrations restored");
        let (tx, rx) = mpsc::unbounded_channel();
        let write_failed = Arc::new(AtomicBool::new(false));
        let registrar = Arc::new(Registrar {
            store: store.clone(),
            auth,
            config,
            location: Mutex::new(Location::load(loaded)),
            persist: tx,
            write_failed: write_failed.clone(),
        });
        registrar.publish_count();
        tokio::spawn(write_through(store.clone(), rx, write_failed));
        tokio::spawn(registrar.clone().housekeeping(store.subscribe(), cancel));
        Ok(registrar)
    }

    fn location(&self) -> MutexGuard<'_, Location> {
        self.location.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn publish_count(&self) {
        let n = self.location().count();
        metrics::gauge!("orbit_registrations").set(n as f64);
    }

    /// Current bindings of an extension.
    pub fn bindings(&self, tenant_id: &str, extension: &str) -> Vec<Binding> {
        let now = now_ms();
        self.location()
            .get(tenant_id, extension)
            .iter()
            .filter(|b| b.expires_at > now)
            .cloned()
            .collect()
    }

    /// Wait until every change so far is in the store.
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.persist.send(Persist::Flush(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    pub fn register(&self, req: &Request, source: &Source) -> Reply {
        let Some(tenant) = self.store.directory().tenant_by_domain(&req.uri.host) else {
            return Response::new(403, "Forbidden (unknown domain)").into();
        };
        let ext = {
            let store = &self.store;
            let tenant_id = tenant.id.clone();
            match self.auth.authenticate(
                req,
                source,
                &tenant,
                |user| store.directory().extension(&tenant_id, user),
                false,
            ) {
                AuthOutcome::Authenticated(ext) => ext,
                AuthOutcome::Respond(reply) => return reply,
            }
        };
        if req.to.uri.user.as_deref() != Some(ext.number.as_str()) {
            return Response::new(403, "Forbidden (To does not match the credentials)").into();
        }
        let contacts = req.header_list("contact");
        if contacts.len() > self.config.max_contacts {
            return Response::new(
                403,
                format!(
                    "Forbidden (more than {} contacts)",
                    self.config.max_contacts
                ),
            )
            .into();
        }
        let header_expires: Option<u32> = req.header("expires").and_then(|v| v.trim().parse().ok());
        let now = now_ms();

        let ops = if contacts.iter().any(|c| c.trim() == "*") {
            // RFC 3261 §10.3 step 6: `*` only alone and with Expires: 0.
            if contacts.len() != 1 || header_expires != Some(0) {
                return Response::new(
                    400,
                    "Bad Request (wildcard Contact needs Expires: 0 and no other Contact)",
                )
                .into();
            }
            self.location().remove_all(&tenant.id, &ext.number)
        } else if contacts.is_empty() {
            Vec::new()
        } else {
            let mut updates = Vec::with_capacity(contacts.len());
            for c in &contacts {
                let Ok(na) = parse_name_addr(c) else {
                    return Response::new(400, "Bad Request (malformed Contact)").into();
                };
                let expires = match na.param("expires") {
                    Some(Some(v)) => match v.trim().parse::<u64>() {
                        Ok(n) => n.min(u32::MAX as u64) as u32,
                        Err(_) => {
                            return Response::new(400, "Bad Request (malformed Contact expires)")
                                .into()
                        }
                    },
                    Some(None) => {
                        return Response::new(400, "Bad Request (malformed Contact expires)").into()
                    }
                    None => header_expires.unwrap_or(self.config.default_expires),
                };
                if expires != 0 && expires < self.config.min_expires {
                    return Response::new(423, "Interval Too Brief")
                        .header("Min-Expires", self.config.min_expires.to_string())
                        .into();
                }
                let params: String = na
                    .params
                    .iter()
                    .filter(|(n, _)| n != "expires")
                    .map(|(n, v)| match v {
                        Some(v) => format!(";{n}={v}"),
                        None => format!(";{n}"),
                    })
                    .collect();
                updates.push(ContactUpdate {
                    uri: na.uri,
                    params,
                    expires_s: expires.min(self.config.max_expires),
                });
            }
            let meta = RegisterMeta {
                call_id: req.call_id.clone(),
                cseq: req.cseq,
                source: format!("{}:{}", source.transport.as_str(), source.remote),
                transport: source.transport.as_str().to_string(),
                user_agent: req
                    .header("user-agent")
                    .unwrap_or("")
                    .chars()
                    .take(200)
                    .collect(),
            };
            let applied = self.location().apply(
                &tenant.id,
                &ext.number,
                &updates,
                &meta,
                now,
                self.config.max_contacts,
            );
            match applied {
                Ok(ops) => ops,
                Err(ApplyError::OutOfOrder) => {
                    return Response::new(500, "Server Internal Error (CSeq out of order)").into();
                }
            }
        };
        if !ops.is_empty() {
            let _ = self.persist.send(Persist::Ops(ops));
        }
        let mut resp = Response::new(200, "OK");
        for b in self.bindings(&tenant.id, &ext.number) {
            let left = ((b.expires_at - now).max(0) + 999) / 1000;
            resp = resp.header(
                "Contact",
                format!("<{}>{};expires={left}", b.contact, b.contact_params),
            );
        }
        resp.into()
    }

    /// Drop bindings whose extension is gone, so a missed or raced deletion
    /// does not leave them behind (nor hand them to a re-created extension).
    fn reconcile(&self) {
        let store = &self.store;
        let dropped = self
            .location()
            .retain_extensions(|t, e| store.directory().extension(t, e).is_some());
        if dropped > 0 {
            info!(dropped, "dropped registrations of deleted extensions");
        }
    }

    async fn housekeeping(
        self: Arc<Self>,
        mut events: tokio::sync::broadcast::Receiver<StoreEvent>,
        cancel: CancellationToken,
    ) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut ticks: u64 = 0;
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tick.tick() => {
                    let now = now_ms();
                    if self.location().expire(now) > 0 {
                        let _ = self.persist.send(Persist::Ops(vec![BindingOp::Expire { now_ms: now }]));
                    }
                    // Once a second: counting walks the whole table.
                    self.publish_count();
                    if self.write_failed.swap(false, Ordering::AcqRel) {
                        let all = self.location().resync();
                        warn!(bindings = all.len(), "rewriting all registrations after a failed write");
                        let _ = self.persist.send(Persist::Ops(vec![BindingOp::ReplaceAll(all)]));
                    }
                    ticks += 1;
                    if ticks.is_multiple_of(10) {
                        self.reconcile();
                    }
                    self.auth.sweep();
                }
                ev = events.recv() => match ev {
                    Ok(StoreEvent::TenantDeleted { tenant_id }) => self.location().forget_tenant(&tenant_id),
                    Ok(StoreEvent::ExtensionDeleted { tenant_id, number }) => self.location().forget_extension(&tenant_id, &number),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => self.reconcile(),
                    Err(_) => return,
                },
            }
        }
    }
}

/// Apply queued changes in batches: whatever arrived while the previous
/// batch was being written goes into the next transaction.
impl orbit_store::LiveBindings for Registrar {
    fn tenant_bindings(&self, tenant_id: &str) -> Vec<Binding> {
        let now = now_ms();
        let mut list = self.location().for_tenant(tenant_id);
        list.retain(|b| b.expires_at > now);
        list
    }
}

async fn write_through(
    store: Store,
    mut rx: mpsc::UnboundedReceiver<Persist>,
    failed: Arc<AtomicBool>,
) {
    let mut ops = Vec::new();
    let mut waiters = Vec::new();
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        while let Some(msg) = next {
            match msg {
                Persist::Ops(o) => ops.extend(o),
                Persist::Flush(w) => waiters.push(w),
            }
            next = rx.try_recv().ok();
            if ops.len() > 5000 {
                break;
            }
        }
        if let Err(e) = store.apply_bindings(&ops).await {
            // One retry for a passing problem (a locked database); after
            // that the registrar rewrites everything from memory.
            warn!(error = %e, ops = ops.len(), "writing registrations failed; retrying");
            tokio::time::sleep(Duration::from_millis(200)).await;
            if let Err(e) = store.apply_bindings(&ops).await {
                warn!(error = %e, "writing registrations failed again");
                failed.store(true, Ordering::Release);
            }
        }
        ops.clear();
        for w in waiters.drain(..) {
            let _ = w.send(());
        }
    }
}
