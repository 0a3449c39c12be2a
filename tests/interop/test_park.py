"""Call park through Orbit with real PJSIP phones: park by blind transfer to a
park code, group park with hunting, retrieve by code, recall, abandon, races
and refusals; checked from recorded audio and from the API.

Tones: 101 440 Hz, 102 1000 Hz, 103 2000 Hz, 104 600 Hz, 105 800 Hz,
106 1400 Hz (106 is the outside caller that gets parked).
"""

from __future__ import annotations

import threading
import time

import pytest

import harness
from audio import assert_music, assert_tone, describe
from phones import phones_factory  # noqa: F401  (pytest fixture)

DOMAIN = "acme.test"
TONE = {"101": 440, "102": 1000, "103": 2000, "104": 600, "105": 800, "106": 1400}
TONES = tuple(TONE.values())


@pytest.fixture(autouse=True)
def _need_pjsua2():
    harness.require_pjsua2()


def park_settings(pbx, **recall):
    body = {"enabled": True, "park_code": "*68", "group_park_code": "*58",
            "retrieve_code": "*88", "notify_parker": False, "max_parked_per_extension": 10,
            "recall": {"recall_time_s": 60, **recall}}
    r = pbx.api.request("PUT", f"/api/v1/tenants/{DOMAIN}/call-park", body)
    assert r.status == 200, r


@pytest.fixture
def pbx(orbit_factory):
    srv = orbit_factory(config={"bootstrap_domain": DOMAIN, "calls": {"ring_timeout_s": 10}})
    for ext in TONE:
        srv.create_extension(ext, f"pw{ext}secret", display_name=f"User {ext}")
    park_settings(srv)
    return srv


def spec(ext, **extra):
    s = {"name": ext, "user": ext, "password": f"pw{ext}secret", "domain": DOMAIN,
         "tone": TONE[ext]}
    s.update(extra)
    return s


def phones(phones_factory, pbx, *exts, name, **extra):
    p = phones_factory(*[spec(e, **extra.get(e, {})) for e in exts],
                       proxy=f"sip:127.0.0.1:{pbx.sip_port};lr", name=name)
    for e in exts:
        assert p.wait_event("registered", phone=e)["code"] == 200
    return p


def uri(number):
    return f"sip:{number}@{DOMAIN}"


def code_uri(code):
    return f"sip:{code.replace('#', '%23')}@{DOMAIN}"


def connect(pa, a, pb, b):
    call = pa.call(a, uri(b))
    inc = pb.wait_incoming(b)
    pb.answer(b, 200, call=inc["call"])
    pa.wait_state(a, "CONFIRMED", call=call)
    pa.wait_media(a, "ACTIVE", call=call)
    pb.wait_media(b, "ACTIVE", call=inc["call"])
    return call, inc["call"]


def calls(pbx):
    return pbx.api.get(f"/api/v1/tenants/{DOMAIN}/calls").json["calls"]


def park_events(pbx, **q):
    qs = "&".join(f"{k}={v}" for k, v in q.items())
    return pbx.api.get(f"/api/v1/tenants/{DOMAIN}/park-events?{qs}").json["items"]


def wait_for(pred, timeout=5.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def park(p, parker, call, code):
    """The parker blind-transfers its call to a park code; returns the final sipfrag status."""
    p.xfer(parker, code_uri(code), call=call)
    return p.wait_event("transfer_status", phone=parker, pred=lambda e: e.get("final"))["code"]


def test_park_then_retrieve_by_code(phones_factory, pbx, tmp_path):
    outside = phones(phones_factory, pbx, "106", name="outside")
    office = phones(phones_factory, pbx, "101", "103", name="office")
    c106, c101 = connect(outside, "106", office, "101")
    assert park(office, "101", c101, "*68103") == 200
    office.wait_state("101", "DISCONNECTED", call=c101)
    parked = wait_for(lambda: [c for c in calls(pbx) if c["state"] == "parked"], what="parked call")
    assert len(parked) == 1, parked
    time.sleep(0.3)
    w = outside.record("106", tmp_path / "parked.wav", seconds=1.5, call=c106)
    print("106 while parked:", describe(w, TONES))
    assert_music(w, not_freqs=TONES)
    ev = wait_for(lambda: park_events(pbx, kind="parked"), what="parked event")
    assert ev[0]["extension"] == "103" and ev[0]["parker"] == "101", ev
    assert ev[0]["parked_number"] == "106", ev

    r = office.call("103", code_uri("*88103"))
    office.wait_state("103", "CONFIRMED", call=r)
    office.wait_media("103", "ACTIVE", call=r)
    time.sleep(0.3)
    w103 = office.record("103", tmp_path / "103.wav", seconds=1.5, call=r)
    w106 = outside.record("106", tmp_path / "106.wav", seconds=1.5, call=c106)
    print("103 hears:", describe(w103, TONES), "106 hears:", describe(w106, TONES))
    assert_tone(w103, TONE["106"])
    assert_tone(w106, TONE["103"])
    assert not [c for c in calls(pbx) if c["state"] == "parked"]
    ev = wait_for(lambda: park_events(pbx, kind="retrieved"), what="retrieved event")
    assert ev[0]["detail"] == "103", ev
    outside.hangup("106", call=c106)
    office.wait_state("103", "DISCONNECTED", call=r)


def test_own_extension_codes(phones_factory, pbx, tmp_path):
    outside = phones(phones_factory, pbx, "106", name="outside")
    office = phones(phones_factory, pbx, "101", name="office")
    c106, c101 = connect(outside, "106", office, "101")
    assert park(office, "101", c101, "*68#") == 200
    ev = wait_for(lambda: park_events(pbx, kind="parked"), what="parked event")
    assert ev[0]["extension"] == "101", ev
    r = office.call("101", code_uri("*88"))
    office.wait_state("101", "CONFIRMED", call=r)
    office.wait_media("101", "ACTIVE", call=r)
    time.sleep(0.3)
    w = office.record("101", tmp_path / "101.wav", seconds=1.5, call=r)
    assert_tone(w, TONE["106"])
    office.hangup("101", call=r)
    outside.wait_state("106", "DISCONNECTED", call=c106)


def test_recall_rings_the_parker_with_prefix_and_connects(phones_factory, pbx, tmp_path):
    park_settings(pbx, recall_time_s=3, ring_s=10)
    outside = phones(phones_factory, pbx, "106", name="outside")
    office = phones(phones_factory, pbx, "101", name="office")
    c106, c101 = connect(outside, "106", office, "101")
    t0 = time.monotonic()
    assert park(office, "101", c101, "*68") == 200
    inc = office.wait_incoming("101", timeout=8)
    waited = time.monotonic() - t0
    assert 2.5 <= waited <= 5.0, waited
    assert "Recall:" in inc["from"] and "106" in inc["from"], inc
    alert = inc["headers"].get("Alert-Info") or inc["headers"].get("alert-info")
    assert alert and "Bellcore-dr3" in alert[0], inc["headers"]
    office.answer("101", 200, call=inc["call"])
    office.wait_media("101", "ACTIVE", call=inc["call"])
    time.sleep(0.3)
    w101 = office.record("101", tmp_path / "101.wav", seconds=1.5, call=inc["call"])
    w106 = outside.record("106", tmp_path / "106.wav", seconds=1.5, call=c106)
    assert_tone(w101, TONE["106"])
    assert_tone(w106, TONE["101"])
    wait_for(lambda: park_events(pbx, kind="recall_answered"), what="recall_answered event")
    kinds = [e["kind"] for e in park_events(pbx)]
    assert "recall_started" in kinds, kinds
    outside.hangup("106", call=c106)


def test_calling_the_watched_park_resource_retrieves(phones_factory, pbx, tmp_path):
    """A Visual Park key that calls what it watches (`park-103`, as phones
    without Replaces support do) retrieves the oldest call parked there."""
    outside = phones(phones_factory, pbx, "106", name="outside")
    office = phones(phones_factory, pbx, "101", "104", name="office")
    c106, c101 = connect(outside, "106", office, "101")
    assert park(office, "101", c101, "*68103") == 200
    wait_for(lambda: [c for c in calls(pbx) if c["state"] == "parked"], what="parked call")
    r = office.call("104", code_uri("park-103"))
    office.wait_state("104", "CONFIRMED", call=r)
    office.wait_media("104", "ACTIVE", call=r)
    time.sleep(0.3)
    w104 = office.record("104", tmp_path / "104.wav", seconds=1.5, call=r)
    w106 = outside.record("106", tmp_path / "106.wav", seconds=1.5, call=c106)
    assert_tone(w104, TONE["106"])
    assert_tone(w106, TONE["104"])
    ev = wait_for(lambda: park_events(pbx, kind="retrieved"), what="retrieved event")
    assert ev[0]["detail"] == "104", ev
    outside.hangup("106", call=c106)
    office.wait_state("104", "DISCONNECTED", call=r)


def test_group_park_hunts_first_available_member(phones_factory, pbx):
    r = pbx.api.post(f"/api/v1/tenants/{DOMAIN}/call-park-groups",
                     {"name": "Front desk", "members": ["101", "102", "103"]})
    assert r.status == 201, r
    outside = phones(phones_factory, pbx, "104", "105", "106", name="outside")
    office = phones(phones_factory, pbx, "101", "102", name="office")  # 103 is not registered
    placed = []
    for caller in ("106", "105"):
        cin, c101 = connect(outside, caller, office, "101")
        assert park(office, "101", c101, "*58") == 200
        office.wait_state("101", "DISCONNECTED", call=c101)
        placed.append(cin)
    ev = wait_for(lambda: len(park_events(pbx, kind="parked")) == 2 and park_events(pbx, kind="parked"),
                  what="two parked events")
    assert sorted(e["extension"] for e in ev) == ["101", "102"], ev
    # Every available member holds a parked call (103 is unregistered): refused.
    cin, c101 = connect(outside, "104", office, "101")
    assert park(office, "101", c101, "*58") == 486
    wait_for(lambda: park_events(pbx, kind="park_failed"), what="park_failed event")
    # 101 keeps its call.
    office.expect_no_event("call_state", phone="101", state="DISCONNECTED", timeout=1.0)
    office.hangup("101", call=c101)


def test_abandoned_parked_call_is_logged(phones_factory, pbx):
    outside = phones(phones_factory, pbx, "106", name="outside")
    office = phones(phones_factory, pbx, "101", name="office")
    c106, c101 = connect(outside, "106", office, "101")
    assert park(office, "101", c101, "*68102") == 200
    wait_for(lambda: park_events(pbx, kind="parked"), what="parked")
    outside.hangup("106", call=c106)
    ev = wait_for(lambda: park_events(pbx, kind="abandoned"), what="abandoned event")
    assert ev[0]["extension"] == "102", ev
    assert not calls(pbx)
    r = office.call("101", code_uri("*88102"))
    assert office.wait_state("101", "DISCONNECTED", call=r)["code"] == 404


def test_retrieve_refusals(phones_factory, pbx):
    r = pbx.api.post("/api/v1/tenants", {"name": "Other", "domain": "other.test"})
    assert r.status == 201, r
    pbx.create_extension("103", "pw103other", tenant="other.test")
    outside = phones(phones_factory, pbx, "106", name="outside")
    office = phones(phones_factory, pbx, "101", "104", name="office")
    c106, c101 = connect(outside, "106", office, "101")
    assert park(office, "101", c101, "*68103") == 200
    # Nothing parked on 104.
    r = office.call("104", code_uri("*88104"))
    assert office.wait_state("104", "DISCONNECTED", call=r)["code"] == 404
    # 103 of another tenant dials *88103 into its own tenant: nothing there.
    other = phones_factory({"name": "o103", "user": "103", "password": "pw103other",
                            "domain": "other.test", "tone": 300},
                           proxy=f"sip:127.0.0.1:{pbx.sip_port};lr", name="other")
    assert other.wait_event("registered", phone="o103")["code"] == 200
    r = other.call("o103", "sip:*88103@other.test")
    assert other.wait_state("o103", "DISCONNECTED", call=r)["code"] == 404
    assert [c for c in calls(pbx) if c["state"] == "parked"], "the park must be untouched"
    outside.hangup("106", call=c106)


def test_two_retrievers_at_once_exactly_one_wins(phones_factory, pbx):
    outside = phones(phones_factory, pbx, "106", name="outside")
    office = phones(phones_factory, pbx, "101", name="office")
    r1 = phones(phones_factory, pbx, "102", name="r1")
    r2 = phones(phones_factory, pbx, "104", name="r2")
    for round_ in range(5):
        c106, c101 = connect(outside, "106", office, "101")
        assert park(office, "101", c101, "*68103") == 200
        wait_for(lambda: [c for c in calls(pbx) if c["state"] == "parked"], what="parked")
        go = threading.Barrier(2)
        out = {}

        def grab(p, ext):
            go.wait()
            out[ext] = p.call(ext, code_uri("*88103"))

        ts = [threading.Thread(target=grab, args=(r1, "102")),
              threading.Thread(target=grab, args=(r2, "104"))]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        results = {}
        for p, ext in ((r1, "102"), (r2, "104")):
            ev = p.wait_event("call_state", phone=ext, call=out[ext],
                              pred=lambda e: e["state"] in ("CONFIRMED", "DISCONNECTED"))
            results[ext] = ev
        states = sorted(e["state"] for e in results.values())
        assert states == ["CONFIRMED", "DISCONNECTED"], (round_, results)
        loser = [e for e in results.values() if e["state"] == "DISCONNECTED"][0]
        assert loser["code"] == 404, loser
        outside.hangup("106", call=c106)
        for p, ext in ((r1, "102"), (r2, "104")):
            if results[ext]["state"] == "CONFIRMED":
                p.wait_state(ext, "DISCONNECTED", call=out[ext])
        wait_for(lambda: not calls(pbx), what="no calls left")


def parked_calls(pbx):
    return pbx.api.get(f"/api/v1/tenants/{DOMAIN}/parked-calls").json["items"]


def test_api_lists_retrieves_and_hangs_up_parked_calls(phones_factory, pbx, tmp_path):
    outside = phones(phones_factory, pbx, "106", "105", name="outside")
    office = phones(phones_factory, pbx, "101", "104", name="office")
    c106, c101 = connect(outside, "106", office, "101")
    assert park(office, "101", c101, "*68103") == 200
    items = wait_for(lambda: parked_calls(pbx), what="parked call listed")
    p = items[0]
    assert (p["parked_on"], p["parked_by"], p["caller"]["number"], p["state"]) == \
        ("103", "101", "106", "parked"), p
    assert p["recall_at"] and p["retrieve_number"].startswith("*88*"), p
    # Retrieve to 104 from the API: 104 rings, answers, talks to 106.
    r = pbx.api.post(f"/api/v1/tenants/{DOMAIN}/parked-calls/{p['id']}/retrieve", {"to": "104"})
    assert r.status == 202, r
    inc = office.wait_incoming("104")
    assert "106" in inc["from"], inc
    office.answer("104", 200, call=inc["call"])
    office.wait_media("104", "ACTIVE", call=inc["call"])
    time.sleep(0.3)
    w = office.record("104", tmp_path / "104.wav", seconds=1.5, call=inc["call"])
    assert_tone(w, TONE["106"])
    assert not parked_calls(pbx)
    # The API parks a call in progress (the answering party is released) ...
    live = calls(pbx)
    assert len(live) == 1, live
    call_id = live[0]["id"]
    r = pbx.api.post(f"/api/v1/tenants/{DOMAIN}/calls/{call_id}/park", {"on": "102"})
    assert r.status == 204, r
    office.wait_state("104", "DISCONNECTED", call=inc["call"])
    p = wait_for(lambda: parked_calls(pbx), what="parked again")[0]
    assert p["parked_on"] == "102", p
    # ... and hangs a parked call up.
    r = pbx.api.delete(f"/api/v1/tenants/{DOMAIN}/parked-calls/{p['id']}")
    assert r.status == 204, r
    outside.wait_state("106", "DISCONNECTED", call=c106)
    assert pbx.api.delete(f"/api/v1/tenants/{DOMAIN}/parked-calls/{p['id']}").status == 404


def test_events_stream_shows_parking_live(phones_factory, pbx):
    import json
    import urllib.request
    got = []

    def listen():
        req = urllib.request.Request(f"{pbx.http_base}/api/v1/tenants/{DOMAIN}/events",
                                     headers={"Authorization": f"Bearer {pbx.admin_token}"})
        with urllib.request.urlopen(req, timeout=15) as resp:
            for raw in resp:
                line = raw.decode().strip()
                if line.startswith("data:"):
                    got.append(json.loads(line[5:]))
                    if len(got) >= 2:
                        return

    t = threading.Thread(target=listen, daemon=True)
    t.start()
    time.sleep(0.5)
    outside = phones(phones_factory, pbx, "106", name="outside")
    office = phones(phones_factory, pbx, "101", "103", name="office")
    c106, c101 = connect(outside, "106", office, "101")
    assert park(office, "101", c101, "*68103") == 200
    r = office.call("103", code_uri("*88103"))
    office.wait_state("103", "CONFIRMED", call=r)
    t.join(timeout=10)
    assert [e["kind"] for e in got] == ["parked", "retrieved"], got
    assert got[0]["extension"] == "103" and got[1]["detail"] == "103", got
    office.hangup("103", call=r)


def test_recall_retries_a_busy_parker(phones_factory, pbx, tmp_path):
    park_settings(pbx, recall_time_s=2, retry_interval_s=1, ring_s=10)
    outside = phones(phones_factory, pbx, "106", name="outside")
    office = phones(phones_factory, pbx, "101", name="office")
    c106, c101 = connect(outside, "106", office, "101")
    assert park(office, "101", c101, "*68") == 200
    first = office.wait_incoming("101", timeout=6)
    t0 = time.monotonic()
    office.answer("101", 486, call=first["call"])
    again = office.wait_incoming("101", timeout=6)
    gap = time.monotonic() - t0
    assert 0.7 <= gap <= 3.0, gap
    assert "Recall:" in again["from"], again
    office.answer("101", 200, call=again["call"])
    office.wait_media("101", "ACTIVE", call=again["call"])
    time.sleep(0.3)
    w = office.record("101", tmp_path / "101.wav", seconds=1.5, call=again["call"])
    assert_tone(w, TONE["106"])
    outside.hangup("106", call=c106)


def test_recall_reaches_the_ring_group_and_never_reverts(phones_factory, pbx, tmp_path):
    r = pbx.api.post(f"/api/v1/tenants/{DOMAIN}/ring-groups",
                     {"number": "600", "name": "Reception", "members": ["104", "105"],
                      "strategy": "ring_all", "ring_time_s": 20})
    assert r.status == 201, r
    park_settings(pbx, recall_time_s=2, recall_to="PARKER_THEN_RING_GROUP", ring_group="600",
                  ring_group_wait_s=5, retry_interval_s=1)
    outside = phones(phones_factory, pbx, "106", name="outside")
    office = phones(phones_factory, pbx, "101", name="office")
    desk = phones(phones_factory, pbx, "104", "105", name="desk")
    c106, c101 = connect(outside, "106", office, "101")
    assert park(office, "101", c101, "*68") == 200
    # The parker rings first and does not answer ...
    recall = office.wait_incoming("101", timeout=6)
    assert "Recall:" in recall["from"], recall
    # ... then the ring group: both members ring with the prefix.
    i104 = desk.wait_incoming("104", timeout=10)
    i105 = desk.wait_incoming("105", timeout=5)
    assert "Recall:" in i104["from"], i104
    office.wait_state("101", "DISCONNECTED", call=recall["call"])
    desk.answer("105", 200, call=i105["call"])
    desk.wait_media("105", "ACTIVE", call=i105["call"])
    desk.wait_state("104", "DISCONNECTED", call=i104["call"])
    time.sleep(0.3)
    w = desk.record("105", tmp_path / "105.wav", seconds=1.5, call=i105["call"])
    assert_tone(w, TONE["106"])
    ev = wait_for(lambda: park_events(pbx, kind="recall_answered"), what="recall answered")
    assert ev[0]["detail"] == "105", ev
    office.expect_no_event("incoming_call", phone="101", timeout=0.5)
    outside.hangup("106", call=c106)


def test_recall_to_a_sequential_ring_group_hunts_its_members(phones_factory, pbx, tmp_path):
    """A sequential ring group is rung for a recall as it is for a call: one
    member after another, each for the group's ring time."""
    r = pbx.api.post(f"/api/v1/tenants/{DOMAIN}/ring-groups",
                     {"number": "601", "name": "Hunt", "members": ["104", "105"],
                      "strategy": "sequential", "ring_time_s": 5})
    assert r.status == 201, r
    park_settings(pbx, recall_time_s=2, recall_to="RING_GROUP_ONLY", ring_group="601",
                  retry_interval_s=1)
    outside = phones(phones_factory, pbx, "106", name="outside")
    office = phones(phones_factory, pbx, "101", name="office")
    desk = phones(phones_factory, pbx, "104", "105", name="desk")
    c106, c101 = connect(outside, "106", office, "101")
    assert park(office, "101", c101, "*68") == 200
    # 104 alone rings first ...
    i104 = desk.wait_incoming("104", timeout=6)
    t0 = time.monotonic()
    assert "Recall:" in i104["from"], i104
    desk.expect_no_event("incoming_call", phone="105", timeout=3.0)
    # ... for its 5 s, then 105 does and 104 stops.
    i105 = desk.wait_incoming("105", timeout=5)
    assert 4.0 <= time.monotonic() - t0 <= 6.5, time.monotonic() - t0
    assert "Recall:" in i105["from"], i105
    desk.wait_state("104", "DISCONNECTED", call=i104["call"])
    desk.answer("105", 200, call=i105["call"])
    desk.wait_media("105", "ACTIVE", call=i105["call"])
    time.sleep(0.3)
    w = desk.record("105", tmp_path / "105.wav", seconds=1.5, call=i105["call"])
    assert_tone(w, TONE["106"])
    ev = wait_for(lambda: park_events(pbx, kind="recall_answered"), what="recall answered")
    assert ev[0]["detail"] == "105", ev
    outside.hangup("106", call=c106)


def test_attended_transfer_to_a_park_code_parks(phones_factory, pbx):
    outside = phones(phones_factory, pbx, "106", name="outside")
    office = phones(phones_factory, pbx, "101", name="office")
    c106, c101 = connect(outside, "106", office, "101")
    office.hold("101", call=c101)
    office.wait_media("101", "LOCAL_HOLD", call=c101)
    consult = office.call("101", code_uri("*68102"))
    office.wait_state("101", "CONFIRMED", call=consult)
    office.xfer_replaces("101", call=c101, other=consult)
    st = office.wait_event("transfer_status", phone="101", pred=lambda e: e.get("final"))
    assert st["code"] == 200, st
    office.wait_state("101", "DISCONNECTED", call=c101)
    office.wait_state("101", "DISCONNECTED", call=consult)
    p = wait_for(lambda: parked_calls(pbx), what="parked")[0]
    assert p["parked_on"] == "102" and p["caller"]["number"] == "106", p
    outside.hangup("106", call=c106)


def test_failed_park_plays_the_reorder_tone_and_keeps_the_call(phones_factory, pbx, tmp_path):
    outside = phones(phones_factory, pbx, "106", name="outside")
    office = phones(phones_factory, pbx, "101", name="office")
    c106, c101 = connect(outside, "106", office, "101")
    assert park(office, "101", c101, "*68999") == 404
    w = office.record("101", tmp_path / "101.wav", seconds=1.0, call=c101)
    print("101 after the failed park:", describe(w, TONES + (480, 620)))
    assert_tone(w, 480, min_fraction=0.3)
    time.sleep(1.5)
    w = office.record("101", tmp_path / "101b.wav", seconds=1.0, call=c101)
    assert_tone(w, TONE["106"])
    outside.hangup("106", call=c106)


def test_one_touch_park_by_dtmf(phones_factory, pbx, tmp_path):
    outside = phones(phones_factory, pbx, "106", name="outside")
    office = phones(phones_factory, pbx, "101", name="office")
    c106, c101 = connect(outside, "106", office, "101")
    office.dtmf("101", "*68103#", call=c101)
    office.wait_state("101", "DISCONNECTED", call=c101, timeout=8)
    p = wait_for(lambda: parked_calls(pbx), what="parked")[0]
    assert (p["parked_on"], p["parked_by"], p["caller"]["number"]) == ("103", "101", "106"), p
    time.sleep(0.3)
    w = outside.record("106", tmp_path / "106.wav", seconds=1.5, call=c106)
    assert_music(w, not_freqs=TONES)
    # Digits that are no park code do nothing.
    c106b, c101b = connect(outside, "106", office, "101")
    office.dtmf("101", "1234#", call=c101b)
    office.expect_no_event("call_state", phone="101", state="DISCONNECTED", timeout=2.0)
    office.hangup("101", call=c101b)
    outside.hangup("106", call=c106)
