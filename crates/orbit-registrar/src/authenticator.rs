//! Digest challenges and checks for requests from users of a tenant.

use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use orbit_auth::digest::{challenge, Algorithm, Credentials};
use orbit_auth::{Guard, GuardConfig, NonceCheck, NonceKey, ReplayTable, Verdict};
use orbit_sip::{Reply, Request, Response, Source};
use orbit_store::{Extension, Tenant};
use rand::RngCore;

#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// Challenges are offered in this order; clients that read only the
    /// first one need their algorithm first.
    pub algorithms: Vec<Algorithm>,
    pub nonce_ttl_s: u64,
    pub guard: GuardConfig,
    /// Accept digest responses without `qop` (RFC 2069 style, old phones).
    pub allow_no_qop: bool,
    /// Require the digest `uri` to name the Request-URI's target.
    pub check_digest_uri: bool,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            algorithms: vec![Algorithm::Sha256, Algorithm::Md5],
            nonce_ttl_s: 300,
            guard: GuardConfig::default(),
            allow_no_qop: false,
            check_digest_uri: true,
        }
    }
}

pub enum AuthOutcome {
    Authenticated(Arc<Extension>),
    /// Send this and stop: a challenge, a refusal or a 400.
    Respond(Reply),
}

pub struct Authenticator {
    config: AuthConfig,
    key: NonceKey,
    guard: Mutex<Guard>,
    replay: Mutex<ReplayTable>,
    /// Unix second this authenticator started; older nonces are stale.
    started_s: u64,
    /// HA1 of nobody, so unknown users cost the same work as known ones.
    decoy: Extension,
}

/// Whether the digest `uri` names the same target as the Request-URI:
/// scheme, user, host and port; URI parameters may differ in spelling.
fn same_target(digest_uri: &str, request_uri: &orbit_sip::uri::SipUri) -> bool {
    match orbit_sip::uri::parse_uri(digest_uri.trim()) {
        Ok(u) => {
            u.scheme == request_uri.scheme
                && u.user == request_uri.user
                && u.host == request_uri.host
                && u.port == request_uri.port
        }
        Err(_) => false,
    }
}

/// Nonces whose counts are remembered at once (about 80 bytes each).
const REPLAY_CAPACITY: usize = 262_144;

fn unix_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Authenticator {
    pub fn new(config: AuthConfig, key: NonceKey) -> Self {
        let guard = Mutex::new(Guard::new(config.guard.clone()));
        let lifetime = std::time::Duration::from_secs(config.nonce_ttl_s + 5);
        let replay = Mutex::new(ReplayTable::new(REPLAY_CAPACITY, lifetime));
        let decoy = Extension {
            tenant_id: String::new(),
            number: String::new(),
            display_name: String::new(),
            ha1_md5: "0".repeat(32),
            ha1_sha256: "0".repeat(64),
            created_at: 0,
            updated_at: 0,
        };
        Authenticator {
            config,
            key,
            guard,
            replay,
            started_s: unix_s(),
            decoy,
        }
    }

    fn guard(&self) -> std::sync::MutexGuard<'_, Guard> {
        self.guard.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Forget guard records that aged out; call now and then.
    pub fn sweep(&self) {
        self.guard().sweep(Instant::now());
    }

    /// Check the request's credentials for `tenant`. `proxy` selects 407 and
    /// Proxy-Authenticate (for calls) instead of 401 (for REGISTER).
    pub fn authenticate(
        &self,
        req: &Request,
        source: &Source,
        tenant: &Tenant,
        lookup: impl Fn(&str) -> Option<Arc<Extension>>,
        proxy: bool,
    ) -> AuthOutcome {
        let ip = source.remote.ip();
        let delay = match self.guard().verdict(ip, Instant::now()) {
            Verdict::Refuse { .. } => {
                metrics::counter!("orbit_auth_refused_total").increment(1);
                return AuthOutcome::Respond(
                    Response::new(403, "Forbidden (too many failed attempts)").into(),
                );
            }
            Verdict::Delay(d) => Some(d),
            Verdict::Allow => None,
        };
        let header = if proxy {
            "proxy-authorization"
        } else {
            "authorization"
        };
        let creds = req
            .message
            .header_all(header)
            .filter_map(|v| Credentials::parse(v).ok())
            .find(|c| c.realm == tenant.realm);
        let Some(creds) = creds else {
            if req.message.header(header).is_some_and(|v| {
                Credentials::parse(v).is_err()
                    && v.trim_start().to_ascii_lowercase().starts_with("digest")
            }) {
                return AuthOutcome::Respond(
                    Response::new(400, "Bad Request (malformed credentials)").into(),
                );
            }
            return self.challenge(tenant, false, proxy, delay);
        };
        let alg = match creds.algorithm() {
            Ok(a) if self.config.algorithms.contains(&a) => a,
            _ => return self.challenge(tenant, false, proxy, delay),
        };
        // RFC 7616 makes qop mandatory; the RFC 2069 form (no qop, no
        // nonce count) cannot be replay-checked and is refused unless allowed.
        if creds.qop.is_none() && !self.config.allow_no_qop {
            return self.challenge(tenant, false, proxy, delay);
        }
        // RFC 7616 §3.4.6: the digest must be for this request's URI.
        if self.config.check_digest_uri && !same_target(&creds.uri, &req.uri) {
            return AuthOutcome::Respond(
                Response::new(
                    400,
                    "Bad Request (digest uri does not match the Request-URI)",
                )
                .into(),
            );
        }
        match self.key.check(
            &creds.nonce,
            &tenant.realm,
            unix_s(),
            self.config.nonce_ttl_s,
            self.started_s,
        ) {
            NonceCheck::Valid => {}
            NonceCheck::Stale => return self.challenge(tenant, true, proxy, delay),
            NonceCheck::Invalid => return self.challenge(tenant, false, proxy, delay),
        }
        let found = lookup(&creds.username);
        let ext = found.as_deref().unwrap_or(&self.decoy);
        let ha1 = match alg {
            Algorithm::Md5 => &ext.ha1_md5,
            Algorithm::Sha256 => &ext.ha1_sha256,
        };
        let ok = creds.verify(alg, ha1, req.method.as_str()) && found.is_some();
        match (ok, found) {
            (true, Some(ext)) => {
                // A correct response whose nonce count does not rise is a
                // replay (or a confused client): challenge afresh.
                if let Some(nc) = creds.nc.as_deref() {
                    let fresh = self
                        .replay
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .accept(&creds.nonce, nc, Instant::now());
                    if !fresh {
                        metrics::counter!("orbit_auth_replays_total").increment(1);
                        return self.challenge(tenant, false, proxy, delay);
                    }
                }
                AuthOutcome::Authenticated(ext)
            }
            _ => {
                metrics::counter!("orbit_auth_failures_total").increment(1);
                tracing::info!(src = %source.remote, user = %creds.username, realm = %tenant.realm, "authentication failed");
                let delay = match self.guard().record_failure(ip, Instant::now()) {
                    Verdict::Delay(d) => Some(d),
                    _ => delay,
                };
                AuthOutcome::Respond(Reply {
                    response: Response::new(403, "Forbidden"),
                    delay,
                })
            }
        }
    }

    fn challenge(
        &self,
        tenant: &Tenant,
        stale: bool,
        proxy: bool,
        delay: Option<std::time::Duration>,
    ) -> AuthOutcome {
        let mut salt = [0u8; 8];
        rand::rng().fill_bytes(&mut salt);
        let nonce = self.key.issue(&tenant.realm, unix_s(), salt);
        let (status, reason, header) = if proxy {
            (407, "Proxy Authentication Required", "Proxy-Authenticate")
        } else {
            (401, "Unauthorized", "WWW-Authenticate")
        };
        let mut resp = Response::new(status, reason);
        for alg in &self.config.algorithms {
            resp = resp.header(header, challenge(*alg, &tenant.realm, &nonce, stale));
        }
        AuthOutcome::Respond(Reply {
            response: resp,
            delay,
        })
    }
}
