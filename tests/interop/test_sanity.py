"""Hand-built (bad) SIP messages over raw sockets; check the status line Orbit answers.

About 513: Orbit's message size limit must be exceeded, and a UDP datagram cannot
carry more than 65,507 bytes (IPv4) / 65,527 (IPv6), so the 513 case runs over TCP
(a 70,000-byte message). Over UDP the largest possible datagram (~65,000 bytes) is
checked to be processed whole (OPTIONS -> 200), not mistaken for a broken message.
"""

import random
import re
import socket
import time

import pytest

import harness
from harness import SipClient, rand_token


@pytest.fixture(scope="module")
def orbit(module_factory):
    return module_factory(config={"guard": {"enabled": False}}, name="orbit-sanity")


def norm(s):
    return re.sub(r"[^a-z0-9]", "", (s or "").lower())


def raw_request(c: SipClient, method="REGISTER", ruri="sip:orbit.local", version="SIP/2.0",
                call_id=True, cseq=True, from_=True, to=True, max_forwards="70",
                content_length="0", extra=(), body=b"", cseq_method=None):
    cid = f"{rand_token(12)}@sanity"
    lines = [f"{method} {ruri} {version}", f"Via: {c.via()}"]
    if max_forwards is not None:
        lines.append(f"Max-Forwards: {max_forwards}")
    if from_:
        lines.append(f"From: <sip:100@orbit.local>;tag={rand_token(6)}")
    if to:
        lines.append("To: <sip:100@orbit.local>")
    if call_id:
        lines.append(f"Call-ID: {cid}")
    if cseq:
        lines.append(f"CSeq: {cseq if isinstance(cseq, str) else 1} {cseq_method or method}")
    lines += list(extra)
    if content_length is not None:
        lines.append(f"Content-Length: {content_length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body, cid


def check_echo(resp, cid):
    assert resp.get("call-id") == cid, f"Call-ID not echoed:\n{resp}"
    assert resp.get("cseq") is not None, f"CSeq not echoed:\n{resp}"
    assert resp.get_all("via"), f"Via not echoed:\n{resp}"


def test_options_200_with_allow_accept_supported(orbit):
    with SipClient(orbit.sip_addr) as c:
        data, cid = raw_request(c, "OPTIONS", extra=["Accept: application/sdp"])
        r = c.exchange_raw(data)
    assert r is not None and r.status == 200, r
    check_echo(r, cid)
    allow = {m.strip().upper() for v in r.get_all("allow") for m in v.split(",")}
    assert {"REGISTER", "OPTIONS"} <= allow, r
    assert r.get("accept") is not None, f"no Accept header:\n{r}"
    assert r.get("supported") is not None, f"no Supported header:\n{r}"
    assert re.search(r";\s*tag=", r.get("to") or ""), f"200 to OPTIONS needs a To tag:\n{r}"


def test_options_200_over_tcp(orbit):
    with SipClient(orbit.sip_addr, transport="tcp") as c:
        data, cid = raw_request(c, "OPTIONS")
        r = c.exchange_raw(data)
    assert r is not None and r.status == 200, r
    check_echo(r, cid)


def test_options_with_max_forwards_0_is_answered(orbit):
    with SipClient(orbit.sip_addr) as c:
        data, cid = raw_request(c, "OPTIONS", max_forwards="0")
        r = c.exchange_raw(data)
    assert r is not None and r.status == 200, r


def test_505_version_not_supported(orbit):
    with SipClient(orbit.sip_addr) as c:
        data, cid = raw_request(c, version="SIP/3.0")
        r = c.exchange_raw(data)
    assert r is not None, "no response to SIP/3.0 request"
    assert r.start_line.startswith("SIP/2.0 505"), r
    check_echo(r, cid)


BAD_400 = {
    "missing Call-ID": (dict(call_id=False), "callid"),
    "negative Content-Length": (dict(content_length="-5"), "contentlength"),
    "non-numeric Content-Length": (dict(content_length="abc"), "contentlength"),
    "Content-Length beyond the datagram": (dict(content_length="500"), "contentlength"),
    "missing CSeq": (dict(cseq=False), "cseq"),
    "non-numeric CSeq": (dict(cseq="abc"), "cseq"),
    "missing From": (dict(from_=False), "from"),
    "missing To": (dict(to=False), "to"),
}


@pytest.mark.parametrize("case", list(BAD_400))
def test_400_malformed_with_reason(orbit, case):
    kwargs, must_name = BAD_400[case]
    with SipClient(orbit.sip_addr) as c:
        data, cid = raw_request(c, **kwargs)
        r = c.exchange_raw(data)
    assert r is not None, f"no response to request with {case}:\n{data.decode()}"
    assert r.status == 400, f"{case}: sent\n{data.decode()}\ngot\n{r}"
    assert must_name in norm(r.reason), (f"{case}: 400 reason phrase {r.reason!r} does not name the "
                                         f"problem ({must_name!r})")


def test_400_negative_content_length_over_tcp(orbit):
    with SipClient(orbit.sip_addr, transport="tcp") as c:
        data, cid = raw_request(c, content_length="-1")
        r = c.exchange_raw(data)
    assert r is not None, "no response over TCP to a negative Content-Length"
    assert r.status == 400, r
    assert "contentlength" in norm(r.reason), r.reason


def test_483_max_forwards_zero(orbit):
    with SipClient(orbit.sip_addr) as c:
        data, cid = raw_request(c, "REGISTER", max_forwards="0",
                                extra=["Contact: <sip:100@127.0.0.1:5999>", "Expires: 60"])
        r = c.exchange_raw(data)
    assert r is not None and r.status == 483, r
    check_echo(r, cid)


def test_501_unknown_method(orbit):
    with SipClient(orbit.sip_addr) as c:
        data, cid = raw_request(c, "FROBNICATE")
        r = c.exchange_raw(data)
    assert r is not None and r.status == 501, r
    check_echo(r, cid)


def test_420_unsupported_require(orbit):
    with SipClient(orbit.sip_addr) as c:
        data, cid = raw_request(c, "REGISTER", extra=["Require: x-orbit-nonexistent-ext",
                                                        "Contact: <sip:100@127.0.0.1:5999>"])
        r = c.exchange_raw(data)
    assert r is not None and r.status == 420, r
    check_echo(r, cid)
    unsupported = {t.strip() for v in r.get_all("unsupported") for t in v.split(",")}
    assert "x-orbit-nonexistent-ext" in unsupported, r


def test_513_message_too_large_tcp(orbit):
    size = 70000
    with SipClient(orbit.sip_addr, transport="tcp", timeout=10) as c:
        body = b"x" * size
        data, cid = raw_request(c, "OPTIONS", content_length=str(size),
                                extra=["Content-Type: text/plain"], body=body)
        try:
            c.send_raw(data)
        except OSError:
            pass  # the server may answer and close before reading everything
        r = c.final_response(10)
    assert r is not None, "no response to a 70,000-byte message over TCP"
    assert r.status == 513, r
    assert orbit.alive()


def test_largest_udp_datagram_is_processed(orbit):
    """~65,000 bytes is the most UDP can carry; not over a 64 KiB limit -> processed whole."""
    with SipClient(orbit.sip_addr, timeout=10) as c:
        data, cid = raw_request(c, "OPTIONS", extra=["Content-Type: text/plain"])
        head_len = len(data) + 10
        body = b"y" * (65000 - head_len)
        data, cid = raw_request(c, "OPTIONS", content_length=str(len(body)),
                                extra=["Content-Type: text/plain"], body=body)
        assert len(data) <= 65507
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        r = c.exchange_raw(data)
    assert r is not None, f"no response to a {len(data)}-byte UDP datagram"
    assert r.status in (200, 513), r


def test_survives_garbage_burst(orbit):
    """1000 random-garbage datagrams (plus a garbage TCP stream) must not hurt the server."""
    rnd = random.Random(4242)
    prefixes = [b"", b"INVITE sip:", b"REGISTER sip:orbit.local SIP/2.0\r\n", b"SIP/2.0 200 OK\r\n",
                b"OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/UDP \xff\xfe\r\n", b"\r\n\r\n", b"\x00" * 4]
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    start = time.monotonic()
    try:
        for i in range(1000):
            pre = rnd.choice(prefixes)
            payload = pre + bytes(rnd.getrandbits(8) for _ in range(rnd.randint(0, 1400)))
            s.sendto(payload[:65000], orbit.sip_addr)
            if i % 50 == 49:
                time.sleep(0.02)  # stay bounded, don't just overflow the socket buffer
    finally:
        s.close()
    assert time.monotonic() - start < 30
    # a garbage TCP stream, then close
    t = socket.create_connection(orbit.sip_addr, timeout=5)
    try:
        for _ in range(20):
            t.sendall(bytes(rnd.getrandbits(8) for _ in range(2000)))
    except OSError:
        pass
    finally:
        t.close()
    time.sleep(0.5)
    assert orbit.alive(), "orbit died during the garbage burst"
    assert orbit.healthz() == (200, {"status": "ok"})
    with SipClient(orbit.sip_addr) as c:
        data, cid = raw_request(c, "OPTIONS")
        r = c.exchange_raw(data)
    assert r is not None and r.status == 200, r


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_multibyte_start_line_does_not_silence_the_listener(orbit, transport):
    """A start line whose fourth byte falls inside a UTF-8 character (b"a\\xc3\\xa9\\xc3\\xa9")
    once reached a byte-offset slice; the listener must keep answering afterwards."""
    bad = b"a\xc3\xa9\xc3\xa9\r\n\r\n"
    if transport == "udp":
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.sendto(bad, orbit.sip_addr)
        s.close()
    else:
        t = socket.create_connection(orbit.sip_addr, timeout=5)
        t.sendall(bad)
        t.close()
    time.sleep(0.2)
    with SipClient(orbit.sip_addr, transport=transport) as c:
        data, cid = raw_request(c, "OPTIONS")
        r = c.exchange_raw(data)
    assert r is not None and r.status == 200, r


def test_tcp_crlf_keepalive_gets_a_pong(orbit):
    """RFC 5626 §4.4.1: a CRLFCRLF ping on a stream is answered with CRLF, and
    the connection still carries SIP afterwards."""
    with SipClient(orbit.sip_addr, transport="tcp") as c:
        c.send_raw(b"\r\n\r\n")
        c.sock.settimeout(3)
        pong = c.sock.recv(16)
        assert pong == b"\r\n", pong
        data, cid = raw_request(c, "OPTIONS")
        r = c.exchange_raw(data)
    assert r is not None and r.status == 200, r
