//! Setting calls up: the caller's INVITE (authentication, routing, media),
//! ringing the callee's phones in parallel, the first answer winning, and
//! CANCEL, ring timeouts and the 2xx/ACK handshake.

use std::sync::Arc;
use std::time::Instant;

use orbit_media::Negotiated;
use orbit_media::{
    negotiate, Codec, LegConfig, LegId, LocalSession, MediaSession, SessionDescription,
};
use orbit_registrar::AuthOutcome;
use orbit_sip::frame::Message;
use orbit_sip::response::stable_tag;
use orbit_sip::{Reply, Request, Response, ServerTx};
use orbit_store::Tenant;
use tracing::info;

use crate::call::{Call, CallKey, CallState, Heard, Hunt, Leg, LegKey, LegState, Party};
use crate::dialog::Dialog;
use crate::manager::{now_ms, peer_of, Manager};

pub(crate) const CODECS: [Codec; 2] = [Codec::Pcmu, Codec::Pcma];
pub const ALLOW: &str =
    "INVITE, ACK, BYE, CANCEL, OPTIONS, REGISTER, REFER, UPDATE, INFO, NOTIFY, SUBSCRIBE";

/// Answer a transaction now, or after the reply's delay (guard slow-down).
pub(crate) fn respond_reply(tx: ServerTx, reply: Reply) {
    tokio::spawn(async move {
        if let Some(d) = reply.delay {
            tokio::time::sleep(d).await;
        }
        tx.respond(&reply.response).await;
    });
}

pub(crate) fn sdp_of(msg: &Message) -> Option<Result<SessionDescription, ()>> {
    if msg.body.is_empty() {
        return None;
    }
    let ctype = msg.header("content-type").unwrap_or("application/sdp");
    if !ctype
        .trim()
        .to_ascii_lowercase()
        .starts_with("application/sdp")
    {
        return Some(Err(()));
    }
    Some(
        std::str::from_utf8(&msg.body)
            .map_err(|_| ())
            .and_then(|t| SessionDescription::parse(t).map_err(|_| ())),
    )
}

pub(crate) fn not_acceptable(why: &str) -> Response {
    Response::new(488, "Not Acceptable Here").header("Warning", format!("305 orbit \"{why}\""))
}

/// RFC 4028: the Session-Expires a request asks for, in seconds.
pub(crate) fn session_expires(req: &Request) -> Option<u32> {
    let v = req.header("session-expires")?;
    v.split(';').next()?.trim().parse().ok()
}

impl Manager {
    /// The tenant a phone's request addresses: the Request-URI's host, or
    /// the To host (phones using Orbit as outbound proxy).
    pub(crate) fn tenant_of(&self, req: &Request) -> Option<Arc<Tenant>> {
        let d = self.store.directory();
        d.tenant_by_domain(&req.uri.host)
            .or_else(|| d.tenant_by_domain(&req.to.uri.host))
    }

    /// Check a user's credentials for `tenant` (407 challenge); `Err` is the
    /// answer to send instead.
    pub(crate) fn authenticate_user(
        &self,
        req: &Request,
        source: &orbit_sip::Source,
        tenant: &Tenant,
    ) -> Result<Arc<orbit_store::Extension>, Box<Reply>> {
        let store = self.store.clone();
        let tid = tenant.id.clone();
        match self.auth.authenticate(
            req,
            source,
            tenant,
            |u| store.directory().extension(&tid, u),
            true,
        ) {
            AuthOutcome::Authenticated(ext) => Ok(ext),
            AuthOutcome::Respond(reply) => Err(Box::new(reply)),
        }
    }

    pub(crate) async fn on_new_invite(&mut self, tx: ServerTx) {
        let req = tx.request().clone();
        let source = *tx.source();
        let Some(tenant) = self.tenant_of(&req) else {
            tx.respond(&Response::new(404, "Not Found (unknown domain)"))
                .await;
            return;
        };
        if self.draining() {
            tx.respond(
                &Response::new(503, "Service Unavailable (shutting down)")
                    .header("Retry-After", "30"),
            )
            .await;
            return;
        }
        let ext = match self.authenticate_user(&req, &source, &tenant) {
            Ok(ext) => ext,
            Err(reply) => return respond_reply(tx, *reply),
        };
        if req.from.uri.user.as_deref() != Some(ext.number.as_str()) {
            tx.respond(&Response::new(
                403,
                "Forbidden (From does not match the credentials)",
            ))
            .await;
            return;
        }
        if self.calls.len() >= self.cfg.max_calls {
            metrics::counter!("orbit_calls_refused_total", "why" => "limit").increment(1);
            tx.respond(
                &Response::new(503, "Service Unavailable (call limit reached)")
                    .header("Retry-After", "10"),
            )
            .await;
            return;
        }
        let se = session_expires(&req);
        if let Some(se) = se {
            if se < self.cfg.min_session_expires {
                tx.respond(
                    &Response::new(422, "Session Interval Too Small")
                        .header("Min-SE", self.cfg.min_session_expires.to_string()),
                )
                .await;
                return;
            }
        }
        let sd = match sdp_of(&req.message) {
            Some(Ok(sd)) => sd,
            Some(Err(())) => {
                tx.respond(&not_acceptable("the SDP offer could not be read"))
                    .await;
                return;
            }
            None => {
                tx.respond(&not_acceptable("an SDP offer is required in the INVITE"))
                    .await;
                return;
            }
        };
        let Ok(neg) = negotiate(&sd, &CODECS) else {
            tx.respond(&not_acceptable("audio with PCMU or PCMA is required"))
                .await;
            return;
        };
        let caller = Party {
            number: ext.number.clone(),
            name: ext.display_name.clone(),
        };
        if req.header("replaces").is_some() {
            return self
                .on_invite_replaces(tx, tenant, caller, sd, neg, se)
                .await;
        }
        let number = req.uri.user.clone().unwrap_or_default();
        if let Some(feature) = self.feature_of(&tenant, &number) {
            return self
                .retrieve_by_invite(tx, tenant, caller, feature, sd, neg, se)
                .await;
        }
        let Some(hunt) = self.plan(&tenant, &number) else {
            tx.respond(&Response::new(404, "Not Found")).await;
            return;
        };
        let Some(ck) = self
            .new_call_for(&tx, tenant, caller, number, &sd, neg, se, hunt)
            .await
        else {
            return;
        };
        tx.respond(&Response::new(100, "Trying")).await;
        self.publish(ck);
        self.next_step(ck).await;
    }

    /// A new call for the caller's INVITE `tx`, ringing, with its media
    /// (or a 503 to the caller when no ports are left).
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn new_call_for(
        &mut self,
        tx: &ServerTx,
        tenant: Arc<Tenant>,
        caller: Party,
        number: String,
        sd: &SessionDescription,
        neg: Negotiated,
        se: Option<u32>,
        hunt: Hunt,
    ) -> Option<CallKey> {
        let req = tx.request();
        let (a, b) = match (self.ports.allocate(), self.ports.allocate()) {
            (Ok(a), Ok(b)) => (a, b),
            _ => {
                metrics::counter!("orbit_calls_refused_total", "why" => "ports").increment(1);
                tx.respond(
                    &Response::new(503, "Service Unavailable (no media ports left)")
                        .header("Retry-After", "10"),
                )
                .await;
                return None;
            }
        };
        let media = MediaSession::start(a, b);
        media.set_config(LegId::A, LegConfig::from(&neg));

        let call_key = self.next_key();
        let events = self.events_tx.clone();
        media.on_dtmf(Arc::new(move |side, digit| {
            let _ = events.try_send(crate::manager::Event::Dtmf {
                call: call_key,
                side,
                digit,
            });
        }));
        let leg_key = self.next_key();
        let local_tag = stable_tag(&req.message);
        let dialog = Dialog::for_incoming(req, local_tag.clone(), peer_of(tx.source()));
        self.by_dialog
            .insert((req.call_id.clone(), local_tag), leg_key);
        if let Some(branch) = &req.via.branch {
            self.by_branch
                .insert((req.call_id.clone(), branch.clone()), leg_key);
        }
        let leg = self.new_leg(leg_key, call_key, LegId::A, caller.clone(), dialog, true);
        self.insert_leg(
            leg_key,
            Leg {
                negotiated: Some(neg),
                holding: sd.is_hold(),
                session_expires: se,
                ..leg
            },
        );
        info!(call = call_key, tenant = %tenant.domain, from = %caller.number, to = %number, "call");
        self.calls.insert(
            call_key,
            Call {
                key: call_key,
                id: uuid::Uuid::new_v4().to_string(),
                tenant,
                caller,
                dialled: number,
                started_at_ms: now_ms(),
                answered_at_ms: None,
                answered_by: None,
                transfers: Vec::new(),
                state: CallState::Ringing,
                sides: [Some(leg_key), None],
                hunt,
                pending_invite: Some(tx.clone()),
                sent_ringing: false,
                media,
                heard: [Heard::Other, Heard::Other],
                transfer: None,
                parked: None,
                consult: None,
            },
        );
        metrics::counter!("orbit_calls_total").increment(1);
        Some(call_key)
    }

    pub(crate) fn new_leg(
        &self,
        key: LegKey,
        call: CallKey,
        side: LegId,
        party: Party,
        dialog: Dialog,
        incoming: bool,
    ) -> Leg {
        Leg {
            key,
            call,
            side,
            party,
            dialog,
            state: if incoming {
                LegState::Confirmed
            } else {
                LegState::Calling
            },
            incoming,
            sdp: LocalSession::new(self.cfg.media_ip, rand::random::<u32>() as u64),
            negotiated: None,
            holding: false,
            out_invite: None,
            unacked: None,
            ack: None,
            session_expires: None,
            refreshed_at: Instant::now(),
            refer_id: None,
            digits: String::new(),
            digits_at: None,
            glare_retries: 0,
        }
    }

    pub(crate) async fn on_cancel(&mut self, tx: ServerTx) {
        let req = tx.request();
        let key = req
            .via
            .branch
            .as_ref()
            .map(|b| (req.call_id.clone(), b.clone()));
        let leg = key.and_then(|k| self.by_branch.get(&k).copied());
        let Some(call) = leg
            .and_then(|l| self.legs.get(&l))
            .map(|l| l.call)
            .filter(|c| {
                self.calls
                    .get(c)
                    .is_some_and(|c| c.state == CallState::Ringing)
            })
        else {
            tx.respond(&Response::new(481, "Call/Transaction Does Not Exist"))
                .await;
            return;
        };
        tx.respond(&Response::new(200, "OK")).await;
        self.end_call(call, "cancelled", Some(487)).await;
    }
}
