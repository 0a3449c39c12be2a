"""SUBSCRIBE/NOTIFY for BLF and Visual Park keys (RFC 6665, RFC 4235),
driven by a hand-written subscriber so every header and body can be
checked, with PJSIP phones making and parking the calls."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
import time
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import harness
from phones import phones_factory  # noqa: F401  (pytest fixture)
from test_park import DOMAIN, TONE, code_uri, connect, park, park_settings, phones, spec  # noqa: F401
from audio import assert_tone
from test_park import park_events, wait_for

SCHEMA = Path(__file__).parent / "schema" / "dialog-info.xsd"


def assert_schema_valid(body: bytes):
    """The NOTIFY body validates against RFC 4235's schema (xmllint)."""
    if shutil.which("xmllint") is None:
        harness.missing_tool("xmllint (Debian package libxml2-utils)")
    r = subprocess.run(["xmllint", "--noout", "--nonet", "--schema", str(SCHEMA), "-"],
                       input=body, capture_output=True, timeout=30)
    assert r.returncode == 0, (r.stderr.decode(), body.decode())


@pytest.fixture(autouse=True)
def _need_pjsua2():
    harness.require_pjsua2()


@pytest.fixture
def pbx(orbit_factory):
    srv = orbit_factory(config={"bootstrap_domain": DOMAIN, "calls": {"ring_timeout_s": 10}})
    for ext in TONE:
        srv.create_extension(ext, f"pw{ext}secret", display_name=f"User {ext}")
    park_settings(srv)
    return srv


def method(msg):
    return None if msg is None else msg.start_line.split(" ", 1)[0]


def answer(client, req, status=200, reason="OK"):
    lines = [f"SIP/2.0 {status} {reason}"]
    lines += [f"Via: {v}" for v in req.get_all("via")]
    lines += [f"From: {req.get('from')}", f"To: {req.get('to')}", f"Call-ID: {req.get('call-id')}",
              f"CSeq: {req.get('cseq')}", "Content-Length: 0"]
    client.send_raw(("\r\n".join(lines) + "\r\n\r\n").encode())


class Watcher:
    """A phone's BLF key as raw SIP: subscribes as `user` to `resource`."""

    def __init__(self, pbx, user, resource, expires=600, event="dialog"):
        self.c = harness.SipClient(pbx.sip_addr)
        self.user = user
        self.ruri = f"sip:{resource}@{DOMAIN}"
        hdrs = [("Event", event), ("Accept", "application/dialog-info+xml"),
                ("Expires", str(expires)), ("Contact", f"<{self.c.contact_uri(user)}>")]
        first = self.c.request("SUBSCRIBE", self.ruri, hdrs, to_uri=self.ruri,
                               from_uri=f"sip:{user}@{DOMAIN}")
        if first is not None and first.status == 407:
            chal = harness.parse_auth_params(first.get("proxy-authenticate"))
            auth = harness.digest_authorization(chal, "SUBSCRIBE", self.ruri, user, f"pw{user}secret")
            first = self.c.request("SUBSCRIBE", self.ruri, hdrs + [("Proxy-Authorization", auth)],
                                   to_uri=self.ruri, from_uri=f"sip:{user}@{DOMAIN}")
        self.response = first
        self.notifies = []

    def next_notify(self, timeout=5):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = self.c.recv_msg(timeout=max(0.05, deadline - time.monotonic()))
            if m is None:
                break
            if method(m) == "NOTIFY":
                answer(self.c, m)
                self.notifies.append(m)
                if m.body:
                    assert_schema_valid(m.body)
                return m
        raise AssertionError(f"no NOTIFY within {timeout}s")

    def close(self):
        self.c.close()


def version(n):
    return int(re.search(r'version="(\d+)"', n.body.decode()).group(1))


def dialogs(n):
    return re.findall(r"<dialog\b.*?</dialog>", n.body.decode(), re.S)


def test_visual_park_key_lights_while_a_call_is_parked(phones_factory, pbx):
    w = Watcher(pbx, "103", "park-103")
    try:
        assert w.response.status == 200, w.response
        assert int(w.response.get("expires")) > 0
        first = w.next_notify()
        assert first.get("event") == "dialog" and first.get("subscription-state").startswith("active")
        assert first.get("content-type") == "application/dialog-info+xml"
        assert dialogs(first) == [], first.body
        outside = phones(phones_factory, pbx, "106", name="outside")
        office = phones(phones_factory, pbx, "101", "103", name="office")
        c106, c101 = connect(outside, "106", office, "101")
        assert park(office, "101", c101, "*68103") == 200
        n = w.next_notify()
        body = n.body.decode()
        assert version(n) > version(first), body
        [d] = dialogs(n)
        assert "<state>confirmed</state>" in d and 'direction="recipient"' in d, body
        assert "sip:106@" in d and "callpark" in body, body
        m = re.search(r'<target uri="([^"]+)"', d)
        assert m and "*88*" in m.group(1), d
        # Retrieve with the key: dial the target the NOTIFY gave.
        target_user = re.search(r"sip:([^@]+)@", m.group(1)).group(1)
        r = office.call("103", code_uri(target_user))
        office.wait_state("103", "CONFIRMED", call=r)
        n = w.next_notify()
        assert dialogs(n) == [] and version(n) > version(first), n.body
        outside.hangup("106", call=c106)
    finally:
        w.close()


def test_blf_of_an_extension_follows_its_calls(phones_factory, pbx):
    w = Watcher(pbx, "103", "101")
    try:
        assert w.response.status == 200, w.response
        w.next_notify()
        outside = phones(phones_factory, pbx, "106", name="outside")
        office = phones(phones_factory, pbx, "101", name="office")
        call = outside.call("106", f"sip:101@{DOMAIN}")
        inc = office.wait_incoming("101")
        n = w.next_notify()
        [d] = dialogs(n)
        assert "<state>early</state>" in d and 'direction="recipient"' in d, n.body
        office.answer("101", 200, call=inc["call"])
        outside.wait_state("106", "CONFIRMED", call=call)
        versions = []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            n = w.next_notify()
            versions.append(version(n))
            if any("<state>confirmed</state>" in d for d in dialogs(n)):
                break
        else:
            raise AssertionError("no confirmed state")
        outside.hangup("106", call=call)
        while True:
            n = w.next_notify()
            if not dialogs(n):
                break
        all_versions = [version(x) for x in w.notifies]
        assert all_versions == sorted(set(all_versions)), all_versions
    finally:
        w.close()


def test_subscribe_refusals_and_fetch(pbx):
    w = Watcher(pbx, "103", "103", event="presence")
    assert w.response.status == 489 and "dialog" in (w.response.get("allow-events") or ""), w.response
    w.close()
    w = Watcher(pbx, "103", "park-999")
    assert w.response.status == 404, w.response
    w.close()
    w = Watcher(pbx, "103", "park-101", expires=0)
    try:
        assert w.response.status == 200, w.response
        n = w.next_notify()
        assert n.get("subscription-state").startswith("terminated"), n
    finally:
        w.close()
    # Credentials of another tenant's user do not work here.
    r = pbx.api.post("/api/v1/tenants", {"name": "Other", "domain": "other.test"})
    assert r.status == 201, r
    pbx.create_extension("201", "pw201secret", tenant="other.test")
    c = harness.SipClient(pbx.sip_addr)
    try:
        ruri = f"sip:park-101@{DOMAIN}"
        hdrs = [("Event", "dialog"), ("Contact", f"<{c.contact_uri('201')}>")]
        first = c.request("SUBSCRIBE", ruri, hdrs, to_uri=ruri, from_uri=f"sip:201@{DOMAIN}")
        chal = harness.parse_auth_params(first.get("proxy-authenticate"))
        auth = harness.digest_authorization(chal, "SUBSCRIBE", ruri, "201", "pw201secret")
        r = c.request("SUBSCRIBE", ruri, hdrs + [("Proxy-Authorization", auth)], to_uri=ruri,
                      from_uri=f"sip:201@{DOMAIN}")
        assert r.status in (403, 407), r
    finally:
        c.close()


def test_phones_of_the_parked_on_extension_get_park_info(phones_factory, pbx):
    c = harness.SipClient(pbx.sip_addr)
    try:
        _, final = c.register("103", DOMAIN, "pw103secret")
        assert final is not None and final.status == 200, final
        outside = phones(phones_factory, pbx, "106", name="outside")
        office = phones(phones_factory, pbx, "101", "104", name="office")
        c106, c101 = connect(outside, "106", office, "101")
        assert park(office, "101", c101, "*68103") == 200

        def next_park_info():
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                m = c.recv_msg(timeout=1)
                if m is not None and method(m) == "NOTIFY" and m.get("event") == "park-info":
                    answer(c, m)
                    return m
            raise AssertionError("no park-info NOTIFY")

        n = next_park_info()
        body = n.body.decode()
        assert n.get("content-type") == "application/x-orbit-park-info+xml", n
        assert 'action="parked"' in body and "<parked-on>103</parked-on>" in body, body
        assert "<parked-by>101</parked-by>" in body and 'number="106"' in body, body
        retrieve = re.search(r"<retrieve>([^<]+)</retrieve>", body).group(1)
        r = office.call("104", code_uri(retrieve))
        office.wait_state("104", "CONFIRMED", call=r)
        n = next_park_info()
        assert 'action="cleared"' in n.body.decode() and 'reason="retrieved"' in n.body.decode()
        outside.hangup("106", call=c106)
    finally:
        c.close()


def test_subscriptions_survive_a_restart(pbx):
    w = Watcher(pbx, "103", "park-103")
    try:
        assert w.response.status == 200, w.response
        first = w.next_notify()
        time.sleep(0.5)  # the save is written behind
        assert pbx.stop() == 0
        pbx.start()
        again = w.next_notify(timeout=10)
        assert again.get("call-id") == first.get("call-id"), again
        assert again.get("subscription-state").startswith("active"), again
        assert version(again) > version(first), (version(first), version(again))
        assert dialogs(again) == []
    finally:
        w.close()


def test_reprovision_tells_the_phone_to_fetch_its_configuration(pbx):
    c = harness.SipClient(pbx.sip_addr)
    try:
        _, final = c.register("103", DOMAIN, "pw103secret")
        assert final is not None and final.status == 200, final
        r = pbx.api.post(f"/api/v1/tenants/{DOMAIN}/phones",
                         {"mac": "00:04:13:a1:b2:c3", "vendor": "snom", "model": "D785",
                          "extension": "103", "keys": [{"type": "visual_park"}]})
        assert r.status == 201, r
        r = pbx.api.post(f"/api/v1/tenants/{DOMAIN}/phones/{r.json['id']}/reprovision", {})
        assert r.status == 200, r
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            m = c.recv_msg(timeout=1)
            if m is not None and method(m) == "NOTIFY":
                answer(c, m)
                assert m.get("event") == "check-sync;reboot=false", m
                break
        else:
            raise AssertionError("no check-sync NOTIFY")
    finally:
        c.close()


def test_group_park_notifies_every_member_and_a_blf_press_retrieves(phones_factory, pbx, tmp_path):
    """Group park: every member's Visual Group Park subscription and every
    member's registered device hear of it; a member's BLF press (INVITE
    with Replaces built from the NOTIFY, sent by PJSIP) retrieves the call
    with audio both ways; then every key clears."""
    members = ["101", "102", "103", "104", "105"]
    r = pbx.api.post(f"/api/v1/tenants/{DOMAIN}/call-park-groups", {"name": "Sales", "members": members})
    assert r.status == 201, r
    group = r.json["id"]
    watchers = {m: Watcher(pbx, m, f"parkgroup-{group}") for m in members}
    devices = {}
    try:
        for m, w in watchers.items():
            assert w.response.status == 200, (m, w.response)
            assert dialogs(w.next_notify()) == []
        # 102, 103 and 105 are raw registered devices (101 and 104 are PJSIP phones).
        for m in ("102", "103", "105"):
            c = harness.SipClient(pbx.sip_addr)
            _, final = c.register(m, DOMAIN, f"pw{m}secret")
            assert final is not None and final.status == 200, final
            devices[m] = c
        outside = phones(phones_factory, pbx, "106", name="outside")
        office = phones(phones_factory, pbx, "101", "104", name="office")
        c106, c101 = connect(outside, "106", office, "101")
        assert park(office, "101", c101, "*58") == 200
        seen = {}
        for m, w in watchers.items():
            n = w.next_notify()
            [d] = dialogs(n)
            assert "sip:106@" in d and "<state>confirmed</state>" in d, (m, n.body)
            seen[m] = d
        for m, c in devices.items():
            n = next_request(c, "NOTIFY", event="park-info")
            assert 'action="parked"' in n.body.decode(), (m, n.body)
        # 104 presses its key: INVITE with Replaces naming the parked dialog.
        d = seen["104"]
        call_id = re.search(r'call-id="([^"]+)"', d).group(1)
        local_tag = re.search(r'local-tag="([^"]+)"', d).group(1)
        remote_tag = re.search(r'remote-tag="([^"]+)"', d).group(1)
        replaces = f"{call_id};to-tag={local_tag};from-tag={remote_tag}"
        r104 = office.call("104", f"sip:101@{DOMAIN}", headers={"Replaces": replaces})
        office.wait_state("104", "CONFIRMED", call=r104)
        office.wait_media("104", "ACTIVE", call=r104)
        time.sleep(0.3)
        w104 = office.record("104", tmp_path / "104.wav", seconds=1.5, call=r104)
        w106 = outside.record("106", tmp_path / "106.wav", seconds=1.5, call=c106)
        assert_tone(w104, TONE["106"])
        assert_tone(w106, TONE["104"])
        for m, w in watchers.items():
            while dialogs(w.next_notify()):
                pass
        for m, c in devices.items():
            n = next_request(c, "NOTIFY", event="park-info")
            assert 'action="cleared"' in n.body.decode(), (m, n.body)
        ev = wait_for(lambda: park_events(pbx, kind="retrieved"), what="retrieved event")
        assert ev[0]["detail"] == "104", ev
        outside.hangup("106", call=c106)
    finally:
        for w in watchers.values():
            w.close()
        for c in devices.values():
            c.close()


def next_request(client, name, event=None, timeout=5):
    """The next request `name` (optionally of one Event) a raw client gets; answered 200."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = client.recv_msg(timeout=max(0.05, deadline - time.monotonic()))
        if m is None:
            break
        if method(m) == name and (event is None or m.get("event") == event):
            answer(client, m)
            return m
        if method(m) != "SIP/2.0":
            answer(client, m)
    raise AssertionError(f"no {name} within {timeout}s")


def http_get(url, user, password):
    req = urllib.request.Request(url)
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    req.add_header("Authorization", f"Basic {token}")
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 200, (url, r.status)
        return r.read()


def test_snom_phone_follows_its_visual_park_key_to_the_parked_call(phones_factory, pbx, tmp_path):
    """A phone simulator does what a Snom does with its configuration: takes
    the Visual Park key's definition, fetches the list page it names, picks
    the first entry and dials it, and ends up talking to the parked caller."""
    r = pbx.api.post(f"/api/v1/tenants/{DOMAIN}/phones",
                     {"mac": "00:04:13:11:22:33", "vendor": "snom", "model": "D785",
                      "extension": "103", "keys": [{"type": "visual_park"}]})
    assert r.status == 201, r
    prov = r.json["provisioning"]
    config = ET.fromstring(http_get(prov["url"], prov["username"], prov["password"]))
    keys = [f.text for f in config.iter("fkey") if f.text and "VisualPark" in f.text]
    assert len(keys) == 1, [f.text for f in config.iter("fkey")]
    watch = re.search(r'name="watch" value="([^"]+)"', keys[0]).group(1)
    list_url = re.search(r'name="list" value="([^"]+)"', keys[0]).group(1)
    assert watch == f"sip:park-103@{DOMAIN}", watch
    outside = phones(phones_factory, pbx, "106", name="outside")
    office = phones(phones_factory, pbx, "101", "103", name="office")
    c106, c101 = connect(outside, "106", office, "101")
    assert park(office, "101", c101, "*68103") == 200
    wait_for(lambda: park_events(pbx, kind="parked"), what="parked event")
    page = ET.fromstring(http_get(list_url, prov["username"], prov["password"]))
    entries = page.findall("DirectoryEntry")
    assert len(entries) == 1 and "106" in entries[0].findtext("Name"), http_get(
        list_url, prov["username"], prov["password"])
    number = entries[0].findtext("Telephone")
    r103 = office.call("103", code_uri(number))
    office.wait_state("103", "CONFIRMED", call=r103)
    office.wait_media("103", "ACTIVE", call=r103)
    time.sleep(0.3)
    w103 = office.record("103", tmp_path / "103.wav", seconds=1.5, call=r103)
    w106 = outside.record("106", tmp_path / "106.wav", seconds=1.5, call=c106)
    assert_tone(w103, TONE["106"])
    assert_tone(w106, TONE["103"])
    outside.hangup("106", call=c106)


@pytest.fixture
def sipp_pbx(orbit_factory):
    """As `pbx`, with MD5 offered first: sipp answers only the first challenge, only MD5."""
    srv = orbit_factory(config={"bootstrap_domain": DOMAIN, "calls": {"ring_timeout_s": 10},
                                "auth": {"algorithms": ["MD5", "SHA-256"]}})
    for ext in TONE:
        srv.create_extension(ext, f"pw{ext}secret", display_name=f"User {ext}")
    park_settings(srv)
    return srv


def test_sipp_visual_park_key_follows_a_park_and_retrieve(phones_factory, sipp_pbx, tmp_path, sipp):
    """A subscriber nobody here wrote (sipp, tests/interop/sipp/subscribe_park.xml): SUBSCRIBE
    with digest to park-103, a call parked there is listed, retrieved it is gone, then a
    refresh and an unsubscribe; every NOTIFY body it received validates against RFC 4235."""
    import test_calls_sipp as ts

    sipp_pbx.create_extension("107", ts.password("107"), display_name="Sipp 107")
    files = {k: tmp_path / f"{k}.txt" for k in ("ready", "parked", "cleared")}
    run = ts.Sipp(tmp_path, "subscribe_park.xml", sipp_pbx, name="watcher", user="107",
                  callee="park-103", timeout_s=40,
                  keys={"resource": "park-103", "ready_file": files["ready"],
                        "parked_file": files["parked"], "cleared_file": files["cleared"]})
    run.start()
    try:
        ts.wait_file(files["ready"], [run])
        outside = phones(phones_factory, sipp_pbx, "106", name="outside")
        office = phones(phones_factory, sipp_pbx, "101", "103", name="office")
        c106, c101 = connect(outside, "106", office, "101")
        assert park(office, "101", c101, "*68103") == 200
        ts.wait_file(files["parked"], [run])
        r = office.call("103", code_uri("*88103"))
        office.wait_state("103", "CONFIRMED", call=r)
        ts.wait_file(files["cleared"], [run])
        outside.hangup("106", call=c106)
        ts.finish(run)
    finally:
        run.kill()
    notifies = [m.msg for m in run.received() if m.msg.start_line.startswith("NOTIFY")]
    assert len(notifies) == 5, [m.start_line for m in notifies]
    for n in notifies:
        assert_schema_valid(n.body)
    assert "sip:106@" in notifies[1].body.decode(), notifies[1].body
    assert notifies[-1].get("subscription-state").startswith("terminated"), notifies[-1]
    versions = [version(n) for n in notifies]
    assert versions == sorted(set(versions)), versions
