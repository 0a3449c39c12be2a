"""Registrations survive a clean restart (SIGTERM flushes them to the store);
expired ones do not come back."""

import time

import harness

PW = "restart-pass-01"
CONFIG = {
    "auth": {"algorithms": ["MD5", "SHA-256"]},
    "guard": {"enabled": False},
    "registrar": {"min_expires": 1, "max_expires": 7200, "default_expires": 3600},
}


def register(srv, tmp_path, user, expires):
    res = harness.run_sipp(tmp_path, "register_auth.xml", srv.sip_addr, user=user, domain=srv.domain,
                           password=PW, keys={"expires": expires})
    assert res.returncode == 0, res.explain()
    return res


def restart(srv):
    rc = srv.stop()
    assert rc == 0, f"orbit did not exit cleanly on SIGTERM (exit code {rc}, None = had to be killed)"
    srv.start()


def test_binding_survives_restart(orbit_factory, sipp, tmp_path):
    srv = orbit_factory(config=CONFIG, name="orbit-restart")
    srv.create_extension("3001", PW)
    register(srv, tmp_path, "3001", 3600)
    before = srv.registrations(extension="3001")
    assert len(before) == 1, before

    restart(srv)

    after = srv.registrations(extension="3001")
    assert len(after) == 1, f"binding lost over restart: before={before} after={after}"
    assert after[0]["contact"] == before[0]["contact"], (before, after)
    assert after[0]["expires_at"] == before[0]["expires_at"], (before, after)
    # the extension is still there and still authenticates
    register(srv, tmp_path, "3001", 3600)


def test_expired_binding_gone_after_restart(orbit_factory, sipp, tmp_path):
    srv = orbit_factory(config=CONFIG, name="orbit-restart-expiry")
    srv.create_extension("3002", PW)
    srv.create_extension("3003", PW)
    t0 = time.monotonic()
    register(srv, tmp_path, "3002", 2)
    register(srv, tmp_path, "3003", 3600)
    assert len(srv.registrations(extension="3002")) == 1
    assert len(srv.registrations(extension="3003")) == 1

    rc = srv.stop()
    assert rc == 0, f"orbit did not exit cleanly on SIGTERM (exit code {rc})"
    left = 3.5 - (time.monotonic() - t0)
    if left > 0:
        time.sleep(left)
    srv.start()

    assert srv.registrations(extension="3002") == [], "expired binding came back after restart"
    assert len(srv.registrations(extension="3003")) == 1, "live binding lost over restart"


def test_sigterm_clean_exit_quickly(orbit_factory):
    srv = orbit_factory(name="orbit-sigterm")
    t0 = time.monotonic()
    rc = srv.stop()
    assert rc == 0, f"exit code {rc} on SIGTERM"
    assert time.monotonic() - t0 < 10
