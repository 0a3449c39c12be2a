"""REGISTER with sipp (a real, independent SIP implementation) against the real orbit.

sipp's digest supports MD5 only and answers only the FIRST WWW-Authenticate of a 401,
so these servers run with algorithms = ["MD5", "SHA-256"] (MD5 challenge first).
"""

import re
import time

import pytest

import harness
from harness import SipClient

PW = "sipp-pass-0101"
MAIN_CONFIG = {
    "auth": {"algorithms": ["MD5", "SHA-256"]},
    "guard": {"enabled": False},  # wrong-password tests must not trip the brute-force guard
    "registrar": {"min_expires": 60, "max_expires": 7200, "default_expires": 3600, "max_contacts": 3},
}


@pytest.fixture(scope="module")
def orbit(module_factory):
    return module_factory(config=MAIN_CONFIG, ipv6=True, name="orbit-sipp")


def expires_param(contact: str):
    m = re.search(r";\s*expires\s*=\s*(\d+)", contact, re.I)
    return int(m.group(1)) if m else None


def contact_uri(contact: str) -> str:
    m = re.search(r"<([^>]*)>", contact)
    return (m.group(1) if m else contact.split(";")[0]).strip()


def sipp_ok(res):
    assert res.returncode == 0, "sipp scenario failed:\n" + res.explain()
    return res.received()


def last_final(msgs, status):
    finals = [m for m in msgs if m.status == status]
    assert finals, f"no {status} among received: {[m.start_line for m in msgs]}"
    return finals[-1]


def test_register_md5_udp_binding_listed(orbit, sipp, tmp_path):
    orbit.create_extension("1001", PW)
    res = harness.run_sipp(tmp_path, "register_auth.xml", orbit.sip_addr, user="1001",
                           domain=orbit.domain, password=PW, keys={"expires": 1800})
    msgs = sipp_ok(res)

    # the challenge: one WWW-Authenticate per configured algorithm, configured order
    chal = msgs[0]
    assert chal.status == 401
    chals = [harness.parse_auth_params(v) for v in chal.get_all("www-authenticate")]
    assert [c.get("algorithm", "").upper() for c in chals] == ["MD5", "SHA-256"], chal
    for c in chals:
        assert c["_scheme"].lower() == "digest"
        assert c["realm"] == orbit.domain, chal
        assert c.get("nonce"), chal
        assert "auth" in [q.strip() for q in c.get("qop", "").split(",")], chal

    ok = last_final(msgs, 200)
    contacts = ok.contacts()
    assert len(contacts) == 1, ok
    assert "1001@127.0.0.1" in contacts[0], ok
    exp = expires_param(contacts[0])
    assert exp is not None and 1700 <= exp <= 1800, f"200 Contact lacks a fitting expires param:\n{ok}"

    regs = orbit.registrations(extension="1001")
    assert len(regs) == 1, regs
    reg = regs[0]
    for key in ("extension", "contact", "expires_at", "source", "transport", "user_agent"):
        assert key in reg, f"registration lacks {key!r}: {reg}"
    assert "1001@127.0.0.1" in reg["contact"], reg
    assert "127.0.0.1" in str(reg["source"]), reg
    assert str(reg["transport"]).lower() == "udp", reg
    assert "sipp-orbit-interop" in str(reg["user_agent"]), reg


def test_wrong_password_403_and_no_binding(orbit, sipp, tmp_path):
    orbit.create_extension("1002", PW)
    res = harness.run_sipp(tmp_path, "register_wrong_password.xml", orbit.sip_addr, user="1002",
                           domain=orbit.domain, password="not-the-password")
    msgs = sipp_ok(res)
    assert [m.status for m in msgs] == [401, 403]
    assert orbit.registrations(extension="1002") == []


def test_unknown_user_gets_same_challenge_then_403(orbit):
    """No user enumeration: an unknown user gets the same 401 shape as a known one."""
    orbit.create_extension("1003", PW)
    shapes = {}
    finals = {}
    for user in ("1003", "1999"):  # 1999 does not exist
        with SipClient(orbit.sip_addr) as c:
            first, final = c.register(user, orbit.domain, "wrong-password-x")
        assert first is not None and first.status == 401, f"user {user}: {first}"
        chals = [harness.parse_auth_params(v) for v in first.get_all("www-authenticate")]
        shapes[user] = [(c_["_scheme"].lower(), c_.get("realm"), c_.get("algorithm"), c_.get("qop"),
                         tuple(sorted(k for k in c_ if k != "nonce"))) for c_ in chals]
        finals[user] = final.status if final else None
        assert final is not None and final.status == 403, f"user {user}: {final}"
    assert shapes["1003"] == shapes["1999"], shapes
    assert finals == {"1003": 403, "1999": 403}


def test_unknown_domain_403(orbit):
    with SipClient(orbit.sip_addr) as c:
        r = c.request("REGISTER", "sip:no-such-tenant.example",
                      [("Contact", f"<{c.contact_uri('1001')}>"), ("Expires", "3600")],
                      to_uri="sip:1001@no-such-tenant.example", from_uri="sip:1001@no-such-tenant.example")
    assert r is not None, "no response to REGISTER for an unknown domain"
    assert r.status == 403, r


def test_unregister_with_expires_0(orbit, sipp, tmp_path):
    orbit.create_extension("1004", PW)
    port = harness.free_port()
    res = harness.run_sipp(tmp_path, "register_auth.xml", orbit.sip_addr, user="1004",
                           domain=orbit.domain, password=PW, local_port=port)
    sipp_ok(res)
    assert len(orbit.registrations(extension="1004")) == 1
    # same Contact (same sipp local port), Expires: 0
    res = harness.run_sipp(tmp_path, "register_auth.xml", orbit.sip_addr, user="1004",
                           domain=orbit.domain, password=PW, local_port=port, keys={"expires": 0})
    msgs = sipp_ok(res)
    ok = last_final(msgs, 200)
    left = [c for c in ok.contacts() if "1004@" in c]
    assert left == [], f"200 to Expires: 0 still lists the binding:\n{ok}"
    assert orbit.registrations(extension="1004") == []


def test_contact_star_removes_all(orbit, sipp, tmp_path):
    orbit.create_extension("1005", PW)
    sipp_ok(harness.run_sipp(tmp_path, "register_multi.xml", orbit.sip_addr, user="1005",
                             domain=orbit.domain, password=PW))
    assert len(orbit.registrations(extension="1005")) == 3
    msgs = sipp_ok(harness.run_sipp(tmp_path, "register_star.xml", orbit.sip_addr, user="1005",
                                    domain=orbit.domain, password=PW))
    ok = last_final(msgs, 200)
    assert [c for c in ok.contacts() if c.strip() != "*"] == [], ok
    assert orbit.registrations(extension="1005") == []


def test_interval_too_brief_423(orbit, sipp, tmp_path):
    orbit.create_extension("1006", PW)
    msgs = sipp_ok(harness.run_sipp(tmp_path, "register_too_brief.xml", orbit.sip_addr, user="1006",
                                    domain=orbit.domain, password=PW, keys={"expires": 10}))
    r423 = last_final(msgs, 423)
    assert r423.get("min-expires") is not None and int(r423.get("min-expires")) == 60, r423
    assert orbit.registrations(extension="1006") == []


def test_several_contacts_bounded_by_max_contacts(orbit, sipp, tmp_path):
    """Three Contacts in one REGISTER are all bound and all listed (with expires) in the 200.

    max_contacts = 3 bounds the bindings of one AOR. The contract names the bound, not
    the policy, so either is accepted for a REGISTER that would add a fourth contact:
      * reject: a final non-2xx response, the three bindings unchanged; or
      * evict the oldest: 200 listing exactly three contacts, the new one among them.
    In both cases the API must agree with the registrar and never list more than three.
    """
    orbit.create_extension("1007", PW)
    msgs = sipp_ok(harness.run_sipp(tmp_path, "register_multi.xml", orbit.sip_addr, user="1007",
                                    domain=orbit.domain, password=PW))
    ok = last_final(msgs, 200)
    contacts = ok.contacts()
    users = sorted(re.search(r"sip:([^@]+)@", c).group(1) for c in contacts)
    assert users == ["1007-a", "1007-b", "1007-c"], ok
    assert all(expires_param(c) for c in contacts), f"every Contact needs expires=:\n{ok}"
    before = sorted(r["contact"] for r in orbit.registrations(extension="1007"))
    assert len(before) == 3, before

    with SipClient(orbit.sip_addr) as c:
        first, final = c.register("1007", orbit.domain, PW,
                                  contacts=[f"<{c.contact_uri('1007-d')}>"])
    assert first is not None and first.status == 401, first
    assert final is not None, "no final response to the REGISTER exceeding max_contacts"
    after = sorted(r["contact"] for r in orbit.registrations(extension="1007"))
    if final.status >= 300:
        assert after == before, f"rejected, yet bindings changed: before={before} after={after}"
    else:
        assert final.status == 200, final
        listed = final.contacts()
        assert len(listed) == 3, f"200 must list exactly max_contacts=3 contacts:\n{final}"
        assert any("1007-d@" in x for x in listed), final
        assert not any("1007-a@" in x for x in listed), f"the oldest contact should be the one evicted:\n{final}"
        assert len(after) == 3 and any("1007-d@" in x for x in after), after


def test_contact_params_echoed_intact(orbit):
    """RFC 5626 contact (what PJSIP sends over TCP): a quoted +sip.instance holding <...>."""
    orbit.create_extension("1012", PW)
    inst = '"<urn:uuid:00000000-0000-0000-0000-0000a30f0000>"'
    with SipClient(orbit.sip_addr) as c:
        uri = c.contact_uri("1012")
        ct = f"<{uri}>;reg-id=1;+sip.instance={inst}"
        first, final = c.register("1012", orbit.domain, PW, contacts=[ct])
    assert final is not None and final.status == 200, final
    listed = final.contacts()
    assert len(listed) == 1, final
    assert listed[0].startswith(f"<{uri}>"), f"Contact URI mangled in the 200:\n{final}"
    assert f"+sip.instance={inst}" in listed[0], f"+sip.instance mangled in the 200:\n{final}"
    assert expires_param(listed[0]) is not None, final
    regs = orbit.registrations(extension="1012")
    assert len(regs) == 1, regs
    assert regs[0]["contact"] == uri or f"<{uri}>" in regs[0]["contact"], \
        f"API contact {regs[0]['contact']!r} is not the registered URI {uri!r}"


def test_register_over_tcp(orbit, sipp, tmp_path):
    orbit.create_extension("1008", PW)
    msgs = sipp_ok(harness.run_sipp(tmp_path, "register_auth.xml", orbit.sip_addr, user="1008",
                                    domain=orbit.domain, password=PW, transport="tcp"))
    assert [m.status for m in msgs] == [401, 200]
    regs = orbit.registrations(extension="1008")
    assert len(regs) == 1, regs
    assert str(regs[0]["transport"]).lower() == "tcp", regs


def test_register_over_ipv6(orbit, sipp, tmp_path):
    if not orbit.ipv6:
        harness.missing_tool("IPv6 loopback ::1 not available")
    orbit.create_extension("1009", PW)
    msgs = sipp_ok(harness.run_sipp(tmp_path, "register_auth.xml", orbit.sip_addr6, user="1009",
                                    domain=orbit.domain, password=PW))
    ok = last_final(msgs, 200)
    assert any("[::1]" in c for c in ok.contacts()), ok
    regs = orbit.registrations(extension="1009")
    assert len(regs) == 1, regs
    assert "[::1]" in regs[0]["contact"], regs
    assert "::1" in str(regs[0]["source"]), regs


def test_binding_expires(orbit_factory, sipp, tmp_path):
    """A binding registered with Expires: 2 (min_expires=1) is gone from the API after 3.5 s."""
    srv = orbit_factory(config={**MAIN_CONFIG, "registrar": {"min_expires": 1}}, name="orbit-expiry")
    srv.create_extension("1010", PW)
    sipp_ok(harness.run_sipp(tmp_path, "register_auth.xml", srv.sip_addr, user="1010",
                             domain=srv.domain, password=PW, keys={"expires": 2}))
    assert len(srv.registrations(extension="1010")) == 1
    time.sleep(3.5)
    assert srv.registrations(extension="1010") == []


def test_stale_nonce(orbit_factory, sipp, tmp_path):
    """nonce_ttl_s=1: answering an expired nonce gets 401 stale=true; the fresh nonce works."""
    srv = orbit_factory(config={**MAIN_CONFIG, "auth": {"algorithms": ["MD5", "SHA-256"], "nonce_ttl_s": 1}},
                        name="orbit-stale")
    srv.create_extension("1011", PW)
    msgs = sipp_ok(harness.run_sipp(tmp_path, "register_stale.xml", srv.sip_addr, user="1011",
                                    domain=srv.domain, password=PW))
    assert [m.status for m in msgs] == [401, 401, 200]
    stale = msgs[1]
    assert all(harness.parse_auth_params(v).get("stale", "").lower() == "true"
               for v in stale.get_all("www-authenticate")), stale
    first_nonce = harness.parse_auth_params(msgs[0].get("www-authenticate"))["nonce"]
    second_nonce = harness.parse_auth_params(stale.get("www-authenticate"))["nonce"]
    assert first_nonce != second_nonce, "stale challenge must carry a fresh nonce"
    assert len(srv.registrations(extension="1011")) == 1


def test_replayed_nonce_count_is_challenged_again(orbit):
    """RFC 7616 §3.4: the same nonce with the same nc (a captured REGISTER sent
    again as a new transaction) gets a fresh 401, not a 200; a higher nc passes."""
    orbit.create_extension("1013", PW)
    with SipClient(orbit.sip_addr) as c:
        ruri, aor = f"sip:{orbit.domain}", f"sip:1013@{orbit.domain}"
        hdrs = [("Contact", f"<{c.contact_uri('1013')}>"), ("Expires", "3600")]
        first = c.request("REGISTER", ruri, hdrs, to_uri=aor, from_uri=aor)
        assert first is not None and first.status == 401, first
        chal = harness.pick_challenge(first, "MD5")
        auth = harness.digest_authorization(chal, "REGISTER", ruri, "1013", PW, nc=1, cnonce="c0ffee")
        ok = c.request("REGISTER", ruri, hdrs + [("Authorization", auth)], to_uri=aor, from_uri=aor)
        assert ok is not None and ok.status == 200, ok
        # Same Authorization again, in a new transaction (new branch, higher CSeq).
        replay = c.request("REGISTER", ruri, hdrs + [("Authorization", auth)], to_uri=aor, from_uri=aor)
        assert replay is not None and replay.status == 401, replay
        assert replay.get("www-authenticate"), replay
        # The legitimate next use of the nonce counts up and is accepted.
        auth2 = harness.digest_authorization(chal, "REGISTER", ruri, "1013", PW, nc=2, cnonce="c0ffee")
        again = c.request("REGISTER", ruri, hdrs + [("Authorization", auth2)], to_uri=aor, from_uri=aor)
        assert again is not None and again.status == 200, again


def test_digest_for_another_uri_is_refused(orbit):
    """RFC 7616 §3.4.6: the digest `uri` must name the request's target."""
    orbit.create_extension("1014", PW)
    with SipClient(orbit.sip_addr) as c:
        ruri, aor = f"sip:{orbit.domain}", f"sip:1014@{orbit.domain}"
        hdrs = [("Contact", f"<{c.contact_uri('1014')}>"), ("Expires", "3600")]
        first = c.request("REGISTER", ruri, hdrs, to_uri=aor, from_uri=aor)
        assert first is not None and first.status == 401, first
        chal = harness.pick_challenge(first, "MD5")
        auth = harness.digest_authorization(chal, "REGISTER", "sip:other.example", "1014", PW)
        r = c.request("REGISTER", ruri, hdrs + [("Authorization", auth)], to_uri=aor, from_uri=aor)
        assert r is not None and r.status == 400, r
        assert "uri" in r.start_line.lower(), r
