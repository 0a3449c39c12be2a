//! Digest computations (RFC 7616 as applied to SIP by RFC 8760) and the
//! parser for the `Authorization` header.

use md5::Md5;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    Md5,
    Sha256,
}

impl Algorithm {
    pub fn token(&self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
        }
    }

    /// Accepts the tokens case-insensitively; `-sess` variants are not offered.
    pub fn from_token(s: &str) -> Option<Algorithm> {
        if s.eq_ignore_ascii_case("MD5") {
            Some(Algorithm::Md5)
        } else if s.eq_ignore_ascii_case("SHA-256") {
            Some(Algorithm::Sha256)
        } else {
            None
        }
    }

    pub fn hash_hex(&self, data: &[u8]) -> String {
        match self {
            Algorithm::Md5 => hex(&Md5::digest(data)),
            Algorithm::Sha256 => hex(&Sha256::digest(data)),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// HA1 = H(username ":" realm ":" password), the only form a password is stored in.
pub fn ha1(alg: Algorithm, username: &str, realm: &str, password: &str) -> String {
    alg.hash_hex(format!("{username}:{realm}:{password}").as_bytes())
}

/// The parameters of a `Digest` credentials header.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Credentials {
    pub username: String,
    pub realm: String,
    pub nonce: String,
    pub uri: String,
    pub response: String,
    pub algorithm: Option<String>,
    pub cnonce: Option<String>,
    pub qop: Option<String>,
    pub nc: Option<String>,
    pub opaque: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("not Digest credentials")]
    Scheme,
    #[error("malformed credentials")]
    Malformed,
    #[error("credentials lack {0}")]
    Missing(&'static str),
    #[error("unsupported algorithm")]
    Algorithm,
    #[error("unsupported qop")]
    Qop,
}

impl Credentials {
    pub fn parse(value: &str) -> Result<Credentials, AuthError> {
        let value = value.trim();
        let (scheme, rest) = value.split_once([' ', '\t']).ok_or(AuthError::Scheme)?;
        if !scheme.eq_ignore_ascii_case("Digest") {
            return Err(AuthError::Scheme);
        }
        let mut c = Credentials::default();
        for (name, val) in params(rest)? {
            let slot = match name.to_ascii_lowercase().as_str() {
                "username" => &mut c.username,
                "realm" => &mut c.realm,
                "nonce" => &mut c.nonce,
                "uri" => &mut c.uri,
                "response" => &mut c.response,
                "algorithm" => {
                    c.algorithm = Some(val);
                    continue;
                }
                "cnonce" => {
                    c.cnonce = Some(val);
                    continue;
                }
                "qop" => {
                    c.qop = Some(val);
                    continue;
                }
                "nc" => {
                    c.nc = Some(val);
                    continue;
                }
                "opaque" => {
                    c.opaque = Some(val);
                    continue;
                }
                _ => continue,
            };
            *slot = val;
        }
        for (name, v) in [
            ("username", &c.username),
            ("realm", &c.realm),
            ("nonce", &c.nonce),
            ("uri", &c.uri),
            ("response", &c.response),
        ] {
            if v.is_empty() {
                return Err(AuthError::Missing(name));
            }
        }
        Ok(c)
    }

    /// The algorithm the client used; absent means MD5 (RFC 7616 §3.3).
    pub fn algorithm(&self) -> Result<Algorithm, AuthError> {
        match &self.algorithm {
            None => Ok(Algorithm::Md5),
            Some(t) => Algorithm::from_token(t).ok_or(AuthError::Algorithm),
        }
    }

    /// The response the client should have sent, given the stored HA1.
    pub fn expected_response(
        &self,
        alg: Algorithm,
        ha1: &str,
        method: &str,
    ) -> Result<String, AuthError> {
        let ha2 = alg.hash_hex(format!("{method}:{}", self.uri).as_bytes());
        let input = match self.qop.as_deref() {
            // RFC 2069 compatibility: some older phones omit qop.
            None => format!("{ha1}:{}:{ha2}", self.nonce),
            Some(q) if q.eq_ignore_ascii_case("auth") => {
                let nc = self.nc.as_deref().ok_or(AuthError::Missing("nc"))?;
                let cnonce = self.cnonce.as_deref().ok_or(AuthError::Missing("cnonce"))?;
                format!("{ha1}:{}:{nc}:{cnonce}:auth:{ha2}", self.nonce)
            }
            Some(_) => return Err(AuthError::Qop),
        };
        Ok(alg.hash_hex(input.as_bytes()))
    }

    /// Constant-time check of the client's response against the stored HA1.
    pub fn verify(&self, alg: Algorithm, ha1: &str, method: &str) -> bool {
        let Ok(expected) = self.expected_response(alg, ha1, method) else {
            return false;
        };
        let given = self.response.to_ascii_lowercase();
        expected.len() == given.len() && bool::from(expected.as_bytes().ct_eq(given.as_bytes()))
    }
}

/// `name=value` pairs separated by commas; values may be quoted strings.
fn params(s: &str) -> Result<Vec<(String, String)>, AuthError> {
    let mut out = Vec::new();
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        while i < bytes.len() && (bytes[i] == b',' || bytes[i].is_ascii_whitespace()) {
            i += 1;
        }
        if i >= bytes.len() {
            break;
        }
        let start = i;
        while i < bytes.len() && bytes[i] != b'=' && bytes[i] != b',' {
            i += 1;
        }
        if i >= bytes.len() || bytes[i] != b'=' {
            return Err(AuthError::Malformed);
        }
        let name = s[start..i].trim().to_string();
        i += 1;
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let value = if i < bytes.len() && bytes[i] == b'"' {
            i += 1;
            let mut v = Vec::new();
            loop {
                match bytes.get(i) {
                    None => return Err(AuthError::Malformed),
                    Some(b'"') => {
                        i += 1;
                        break;
                    }
                    Some(b'\\') => {
                        v.push(*bytes.get(i + 1).ok_or(AuthError::Malformed)?);
                        i += 2;
                    }
                    Some(b) => {
                        v.push(*b);
                        i += 1;
                    }
                }
            }
            String::from_utf8(v).map_err(|_| AuthError::Malformed)?
        } else {
            let start = i;
            while i < bytes.len() && bytes[i] != b',' {
                i += 1;
            }
            s[start..i].trim().to_string()
        };
        if name.is_empty() {
            return Err(AuthError::Malformed);
        }
        out.push((name, value));
    }
    Ok(out)
}

/// One `WWW-Authenticate` value for a challenge.
pub fn challenge(alg: Algorithm, realm: &str, nonce: &str, stale: bool) -> String {
    let stale = if stale { ", stale=true" } else { "" };
    format!(
        "Digest realm=\"{realm}\", nonce=\"{nonce}\", algorithm={}, qop=\"auth\"{stale}",
        alg.token()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7616 §3.9.1: the same request answered with SHA-256 and with MD5.
    fn rfc7616(alg: &str, response: &str) -> Credentials {
        Credentials::parse(&format!(
            "Digest username=\"Mufasa\", realm=\"http-auth@example.org\", uri=\"/dir/index.html\", algorithm={alg}, nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", nc=00000001, cnonce=\"f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ\", qop=auth, response=\"{response}\", opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\""
        ))
        .unwrap()
    }

    #[test]
    fn rfc7616_vectors() {
        for (alg, resp) in [
            (
                Algorithm::Sha256,
                "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
            ),
            (Algorithm::Md5, "8ca523f5e9506fed4657c9700eebdbec"),
        ] {
            let c = rfc7616(alg.token(), resp);
            assert_eq!(c.algorithm().unwrap(), alg);
            let h = ha1(alg, "Mufasa", "http-auth@example.org", "Circle of Life");
            assert_eq!(c.expected_response(alg, &h, "GET").unwrap(), resp);
            assert!(c.verify(alg, &h, "GET"));
            assert!(!c.verify(
                alg,
                &ha1(alg, "Mufasa", "http-auth@example.org", "circle of life"),
                "GET"
            ));
        }
    }

    #[test]
    fn rfc2617_vector_without_algorithm_is_md5() {
        let c = Credentials::parse("Digest username=\"Mufasa\",realm=\"testrealm@host.com\",nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\",uri=\"/dir/index.html\",qop=auth,nc=00000001,cnonce=\"0a4f113b\",response=\"6629fae49393a05397450978507c4ef1\"").unwrap();
        let h = ha1(
            Algorithm::Md5,
            "Mufasa",
            "testrealm@host.com",
            "Circle Of Life",
        );
        assert!(c.verify(c.algorithm().unwrap(), &h, "GET"));
    }

    #[test]
    fn rejects_broken_headers() {
        assert_eq!(Credentials::parse("Basic abc"), Err(AuthError::Scheme));
        assert_eq!(
            Credentials::parse("Digest username=\"a"),
            Err(AuthError::Malformed)
        );
        assert_eq!(
            Credentials::parse("Digest username=\"a\", realm=\"r\", nonce=\"n\", uri=\"u\""),
            Err(AuthError::Missing("response"))
        );
    }

    proptest::proptest! {
        #[test]
        fn parser_never_panics(s in ".{0,300}") {
            let _ = Credentials::parse(&s);
        }
    }
}
