"""Drive pj_phones.py (several pjsua2 phones in one subprocess) from a test.

    from phones import Phones, phones_factory   # phones_factory is a pytest fixture

    def test_x(phones_factory, tmp_path):
        pa = phones_factory("name=a,user=101,tone=440")          # register=no: peer to peer
        pb = phones_factory("name=b,user=102,tone=1000,auto_answer=200")
        call = pa.call("a", pb.uri("b"))
        pa.wait_state("a", "CONFIRMED", call=call)
        pb.wait_media("b", "ACTIVE")
        wav = pb.record("b", tmp_path / "b.wav", seconds=2)

Every wait is bounded (default 10 s) and a failed wait raises PhonesError
(an AssertionError) whose message holds what was awaited, the events seen, the
script's stderr and the tail of the PJSIP log. Events are queued as they arrive:
wait_event() returns the first not yet consumed event that matches and removes it
from the queue, so an event that came before the wait started is not lost.
`history` keeps every event ever seen.

Command/event protocol: see the docstring of pj_phones.py.
"""

from __future__ import annotations

import json
import random
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
PJ_PHONES = HERE / "pj_phones.py"

DEFAULT_TIMEOUT = 10.0
START_TIMEOUT = 20.0
# Ports for the phones' SIP transport; other suites use 41000-42999 and 5060, the PBX's RTP
# lives in 10000-20000, phones' RTP in 46000-46999 (pj_phones.py --rtp-port).
SIP_PORT_RANGE = (45000, 45999)


class PhonesError(AssertionError):
    pass


def _udp_port_free(port: int) -> bool:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


_used_ports: set[int] = set()


def pick_port() -> int:
    for _ in range(500):
        p = random.randint(*SIP_PORT_RANGE)
        if p not in _used_ports and _udp_port_free(p):
            _used_ports.add(p)
            return p
    raise RuntimeError(f"no free UDP port in {SIP_PORT_RANGE}")


def _phone_spec(p) -> str:
    if isinstance(p, str):
        return p
    return ",".join(f"{k}={v}" for k, v in p.items())


def _matches(ev: dict, etype, pred, match: dict) -> bool:
    if etype is not None:
        types = (etype,) if isinstance(etype, str) else tuple(etype)
        if ev.get("event") not in types:
            return False
    for k, v in match.items():
        if v is None:
            continue
        if ev.get(k) != v:
            return False
    if pred is not None and not pred(ev):
        return False
    return True


class Phones:
    """One pj_phones.py process (one pjsua2 Endpoint, several phones on one UDP port)."""

    def __init__(self, *phones, workdir, proxy: str | None = None, port: int | None = None,
                 name: str = "phones", max_seconds: float = 300.0, log_level: int = 5,
                 extra_args=(), start: bool = True):
        if not phones:
            raise ValueError("at least one phone definition")
        self.specs = [_phone_spec(p) for p in phones]
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proxy = proxy
        self.name = name
        self.fixed_port = port
        self.port = None
        self.max_seconds = max_seconds
        self.log_level = log_level
        self.extra_args = list(extra_args)
        self.log_path = self.workdir / f"{name}.pjsip.log"
        self.stderr_path = self.workdir / f"{name}.stderr"
        self.proc: subprocess.Popen | None = None
        self.info: dict = {}
        self._cv = threading.Condition()
        self._pending: list[dict] = []
        self._replies: dict = {}
        self.history: list[dict] = []
        self.noise: list[str] = []
        self._eof = False
        self._next_id = 0
        if start:
            self.start()

    # ------------------------------------------------------------------ process
    def _spawn(self, port):
        argv = [sys.executable, str(PJ_PHONES), "--port", str(port), "--log", str(self.log_path),
                "--log-level", str(self.log_level), "--max-seconds", str(self.max_seconds)]
        if self.proxy:
            argv += ["--proxy", self.proxy]
        for s in self.specs:
            argv += ["--phone", s]
        argv += self.extra_args
        self.argv = argv
        with open(self.log_path, "a") as fh:
            fh.write(f"===== {' '.join(argv)}\n")
        self._pending, self._replies, self._eof = [], {}, False
        stderr = open(self.stderr_path, "ab")
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=stderr, cwd=self.workdir)
        stderr.close()
        t = threading.Thread(target=self._reader, args=(self.proc,), daemon=True)
        t.start()

    def start(self, timeout=START_TIMEOUT):
        last = None
        for _attempt in range(8):
            port = self.fixed_port or pick_port()
            self._spawn(port)
            ev = self.wait_event(("ready", "fatal"), timeout=timeout)
            if ev["event"] == "ready":
                self.port = ev["port"]
                self.info = ev
                return self
            last = ev
            self._reap()
            if not ev.get("bind") or self.fixed_port:
                break
        raise PhonesError(f"pj_phones.py did not start: {last}\n{self._diag()}")

    def _reader(self, proc):
        for raw in proc.stdout:
            line = raw.decode("utf-8", "replace").strip()
            if not line:
                continue
            try:
                ev = json.loads(line)
                if not isinstance(ev, dict):
                    raise ValueError
            except ValueError:
                with self._cv:
                    self.noise.append(line)
                continue
            with self._cv:
                self.history.append(ev)
                if ev.get("event") == "reply":
                    self._replies[ev.get("id")] = ev
                else:
                    self._pending.append(ev)
                self._cv.notify_all()
        with self._cv:
            if proc is self.proc:
                self._eof = True
            self._cv.notify_all()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _reap(self):
        if self.proc is None:
            return
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)

    def close(self, timeout=8.0):
        """Ask the script to hang up and quit; kill it if it does not leave in time."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                self._write({"id": "quit", "cmd": "quit"})
            except (OSError, ValueError):
                pass
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        try:
            self.proc.stdin.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ------------------------------------------------------------------ diagnostics
    def pjsip_log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, max_chars=8000) -> str:
        return self.pjsip_log()[-max_chars:]

    def _diag(self, n_events=40, log_chars=8000) -> str:
        rc = None if self.proc is None else self.proc.poll()
        try:
            err = self.stderr_path.read_text(errors="replace")[-3000:]
        except OSError:
            err = ""
        evs = "\n".join(json.dumps(_short(e)) for e in self.history[-n_events:])
        noise = "\n".join(self.noise[-20:])
        return (f"--- phones {self.name!r} port={self.port} exit={rc} argv={' '.join(getattr(self, 'argv', []))}\n"
                f"--- last events\n{evs}\n--- non-JSON stdout\n{noise}\n--- stderr\n{err}\n"
                f"--- PJSIP log tail ({self.log_path})\n{self.log_tail(log_chars)}")

    def fail(self, msg):
        raise PhonesError(f"{msg}\n{self._diag()}")

    # ------------------------------------------------------------------ protocol
    def _write(self, obj):
        self.proc.stdin.write((json.dumps(obj) + "\n").encode())
        self.proc.stdin.flush()

    def send(self, cmd: str, timeout: float = DEFAULT_TIMEOUT, check: bool = True, **args) -> dict:
        """Send one command, wait for its reply; with check=True a failed reply raises."""
        if not self.alive():
            self.fail(f"cannot send {cmd!r}: pj_phones.py is not running")
        self._next_id += 1
        cid = self._next_id
        try:
            self._write({"id": cid, "cmd": cmd, **args})
        except (OSError, ValueError) as e:
            self.fail(f"cannot send {cmd!r}: {e}")
        deadline = time.monotonic() + timeout
        with self._cv:
            while cid not in self._replies:
                left = deadline - time.monotonic()
                if left <= 0 or self._eof:
                    break
                self._cv.wait(min(left, 0.5))
            reply = self._replies.pop(cid, None)
        if reply is None:
            self.fail(f"no reply to {cmd} {args} within {timeout}s")
        if check and not reply.get("ok"):
            self.fail(f"command {cmd} {args} failed: {reply.get('error')}")
        return reply

    def wait_event(self, type=None, pred=None, timeout: float = DEFAULT_TIMEOUT, **match) -> dict:  # noqa: A002
        """First queued event of `type` (str or tuple) whose fields equal `match` (None = any)
        and for which pred(ev) is true; it is removed from the queue."""
        deadline = time.monotonic() + timeout
        with self._cv:
            while True:
                for i, ev in enumerate(self._pending):
                    if _matches(ev, type, pred, match):
                        return self._pending.pop(i)
                left = deadline - time.monotonic()
                if left <= 0 or self._eof:
                    break
                self._cv.wait(min(left, 0.5))
        what = f"event {type!r}" + (f" with {match}" if match else "") + (" (+predicate)" if pred else "")
        why = "pj_phones.py exited" if self._eof else f"timeout {timeout}s"
        self.fail(f"waiting for {what}: {why}")

    def expect_no_event(self, type=None, pred=None, timeout: float = 1.0, **match):  # noqa: A002
        """Fails if a matching event shows up within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._cv:
            while True:
                for ev in self._pending:
                    if _matches(ev, type, pred, match):
                        self.fail(f"unexpected event {ev}")
                left = deadline - time.monotonic()
                if left <= 0 or self._eof:
                    return
                self._cv.wait(min(left, 0.2))

    def events(self, type=None, pred=None, **match) -> list[dict]:  # noqa: A002
        """Every event seen so far (consumed or not) that matches."""
        with self._cv:
            return [e for e in self.history if e.get("event") != "reply" and _matches(e, type, pred, match)]

    def drain(self):
        """Forget all queued events (history is kept)."""
        with self._cv:
            self._pending.clear()

    # ------------------------------------------------------------------ conveniences
    def uri(self, phone: str, host: str = "127.0.0.1") -> str:
        """Direct (peer-to-peer) URI of a phone of this process: sip:<user>@127.0.0.1:<port>."""
        user = self.info["phones"][phone]["user"]
        return f"sip:{user}@{host}:{self.port}"

    def register(self, phone, timeout=DEFAULT_TIMEOUT) -> dict:
        self.send("register", phone=phone)
        return self.wait_event("registered", phone=phone, timeout=timeout)

    def unregister(self, phone, timeout=DEFAULT_TIMEOUT) -> dict:
        self.send("unregister", phone=phone)
        return self.wait_event("unregistered", phone=phone, timeout=timeout)

    def call(self, phone, to, headers: dict | None = None) -> int:
        args = {"phone": phone, "to": to}
        if headers:
            args["headers"] = headers
        return self.send("call", **args)["call"]

    def answer(self, phone, code=200, call=None) -> int:
        return self.send("answer", phone=phone, code=code, call=call)["call"]

    def hangup(self, phone, call=None, code=None, all=False):  # noqa: A002
        return self.send("hangup", phone=phone, call=call, code=code, all=all)

    def hold(self, phone, call=None) -> int:
        return self.send("hold", phone=phone, call=call)["call"]

    def unhold(self, phone, call=None) -> int:
        return self.send("unhold", phone=phone, call=call)["call"]

    def xfer(self, phone, to, call=None) -> int:
        return self.send("xfer", phone=phone, to=to, call=call)["call"]

    def xfer_replaces(self, phone, call=None, other=None) -> dict:
        return self.send("xfer_replaces", phone=phone, call=call, other=other)

    def dtmf(self, phone, digits, call=None):
        return self.send("dtmf", phone=phone, digits=digits, call=call)

    def record_start(self, phone, path, call=None) -> dict:
        return self.send("record_start", phone=phone, path=str(path), call=call)

    def record_stop(self, phone, call=None) -> Path:
        """Stops and releases the recorder (the script pumps events so the WAV header is final)."""
        return Path(self.send("record_stop", phone=phone, call=call)["path"])

    def record(self, phone, path, seconds: float, call=None) -> Path:
        self.record_start(phone, path, call=call)
        time.sleep(seconds)
        return self.record_stop(phone, call=call)

    def state(self, phone=None, all=False) -> list[dict]:  # noqa: A002
        return self.send("state", phone=phone, all=all)["calls"]

    def wait_incoming(self, phone, timeout=DEFAULT_TIMEOUT) -> dict:
        return self.wait_event("incoming_call", phone=phone, timeout=timeout)

    def wait_state(self, phone, state, call=None, timeout=DEFAULT_TIMEOUT) -> dict:
        return self.wait_event("call_state", phone=phone, state=state, call=call, timeout=timeout)

    def wait_media(self, phone, status, call=None, timeout=DEFAULT_TIMEOUT) -> dict:
        return self.wait_event("media_state", phone=phone, status=status, call=call, timeout=timeout)


def _short(ev: dict) -> dict:
    """Event without its bulky fields, for failure messages."""
    out = dict(ev)
    for k in ("headers", "sdp", "trace"):
        if k in out:
            out[k] = "..."
    return out


@pytest.fixture
def phones_factory(tmp_path):
    """phones_factory(*phone_specs, proxy=None, name=None) -> started Phones; all closed at teardown."""
    made: list[Phones] = []

    def make(*phones, name=None, **kw):
        name = name or f"phones{len(made) + 1}"
        p = Phones(*phones, workdir=tmp_path / name, name=name, start=False, **kw)
        made.append(p)
        p.start()
        return p

    yield make
    for p in made:
        p.close()
