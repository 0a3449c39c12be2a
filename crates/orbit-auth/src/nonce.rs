//! Stateless nonces: the server keeps no table of issued nonces. A nonce
//! carries its issue time and a random part, sealed with an HMAC over them
//! and the realm, so it can be checked later with only the key.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

const MAC_LEN: usize = 16;
const RAW_LEN: usize = 8 + 8 + MAC_LEN;

#[derive(Clone)]
pub struct NonceKey([u8; 32]);

impl std::fmt::Debug for NonceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NonceKey(..)")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceCheck {
    Valid,
    /// Ours but too old: challenge again with `stale=true` (RFC 7616 §3.3).
    Stale,
    /// Not one of ours (or for another realm).
    Invalid,
}

impl NonceKey {
    pub fn new(secret: [u8; 32]) -> Self {
        NonceKey(secret)
    }

    fn mac(&self, issued: u64, salt: &[u8; 8], realm: &str) -> [u8; MAC_LEN] {
        // new_from_slice only fails for key lengths HMAC cannot take; 32 bytes always fits.
        let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(&self.0) {
            Ok(m) => m,
            Err(_) => return [0; MAC_LEN],
        };
        mac.update(&issued.to_be_bytes());
        mac.update(salt);
        mac.update(realm.as_bytes());
        let full = mac.finalize().into_bytes();
        let mut out = [0u8; MAC_LEN];
        out.copy_from_slice(&full[..MAC_LEN]);
        out
    }

    /// A fresh nonce for `realm`, issued at `now_s` (Unix seconds), with
    /// `salt` from the caller's random source.
    pub fn issue(&self, realm: &str, now_s: u64, salt: [u8; 8]) -> String {
        let mut raw = [0u8; RAW_LEN];
        raw[..8].copy_from_slice(&now_s.to_be_bytes());
        raw[8..16].copy_from_slice(&salt);
        raw[16..].copy_from_slice(&self.mac(now_s, &salt, realm));
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// Check a nonce. Nonces issued before `not_before_s` are stale: the
    /// server passes its start time, because the table of nonce counts that
    /// stops replays does not survive a restart, so older nonces must not
    /// be honoured (clients simply answer the fresh challenge).
    pub fn check(
        &self,
        nonce: &str,
        realm: &str,
        now_s: u64,
        ttl_s: u64,
        not_before_s: u64,
    ) -> NonceCheck {
        let Ok(raw) = URL_SAFE_NO_PAD.decode(nonce) else {
            return NonceCheck::Invalid;
        };
        if raw.len() != RAW_LEN {
            return NonceCheck::Invalid;
        }
        let mut issued = [0u8; 8];
        issued.copy_from_slice(&raw[..8]);
        let issued = u64::from_be_bytes(issued);
        let mut salt = [0u8; 8];
        salt.copy_from_slice(&raw[8..16]);
        if !bool::from(self.mac(issued, &salt, realm).ct_eq(&raw[16..])) {
            return NonceCheck::Invalid;
        }
        // A nonce from the future (clock stepped back) is treated as stale, not trusted.
        if issued > now_s + 5 || now_s - issued.min(now_s) > ttl_s || issued < not_before_s {
            return NonceCheck::Stale;
        }
        NonceCheck::Valid
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_then_stale_and_bound_to_realm_and_key() {
        let k = NonceKey::new([7; 32]);
        let n = k.issue("acme.test", 1000, [1; 8]);
        assert_eq!(k.check(&n, "acme.test", 1000, 30, 0), NonceCheck::Valid);
        assert_eq!(k.check(&n, "acme.test", 1030, 30, 0), NonceCheck::Valid);
        assert_eq!(k.check(&n, "acme.test", 1031, 30, 0), NonceCheck::Stale);
        assert_eq!(k.check(&n, "other.test", 1000, 30, 0), NonceCheck::Invalid);
        assert_eq!(
            NonceKey::new([8; 32]).check(&n, "acme.test", 1000, 30, 0),
            NonceCheck::Invalid
        );
        assert_eq!(
            k.check("garbage", "acme.test", 1000, 30, 0),
            NonceCheck::Invalid
        );
        let mut tampered = n.clone().into_bytes();
        tampered[3] ^= 1;
        let tampered = String::from_utf8(tampered).unwrap();
        assert_ne!(
            k.check(&tampered, "acme.test", 1000, 30, 0),
            NonceCheck::Valid
        );
        // Issued before the server started: stale, however young.
        assert_eq!(k.check(&n, "acme.test", 1001, 30, 1001), NonceCheck::Stale);
    }
}
