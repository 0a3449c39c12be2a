//! One leg's dialog (RFC 3261 §12): identifiers, sequence numbers, the
//! remote target, and where its requests go. Orbit is a user agent on each
//! leg, so each leg has its own Call-ID, tags and CSeq.

use std::net::SocketAddr;

use bytes::Bytes;
use orbit_sip::frame::Message;
use orbit_sip::uri::{parse_name_addr, split_list};
use orbit_sip::{new_branch, Method, Request, Transport};

use crate::sipmsg::{token, LocalAddr, RequestText};

/// Where a leg's phone is reached: the transport and address its requests
/// came from (or its registration came from), which works behind NAT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    pub transport: Transport,
    pub addr: SocketAddr,
}

impl Peer {
    /// From a binding's `transport:ip:port` source.
    pub fn parse(source: &str) -> Option<Peer> {
        let (t, addr) = source.split_once(':')?;
        let transport = match t {
            "udp" => Transport::Udp,
            "tcp" => Transport::Tcp,
            "tls" => Transport::Tls,
            _ => return None,
        };
        Some(Peer {
            transport,
            addr: addr.parse().ok()?,
        })
    }
}

#[derive(Debug, Clone)]
pub struct Dialog {
    pub call_id: String,
    pub local_tag: String,
    pub remote_tag: Option<String>,
    /// Our identity on this leg (name-addr without tag).
    pub local_uri: String,
    pub remote_uri: String,
    /// The remote Contact: Request-URI of in-dialog requests.
    pub remote_target: String,
    pub route_set: Vec<String>,
    pub local_cseq: u32,
    pub remote_cseq: u32,
    pub peer: Peer,
}

/// The URI inside a Contact header value.
pub fn contact_uri(msg: &Message) -> Option<String> {
    let first = msg.header("contact")?;
    let item = split_list(first).into_iter().next()?;
    parse_name_addr(item).ok().map(|na| na.uri.raw)
}

/// A header value without its `;tag=` parameter (for From/To of a dialog).
fn without_tag(value: &str) -> String {
    match parse_name_addr(value) {
        Ok(na) => {
            let mut out = match &na.display {
                Some(d) if !d.is_empty() => format!("\"{}\" <{}>", d.trim_matches('"'), na.uri.raw),
                _ => format!("<{}>", na.uri.raw),
            };
            for (n, v) in na
                .params
                .iter()
                .filter(|(n, _)| !n.eq_ignore_ascii_case("tag"))
            {
                match v {
                    Some(v) => out.push_str(&format!(";{n}={v}")),
                    None => out.push_str(&format!(";{n}")),
                }
            }
            out
        }
        Err(_) => value.to_string(),
    }
}

impl Dialog {
    /// The dialog Orbit has as the answerer of `req` (an initial INVITE);
    /// `local_tag` is the To tag its responses carry.
    pub fn for_incoming(req: &Request, local_tag: String, peer: Peer) -> Dialog {
        let route_set = req
            .message
            .header_all("record-route")
            .flat_map(split_list)
            .map(str::to_string)
            .collect();
        Dialog {
            call_id: req.call_id.clone(),
            local_tag,
            remote_tag: req.from.tag().map(str::to_string),
            local_uri: without_tag(req.header("to").unwrap_or("")),
            remote_uri: without_tag(req.header("from").unwrap_or("")),
            remote_target: contact_uri(&req.message).unwrap_or_else(|| req.from.uri.raw.clone()),
            route_set,
            local_cseq: rand::random::<u16>() as u32 + 1,
            remote_cseq: req.cseq,
            peer,
        }
    }

    /// A dialog Orbit starts as the caller, towards `target` (a Contact).
    pub fn outgoing(local_uri: String, remote_uri: String, target: String, peer: Peer) -> Dialog {
        Dialog {
            call_id: format!("{}@orbit", token()),
            local_tag: token(),
            remote_tag: None,
            local_uri,
            remote_uri,
            remote_target: target,
            route_set: Vec::new(),
            local_cseq: 1,
            remote_cseq: 0,
            peer,
        }
    }

    /// Complete an outgoing dialog from the response that confirmed it
    /// (a 2xx or a provisional with a To tag).
    pub fn update_from_response(&mut self, msg: &Message) {
        if let Some(tag) = msg
            .header("to")
            .and_then(|t| parse_name_addr(t).ok())
            .and_then(|na| na.tag().map(str::to_string))
        {
            self.remote_tag = Some(tag);
        }
        if let Some(target) = contact_uri(msg) {
            self.remote_target = target;
        }
        let mut rr: Vec<String> = msg
            .header_all("record-route")
            .flat_map(split_list)
            .map(str::to_string)
            .collect();
        if !rr.is_empty() {
            rr.reverse();
            self.route_set = rr;
        }
    }

    pub fn from_header(&self) -> String {
        format!("{};tag={}", self.local_uri, self.local_tag)
    }

    pub fn to_header(&self) -> String {
        match &self.remote_tag {
            Some(t) => format!("{};tag={t}", self.remote_uri),
            None => self.remote_uri.clone(),
        }
    }

    /// Start an in-dialog request (new CSeq, new branch). Returns the text
    /// builder (to add headers and a body), the branch and the CSeq used.
    pub fn request(&mut self, method: Method, local: &LocalAddr) -> (RequestText, String, u32) {
        self.local_cseq = self.local_cseq.wrapping_add(1);
        let cseq = self.local_cseq;
        let branch = new_branch();
        let text = self.request_with(method, local, &branch, cseq);
        (text, branch, cseq)
    }

    /// The request line and dialog headers with a given branch and CSeq
    /// (ACK reuses the INVITE's number; CANCEL its branch too).
    pub fn request_with(
        &self,
        method: Method,
        local: &LocalAddr,
        branch: &str,
        cseq: u32,
    ) -> RequestText {
        let mut text = RequestText::new(method, self.remote_target.clone())
            .via(local, self.peer.transport, branch)
            .header("Max-Forwards", "70")
            .header("From", self.from_header())
            .header("To", self.to_header())
            .header("Call-ID", self.call_id.clone())
            .header("CSeq", format!("{cseq} {}", method.as_str()));
        for route in &self.route_set {
            text = text.header("Route", route.clone());
        }
        text
    }

    /// The ACK for a 2xx to the INVITE with CSeq `cseq` (its own branch).
    pub fn ack_2xx(&self, local: &LocalAddr, cseq: u32) -> Bytes {
        self.request_with(Method::Ack, local, &new_branch(), cseq)
            .build()
    }

    /// Whether an in-dialog request is in order (RFC 3261 §12.2.2); records
    /// its CSeq when it is.
    pub fn accept_remote_cseq(&mut self, cseq: u32) -> bool {
        if cseq <= self.remote_cseq && self.remote_cseq != 0 {
            return false;
        }
        self.remote_cseq = cseq;
        true
    }
}

/// Fields of a saved dialog are separated by this (never in SIP headers).
const SEP: char = '\u{1f}';

impl Dialog {
    /// A text form of the dialog, for keeping a subscription over a restart.
    pub fn encode(&self) -> String {
        let peer = format!(
            "{}:{}",
            self.peer.transport.as_str().to_ascii_lowercase(),
            self.peer.addr
        );
        [
            self.call_id.clone(),
            self.local_tag.clone(),
            self.remote_tag.clone().unwrap_or_default(),
            self.local_uri.clone(),
            self.remote_uri.clone(),
            self.remote_target.clone(),
            self.route_set.join("\u{1e}"),
            self.local_cseq.to_string(),
            self.remote_cseq.to_string(),
            peer,
        ]
        .join(&SEP.to_string())
    }

    pub fn decode(text: &str) -> Option<Dialog> {
        let f: Vec<&str> = text.split(SEP).collect();
        let [call_id, local_tag, remote_tag, local_uri, remote_uri, target, routes, lcseq, rcseq, peer] =
            f.as_slice()
        else {
            return None;
        };
        Some(Dialog {
            call_id: call_id.to_string(),
            local_tag: local_tag.to_string(),
            remote_tag: Some(remote_tag.to_string()).filter(|t| !t.is_empty()),
            local_uri: local_uri.to_string(),
            remote_uri: remote_uri.to_string(),
            remote_target: target.to_string(),
            route_set: routes
                .split('\u{1e}')
                .filter(|r| !r.is_empty())
                .map(str::to_string)
                .collect(),
            local_cseq: lcseq.parse().ok()?,
            remote_cseq: rcseq.parse().ok()?,
            peer: Peer::parse(peer)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use orbit_sip::frame::{parse, Framing};

    fn local() -> LocalAddr {
        LocalAddr {
            sip: "127.0.0.1:5060".parse().unwrap(),
            tls_port: None,
        }
    }

    #[test]
    fn saved_dialog_round_trips() {
        let d = Dialog {
            call_id: "c@x".into(),
            local_tag: "l".into(),
            remote_tag: Some("r".into()),
            local_uri: "<sip:park-103@acme.test>".into(),
            remote_uri: "\"Bob\" <sip:103@acme.test>".into(),
            remote_target: "sip:103@127.0.0.1:5070;ob".into(),
            route_set: vec!["<sip:p1;lr>".into(), "<sip:p2;lr>".into()],
            local_cseq: 7,
            remote_cseq: 3,
            peer: Peer::parse("tcp:[::1]:5070").unwrap(),
        };
        let back = Dialog::decode(&d.encode()).unwrap();
        assert_eq!(back.encode(), d.encode());
        assert_eq!(back.peer, d.peer);
        assert!(Dialog::decode("short").is_none());
    }

    #[test]
    fn peer_from_binding_source() {
        let p = Peer::parse("udp:127.0.0.1:5062").unwrap();
        assert_eq!(p.transport, Transport::Udp);
        assert_eq!(p.addr.port(), 5062);
        assert_eq!(
            Peer::parse("tcp:[::1]:5070").unwrap().transport,
            Transport::Tcp
        );
        assert!(Peer::parse("sctp:1.2.3.4:5").is_none());
    }

    #[test]
    fn outgoing_dialog_learns_tag_target_and_routes() {
        let peer = Peer::parse("udp:127.0.0.1:5062").unwrap();
        let mut d = Dialog::outgoing(
            "\"A\" <sip:101@acme.test>".into(),
            "<sip:102@acme.test>".into(),
            "sip:102@127.0.0.1:5062".into(),
            peer,
        );
        let resp = parse(b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK1\r\nFrom: <sip:101@acme.test>;tag=x\r\nTo: <sip:102@acme.test>;tag=callee\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nContact: <sip:102@127.0.0.1:5999;ob>\r\nRecord-Route: <sip:p1;lr>, <sip:p2;lr>\r\nContent-Length: 0\r\n\r\n", Framing::Datagram).unwrap();
        d.update_from_response(&resp);
        assert_eq!(d.remote_tag.as_deref(), Some("callee"));
        assert_eq!(d.remote_target, "sip:102@127.0.0.1:5999;ob");
        assert_eq!(d.route_set, vec!["<sip:p2;lr>", "<sip:p1;lr>"]);
        let (text, _, cseq) = d.request(Method::Bye, &local());
        assert_eq!(cseq, 2);
        let bye = parse(&text.build(), Framing::Datagram).unwrap();
        assert_eq!(bye.header("to"), Some("<sip:102@acme.test>;tag=callee"));
        assert_eq!(bye.header_all("route").count(), 2);
    }

    #[test]
    fn incoming_dialog_mirrors_the_invite() {
        let raw: &[u8] = b"INVITE sip:102@acme.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK2\r\nFrom: \"Alice\" <sip:101@acme.test>;tag=a1\r\nTo: <sip:102@acme.test>\r\nCall-ID: call-1\r\nCSeq: 7 INVITE\r\nContact: <sip:101@127.0.0.1:5070>\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n";
        let orbit_sip::sanity::Inbound::Request(req) =
            orbit_sip::sanity::check(raw, Framing::Datagram, &Default::default())
        else {
            panic!("not a request")
        };
        let mut d = Dialog::for_incoming(
            &req,
            "t1".into(),
            Peer::parse("udp:127.0.0.1:5070").unwrap(),
        );
        assert_eq!(d.remote_tag.as_deref(), Some("a1"));
        assert_eq!(d.remote_uri, "\"Alice\" <sip:101@acme.test>");
        assert_eq!(d.from_header(), "<sip:102@acme.test>;tag=t1");
        assert_eq!(d.remote_target, "sip:101@127.0.0.1:5070");
        assert!(!d.accept_remote_cseq(7));
        assert!(d.accept_remote_cseq(8));
    }
}
