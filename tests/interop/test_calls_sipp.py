"""Calls through Orbit's B2BUA driven by sipp: SIP edge cases of a call's life.

Every phone here is a sipp process. A callee registers first (register_auth.xml) from the
local port its UAS scenario then listens on: Orbit sends INVITEs to the REGISTER's source.
A caller authenticates its INVITE against the 407 (digest uri = the Request-URI, hence
-auth_uri <callee>@<domain>) and ACKs the 407 on the INVITE's branch.

The scenarios are tests/interop/sipp/call_*.xml; each names its keys. Callers that other
processes must find write "call-id to-tag from-tag" of their dialog to a file (sipp `exec`).
Every sipp run is bounded (-m 1, -timeout, -recv_timeout, and a wall-clock wait).
"""

from __future__ import annotations

import itertools
import random
import re
import subprocess
import threading
import time
import urllib.parse
from pathlib import Path

import pytest

import harness
from harness import SipMessage

CONFIG = {
    # sipp answers only the first challenge and only MD5.
    "auth": {"algorithms": ["MD5", "SHA-256"]},
    "guard": {"enabled": False},
    # sipp sends no RTP: a call must not end for lack of media.
    "calls": {"rtp_timeout_s": 0, "ring_timeout_s": 30},
}


@pytest.fixture(scope="module")
def orbit(module_factory):
    return module_factory(config=CONFIG, name="orbit-calls-sipp")


_next_number = itertools.count(3001)


def password(ext):
    return f"pw{ext}-sipp-secret"


def new_extensions(orbit, n):
    """n fresh extensions (unique across the module, so records and bindings never mix)."""
    out = []
    for _ in range(n):
        ext = str(next(_next_number))
        orbit.create_extension(ext, password(ext), display_name=f"Phone {ext}")
        out.append(ext)
    return out


def pick_port(pair=False) -> int:
    """A free loopback port for sipp, outside the ranges RTP relays use on this machine
    (Orbit's default 10000-20000; benchmarks use 20000-40000). pair=True: an even port
    with port+2 free as well (sipp's -mp binds both)."""
    for _ in range(500):
        port = random.randrange(50000, 60000, 2 if pair else 1)
        ports = (port, port + 2) if pair else (port,)
        if any(p in harness._handed_out for p in ports):
            continue
        if all(harness._port_free(p, ("127.0.0.1",)) for p in ports):
            harness._handed_out.update(ports)
            return port
    raise RuntimeError("no free port found for sipp")


def register(orbit, tmp_path, ext) -> int:
    """Register `ext` with sipp from a free local port; the callee's UAS then listens there."""
    port = pick_port()
    res = harness.run_sipp(tmp_path, "register_auth.xml", orbit.sip_addr, user=ext, domain=orbit.domain,
                           password=password(ext), local_port=port, tag=f"reg-{ext}")
    assert res.returncode == 0, "REGISTER failed:\n" + res.explain()
    return port


# --------------------------------------------------------------------------- sipp in the background

_SEP = re.compile(r"^-{20,} (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)\n(?:UDP|TCP) message (sent|received) [^\n]*:\n\n",
                  re.M)


class Logged:
    """One message from sipp's -trace_msg file: when, which way, what."""

    def __init__(self, t: float, way: str, msg: SipMessage):
        self.t, self.way, self.msg = t, way, msg

    def __repr__(self):
        return f"{self.way} @{self.t:.3f}: {self.msg.start_line}"


def _parse_log(text: str) -> list[Logged]:
    out = []
    marks = list(_SEP.finditer(text))
    for i, m in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
        raw = text[m.end():end].rstrip("\n")
        head, _, body = raw.replace("\r\n", "\n").partition("\n\n")
        data = head.replace("\n", "\r\n") + "\r\n\r\n" + body.replace("\n", "\r\n")
        stamp = time.mktime(time.strptime(m.group(1).split(".")[0], "%Y-%m-%d %H:%M:%S"))
        stamp += float("0." + m.group(1).split(".")[1])
        out.append(Logged(stamp, m.group(2), SipMessage(data.encode())))
    return out


class Sipp:
    """One bounded sipp process (-m 1) against Orbit, run in the background."""

    def __init__(self, tmp_path: Path, scenario: str, orbit, *, name: str, user: str | None = None,
                 callee: str | None = None, keys: dict | None = None, port: int | None = None,
                 timeout_s: int = 20, recv_timeout_ms: int = 10000, extra=()):
        self.sipp = harness.sipp_path()
        self.name = name
        self.work = Path(tmp_path) / f"{name}-{harness.rand_token(5)}"
        self.work.mkdir(parents=True)
        self.port = port or pick_port()
        self.media_port = pick_port(pair=True)
        self.timeout_s = timeout_s
        self.msg_file = self.work / "messages.log"
        self.err_file = self.work / "errors.log"
        argv = [self.sipp, "-sf", str(harness.SIPP_DIR / scenario),
                "-i", "127.0.0.1", "-p", str(self.port), "-mp", str(self.media_port),
                "-t", "u1", "-m", "1", "-l", "1", "-r", "1",
                "-timeout", f"{timeout_s}s", "-timeout_error",
                "-recv_timeout", str(recv_timeout_ms), "-max_recv_loops", "1000",
                "-buff_size", "4194304", "-nostdin",
                "-trace_msg", "-message_file", str(self.msg_file),
                "-trace_err", "-error_file", str(self.err_file)]
        if user is not None:
            inf = self.work / "users.csv"
            inf.write_text("SEQUENTIAL\n"
                           f"{user};{orbit.domain};[authentication username={user} password={password(user)}]\n")
            argv += ["-inf", str(inf)]
        if callee is not None:
            # the digest uri must be the INVITE's Request-URI
            argv += ["-auth_uri", f"{callee}@{orbit.domain}"]
        keys = dict(keys or {})
        if callee is not None:
            keys.setdefault("callee", callee)
        for k, v in keys.items():
            argv += ["-key", k, str(v)]
        argv += list(extra)
        argv.append(f"127.0.0.1:{orbit.sip_port}")
        self.argv = argv
        self.proc: subprocess.Popen | None = None
        self.stdout = ""
        self.returncode = None

    def start(self):
        self.proc = subprocess.Popen(self.argv, cwd=self.work, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        return self

    def wait(self):
        if self.proc is None or self.returncode is not None:
            return self
        try:
            out, _ = self.proc.communicate(timeout=self.timeout_s + 15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
            out = (out or b"") + b"\n[killed: sipp exceeded its time bound]"
        self.stdout = out.decode("utf-8", "replace")
        self.returncode = self.proc.returncode
        return self

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()

    # --- what happened
    def log(self) -> list[Logged]:
        try:
            return _parse_log(self.msg_file.read_text(errors="replace"))
        except OSError:
            return []

    def received(self) -> list[Logged]:
        return [m for m in self.log() if m.way == "received"]

    def sent(self) -> list[Logged]:
        return [m for m in self.log() if m.way == "sent"]

    def explain(self) -> str:
        errors = self.err_file.read_text(errors="replace") if self.err_file.exists() else ""
        msgs = self.msg_file.read_text(errors="replace") if self.msg_file.exists() else ""
        return (f"[{self.name}] sipp {' '.join(map(str, self.argv))}\nexit={self.returncode}\n"
                f"--- stdout (tail)\n{self.stdout[-2000:]}\n--- errors\n{errors[-4000:]}\n"
                f"--- messages (tail)\n{msgs[-10000:]}")

    def assert_ok(self):
        assert self.returncode == 0, f"sipp scenario {self.name} failed:\n" + self.explain()
        return self


@pytest.fixture
def sipps(tmp_path, orbit, sipp):
    """Factory of background sipp runs; every one still running at the end is killed."""
    runs: list[Sipp] = []

    def make(scenario, **kw):
        s = Sipp(tmp_path, scenario, orbit, **kw)
        runs.append(s)
        return s

    yield make
    for s in runs:
        s.kill()
    # Shown by pytest only when the test failed: what every sipp saw.
    for s in runs:
        s.wait()
        print(s.explain())


def finish(*runs: Sipp):
    """Wait for every run; then fail with the logs of all of them if one failed."""
    for r in runs:
        r.wait()
    bad = [r for r in runs if r.returncode != 0]
    assert not bad, "sipp failed:\n" + "\n\n".join(r.explain() for r in runs)


def wait_file(path: Path, runs=(), timeout_s=10.0) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return path.read_text().strip()
        for r in runs:
            if r.proc is not None and r.proc.poll() is not None:
                r.wait()
                pytest.fail(f"{r.name} ended before writing {path.name}:\n" + r.explain())
        time.sleep(0.05)
    pytest.fail(f"{path} not written within {timeout_s}s:\n" + "\n".join(r.explain() for r in runs))


# --------------------------------------------------------------------------- API helpers


def active_calls(orbit):
    r = orbit.api.get(f"/api/v1/tenants/{orbit.domain}/calls")
    assert r.status == 200, r
    return r.json["calls"]


def call_records(orbit, **match):
    r = orbit.api.get(f"/api/v1/tenants/{orbit.domain}/call-records")
    assert r.status == 200, r
    recs = r.json["call_records"]
    return [c for c in recs if all(c.get(k) == v for k, v in match.items())]


def wait_records(orbit, n=1, timeout_s=5.0, **match):
    """Records are written by a background writer: poll until n of them match."""
    deadline = time.monotonic() + timeout_s
    while True:
        recs = call_records(orbit, **match)
        if len(recs) >= n or time.monotonic() > deadline:
            return recs
        time.sleep(0.1)


def wait_no_calls(orbit, *numbers, timeout_s=3.0):
    deadline = time.monotonic() + timeout_s
    while True:
        left = [c for c in active_calls(orbit)
                if not numbers or c["caller"] in numbers or c["callee"] in numbers]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


class CallsWatcher:
    """Polls the active calls endpoint in a thread while sipp runs; keeps what it saw."""

    def __init__(self, orbit, caller, period_s=0.05):
        self.orbit, self.caller, self.period_s = orbit, caller, period_s
        self.seen: list[dict] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            try:
                for c in active_calls(self.orbit):
                    if c["caller"] == self.caller:
                        self.seen.append(c)
            except AssertionError:
                pass
            self._stop.wait(self.period_s)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=5)

    def states(self) -> list[str]:
        """The distinct states in the order first seen, consecutive repeats folded."""
        out = []
        for c in self.seen:
            if not out or out[-1] != c["state"]:
                out.append(c["state"])
        return out


# --------------------------------------------------------------------------- SIP helpers


def tag_of(value: str | None) -> str | None:
    m = re.search(r";\s*tag=([^;>\s]+)", value or "")
    return m.group(1) if m else None


def cseq_of(msg: SipMessage) -> tuple[int, str]:
    n, method = (msg.get("cseq") or "0 ?").split()
    return int(n), method.upper()


def requests(logged, method) -> list[Logged]:
    return [m for m in logged if m.msg.status is None and m.msg.start_line.split(" ")[0] == method]


def responses(logged, status=None, method=None, cseq=None) -> list[Logged]:
    out = []
    for m in logged:
        if m.msg.status is None:
            continue
        n, meth = cseq_of(m.msg)
        if status is not None and m.msg.status != status:
            continue
        if method is not None and meth != method:
            continue
        if cseq is not None and n != cseq:
            continue
        out.append(m)
    return out


def sdp_connection(msg: SipMessage) -> str | None:
    m = re.search(r"^c=IN IP[46] (\S+)", msg.body.decode(errors="replace"), re.M)
    return m.group(1) if m else None


def sdp_audio_port(msg: SipMessage) -> int | None:
    m = re.search(r"^m=audio (\d+) ", msg.body.decode(errors="replace"), re.M)
    return int(m.group(1)) if m else None


def sdp_direction(msg: SipMessage) -> str:
    """The audio stream's direction (media level over session level; none means sendrecv)."""
    text = msg.body.decode(errors="replace")
    session, _, media = text.partition("m=audio")
    for part in (media, session):
        m = re.search(r"^a=(sendrecv|sendonly|recvonly|inactive)\s*$", part, re.M)
        if m:
            return m.group(1)
    return "sendrecv"


def the_one(items, what):
    assert len(items) == 1, f"expected exactly one {what}, got {len(items)}: {items}"
    return items[0]


# =========================================================================== tests


def test_basic_call_identities_and_media_are_orbits_own(orbit, sipps, tmp_path):
    """Caller -> Orbit -> callee: each leg is Orbit's own dialog (Call-ID, tags, Contact), the
    SDP points at Orbit's relay, P-Asserted-Identity names the other party, and the caller's
    BYE reaches the callee inside the callee's dialog."""
    a, b = new_extensions(orbit, 2)
    port_b = register(orbit, tmp_path, b)
    uas = sipps("call_uas.xml", name=f"uas-{b}", port=port_b, keys={"user": b, "ring_ms": 200}).start()
    uac = sipps("call_uac.xml", name=f"uac-{a}", user=a, callee=b,
                keys={"hold_ms": 1000, "dialog_file": tmp_path / "dlg-a"}).start()
    finish(uac, uas)

    uac_invite = requests(uac.sent(), "INVITE")[-1].msg
    uas_invite = the_one(requests(uas.received(), "INVITE"), "INVITE at the callee").msg
    uas_200 = responses(uas.sent(), 200, "INVITE")[0].msg
    # Orbit's own dialog towards the callee, at its registered Contact
    assert uas_invite.start_line.startswith(f"INVITE sip:{b}@127.0.0.1:{port_b}"), \
        f"the INVITE does not go to the registered Contact:\n{uas_invite}"
    assert uas_invite.get("call-id") != uac_invite.get("call-id"), uas_invite
    assert tag_of(uas_invite.get("from")) and tag_of(uas_invite.get("from")) != tag_of(uac_invite.get("from")), \
        f"the callee's INVITE reuses the caller's From tag:\n{uas_invite}"
    assert f"@127.0.0.1:{orbit.sip_port}" in (uas_invite.get("contact") or ""), \
        f"Contact is not Orbit's:\n{uas_invite}"
    assert f":{uac.port}" not in (uas_invite.get("contact") or ""), f"the caller's Contact leaked:\n{uas_invite}"
    # media anchored at Orbit
    assert sdp_connection(uas_invite) == "127.0.0.1", uas_invite
    port_at_b = sdp_audio_port(uas_invite)
    assert port_at_b and port_at_b not in (uac.media_port, uas.media_port), \
        f"SDP port {port_at_b} is not Orbit's (caller media {uac.media_port}):\n{uas_invite}"
    # who calls
    pai = uas_invite.get("p-asserted-identity") or ""
    assert f"sip:{a}@{orbit.domain}" in pai, f"P-Asserted-Identity does not name the caller:\n{uas_invite}"

    # the caller's view of the answer
    ok = responses(uac.received(), 200, "INVITE", cseq=2)[0].msg
    ringing = responses(uac.received(), 180, "INVITE", cseq=2)
    assert ringing, "the caller got no 180 while the callee rang"
    # RFC 3261 8.2.6.2: one To tag for every response to the INVITE
    assert tag_of(ringing[0].msg.get("to")) == tag_of(ok.get("to")), (ringing[0].msg, ok)
    assert f"sip:{b}@{orbit.domain}" in (ok.get("p-asserted-identity") or ""), \
        f"the 200 lacks P-Asserted-Identity of the callee:\n{ok}"
    assert ok.get("call-id") == uac_invite.get("call-id")
    assert tag_of(ok.get("to")) and tag_of(ok.get("to")) != tag_of(uas_200.get("to")), \
        f"the caller sees the callee's To tag instead of Orbit's:\n{ok}"
    assert f"@127.0.0.1:{orbit.sip_port}" in (ok.get("contact") or ""), ok
    assert sdp_connection(ok) == "127.0.0.1", ok
    port_at_a = sdp_audio_port(ok)
    assert port_at_a and port_at_a not in (uas.media_port, port_at_b), ok

    # BYE from the caller arrives in the callee's dialog
    bye = the_one(requests(uas.received(), "BYE"), "BYE at the callee").msg
    assert bye.get("call-id") == uas_invite.get("call-id"), bye
    assert tag_of(bye.get("from")) == tag_of(uas_invite.get("from")), bye
    assert tag_of(bye.get("to")) == tag_of(uas_200.get("to")), bye
    assert responses(uac.received(), 200, "BYE"), "the caller's BYE got no 200"
    assert wait_no_calls(orbit, a) == []


def test_callee_hangs_up_bye_reaches_caller(orbit, sipps, tmp_path):
    a, b = new_extensions(orbit, 2)
    port_b = register(orbit, tmp_path, b)
    uas = sipps("call_uas_bye.xml", name=f"uas-{b}", port=port_b,
                keys={"user": b, "ring_ms": 100, "hold_ms": 800}).start()
    uac = sipps("call_uac_wait_bye.xml", name=f"uac-{a}", user=a, callee=b,
                keys={"dialog_file": tmp_path / "dlg-a"}).start()
    finish(uac, uas)

    ok = responses(uac.received(), 200, "INVITE", cseq=2)[0].msg
    invite = requests(uac.sent(), "INVITE")[-1].msg
    bye = the_one(requests(uac.received(), "BYE"), "BYE at the caller").msg
    assert bye.get("call-id") == invite.get("call-id"), bye
    assert tag_of(bye.get("from")) == tag_of(ok.get("to")), f"BYE From tag is not Orbit's tag of this dialog:\n{bye}"
    assert tag_of(bye.get("to")) == tag_of(invite.get("from")), bye
    assert cseq_of(bye)[1] == "BYE"
    assert responses(uas.received(), 200, "BYE"), "the callee's BYE got no 200"
    assert wait_no_calls(orbit, a) == []
    recs = wait_records(orbit, caller=a)
    rec = the_one(recs, "call record")
    assert (rec["callee"], rec["answered_by"], rec["end_reason"]) == (b, b, "callee_hangup"), rec


def test_reinvite_hold_forms_resume_overlap_and_out_of_order(orbit, sipps, tmp_path):
    """re-INVITEs from a phone: sendonly -> recvonly, inactive -> inactive, c=0.0.0.0 answered,
    sendrecv -> sendrecv; two back to back both answered; a lower CSeq afterwards -> 500.
    (Orbit answers re-INVITEs at once, so true glare needs Orbit's own re-INVITE: see the
    attended-transfer test.)"""
    a, b = new_extensions(orbit, 2)
    port_b = register(orbit, tmp_path, b)
    uas = sipps("call_uas.xml", name=f"uas-{b}", port=port_b, keys={"user": b, "ring_ms": 100}).start()
    uac = sipps("call_uac_reinvite.xml", name=f"uac-{a}", user=a, callee=b,
                keys={"dialog_file": tmp_path / "dlg-a", "step_ms": 600}).start()
    with CallsWatcher(orbit, a) as watch:
        finish(uac, uas)

    got = uac.received()

    def answer(cseq, status=200):
        r = responses(got, status, "INVITE", cseq=cseq)
        assert r, f"no {status} for re-INVITE CSeq {cseq}; received: {got}"
        return r[0].msg

    assert sdp_direction(answer(3)) == "recvonly", f"answer to a=sendonly:\n{answer(3)}"
    assert sdp_direction(answer(4)) == "inactive", f"answer to a=inactive:\n{answer(4)}"
    held = answer(5)
    assert sdp_audio_port(held), f"the c=0.0.0.0 hold was answered without an audio stream:\n{held}"
    assert sdp_direction(answer(6)) == "sendrecv", f"answer to the resume:\n{answer(6)}"
    for cseq in (7, 8):
        assert sdp_audio_port(answer(cseq)), answer(cseq)
    # CSeq 6 after 8: out of order (RFC 3261 12.2.2)
    late = responses(got, method="INVITE", cseq=6)
    assert [m.msg.status for m in late if m.msg.status >= 200] == [200, 500], late
    assert responses(got, 200, "BYE")
    states = watch.states()
    assert "held" in states, f"the active call never showed as held: {states}"
    assert states.index("held") < len(states) - 1 and "answered" in states[states.index("held"):], \
        f"the call did not show as answered again after the resume: {states}"
    assert wait_no_calls(orbit, a) == []


def attended_transfer(orbit, sipps, tmp_path, moved_scenario):
    """a calls c (consultation), then a calls b and REFERs b's call to c with Replaces naming
    the consultation: Orbit moves c into the call with b by a re-INVITE to c, which runs
    `moved_scenario`. Returns (a's main leg, a's consultation leg, c, b, extensions)."""
    a, b, c = new_extensions(orbit, 3)
    port_b = register(orbit, tmp_path, b)
    port_c = register(orbit, tmp_path, c)
    bound = {"timeout_s": 30, "recv_timeout_ms": 20000}
    uas_c = sipps(moved_scenario, name=f"uas-moved-{c}", port=port_c, keys={"user": c, "hold_ms": 800},
                  **bound).start()
    dlg = tmp_path / "dlg-consult"
    uac_consult = sipps("call_uac_wait_bye.xml", name=f"uac-consult-{a}", user=a, callee=c,
                        keys={"dialog_file": dlg}, **bound).start()
    call_id, to_tag, from_tag = wait_file(dlg, [uac_consult, uas_c]).split()
    replaces = urllib.parse.quote(f"{call_id};to-tag={to_tag};from-tag={from_tag}", safe="")
    uas_b = sipps("call_uas.xml", name=f"uas-{b}", port=port_b, keys={"user": b, "ring_ms": 100},
                  **bound).start()
    uac_main = sipps("call_uac_refer.xml", name=f"uac-refer-{a}", user=a, callee=b,
                     keys={"hold_ms": 500, "target": c, "replaces": replaces}, **bound).start()
    finish(uac_main, uac_consult, uas_c, uas_b)
    return uac_main, uac_consult, uas_c, uas_b, (a, b, c)


def assert_transferred(orbit, uac_main, uac_consult, uas_b, exts):
    a, b, c = exts
    notifies = requests(uac_main.received(), "NOTIFY")
    assert notifies and notifies[-1].msg.body.startswith(b"SIP/2.0 200"), \
        f"final NOTIFY of the REFER: {[n.msg.body for n in notifies]}"
    assert requests(uac_consult.received(), "BYE"), "the consultation leg was not released"
    assert requests(uac_main.received(), "BYE"), "the transferor was not released"
    assert requests(uas_b.received(), "BYE"), "b was not hung up after c left"
    assert wait_no_calls(orbit, a) == []
    consult = the_one(wait_records(orbit, caller=a, callee=c), "record of the consultation call")
    assert consult["end_reason"] == "transferred", consult
    main = the_one(wait_records(orbit, caller=a, callee=b), "record of the transferred call")
    assert any("attended" in t for t in main["transfers"]), main


def test_reinvite_glare_during_attended_transfer_gets_491(orbit, sipps, tmp_path):
    """Orbit re-INVITEs the party it moves in an attended transfer; that phone's own re-INVITE
    crossing it must get 491 (RFC 3261 14.1); the transfer still completes."""
    uac_main, uac_consult, uas_c, uas_b, exts = attended_transfer(orbit, sipps, tmp_path, "call_uas_glare.xml")
    got_c = uas_c.received()
    invites = requests(got_c, "INVITE")
    assert len(invites) == 2, f"the moved phone should see the call's INVITE and Orbit's re-INVITE: {got_c}"
    reinvite = invites[1].msg
    assert reinvite.get("call-id") == invites[0].msg.get("call-id"), "re-INVITE outside the phone's dialog"
    pending = responses(got_c, method="INVITE", cseq=10)
    assert [m.msg.status for m in pending if m.msg.status >= 200] == [491], \
        f"the phone's re-INVITE crossing Orbit's should get exactly one 491: {pending}"
    assert_transferred(orbit, uac_main, uac_consult, uas_b, exts)


def test_reinvite_answered_491_is_sent_again(orbit, sipps, tmp_path):
    """The other half of glare (RFC 3261 14.1): the moved phone answers Orbit's re-INVITE with
    491. Orbit generated that dialog's Call-ID, so it SHOULD send the re-INVITE again after
    2.1 to 4 s, and the transfer then completes."""
    uac_main, uac_consult, uas_c, uas_b, exts = attended_transfer(orbit, sipps, tmp_path,
                                                                  "call_uas_reinvite_491.xml")
    got_c = uas_c.received()
    invites = requests(got_c, "INVITE")
    assert len(invites) >= 2, got_c
    first = invites[1]
    refused = the_one(responses(uas_c.sent(), 491, "INVITE"), "491 from the moved phone")
    ack = [m for m in requests(got_c, "ACK") if m.t >= refused.t]
    assert ack and ack[0].msg.get("via") == first.msg.get("via"), \
        f"Orbit must ACK the 491 on its re-INVITE's branch: {ack}"
    assert len(invites) == 3, \
        f"Orbit did not send its re-INVITE again after the 491 (RFC 3261 14.1); the phone saw: {got_c}"
    retry = invites[2]
    delay = retry.t - refused.t
    assert 2.0 <= delay <= 4.3, f"re-INVITE sent again {delay:.2f} s after the 491; the Call-ID owner waits 2.1-4 s"
    assert cseq_of(retry.msg)[0] > cseq_of(first.msg)[0], retry.msg
    assert_transferred(orbit, uac_main, uac_consult, uas_b, exts)


def test_invite_with_replaces_of_unknown_dialog_gets_481(orbit, sipps, tmp_path):
    a, = new_extensions(orbit, 1)
    uac = sipps("call_uac_reject.xml", name=f"uac-replaces-{a}", user=a, callee=a,
                keys={"fromuser": a, "codecs": 0, "codec_name": "PCMU",
                      "extra_hdr": "Replaces: no-such-call@nowhere.test;to-tag=aaa;from-tag=bbb"}).start()
    finish(uac)
    final = [m.msg for m in responses(uac.received()) if m.msg.status >= 200 and m.msg.status != 407]
    assert [r.status for r in final] == [481], final


def test_invite_with_early_only_replaces_of_confirmed_call_gets_486(orbit, sipps, tmp_path):
    a, b, c = new_extensions(orbit, 3)
    port_b = register(orbit, tmp_path, b)
    uas = sipps("call_uas.xml", name=f"uas-{b}", port=port_b, keys={"user": b, "ring_ms": 100}).start()
    dlg = tmp_path / "dlg-a"
    uac = sipps("call_uac.xml", name=f"uac-{a}", user=a, callee=b,
                keys={"hold_ms": 3000, "dialog_file": dlg}).start()
    call_id, to_tag, from_tag = wait_file(dlg, [uac, uas]).split()
    thief = sipps("call_uac_reject.xml", name=f"uac-replaces-{c}", user=c, callee=b,
                  keys={"fromuser": c, "codecs": 0, "codec_name": "PCMU",
                        "extra_hdr": f"Replaces: {call_id};to-tag={to_tag};from-tag={from_tag};early-only"}
                  ).start()
    thief.wait()
    final = [m.msg for m in responses(thief.received()) if m.msg.status >= 200 and m.msg.status != 407]
    finish(uac, uas, thief)
    assert [r.status for r in final] == [486], final
    # the confirmed call went on untouched and ended normally
    assert not requests(uac.received(), "BYE")
    rec = the_one(wait_records(orbit, caller=a), "call record")
    assert rec["end_reason"] == "caller_hangup", rec


def test_bye_during_unacked_reinvite_ends_call_cleanly(orbit, sipps, tmp_path):
    a, b = new_extensions(orbit, 2)
    port_b = register(orbit, tmp_path, b)
    uas = sipps("call_uas.xml", name=f"uas-{b}", port=port_b, keys={"user": b, "ring_ms": 100}).start()
    uac = sipps("call_uac_bye_in_reinvite.xml", name=f"uac-{a}", user=a, callee=b,
                keys={"dialog_file": tmp_path / "dlg-a", "hold_ms": 1500}).start()
    finish(uac, uas)
    got = uac.received()
    assert responses(got, 200, "INVITE", cseq=3), got
    assert responses(got, 200, "BYE"), f"the BYE sent before the ACK got no 200: {got}"
    assert not requests(got, "BYE"), f"Orbit sent a BYE to a phone that hung up itself: {got}"
    assert requests(uas.received(), "BYE"), "the callee was not hung up"
    assert responses(uas.sent(), 200, "BYE")
    assert wait_no_calls(orbit, a, b) == [], active_calls(orbit)
    rec = the_one(wait_records(orbit, caller=a), "call record")
    assert rec["end_reason"] == "caller_hangup", rec


def test_retransmitted_invite_does_not_make_a_second_call(orbit, sipps, tmp_path):
    a, b = new_extensions(orbit, 2)
    port_b = register(orbit, tmp_path, b)
    uas = sipps("call_uas.xml", name=f"uas-{b}", port=port_b, keys={"user": b, "ring_ms": 1200}).start()
    uac = sipps("call_uac_retrans.xml", name=f"uac-{a}", user=a, callee=b,
                keys={"dialog_file": tmp_path / "dlg-a", "hold_ms": 500}, extra=["-nr"]).start()
    finish(uac, uas)
    sent = [m.msg for m in requests(uac.sent(), "INVITE") if cseq_of(m.msg)[0] == 2]
    assert len(sent) == 2 and sent[0].get("via") == sent[1].get("via"), \
        f"the scenario should send the INVITE twice on one branch: {sent}"
    assert len(requests(uas.received(), "INVITE")) == 1, f"the callee saw more than one INVITE: {uas.received()}"
    assert wait_no_calls(orbit, a) == []
    the_one(wait_records(orbit, caller=a), "call record")


def test_unacked_200_is_retransmitted_then_the_call_ends(orbit, sipps, tmp_path):
    """RFC 3261 13.3.1.4: a UAS resends its 2xx (T1, doubling up to T2) until the ACK; after
    64*T1 without one it ends the dialog with a BYE, and Orbit then hangs up the other leg."""
    a, b = new_extensions(orbit, 2)
    port_b = register(orbit, tmp_path, b)
    uas = sipps("call_uas.xml", name=f"uas-{b}", port=port_b, keys={"user": b, "ring_ms": 100},
                timeout_s=60, recv_timeout_ms=50000).start()
    uac = sipps("call_uac_no_ack.xml", name=f"uac-{a}", user=a, callee=b,
                timeout_s=60, recv_timeout_ms=50000).start()
    finish(uac, uas)
    got = uac.received()
    oks = responses(got, 200, "INVITE", cseq=2)
    t0 = oks[0].t
    # T1 = 0.5 s: resent at ~0.5 and ~1.5 s (some slack for a loaded machine)
    early = [m for m in oks[1:] if m.t - t0 <= 2.5]
    assert len(early) >= 2, f"expected >= 2 retransmissions of the 200 within ~2 s, got {[round(m.t - t0, 2) for m in oks]}"
    assert 0.3 <= early[0].t - t0 <= 1.5, f"first retransmission should come after ~T1: {early[0].t - t0:.2f}s"
    assert all(m.msg.raw == oks[0].msg.raw for m in oks), "a retransmitted 200 differs from the first"
    bye = the_one(requests(got, "BYE"), "BYE at the caller")
    assert 28 <= bye.t - t0 <= 42, f"BYE {bye.t - t0:.1f}s after the 200 (expected ~64*T1 = 32 s)"
    assert not [m for m in oks if m.t > bye.t + 0.1], "the 200 was still resent after the BYE"
    assert requests(uas.received(), "BYE"), "the callee was not hung up"
    rec = the_one(wait_records(orbit, caller=a), "call record")
    assert rec["end_reason"] == "failed", rec


def test_callee_retransmitted_200_is_acked_again(orbit, sipps, tmp_path):
    a, b = new_extensions(orbit, 2)
    port_b = register(orbit, tmp_path, b)
    uas = sipps("call_uas_resend_200.xml", name=f"uas-{b}", port=port_b, keys={"user": b, "ring_ms": 100},
                extra=["-nr"]).start()
    uac = sipps("call_uac.xml", name=f"uac-{a}", user=a, callee=b,
                keys={"hold_ms": 1500, "dialog_file": tmp_path / "dlg-a"}).start()
    finish(uac, uas)
    got = uas.received()
    acks = requests(got, "ACK")
    oks = responses(uas.sent(), 200, "INVITE")
    assert len(oks) == 2, oks
    assert len(acks) >= 2, f"Orbit did not ACK the re-sent 200: {got}"
    assert acks[1].t >= oks[1].t, "second ACK came before the 200 was re-sent"
    assert acks[1].msg.get("cseq") == acks[0].msg.get("cseq") and cseq_of(acks[1].msg)[1] == "ACK"
    assert requests(got, "BYE"), "the call did not go on to the caller's BYE"


def test_cancel_while_ringing(orbit, sipps, tmp_path):
    a, b = new_extensions(orbit, 2)
    port_b = register(orbit, tmp_path, b)
    uas = sipps("call_uas_ring.xml", name=f"uas-{b}", port=port_b, keys={"user": b}).start()
    uac = sipps("call_uac_cancel.xml", name=f"uac-{a}", user=a, callee=b, keys={"ring_ms": 500}).start()
    finish(uac, uas)
    at_b = uas.received()
    invite = the_one(requests(at_b, "INVITE"), "INVITE at the callee").msg
    cancel = the_one(requests(at_b, "CANCEL"), "CANCEL at the callee").msg
    assert cancel.get("call-id") == invite.get("call-id")
    assert cancel.get("via") == invite.get("via"), f"CANCEL must reuse the INVITE's Via/branch:\n{cancel}"
    assert cseq_of(cancel) == (cseq_of(invite)[0], "CANCEL")
    assert requests(at_b, "ACK"), "Orbit did not ACK the callee's 487"
    got = uac.received()
    assert responses(got, 200, "CANCEL"), got
    terminated = responses(got, 487, "INVITE", cseq=2)
    assert terminated, got
    ringing = responses(got, 180, "INVITE", cseq=2)
    # RFC 3261 8.2.6.2: the 487 carries the To tag of the 180 (same transaction)
    assert tag_of(terminated[0].msg.get("to")) == tag_of(ringing[0].msg.get("to")), (ringing[0].msg, terminated[0].msg)
    acks = [m for m in requests(uac.sent(), "ACK") if cseq_of(m.msg)[0] == 2]
    assert acks and acks[0].msg.get("via") == requests(uac.sent(), "INVITE")[-1].msg.get("via"), \
        "the scenario must ACK the 487 on the INVITE's branch"
    assert wait_no_calls(orbit, a) == []
    rec = the_one(wait_records(orbit, caller=a), "call record")
    assert rec["end_reason"] == "cancelled" and rec["answered_by"] is None, rec


@pytest.mark.parametrize("case", ["unknown_number", "from_mismatch", "no_sdp", "g729_only"])
def test_refused_invites(orbit, sipps, tmp_path, case):
    a, b = new_extensions(orbit, 2)
    keys = {"fromuser": a, "codecs": 0, "codec_name": "PCMU", "extra_hdr": "X-Orbit-Test: refused"}
    scenario, callee, want = "call_uac_reject.xml", b, 488
    if case == "unknown_number":
        callee, want = "39999", 404
    elif case == "from_mismatch":
        keys["fromuser"], want = b, 403
    elif case == "no_sdp":
        scenario = "call_uac_reject_nosdp.xml"
        keys = {"fromuser": a, "extra_hdr": "X-Orbit-Test: refused"}
    else:
        keys.update(codecs=18, codec_name="G729")
    uac = sipps(scenario, name=f"uac-{case}", user=a, callee=callee, keys=keys).start()
    finish(uac)
    final = [m.msg for m in responses(uac.received()) if m.msg.status >= 200 and m.msg.status != 407]
    assert [r.status for r in final] == [want], final
    if want == 488:
        assert final[0].get("warning"), f"488 without a Warning:\n{final[0]}"
    assert active_calls(orbit) == [] or all(c["caller"] != a for c in active_calls(orbit))


def test_call_records_and_active_calls(orbit, sipps, tmp_path):
    a, b = new_extensions(orbit, 2)
    port_b = register(orbit, tmp_path, b)
    uas = sipps("call_uas.xml", name=f"uas-{b}", port=port_b, keys={"user": b, "ring_ms": 1000}).start()
    uac = sipps("call_uac.xml", name=f"uac-{a}", user=a, callee=b,
                keys={"hold_ms": 1500, "dialog_file": tmp_path / "dlg-a"}).start()
    with CallsWatcher(orbit, a) as watch:
        finish(uac, uas)
    states = watch.states()
    assert states[:2] == ["ringing", "answered"], f"active call states seen: {states}"
    up = [c for c in watch.seen if c["state"] == "answered"][-1]
    assert (up["caller"], up["callee"], up["answered_by"]) == (a, b, b), up
    assert up["answered_at"] and up["answered_at"] >= up["started_at"], up
    assert wait_no_calls(orbit, a) == []
    rec = the_one(wait_records(orbit, caller=a), "call record")
    assert (rec["callee"], rec["answered_by"], rec["end_reason"]) == (b, b, "caller_hangup"), rec
    assert rec["id"] == up["id"], (rec, up)
    assert rec["caller_name"] == f"Phone {a}", rec
    assert rec["started_at"] <= rec["answered_at"] <= rec["ended_at"], rec
    assert rec["answered_at"] - rec["started_at"] >= 800, f"answered after ringing ~1 s: {rec}"
    assert rec["ended_at"] - rec["answered_at"] >= 1200, f"talked ~1.5 s: {rec}"
