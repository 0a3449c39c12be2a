"""Calls from hand-driven SIP clients where the test must control every
header: session timers (RFC 4028) and the cleanup of calls whose media
stopped (no RTP from either side)."""

from __future__ import annotations

import time

import pytest

import harness

DOMAIN = "acme.test"
SDP = ("v=0\r\no=raw 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
       "m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n")


@pytest.fixture
def pbx(orbit_factory):
    srv = orbit_factory(config={"bootstrap_domain": DOMAIN,
                                "calls": {"rtp_timeout_s": 2}})
    for ext in ("101", "102"):
        srv.create_extension(ext, f"pw{ext}secret")
    return srv


def method(msg):
    return None if msg is None else msg.start_line.split(" ", 1)[0]


def reply(client, req, status, reason, to_tag, body=b"", contact_user="102"):
    lines = [f"SIP/2.0 {status} {reason}"]
    lines += [f"Via: {v}" for v in req.get_all("via")]
    to = req.get("to")
    if "tag=" not in to:
        to += f";tag={to_tag}"
    lines += [f"From: {req.get('from')}", f"To: {to}", f"Call-ID: {req.get('call-id')}",
              f"CSeq: {req.get('cseq')}", f"Contact: <{client.contact_uri(contact_user)}>"]
    if body:
        lines.append("Content-Type: application/sdp")
    lines.append(f"Content-Length: {len(body)}")
    client.send_raw(("\r\n".join(lines) + "\r\n\r\n").encode() + body)


def invite(a, extra=()):
    """101 calls 102 with digest auth; returns (first INVITE bytes' headers, final response)."""
    ruri = f"sip:102@{DOMAIN}"
    body = SDP.format(port=40000).encode()
    hdrs = [("Contact", f"<{a.contact_uri('101')}>"), ("Content-Type", "application/sdp"),
            *extra]
    first = a.request("INVITE", ruri, hdrs, body=body, to_uri=ruri,
                      from_uri=f"sip:101@{DOMAIN}")
    assert first is not None and first.status == 407, first
    chal = harness.parse_auth_params(first.get("proxy-authenticate"))
    auth = harness.digest_authorization(chal, "INVITE", ruri, "101", "pw101secret")
    a.send_raw(a.build("INVITE", ruri, hdrs + [("Proxy-Authorization", auth)], body=body,
                       to_uri=ruri, from_uri=f"sip:101@{DOMAIN}"))


def callee(pbx):
    b = harness.SipClient(pbx.sip_addr)
    _, final = b.register("102", DOMAIN, "pw102secret")
    assert final is not None and final.status == 200, final
    return b


def answer_incoming(b, timeout=5):
    inv = b.recv_msg(timeout=timeout)
    while inv is not None and method(inv) != "INVITE":
        inv = b.recv_msg(timeout=timeout)
    assert method(inv) == "INVITE", inv
    reply(b, inv, 200, "OK", "btag", SDP.format(port=40002).encode())
    return inv


def final_of(a, timeout=5):
    while True:
        m = a.recv_msg(timeout=timeout)
        assert m is not None, "no final answer"
        if m.status is not None and m.status >= 200:
            return m


def ack(a, ok):
    ruri = f"sip:102@{DOMAIN}"
    a.send_raw(a.build("ACK", ruri, to_uri=ruri, from_uri=f"sip:101@{DOMAIN}", cseq=a.cseq).replace(
        f"To: <{ruri}>".encode(), f"To: {ok.get('to')}".encode()))


def test_session_timer_is_granted_and_refreshed(pbx):
    with harness.SipClient(pbx.sip_addr) as a, callee(pbx) as b:
        invite(a, extra=[("Session-Expires", "120"), ("Supported", "timer")])
        answer_incoming(b)
        ok = final_of(a)
        assert ok.status == 200, ok
        assert ok.get("session-expires").replace(" ", "") == "120;refresher=uac", ok
        assert "timer" in (ok.get("require") or ""), ok
        ack(a, ok)
        # A refresh by UPDATE without a body keeps the call and the timer.
        target = ok.contacts()[0].strip("<>")
        upd = a.build("UPDATE", target, [("Session-Expires", "120;refresher=uac")],
                      to_uri=f"sip:102@{DOMAIN}", from_uri=f"sip:101@{DOMAIN}")
        upd = upd.replace(f"To: <sip:102@{DOMAIN}>".encode(), f"To: {ok.get('to')}".encode())
        a.send_raw(upd)
        r = final_of(a)
        assert r.status == 200 and "120" in (r.get("session-expires") or ""), r


def test_too_small_session_interval_gets_422(pbx):
    with harness.SipClient(pbx.sip_addr) as a:
        ruri = f"sip:102@{DOMAIN}"
        body = SDP.format(port=40000).encode()
        hdrs = [("Contact", f"<{a.contact_uri('101')}>"), ("Content-Type", "application/sdp"),
                ("Session-Expires", "30"), ("Supported", "timer")]
        first = a.request("INVITE", ruri, hdrs, body=body, to_uri=ruri,
                          from_uri=f"sip:101@{DOMAIN}")
        chal = harness.parse_auth_params(first.get("proxy-authenticate"))
        auth = harness.digest_authorization(chal, "INVITE", ruri, "101", "pw101secret")
        r = a.request("INVITE", ruri, hdrs + [("Proxy-Authorization", auth)], body=body,
                      to_uri=ruri, from_uri=f"sip:101@{DOMAIN}")
        assert r.status == 422 and r.get("min-se") == "90", r


def test_call_without_media_is_cleaned_up(pbx):
    with harness.SipClient(pbx.sip_addr) as a, callee(pbx) as b:
        invite(a)
        answer_incoming(b)
        ok = final_of(a)
        assert ok.status == 200, ok
        ack(a, ok)
        t0 = time.monotonic()
        # Neither side sends RTP: after rtp_timeout_s (2 s, checked every 5 s)
        # both get a BYE.
        bye_a = a.recv_msg(timeout=12)
        while bye_a is not None and method(bye_a) != "BYE":
            bye_a = a.recv_msg(timeout=12)
        assert method(bye_a) == "BYE", bye_a
        assert time.monotonic() - t0 <= 11
        reply(a, bye_a, 200, "OK", "x", contact_user="101")
        bye_b = b.recv_msg(timeout=5)
        while bye_b is not None and method(bye_b) != "BYE":
            bye_b = b.recv_msg(timeout=5)
        assert method(bye_b) == "BYE", bye_b
        reply(b, bye_b, 200, "OK", "btag")
    # The record is written behind the call's end: wait for it (bounded).
    api = harness.Api(pbx.http_base, pbx.admin_token)
    deadline = time.monotonic() + 5
    recs = []
    while time.monotonic() < deadline and not recs:
        recs = api.get(f"/api/v1/tenants/{DOMAIN}/call-records").json["call_records"]
        time.sleep(0.1)
    assert recs and recs[0]["end_reason"] == "rtp_timeout", recs
