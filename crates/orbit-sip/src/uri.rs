//! SIP URI and name-addr grammar. The only file that names `rsipstack`:
//! its URI and name-addr parsers are used, and their results are copied into
//! Orbit's own types so an upgrade of the pinned crate touches this file alone.

use rsipstack::sip::{self as rs, uri::Param};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Sip,
    Sips,
    Tel,
}

/// A parsed URI. Host is lower-cased (hosts compare case-insensitively);
/// the user part is kept as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipUri {
    pub scheme: Scheme,
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
    /// URI parameters as (lower-case name, value).
    pub params: Vec<(String, Option<String>)>,
    /// The text it was parsed from.
    pub raw: String,
}

impl SipUri {
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_deref())
    }
}

impl std::fmt::Display for SipUri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.raw)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UriError {
    #[error("unsupported URI scheme")]
    Scheme,
    #[error("malformed URI")]
    Malformed,
}

/// A From/To/Contact style value: optional display name, URI, header params.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    pub display: Option<String>,
    pub uri: SipUri,
    /// Header parameters (after the URI) as (lower-case name, value).
    pub params: Vec<(String, Option<String>)>,
}

impl NameAddr {
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_deref())
    }

    pub fn tag(&self) -> Option<&str> {
        self.param("tag").flatten()
    }
}

fn scheme_of(raw: &str) -> Result<Scheme, UriError> {
    let (scheme, _) = raw.split_once(':').ok_or(UriError::Malformed)?;
    match scheme.to_ascii_lowercase().as_str() {
        "sip" => Ok(Scheme::Sip),
        "sips" => Ok(Scheme::Sips),
        "tel" => Ok(Scheme::Tel),
        s if !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b)) =>
        {
            Err(UriError::Scheme)
        }
        _ => Err(UriError::Malformed),
    }
}

fn params_of(params: &[Param]) -> Vec<(String, Option<String>)> {
    params
        .iter()
        .map(|p| {
            let text = p.to_string();
            let text = text.trim_start_matches(';');
            match text.split_once('=') {
                Some((n, v)) => (n.to_ascii_lowercase(), Some(v.to_string())),
                None => (text.to_ascii_lowercase(), None),
            }
        })
        .collect()
}

fn convert(uri: &rs::Uri, raw: &str, scheme: Scheme) -> SipUri {
    let host = match &uri.host_with_port.host {
        rs::Host::Domain(d) => d.to_string().to_ascii_lowercase(),
        rs::Host::IpAddr(ip) => ip.to_string(),
    };
    SipUri {
        scheme,
        user: uri.user().map(str::to_string),
        host,
        port: uri.host_with_port.port.as_ref().map(|p| p.0),
        params: params_of(&uri.params),
        raw: raw.to_string(),
    }
}

/// Parse an addr-spec (a bare URI, as in a Request-URI).
pub fn parse_uri(raw: &str) -> Result<SipUri, UriError> {
    let scheme = scheme_of(raw)?;
    if raw
        .bytes()
        .any(|b| b.is_ascii_whitespace() || b == b'<' || b == b'>')
    {
        return Err(UriError::Malformed);
    }
    if scheme == Scheme::Tel {
        // tel: has no host; rsipstack's SIP grammar does not fit it.
        let rest = &raw[4..];
        let (number, params) = rest.split_once(';').unwrap_or((rest, ""));
        if number.is_empty() {
            return Err(UriError::Malformed);
        }
        let params = params
            .split(';')
            .filter(|p| !p.is_empty())
            .map(|p| match p.split_once('=') {
                Some((n, v)) => (n.to_ascii_lowercase(), Some(v.to_string())),
                None => (p.to_ascii_lowercase(), None),
            })
            .collect();
        return Ok(SipUri {
            scheme,
            user: Some(number.to_string()),
            host: String::new(),
            port: None,
            params,
            raw: raw.to_string(),
        });
    }
    // An IPv6 host needs its brackets (RFC 5118 §4.2): more than one colon
    // in an unbracketed host part is not a host:port.
    let after_scheme = raw.split_once(':').map(|(_, r)| r).unwrap_or("");
    let hostport = after_scheme
        .rsplit_once('@')
        .map(|(_, h)| h)
        .unwrap_or(after_scheme);
    let hostport = hostport.split([';', '?']).next().unwrap_or("");
    if !hostport.starts_with('[') && hostport.matches(':').count() > 1 {
        return Err(UriError::Malformed);
    }
    let uri = rs::parse_uri(raw).map_err(|_| UriError::Malformed)?;
    if matches!(&uri.host_with_port.host, rs::Host::Domain(d) if d.to_string().is_empty()) {
        return Err(UriError::Malformed);
    }
    Ok(convert(&uri, raw, scheme))
}

/// Parse one From/To/Contact value (not a comma list).
pub fn parse_name_addr(value: &str) -> Result<NameAddr, UriError> {
    let value = value.trim();
    check_display(value)?;
    // The URI is between the first '<' outside a quoted display name and the
    // next '>'; a '>' later on may sit inside a quoted header parameter
    // (`+sip.instance="<urn:...>"`). Without brackets, parameters after the
    // URI belong to the header (RFC 3261 §20).
    let uri_text = match angle_start(value) {
        Some(a) => match value[a..].find('>') {
            Some(len) => &value[a + 1..a + len],
            None => return Err(UriError::Malformed),
        },
        None => value.split(';').next().unwrap_or(value),
    };
    let uri = parse_uri(uri_text.trim())?;
    Ok(NameAddr {
        display: display_of(value),
        uri,
        params: header_params(value),
    })
}

/// Walk `value` outside quoted strings (honouring backslash escapes inside
/// them), calling `f` with each unquoted character until it returns true.
/// Returns where it stopped, and whether the text ended inside a quote.
fn scan_unquoted(value: &str, mut f: impl FnMut(usize, char) -> bool) -> (Option<usize>, bool) {
    let (mut quoted, mut escaped) = (false, false);
    for (i, c) in value.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if !quoted && f(i, c) => return (Some(i), false),
            _ => {}
        }
    }
    (None, quoted)
}

/// A display name is a quoted string (balanced, with escapes) or tokens
/// separated by spaces (RFC 3261 §25.1 `display-name`).
fn check_display(value: &str) -> Result<(), UriError> {
    let (lt, unbalanced) = scan_unquoted(value, |_, c| c == '<');
    if unbalanced {
        return Err(UriError::Malformed);
    }
    let Some(lt) = lt else {
        return Ok(());
    };
    let display = value[..lt].trim();
    if display.is_empty() || display.starts_with('"') {
        return Ok(());
    }
    let tokens_ok = display
        .split([' ', '\t'])
        .filter(|w| !w.is_empty())
        .all(crate::frame::is_token);
    if tokens_ok {
        Ok(())
    } else {
        Err(UriError::Malformed)
    }
}

/// Byte index of the '<' that opens the URI, skipping quoted text.
fn angle_start(value: &str) -> Option<usize> {
    scan_unquoted(value, |_, c| c == '<').0
}

fn display_of(value: &str) -> Option<String> {
    let idx = angle_start(value)?;
    let d = value[..idx].trim().trim_matches('"').trim();
    (!d.is_empty()).then(|| d.to_string())
}

fn header_params(value: &str) -> Vec<(String, Option<String>)> {
    let after = match angle_start(value).and_then(|a| value[a..].find('>').map(|l| a + l)) {
        Some(i) => &value[i + 1..],
        None => value.split_once(';').map(|(_, p)| p).unwrap_or(""),
    };
    split_outside_quotes(after, ';')
        .into_iter()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((n, v)) => (n.trim().to_ascii_lowercase(), Some(v.trim().to_string())),
            None => (p.to_ascii_lowercase(), None),
        })
        .collect()
}

fn split_outside_quotes(s: &str, sep: char) -> Vec<&str> {
    let mut cuts = Vec::new();
    scan_unquoted(s, |i, c| {
        if c == sep {
            cuts.push(i);
        }
        false
    });
    cut_at(s, &cuts, sep.len_utf8())
}

/// Split a header value at commas that separate list elements (not inside
/// quotes or angle brackets).
pub fn split_list(value: &str) -> Vec<&str> {
    let mut angle = false;
    let mut cuts = Vec::new();
    scan_unquoted(value, |i, c| {
        match c {
            '<' => angle = true,
            '>' => angle = false,
            ',' if !angle => cuts.push(i),
            _ => {}
        }
        false
    });
    let mut out: Vec<&str> = cut_at(value, &cuts, 1).into_iter().map(str::trim).collect();
    out.retain(|s| !s.is_empty());
    out
}

/// `s` cut at each index in `cuts`, dropping `sep_len` bytes at each cut.
fn cut_at<'a>(s: &'a str, cuts: &[usize], sep_len: usize) -> Vec<&'a str> {
    let mut out = Vec::with_capacity(cuts.len() + 1);
    let mut start = 0;
    for &i in cuts {
        out.push(&s[start..i]);
        start = i + sep_len;
    }
    out.push(&s[start..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_uri_forms() {
        let u = parse_uri("sip:101@ACME.test:5070;transport=tcp").unwrap();
        assert_eq!(u.user.as_deref(), Some("101"));
        assert_eq!(u.host, "acme.test");
        assert_eq!(u.port, Some(5070));
        assert_eq!(
            u.param("transport")
                .flatten()
                .map(str::to_ascii_lowercase)
                .as_deref(),
            Some("tcp")
        );
        assert_eq!(
            parse_uri("tel:+1234;phone-context=x")
                .unwrap()
                .user
                .as_deref(),
            Some("+1234")
        );
        assert_eq!(parse_uri("http://x"), Err(UriError::Scheme));
        assert!(parse_uri("sip:a b@c").is_err());
    }

    #[test]
    fn name_addr_forms() {
        let n = parse_name_addr("\"Alice A\" <sip:101@acme.test;user=phone>;tag=xyz").unwrap();
        assert_eq!(n.display.as_deref(), Some("Alice A"));
        assert_eq!(n.tag(), Some("xyz"));
        assert_eq!(n.uri.user.as_deref(), Some("101"));
        let bare = parse_name_addr("sip:101@acme.test;tag=1").unwrap();
        assert_eq!(bare.tag(), Some("1"));
        assert!(bare.uri.params.is_empty());
    }

    #[test]
    fn quoted_brackets_in_header_params_do_not_end_the_uri() {
        let n = parse_name_addr("<sip:4100@127.0.0.1:52713;transport=udp>;reg-id=1;+sip.instance=\"<urn:uuid:00000000-0000-0000-0000-0000a30f0000>\"").unwrap();
        assert_eq!(n.uri.raw, "sip:4100@127.0.0.1:52713;transport=udp");
        let quoted = parse_name_addr("\"a <b>\" <sip:1@x>").unwrap();
        assert_eq!(quoted.uri.raw, "sip:1@x");
    }

    #[test]
    fn list_split_respects_quotes_and_brackets() {
        let v = split_list("\"a,b\" <sip:1@x;p=1,2>;expires=3, <sip:2@x>");
        assert_eq!(v.len(), 2);
        assert_eq!(v[1], "<sip:2@x>");
    }
}
