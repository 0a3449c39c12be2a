"""Calls through Orbit's B2BUA with real PJSIP phones, checked by their audio.

Each phone plays its own sine (101: 440 Hz, 102: 1000 Hz, 103: 2000 Hz) and
records what it hears, so "A and B talk" means each recording holds the
other's tone, and "B hears music" means loud audio that is neither tone.
"""

from __future__ import annotations

import time

import pytest

import harness
from audio import assert_music, assert_no_tone, assert_tone, describe
from phones import phones_factory  # noqa: F401  (pytest fixture)

DOMAIN = "acme.test"
A, B, C = 440, 1000, 2000
TONES = (A, B, C)
USERS = {"101": A, "102": B, "103": C}
RECORD_S = 2.0


@pytest.fixture(autouse=True)
def _need_pjsua2():
    harness.require_pjsua2()


@pytest.fixture
def pbx(orbit_factory):
    srv = orbit_factory(config={"bootstrap_domain": DOMAIN, "calls": {"ring_timeout_s": 6}})
    for ext in USERS:
        srv.create_extension(ext, f"pw{ext}secret", display_name=f"User {ext}")
    return srv


def phone_spec(ext, **extra):
    spec = {
        "name": ext,
        "user": ext,
        "password": f"pw{ext}secret",
        "domain": DOMAIN,
        "tone": USERS[ext],
    }
    spec.update(extra)
    return spec


def start_phones(phones_factory, pbx, *specs, name=None):
    p = phones_factory(*specs, proxy=f"sip:127.0.0.1:{pbx.sip_port};lr", name=name)
    for s in specs:
        if s.get("register", "yes") != "no":
            ev = p.wait_event("registered", phone=s["name"])
            assert ev.get("code") == 200, ev
    return p


def uri(ext):
    return f"sip:{ext}@{DOMAIN}"


def record(p, phone, path, seconds=RECORD_S, call=None):
    return p.record(phone, path, seconds=seconds, call=call)


def connect(pa, a, pb, b):
    """a calls b through Orbit; b answers; both media ACTIVE."""
    call = pa.call(a, uri(b))
    inc = pb.wait_incoming(b)
    pb.answer(b, 200, call=inc["call"])
    pa.wait_state(a, "CONFIRMED", call=call)
    pa.wait_media(a, "ACTIVE", call=call)
    pb.wait_media(b, "ACTIVE", call=inc["call"])
    return call, inc


def test_call_both_directions_carry_audio(phones_factory, pbx, tmp_path):
    pa = start_phones(phones_factory, pbx, phone_spec("101"), name="pa")
    pb = start_phones(phones_factory, pbx, phone_spec("102"), name="pb")
    call, inc = connect(pa, "101", pb, "102")
    # Orbit passes the caller's identity on.
    assert "101" in inc.get("from", ""), inc
    time.sleep(0.3)
    wa = record(pa, "101", tmp_path / "a.wav", call=call)
    wb = record(pb, "102", tmp_path / "b.wav", call=inc["call"])
    print("A hears:", describe(wa, TONES))
    print("B hears:", describe(wb, TONES))
    assert_tone(wa, B)
    assert_no_tone(wa, A)
    assert_tone(wb, A)
    assert_no_tone(wb, B)
    pa.hangup("101", call=call)
    pb.wait_state("102", "DISCONNECTED", call=inc["call"])


def test_hold_plays_music_and_resume_restores_the_call(phones_factory, pbx, tmp_path):
    pa = start_phones(phones_factory, pbx, phone_spec("101"), name="pa")
    pb = start_phones(phones_factory, pbx, phone_spec("102"), name="pb")
    call, inc = connect(pa, "101", pb, "102")
    pa.hold("101", call=call)
    pa.wait_media("101", "LOCAL_HOLD", call=call)
    time.sleep(0.3)
    wb = record(pb, "102", tmp_path / "held.wav", call=inc["call"])
    print("B while held:", describe(wb, TONES))
    assert_music(wb, not_freqs=TONES)
    pa.unhold("101", call=call)
    pa.wait_media("101", "ACTIVE", call=call)
    time.sleep(0.3)
    wb = record(pb, "102", tmp_path / "resumed.wav", call=inc["call"])
    wa = record(pa, "101", tmp_path / "a-resumed.wav", call=call)
    print("B after resume:", describe(wb, TONES))
    assert_tone(wb, A)
    assert_tone(wa, B)
    pb.hangup("102", call=inc["call"])
    pa.wait_state("101", "DISCONNECTED", call=call)


def test_blind_transfer_connects_caller_and_target(phones_factory, pbx, tmp_path):
    pa = start_phones(phones_factory, pbx, phone_spec("101"), name="pa")
    pb = start_phones(phones_factory, pbx, phone_spec("102"), name="pb")
    pc = start_phones(phones_factory, pbx, phone_spec("103", auto_answer=200), name="pc")
    call, inc = connect(pa, "101", pb, "102")
    pb.xfer("102", uri("103"), call=inc["call"])
    st = pb.wait_event("transfer_status", phone="102", pred=lambda e: e.get("final"))
    assert st["code"] == 200, st
    # Orbit releases the transferor itself.
    pb.wait_state("102", "DISCONNECTED", call=inc["call"])
    c_inc = pc.wait_incoming("103")
    pc.wait_media("103", "ACTIVE", call=c_inc["call"])
    assert "101" in c_inc.get("from", ""), c_inc
    time.sleep(0.3)
    wa = record(pa, "101", tmp_path / "a.wav", call=call)
    wc = record(pc, "103", tmp_path / "c.wav", call=c_inc["call"])
    print("A hears:", describe(wa, TONES), "C hears:", describe(wc, TONES))
    assert_tone(wa, C)
    assert_tone(wc, A)
    assert_no_tone(wa, B)
    pa.hangup("101", call=call)
    pc.wait_state("103", "DISCONNECTED", call=c_inc["call"])


def test_attended_transfer_joins_the_two_other_parties(phones_factory, pbx, tmp_path):
    pa = start_phones(phones_factory, pbx, phone_spec("101"), name="pa")
    pb = start_phones(phones_factory, pbx, phone_spec("102"), name="pb")
    pc = start_phones(phones_factory, pbx, phone_spec("103", auto_answer=200), name="pc")
    call_a, inc_b = connect(pa, "101", pb, "102")
    pb.hold("102", call=inc_b["call"])
    pb.wait_media("102", "LOCAL_HOLD", call=inc_b["call"])
    consult = pb.call("102", uri("103"))
    pb.wait_state("102", "CONFIRMED", call=consult)
    c_inc = pc.wait_incoming("103")
    pc.wait_media("103", "ACTIVE", call=c_inc["call"])
    pb.xfer_replaces("102", call=inc_b["call"], other=consult)
    st = pb.wait_event("transfer_status", phone="102", pred=lambda e: e.get("final"))
    assert st["code"] == 200, st
    pb.wait_state("102", "DISCONNECTED", call=inc_b["call"])
    pb.wait_state("102", "DISCONNECTED", call=consult)
    time.sleep(0.8)
    wa = record(pa, "101", tmp_path / "a.wav", call=call_a)
    wc = record(pc, "103", tmp_path / "c.wav", call=c_inc["call"])
    print("A hears:", describe(wa, TONES), "C hears:", describe(wc, TONES))
    assert_tone(wa, C)
    assert_tone(wc, A)
    pc.hangup("103", call=c_inc["call"])
    pa.wait_state("101", "DISCONNECTED", call=call_a)


def test_cancel_while_ringing(phones_factory, pbx):
    pa = start_phones(phones_factory, pbx, phone_spec("101"), name="pa")
    pb = start_phones(phones_factory, pbx, phone_spec("102", auto_answer=180), name="pb")
    call = pa.call("101", uri("102"))
    inc = pb.wait_incoming("102")
    pa.wait_state("101", "EARLY", call=call)
    pa.hangup("101", call=call)
    ev = pa.wait_state("101", "DISCONNECTED", call=call)
    assert ev["code"] == 487, ev
    pb.wait_state("102", "DISCONNECTED", call=inc["call"])


@pytest.mark.parametrize("callee,answer,expect", [
    ("102", "auto_answer=486", 486),
    ("103", None, 480),          # not registered
    ("999", None, 404),          # no such number
    ("102", "auto_answer=180", 480),  # rings past the ring timeout
])
def test_call_failures(phones_factory, pbx, callee, answer, expect):
    pa = start_phones(phones_factory, pbx, phone_spec("101"), name="pa")
    if answer:
        key, val = answer.split("=")
        start_phones(phones_factory, pbx, phone_spec(callee, **{key: val}), name="pb")
    call = pa.call("101", uri(callee))
    ev = pa.wait_state("101", "DISCONNECTED", call=call, timeout=15)
    assert ev["code"] == expect, ev


def _tone_wav(freq, seconds=2.0, rate=8000, channels=1):
    import io
    import math
    import struct
    import wave
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        frames = b"".join(
            struct.pack("<h", int(9000 * math.sin(2 * math.pi * freq * i / rate))) * channels
            for i in range(int(rate * seconds)))
        w.writeframes(frames)
    return buf.getvalue()


def test_uploaded_music_on_hold_is_what_the_held_party_hears(phones_factory, pbx, tmp_path):
    path = f"/api/v1/tenants/{DOMAIN}/music-on-hold"
    r = pbx.api.request("PUT", path, raw_body=_tone_wav(700, rate=44100, channels=2))
    harness.assert_error(r, 422, "body")
    assert "8000 Hz mono 16-bit PCM" in r.json["error"]["message"], r.json
    r = pbx.api.request("PUT", path, raw_body=_tone_wav(700))
    assert r.status == 200 and r.json["source"] == "uploaded", r
    pa = start_phones(phones_factory, pbx, phone_spec("101"), name="pa")
    pb = start_phones(phones_factory, pbx, phone_spec("102"), name="pb")
    call, inc = connect(pa, "101", pb, "102")
    pa.hold("101", call=call)
    pa.wait_media("101", "LOCAL_HOLD", call=call)
    time.sleep(0.3)
    wb = record(pb, "102", tmp_path / "held.wav", call=inc["call"])
    print("B while held:", describe(wb, TONES + (700,)))
    assert_tone(wb, 700)
    pb.hangup("102", call=inc["call"])


def test_sequential_ring_group_rings_members_in_turn(phones_factory, pbx, tmp_path):
    r = pbx.api.post(f"/api/v1/tenants/{DOMAIN}/ring-groups",
                     {"number": "600", "name": "Sales", "members": ["102", "103"],
                      "strategy": "sequential", "ring_time_s": 5})
    assert r.status == 201, r
    pa = start_phones(phones_factory, pbx, phone_spec("101"), name="pa")
    pb = start_phones(phones_factory, pbx, phone_spec("102", auto_answer=180), name="pb")
    pc = start_phones(phones_factory, pbx, phone_spec("103"), name="pc")
    call = pa.call("101", uri("600"))
    b_inc = pb.wait_incoming("102")
    # 103 is not rung while 102 has its turn.
    pc.expect_no_event("incoming_call", phone="103", timeout=1.0)
    pb.wait_state("102", "DISCONNECTED", call=b_inc["call"], timeout=8)
    c_inc = pc.wait_incoming("103", timeout=5)
    pc.answer("103", 200, call=c_inc["call"])
    pa.wait_state("101", "CONFIRMED", call=call)
    pc.wait_media("103", "ACTIVE", call=c_inc["call"])
    time.sleep(0.3)
    wa = record(pa, "101", tmp_path / "a.wav", call=call)
    assert_tone(wa, C)
    pa.hangup("101", call=call)
    pc.wait_state("103", "DISCONNECTED", call=c_inc["call"])


def test_ring_all_group_first_answer_wins_and_others_stop(phones_factory, pbx):
    r = pbx.api.post(f"/api/v1/tenants/{DOMAIN}/ring-groups",
                     {"number": "601", "name": "Support", "members": ["102", "103"],
                      "strategy": "ring_all", "ring_time_s": 10})
    assert r.status == 201, r
    pa = start_phones(phones_factory, pbx, phone_spec("101"), name="pa")
    pb = start_phones(phones_factory, pbx, phone_spec("102"), name="pb")
    pc = start_phones(phones_factory, pbx, phone_spec("103"), name="pc")
    call = pa.call("101", uri("601"))
    b_inc = pb.wait_incoming("102")
    c_inc = pc.wait_incoming("103")
    pc.answer("103", 200, call=c_inc["call"])
    pa.wait_state("101", "CONFIRMED", call=call)
    ev = pb.wait_state("102", "DISCONNECTED", call=b_inc["call"])
    assert ev["code"] == 487, ev
    calls = pbx.api.get(f"/api/v1/tenants/{DOMAIN}/calls").json["calls"]
    assert len(calls) == 1 and calls[0]["answered_by"] == "103", calls
    assert calls[0]["callee"] == "601" and calls[0]["state"] == "answered", calls
    pa.hangup("101", call=call)
    pc.wait_state("103", "DISCONNECTED", call=c_inc["call"])


def test_dtmf_events_reach_the_other_party(phones_factory, pbx):
    pa = start_phones(phones_factory, pbx, phone_spec("101"), name="pa")
    pb = start_phones(phones_factory, pbx, phone_spec("102"), name="pb")
    call, inc = connect(pa, "101", pb, "102")
    pa.dtmf("101", "12#", call=call)
    got = [pb.wait_event("dtmf", phone="102")["digit"] for _ in range(3)]
    assert got == ["1", "2", "#"], got
    pa.hangup("101", call=call)


def test_calls_do_not_cross_tenants(phones_factory, pbx):
    r = pbx.api.post("/api/v1/tenants", {"name": "Other", "domain": "other.test"})
    assert r.status == 201, r
    pbx.create_extension("201", "pw201secret", tenant="other.test")
    pb = start_phones(phones_factory, pbx, phone_spec("102"), name="pb")
    po = phones_factory({"name": "201", "user": "201", "password": "pw201secret",
                         "domain": "other.test", "tone": 300},
                        proxy=f"sip:127.0.0.1:{pbx.sip_port};lr", name="po")
    assert po.wait_event("registered", phone="201")["code"] == 200
    # 201 of other.test dials into acme.test: its credentials mean nothing there.
    call = po.call("201", uri("102"))
    ev = po.wait_state("201", "DISCONNECTED", call=call)
    assert ev["code"] in (403, 407), ev
    pb.expect_no_event("incoming_call", phone="102", timeout=1.0)


def test_call_limit_refuses_with_503(phones_factory, orbit_factory):
    srv = orbit_factory(config={"bootstrap_domain": DOMAIN, "calls": {"max_calls": 1}})
    for ext in USERS:
        srv.create_extension(ext, f"pw{ext}secret")
    pa = start_phones(phones_factory, srv, phone_spec("101"), name="pa")
    pb = start_phones(phones_factory, srv, phone_spec("102"), name="pb")
    pc = start_phones(phones_factory, srv, phone_spec("103"), name="pc")
    call, inc = connect(pa, "101", pb, "102")
    refused = pc.call("103", uri("101"))
    ev = pc.wait_state("103", "DISCONNECTED", call=refused)
    assert ev["code"] == 503, ev
    pa.hangup("101", call=call)
    pb.wait_state("102", "DISCONNECTED", call=inc["call"])
    again, inc2 = connect(pc, "103", pb, "102")
    pc.hangup("103", call=again)


def test_sigterm_lets_calls_finish_then_hangs_up(phones_factory, orbit_factory, tmp_path):
    import signal
    srv = orbit_factory(config={"bootstrap_domain": DOMAIN, "calls": {"shutdown_grace_s": 4}})
    for ext in USERS:
        srv.create_extension(ext, f"pw{ext}secret")
    pa = start_phones(phones_factory, srv, phone_spec("101"), name="pa")
    pb = start_phones(phones_factory, srv, phone_spec("102"), name="pb")
    pc = start_phones(phones_factory, srv, phone_spec("103"), name="pc")
    call, inc = connect(pa, "101", pb, "102")
    srv.expected_exit = True
    t0 = time.monotonic()
    srv.proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    # No new calls during the grace period ...
    refused = pc.call("103", uri("101"))
    assert pc.wait_state("103", "DISCONNECTED", call=refused)["code"] == 503
    # ... while the call in progress still carries audio.
    wb = record(pb, "102", tmp_path / "b.wav", seconds=1.0, call=inc["call"])
    assert_tone(wb, A)
    pa.wait_state("101", "DISCONNECTED", call=call, timeout=10)
    waited = time.monotonic() - t0
    assert 3.5 <= waited <= 8, waited
    assert srv.proc.wait(timeout=10) == 0
    srv.start()
    srv.wait_ready()
    recs = srv.api.get(f"/api/v1/tenants/{DOMAIN}/call-records").json["call_records"]
    reasons = sorted(r["end_reason"] for r in recs)
    assert "shutdown" in reasons, recs


SDP_TEMPLATE = ("v=0\r\no=raw 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
                "m=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
                "a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n")


def _answer(client, inv, to_tag, body=b""):
    """A 200 to a request received by a raw client, echoing its dialog headers."""
    lines = ["SIP/2.0 200 OK"]
    lines += [f"Via: {v}" for v in inv.get_all("via")]
    to = inv.get("to")
    if "tag=" not in to:
        to += f";tag={to_tag}"
    lines += [f"From: {inv.get('from')}", f"To: {to}", f"Call-ID: {inv.get('call-id')}",
              f"CSeq: {inv.get('cseq')}", f"Contact: <{client.contact_uri('102')}>"]
    if body:
        lines.append("Content-Type: application/sdp")
    lines.append(f"Content-Length: {len(body)}")
    client.send_raw(("\r\n".join(lines) + "\r\n\r\n").encode() + body)


def _method(msg):
    return None if msg is None else msg.start_line.split(" ", 1)[0]


def _tag(value):
    import re
    m = re.search(r";\s*tag=([^;>\s]+)", value)
    return m.group(1) if m else None


def test_invite_with_replaces_takes_over_a_connected_leg(phones_factory, pbx, tmp_path):
    import socket
    pa = start_phones(phones_factory, pbx, phone_spec("101"), name="pa")
    pc = start_phones(phones_factory, pbx, phone_spec("103"), name="pc")
    # 102 is a hand-driven UA, so the test knows both tags of its dialog.
    with harness.SipClient(pbx.sip_addr) as b:
        _, final = b.register("102", DOMAIN, "pw102secret")
        assert final is not None and final.status == 200, final
        rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        rtp.bind(("127.0.0.1", 0))
        call = pa.call("101", uri("102"))
        inv = b.recv_msg(timeout=5)
        assert _method(inv) == "INVITE", inv
        _answer(b, inv, "btag", SDP_TEMPLATE.format(port=rtp.getsockname()[1]).encode())
        pa.wait_state("101", "CONFIRMED", call=call)
        ack = b.recv_msg(timeout=5)
        assert _method(ack) == "ACK", ack
        orbit_tag = _tag(inv.get("from"))
        # A bad pair of tags names nothing.
        wrong = pc.call("103", uri("102"), headers={
            "Replaces": f"{inv.get('call-id')};to-tag=nope;from-tag={orbit_tag}"})
        assert pc.wait_state("103", "DISCONNECTED", call=wrong)["code"] == 481
        took = pc.call("103", uri("102"), headers={
            "Replaces": f"{inv.get('call-id')};to-tag=btag;from-tag={orbit_tag}"})
        pc.wait_state("103", "CONFIRMED", call=took)
        bye = b.recv_msg(timeout=5)
        assert _method(bye) == "BYE", bye
        _answer(b, bye, "btag")
        rtp.close()
    pc.wait_media("103", "ACTIVE", call=took)
    time.sleep(0.3)
    wa = record(pa, "101", tmp_path / "a.wav", call=call)
    wc = record(pc, "103", tmp_path / "c.wav", call=took)
    print("A hears:", describe(wa, TONES), "C hears:", describe(wc, TONES))
    assert_tone(wa, C)
    assert_tone(wc, A)
    pa.hangup("101", call=call)
    pc.wait_state("103", "DISCONNECTED", call=took)


def test_failed_blind_transfer_leaves_the_call_intact(phones_factory, pbx, tmp_path):
    pa = start_phones(phones_factory, pbx, phone_spec("101"), name="pa")
    pb = start_phones(phones_factory, pbx, phone_spec("102"), name="pb")
    pc = start_phones(phones_factory, pbx, phone_spec("103", auto_answer=486), name="pc")
    call, inc = connect(pa, "101", pb, "102")
    pb.xfer("102", uri("103"), call=inc["call"])
    st = pb.wait_event("transfer_status", phone="102", pred=lambda e: e.get("final"))
    assert st["code"] == 486, st
    time.sleep(0.5)
    wa = record(pa, "101", tmp_path / "a.wav", call=call)
    wb = record(pb, "102", tmp_path / "b.wav", call=inc["call"])
    assert_tone(wa, B)
    assert_tone(wb, A)
    pa.hangup("101", call=call)
    pb.wait_state("102", "DISCONNECTED", call=inc["call"])
