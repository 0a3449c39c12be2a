"""The real-client call tooling (pj_phones.py + phones.py + audio.py), proved WITHOUT Orbit:
pjsua2 phones call each other directly over loopback (no registration, no proxy).

Each Phones object is one pj_phones.py process (one pjsua2 Endpoint) on a free UDP port in
45000-45999; its phones are reached at sip:<user>@127.0.0.1:<port>. Every tone is a sine:
a=440 Hz, b=1000 Hz, c=2000 Hz, so a recording tells who was heard.
"""

from __future__ import annotations

import hashlib
import re
import socket
import threading
import time

import pytest

import harness
from audio import assert_no_tone, assert_silent, assert_tone, describe, tone_windows
from phones import phones_factory, pick_port  # noqa: F401  (pytest fixture)

A, B, C = 440, 1000, 2000
TONES = (A, B, C)
RECORD_S = 2.0


@pytest.fixture(autouse=True)
def _need_pjsua2():
    harness.require_pjsua2()


def connect(pa, pb, a="a", b="b"):
    """a calls b (b auto-answers or is answered by the caller of this helper); both ACTIVE."""
    call = pa.call(a, pb.uri(b))
    pa.wait_state(a, "CONFIRMED", call=call)
    pa.wait_media(a, "ACTIVE", call=call)
    inc = pb.wait_incoming(b)
    pb.wait_media(b, "ACTIVE", call=inc["call"])
    return call, inc["call"]


def record_both(pa, pb, tmp_path, tag, seconds=RECORD_S, a="a", b="b", call_a=None, call_b=None):
    pa.record_start(a, tmp_path / f"{tag}-{a}.wav", call=call_a)
    pb.record_start(b, tmp_path / f"{tag}-{b}.wav", call=call_b)
    time.sleep(seconds)
    return pa.record_stop(a, call=call_a), pb.record_stop(b, call=call_b)


def report(label, wav):
    print(f"{label}: {describe(wav, TONES)}")


# --------------------------------------------------------------------------- basic call


def test_call_answer_audio_dtmf_hangup(phones_factory, tmp_path):
    pa = phones_factory(f"name=a,user=101,tone={A}")
    pb = phones_factory(f"name=b,user=102,tone={B}")  # answered by hand below

    call = pa.call("a", pb.uri("b"), headers={"X-Orbit-Test": "p2p"})
    inc = pb.wait_incoming("b")
    assert inc["headers"].get("X-Orbit-Test") == ["p2p"], inc["headers"]
    assert inc["request_uri"] == pb.uri("b")
    assert "sip:101@" in inc["from"] and "m=audio" in inc["sdp"]
    assert re.search(r"RTP/AVP( \d+)*", inc["sdp"]), inc["sdp"]

    pb.answer("b", 180)
    assert pa.wait_state("a", "EARLY", call=call)["code"] == 180
    pb.answer("b", 200)
    pa.wait_state("a", "CONFIRMED", call=call)
    pb.wait_state("b", "CONFIRMED", call=inc["call"])
    ma = pa.wait_media("a", "ACTIVE", call=call)
    mb = pb.wait_media("b", "ACTIVE", call=inc["call"])
    assert ma["codec"] in ("PCMU", "PCMA") and mb["codec"] == ma["codec"]
    # both sides' media sit on loopback, in the phones' RTP range
    for m in (ma, mb):
        host, port = m["local_rtp"].rsplit(":", 1)
        assert host == "127.0.0.1" and 46000 <= int(port) <= 46999, m

    wav_a, wav_b = record_both(pa, pb, tmp_path, "talk")
    report("a hears", wav_a)
    report("b hears", wav_b)
    assert_tone(wav_a, B, 0.8, others=TONES)
    assert_no_tone(wav_a, A, 0.05, others=TONES)
    assert_tone(wav_b, A, 0.8, others=TONES)
    assert_no_tone(wav_b, B, 0.05, others=TONES)

    [st] = pa.state("a")
    assert st["state"] == "CONFIRMED" and st["media"] == "ACTIVE" and st["rx_pkt"] > 50, st

    pa.dtmf("a", "1#")
    assert pb.wait_event("dtmf", phone="b", timeout=5)["digit"] == "1"
    assert pb.wait_event("dtmf", phone="b", timeout=5)["digit"] == "#"

    pa.hangup("a", call=call)
    pa.wait_state("a", "DISCONNECTED", call=call)
    assert pb.wait_state("b", "DISCONNECTED", call=inc["call"])["reason"]
    assert pa.state("a") == [] and pb.state("b") == []


def test_busy_and_decline(phones_factory):
    pa = phones_factory(f"name=a,user=101,tone={A}")
    pb = phones_factory(f"name=b,user=102,tone={B},auto_answer=486",
                        f"name=c,user=103,tone={C},auto_answer=603,answer_delay_ms=300")
    call = pa.call("a", pb.uri("b"))
    ev = pa.wait_state("a", "DISCONNECTED", call=call)
    assert ev["code"] == 486, ev
    assert not pa.events("call_state", call=call, state="CONFIRMED")

    call = pa.call("a", pb.uri("c"))
    assert pa.wait_state("a", "EARLY", call=call)["code"] == 180  # ring=yes before a delayed answer
    ev = pa.wait_state("a", "DISCONNECTED", call=call)
    assert ev["code"] == 603, ev


def test_caller_cancels_ringing_call(phones_factory):
    pa = phones_factory(f"name=a,user=101,tone={A}")
    pb = phones_factory(f"name=b,user=102,tone={B},auto_answer=180")
    call = pa.call("a", pb.uri("b"))
    pa.wait_state("a", "EARLY", call=call)
    inc = pb.wait_incoming("b")
    pa.hangup("a", call=call)
    assert pa.wait_state("a", "DISCONNECTED", call=call)["code"] == 487
    pb.wait_state("b", "DISCONNECTED", call=inc["call"])


# --------------------------------------------------------------------------- hold


def test_hold_unhold(phones_factory, tmp_path):
    pa = phones_factory(f"name=a,user=101,tone={A}")
    pb = phones_factory(f"name=b,user=102,tone={B},auto_answer=200")
    call_a, call_b = connect(pa, pb)

    pa.hold("a", call=call_a)
    assert pa.wait_media("a", "LOCAL_HOLD", call=call_a)["dir"] == "sendonly"
    assert pb.wait_media("b", "REMOTE_HOLD", call=call_b)["dir"] == "recvonly"
    held_a, held_b = record_both(pa, pb, tmp_path, "held", seconds=1.0)
    report("a hears while holding", held_a)
    report("b hears while held", held_b)
    # a is sendonly and (hold_tx=no, like a desk phone) sends silence; b's answer is recvonly
    assert_silent(held_b, freqs=TONES)
    assert_no_tone(held_a, B, 0.05, others=TONES)

    pa.unhold("a", call=call_a)
    assert pa.wait_media("a", "ACTIVE", call=call_a)["dir"] == "sendrecv"
    pb.wait_media("b", "ACTIVE", call=call_b)
    wav_a, wav_b = record_both(pa, pb, tmp_path, "unheld", seconds=1.5)
    report("a hears after unhold", wav_a)
    report("b hears after unhold", wav_b)
    assert_tone(wav_a, B, 0.8, others=TONES)
    assert_tone(wav_b, A, 0.8, others=TONES)

    pb.hangup("b", call=call_b)
    pa.wait_state("a", "DISCONNECTED", call=call_a)


def test_recording_survives_reinvite(phones_factory, tmp_path):
    """A recorder started before hold keeps recording across the re-INVITEs (re-attached)."""
    pa = phones_factory(f"name=a,user=101,tone={A}")
    pb = phones_factory(f"name=b,user=102,tone={B},auto_answer=200")
    call_a, call_b = connect(pa, pb)
    pb.record_start("b", tmp_path / "across.wav", call=call_b)
    time.sleep(0.8)
    pa.hold("a", call=call_a)
    pb.wait_media("b", "REMOTE_HOLD", call=call_b)
    time.sleep(0.8)
    pa.unhold("a", call=call_a)
    assert pb.wait_media("b", "ACTIVE", call=call_b)["recording"] is True
    time.sleep(0.8)
    wav = pb.record_stop("b", call=call_b)
    report("b across hold", wav)
    frac = tone_windows(wav, A)
    assert 0.4 <= frac <= 0.85, describe(wav, TONES)


# --------------------------------------------------------------------------- transfer


def test_blind_transfer(phones_factory, tmp_path):
    pa = phones_factory(f"name=a,user=101,tone={A}")
    pb = phones_factory(f"name=b,user=102,tone={B},auto_answer=200",
                        f"name=c,user=103,tone={C},auto_answer=200")
    call_a, call_b = connect(pa, pb)

    pa.xfer("a", pb.uri("c"), call=call_a)
    req = pb.wait_event("transfer_request", phone="b", call=call_b)
    assert req["accepted"] and "103@" in req["to"], req
    new_b = req["new_call"]
    pb.wait_state("b", "CONFIRMED", call=new_b)
    inc_c = pb.wait_incoming("c")
    assert inc_c["headers"].get("Referred-By"), inc_c["headers"]
    final = pa.wait_event("transfer_status", phone="a", call=call_a, final=True)
    assert final["code"] == 200, final
    # PJSIP does not release the transferor leg by itself; a desk phone would
    pa.hangup("a", call=call_a)
    pb.wait_state("b", "DISCONNECTED", call=call_b)

    pb.wait_media("c", "ACTIVE", call=inc_c["call"])
    wav_b, wav_c = record_both(pb, pb, tmp_path, "after-blind", seconds=1.5, a="b", b="c",
                               call_a=new_b, call_b=inc_c["call"])
    report("b hears c", wav_b)
    report("c hears b", wav_c)
    assert_tone(wav_b, C, 0.8, others=TONES)
    assert_tone(wav_c, B, 0.8, others=TONES)
    assert_no_tone(wav_c, A, 0.05, others=TONES)


def test_attended_transfer(phones_factory, tmp_path):
    pa = phones_factory(f"name=a,user=101,tone={A}")
    pb = phones_factory(f"name=b,user=102,tone={B},auto_answer=200",
                        f"name=c,user=103,tone={C},auto_answer=200")
    call_ab, call_b = connect(pa, pb)
    pa.hold("a", call=call_ab)
    pb.wait_media("b", "REMOTE_HOLD", call=call_b)
    call_ac, call_c = connect(pa, pb, b="c")

    r = pa.xfer_replaces("a", call=call_ab, other=call_ac)
    assert (r["call"], r["other"]) == (call_ab, call_ac)
    req = pb.wait_event("transfer_request", phone="b", call=call_b)
    assert "Replaces=" in req["to"], req
    rep = pb.wait_event("replaced", phone="c", call=call_c)
    new_c = rep["new_call"]
    assert pb.wait_state("c", "DISCONNECTED", call=call_c)["code"] == 410  # replaced dialog: 410 Gone
    pa.wait_state("a", "DISCONNECTED", call=call_ac)
    final = pa.wait_event("transfer_status", phone="a", call=call_ab, final=True)
    assert final["code"] == 200, final
    pa.hangup("a", call=call_ab)
    pb.wait_state("b", "DISCONNECTED", call=call_b)

    new_b = req["new_call"]
    pb.wait_state("b", "CONFIRMED", call=new_b)
    pb.wait_state("c", "CONFIRMED", call=new_c)
    wav_b, wav_c = record_both(pb, pb, tmp_path, "after-attended", seconds=1.5, a="b", b="c",
                               call_a=new_b, call_b=new_c)
    report("b hears c", wav_b)
    report("c hears b", wav_c)
    assert_tone(wav_b, C, 0.8, others=TONES)
    assert_tone(wav_c, B, 0.8, others=TONES)
    assert pa.state("a") == []


# --------------------------------------------------------------------------- register/proxy


class FakeRegistrar:
    """Bounded UDP responder: 401 (MD5 digest) to a REGISTER without Authorization, 200 to one with
    a correct response. Only for checking pj_phones.py's register/--proxy plumbing."""

    def __init__(self, password):
        self.password = password
        self.port = pick_port()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.settimeout(0.2)
        self.seen: list[str] = []
        self.stop = False
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        deadline = time.monotonic() + 30
        while not self.stop and time.monotonic() < deadline:
            try:
                data, addr = self.sock.recvfrom(65535)
            except socket.timeout:
                continue
            msg = data.decode("utf-8", "replace")
            if not msg.startswith("REGISTER "):
                continue
            self.seen.append(msg)
            head = msg.split("\r\n\r\n", 1)[0].split("\r\n")
            hdr = lambda n: [ln for ln in head if ln.lower().startswith(n.lower() + ":")]  # noqa: E731
            copy = hdr("Via") + hdr("From") + [hdr("To")[0] + ";tag=fake1"] + hdr("Call-ID") + hdr("CSeq")
            auth = hdr("Authorization")
            if not auth:
                lines = ["SIP/2.0 401 Unauthorized", *copy,
                         'WWW-Authenticate: Digest realm="fake", nonce="n0nce", algorithm=MD5']
            else:
                p = dict(re.findall(r'(\w+)="?([^",]*)"?', auth[0].split(" ", 1)[1]))
                ha1 = hashlib.md5(f"{p['username']}:fake:{self.password}".encode()).hexdigest()
                ha2 = hashlib.md5(f"REGISTER:{p['uri']}".encode()).hexdigest()
                if p.get("qop"):
                    want = hashlib.md5(f"{ha1}:n0nce:{p['nc']}:{p['cnonce']}:{p['qop']}:{ha2}".encode()).hexdigest()
                else:
                    want = hashlib.md5(f"{ha1}:n0nce:{ha2}".encode()).hexdigest()
                if p.get("response") != want:
                    lines = ["SIP/2.0 403 Forbidden", *copy]
                else:
                    exp = re.search(r"expires[=:]\s*(\d+)", msg, re.I)
                    lines = ["SIP/2.0 200 OK", *copy, *hdr("Contact")]
                    if exp:
                        lines.append(f"Expires: {exp.group(1)}")
            resp = "\r\n".join(lines + ["Content-Length: 0", "", ""])
            self.sock.sendto(resp.encode(), addr)

    def close(self):
        self.stop = True
        self.t.join(timeout=2)
        self.sock.close()


def test_register_through_outbound_proxy(phones_factory):
    reg = FakeRegistrar("pw101")
    try:
        pa = phones_factory("name=a,user=101,password=pw101,domain=acme.test,tone=440,expires=120",
                            "name=x,user=109,tone=0",  # register=no: never sends REGISTER
                            proxy=f"sip:127.0.0.1:{reg.port};lr")
        ev = pa.wait_event("registered", phone="a")
        assert ev["code"] == 200 and ev["active"], ev
        first = reg.seen[0]
        assert first.startswith("REGISTER sip:acme.test SIP/2.0"), first
        assert "sip:101@acme.test" in first
        assert "Authorization:" in reg.seen[-1]
        assert not pa.events("registered", phone="x")
        ev = pa.unregister("a")
        assert ev["code"] == 200 and not ev["active"], ev
        assert re.search(r"Expires: 0|expires=0", reg.seen[-1]), reg.seen[-1]
        r = pa.send("register", check=False, phone="x")
        assert not r["ok"] and "no registrar" in r["error"]
    finally:
        reg.close()
