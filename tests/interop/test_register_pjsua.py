"""REGISTER with PJSIP (pjsua2) — a real softphone stack — against the real orbit.

Each phone runs in its own process (tests/interop/pj_register.py) which prints JSON
lines; pjsua2 is single-threaded there and leaves with os._exit().
"""

import json
import subprocess
import sys
import time

import pytest

import harness

PW = "pj-secret-2001"
PJ_UA = "PJSIP pjsua2-python (orbit-interop)"


class PjPhone:
    """A pj_register.py subprocess; bounded: every read has a deadline, the process is killed at close."""

    def __init__(self, srv, user, password, tmp_path, transport="udp", expires=300, hold=True):
        harness.require_pjsua2()
        self.log = tmp_path / f"pjsip-{user}-{harness.rand_token(4)}.log"
        argv = [sys.executable, str(harness.PJ_SCRIPT), "--server", f"127.0.0.1:{srv.sip_port}",
                "--domain", srv.domain, "--user", user, "--password", password,
                "--expires", str(expires), "--transport", transport, "--timeout", "10",
                "--user-agent", PJ_UA, "--log", str(self.log)]
        if hold:
            argv += ["--hold", "--hold-timeout", "60"]
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, bufsize=1)
        self.lines = []

    def next_event(self, timeout=20.0):
        import select
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r, _, _ = select.select([self.proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
            if not r:
                break
            line = self.proc.stdout.readline()
            if not line:
                break
            self.lines.append(line)
            if line.startswith("{"):
                return json.loads(line)
        raise AssertionError("no JSON event from pj_register.py; output:\n" + "".join(self.lines[-80:])
                             + "\n--- pjsip log tail\n" + self.pjsip_log()[-6000:])

    def send(self, cmd):
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()

    def pjsip_log(self):
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def close(self):
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)


def register_and_unregister(srv, user, tmp_path, transport="udp"):
    ph = PjPhone(srv, user, PW, tmp_path, transport=transport)
    try:
        ev = ph.next_event()
        assert ev["event"] == "registered", ev
        assert ev["code"] == 200 and ev["active"], f"PJSIP registration failed: {ev}\n{ph.pjsip_log()[-6000:]}"
        regs = srv.registrations(extension=user)
        assert len(regs) == 1, regs
        reg = regs[0]
        assert "PJSIP" in str(reg["user_agent"]), reg
        assert f"{user}@127.0.0.1" in reg["contact"], reg
        assert str(reg["transport"]).lower() == transport, reg
        ph.send("unregister")
        ev2 = ph.next_event()
        assert ev2["event"] == "unregistered", ev2
        assert ev2["code"] == 200 and not ev2["active"], f"unregister failed: {ev2}"
        assert srv.registrations(extension=user) == []
        return ev, ev2
    finally:
        ph.close()


def test_pjsua_registers_with_sha256_on_default_config(orbit_factory, pjsua2, tmp_path):
    """Default config: SHA-256 challenge offered first -> PJSIP answers with SHA-256."""
    srv = orbit_factory(name="orbit-pj-default")
    srv.create_extension("2001", PW)
    ev, _ = register_and_unregister(srv, "2001", tmp_path)
    chal_algs = [harness.parse_auth_params(c.split(":", 1)[1]).get("algorithm", "MD5").upper()
                 for c in ev["challenges"]]
    assert chal_algs and chal_algs[0] == "SHA-256", f"default config should challenge SHA-256 first: {ev['challenges']}"
    assert "MD5" in chal_algs, f"default config should also offer MD5: {ev['challenges']}"
    assert ev["auth_algorithms"] and ev["auth_algorithms"][0] == "SHA-256", ev["authorization"]


def test_pjsua_md5_only_and_tcp(orbit_factory, pjsua2, tmp_path):
    srv = orbit_factory(config={"auth": {"algorithms": ["MD5"]}}, name="orbit-pj-md5")
    srv.create_extension("2002", PW)
    ev, _ = register_and_unregister(srv, "2002", tmp_path)
    assert ev["auth_algorithms"][0] == "MD5", ev["authorization"]
    srv.create_extension("2003", PW)
    register_and_unregister(srv, "2003", tmp_path, transport="tcp")


def test_pjsua_wrong_password_403(orbit_factory, pjsua2, tmp_path):
    srv = orbit_factory(config={"guard": {"enabled": False}}, name="orbit-pj-badpw")
    srv.create_extension("2004", PW)
    ph = PjPhone(srv, "2004", "definitely-wrong", tmp_path, hold=False)
    try:
        ev = ph.next_event()
    finally:
        ph.close()
    assert ev["event"] == "registered", ev
    assert ev["code"] == 403 and not ev["active"], ev
    assert srv.registrations(extension="2004") == []
