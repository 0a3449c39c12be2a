"""Shared helpers for Orbit's interop/acceptance tests.

Everything here talks to a REAL `orbit` process over loopback (127.0.0.1 / ::1):
starting/stopping the server, a tiny JSON client for the REST API, a minimal
SIP client (UDP/TCP, IPv4/IPv6, digest MD5/SHA-256) for hand-built messages,
and a bounded runner for sipp scenarios.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import signal
import socket
import string
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
SIPP_DIR = HERE / "sipp"
PJ_SCRIPT = HERE / "pj_register.py"

IN_CI = bool(os.environ.get("CI"))

# Every server and client wait in this suite is bounded by these.
SERVER_START_TIMEOUT_S = 30.0
SERVER_STOP_TIMEOUT_S = 15.0
SIP_TIMEOUT_S = 5.0
SIPP_TIMEOUT_S = 30.0


def missing_tool(msg: str):
    """A missing tool FAILS under CI (env CI set) and skips locally."""
    if IN_CI:
        pytest.fail(msg, pytrace=False)
    pytest.skip(msg)


# --------------------------------------------------------------------------- binary


def orbit_bin_path() -> Path:
    env = os.environ.get("ORBIT_BIN")
    if env:
        return Path(env)
    return REPO_ROOT / "target" / "debug" / "orbit"


_SEEN_BINARY = False


def wait_for_binary(timeout_s: float | None = None) -> Path:
    """The binary may be rebuilt while tests run (cargo replaces the file),
    so it can vanish briefly. Once seen in this run, wait up to 120 s for it
    to come back; otherwise 5 s.
    """
    global _SEEN_BINARY
    path = orbit_bin_path()
    if timeout_s is None:
        timeout_s = 120.0 if _SEEN_BINARY else 5.0
    deadline = time.monotonic() + timeout_s
    while True:
        if path.is_file() and os.access(path, os.X_OK):
            _SEEN_BINARY = True
            return path
        if time.monotonic() > deadline:
            missing_tool(f"orbit binary not found at {path} (set ORBIT_BIN or build it)")
        time.sleep(1)


def sipp_path() -> str:
    p = shutil.which("sipp") or ("/usr/bin/sipp" if os.path.exists("/usr/bin/sipp") else None)
    if not p:
        missing_tool("sipp not installed (Debian package sip-tester)")
    return p


_PJ_OK: bool | None = None


def require_pjsua2():
    global _PJ_OK
    if _PJ_OK is None:
        r = subprocess.run([sys.executable, "-c", "import pjsua2"], capture_output=True, timeout=60)
        _PJ_OK = r.returncode == 0
    if not _PJ_OK:
        missing_tool(f"pjsua2 (pip package pjsua2-python) not importable by {sys.executable}")


# --------------------------------------------------------------------------- ports


def ipv6_available() -> bool:
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        s.bind(("::1", 0))
        s.close()
        return True
    except OSError:
        return False


def _port_free(port: int, hosts) -> bool:
    socks = []
    try:
        for host in hosts:
            fam = socket.AF_INET6 if ":" in host else socket.AF_INET
            for typ in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                s = socket.socket(fam, typ)
                socks.append(s)
                if fam == socket.AF_INET6:
                    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                s.bind((host, port))
        return True
    except OSError:
        return False
    finally:
        for s in socks:
            s.close()


_handed_out: set[int] = set()


def free_port(hosts=("127.0.0.1",)) -> int:
    """A port free for both UDP and TCP on every host given (picked at runtime)."""
    for _ in range(200):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        if port in _handed_out:
            continue
        if _port_free(port, hosts):
            _handed_out.add(port)
            return port
    raise RuntimeError("no free port found")


# --------------------------------------------------------------------------- config


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"unsupported TOML value {v!r}")


def to_toml(cfg: dict) -> str:
    lines = []
    for k, v in cfg.items():
        if not isinstance(v, dict):
            lines.append(f"{k} = {_toml_value(v)}")
    for k, v in cfg.items():
        if isinstance(v, dict):
            lines.append("")
            lines.append(f"[{k}]")
            for kk, vv in v.items():
                lines.append(f"{kk} = {_toml_value(vv)}")
    return "\n".join(lines) + "\n"


def deep_merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in (over or {}).items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


# --------------------------------------------------------------------------- REST API


class ApiResponse:
    def __init__(self, method, path, status, headers, raw: bytes):
        self.method = method
        self.path = path
        self.status = status
        self.headers = headers
        self.raw = raw
        self.text = raw.decode("utf-8", "replace")
        try:
            self.json = json.loads(self.text) if self.text.strip() else None
        except ValueError:
            self.json = None

    def __repr__(self):
        return f"<{self.method} {self.path} -> {self.status} {self.text[:500]!r}>"


class Api:
    def __init__(self, base_url: str, token: str | None):
        self.base_url = base_url
        self.token = token
        self.log: list[ApiResponse] = []  # every response seen (password-leak checks)

    def with_token(self, token):
        a = Api(self.base_url, token)
        a.log = self.log
        return a

    def request(self, method, path, body=None, token="__default__", raw_body: bytes | None = None,
                timeout=10.0) -> ApiResponse:
        tok = self.token if token == "__default__" else token
        data = None
        headers = {"Accept": "application/json"}
        if raw_body is not None:
            data = raw_body
            headers["Content-Type"] = "application/json"
        elif body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if tok:
            headers["Authorization"] = f"Bearer {tok}"
        req = urllib.request.Request(self.base_url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                resp = ApiResponse(method, path, r.status, dict(r.headers), r.read())
        except urllib.error.HTTPError as e:
            resp = ApiResponse(method, path, e.code, dict(e.headers or {}), e.read() or b"")
        self.log.append(resp)
        return resp

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body, **kw)

    def patch(self, path, body=None, **kw):
        return self.request("PATCH", path, body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)


def assert_error(resp: ApiResponse, status, field: str | None = "__any__"):
    """Check the documented error shape {"error":{"code","message","field"}}."""
    assert resp.status == status, f"expected HTTP {status}, got {resp!r}"
    assert isinstance(resp.json, dict) and isinstance(resp.json.get("error"), dict), \
        f"error body not of shape {{'error':{{...}}}}: {resp!r}"
    err = resp.json["error"]
    assert isinstance(err.get("code"), str) and err["code"], f"error.code missing: {resp!r}"
    assert isinstance(err.get("message"), str) and err["message"], f"error.message missing: {resp!r}"
    assert "field" in err, f"error.field key missing (may be null): {resp!r}"
    if field != "__any__":
        assert err["field"] == field, f"expected error.field={field!r}: {resp!r}"
    return err


# --------------------------------------------------------------------------- server


ACTIVE_SERVERS: list["OrbitServer"] = []


class OrbitServer:
    """One real `orbit serve` process on free loopback ports with its own data dir."""

    DEFAULT_CONFIG = {"bootstrap_domain": "orbit.local"}

    def __init__(self, workdir: Path, config: dict | None = None, ipv6: bool = False,
                 name: str = "orbit"):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.data_dir = self.workdir / "data"
        self.data_dir.mkdir(exist_ok=True)
        self.config = deep_merge(self.DEFAULT_CONFIG, config or {})
        self.config_path = self.workdir / "orbit.toml"
        self.config_path.write_text(to_toml(self.config))
        self.ipv6 = ipv6 and ipv6_available()
        hosts = ("127.0.0.1", "::1") if self.ipv6 else ("127.0.0.1",)
        self.sip_port = free_port(hosts)
        self.http_port = free_port(("127.0.0.1",))
        self.admin_token = "adm-" + "".join(random.choices(string.ascii_letters + string.digits, k=32))
        self.domain = self.config.get("bootstrap_domain", "orbit.local")
        self.proc: subprocess.Popen | None = None
        self.log_path = self.workdir / f"{name}.log"
        self.starts = 0
        self.expected_exit = False
        self.api = Api(f"http://127.0.0.1:{self.http_port}", self.admin_token)

    # --- addresses
    @property
    def sip_addr(self):
        return ("127.0.0.1", self.sip_port)

    @property
    def sip_addr6(self):
        return ("::1", self.sip_port)

    @property
    def http_base(self):
        return f"http://127.0.0.1:{self.http_port}"

    def argv(self):
        args = [str(wait_for_binary()), "serve",
                "--data-dir", str(self.data_dir),
                "--sip-listen", f"127.0.0.1:{self.sip_port}"]
        if self.ipv6:
            args += ["--sip-listen", f"[::1]:{self.sip_port}"]
        args += ["--http-listen", f"127.0.0.1:{self.http_port}",
                 "--config", str(self.config_path)]
        return args

    # --- lifecycle
    def start(self):
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.expected_exit = False
        env = dict(os.environ)
        env["ORBIT_ADMIN_TOKEN"] = self.admin_token
        env.setdefault("RUST_LOG", "info")
        env.setdefault("RUST_BACKTRACE", "1")
        env.setdefault("NO_COLOR", "1")
        self.starts += 1
        log = open(self.log_path, "ab")
        log.write(f"\n===== start #{self.starts}: {' '.join(self.argv())}\n".encode())
        log.flush()
        last_err = None
        for _attempt in range(10):  # binary may be replaced by a rebuild (ETXTBSY/ENOENT)
            try:
                self.proc = subprocess.Popen(self.argv(), stdout=log, stderr=subprocess.STDOUT,
                                             stdin=subprocess.DEVNULL, env=env, cwd=self.workdir)
                break
            except OSError as e:
                last_err = e
                time.sleep(2)
        else:
            raise RuntimeError(f"could not exec orbit: {last_err}")
        log.close()
        if self not in ACTIVE_SERVERS:
            ACTIVE_SERVERS.append(self)
        # A free port picked at random can be taken by another process
        # before orbit binds it; on a first start, pick new ports and retry.
        retries = getattr(self, "_bind_retries", 0)
        if self.starts == 1 and retries < 3 and self._bind_lost(timeout_s=SERVER_START_TIMEOUT_S):
            self._bind_retries = retries + 1
            hosts = ("127.0.0.1", "::1") if self.ipv6 else ("127.0.0.1",)
            self.sip_port = free_port(hosts)
            self.http_port = free_port(("127.0.0.1",))
            self.api = Api(f"http://127.0.0.1:{self.http_port}", self.admin_token)
            self.starts = 0
            return self.start()
        self.wait_ready()
        return self

    def _bind_lost(self, timeout_s) -> bool:
        """True when the process exited because a port was taken."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return "Address already in use" in self.log_tail(4000)
            try:
                with urllib.request.urlopen(self.http_base + "/healthz", timeout=2) as r:
                    if r.status == 200:
                        return False
            except Exception:  # noqa: BLE001 - not up yet
                pass
            time.sleep(0.1)
        return False

    def wait_ready(self, timeout_s=SERVER_START_TIMEOUT_S):
        deadline = time.monotonic() + timeout_s
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"orbit exited early with code {self.proc.returncode}; log:\n{self.log_tail()}",
                            pytrace=False)
            try:
                with urllib.request.urlopen(self.http_base + "/healthz", timeout=2) as r:
                    body = r.read()
                    if r.status == 200:
                        return
                    last = (r.status, body)
            except Exception as e:  # noqa: BLE001 - not up yet
                last = e
            time.sleep(0.1)
        pytest.fail(f"orbit not ready after {timeout_s}s (last: {last!r}); log:\n{self.log_tail()}",
                    pytrace=False)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout_s=SERVER_STOP_TIMEOUT_S) -> int | None:
        """SIGTERM and wait; returns exit code (None if it had to be killed)."""
        self.expected_exit = True
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            return None

    def close(self):
        self.stop()
        if self in ACTIVE_SERVERS:
            ACTIVE_SERVERS.remove(self)

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, max_chars=20000) -> str:
        t = self.log_text()
        return t[-max_chars:]

    # --- convenience
    def healthz(self):
        with urllib.request.urlopen(self.http_base + "/healthz", timeout=5) as r:
            return r.status, json.loads(r.read().decode() or "null")

    def create_extension(self, number, password, display_name=None, tenant=None):
        tenant = tenant or self.domain
        r = self.api.post(f"/api/v1/tenants/{tenant}/extensions",
                          {"number": number, "password": password,
                           "display_name": display_name or f"Ext {number}"})
        assert r.status == 201, f"creating extension {number}: {r!r}"
        return r.json

    def registrations(self, tenant=None, extension=None):
        tenant = tenant or self.domain
        r = self.api.get(f"/api/v1/tenants/{tenant}/registrations")
        assert r.status == 200, f"listing registrations: {r!r}"
        items = r.json["items"]
        if extension is not None:
            items = [i for i in items if str(i.get("extension")) == str(extension)]
        return items


# --------------------------------------------------------------------------- SIP client

COMPACT = {"i": "call-id", "m": "contact", "v": "via", "f": "from", "t": "to", "l": "content-length",
           "k": "supported", "c": "content-type", "e": "content-encoding", "s": "subject",
           "o": "event", "u": "allow-events", "r": "refer-to", "b": "referred-by", "x": "session-expires"}


class SipMessage:
    def __init__(self, raw: bytes):
        self.raw = raw
        head, _, body = raw.partition(b"\r\n\r\n")
        self.body = body
        lines = head.decode("utf-8", "replace").split("\r\n")
        self.start_line = lines[0]
        self.headers: list[tuple[str, str]] = []
        for ln in lines[1:]:
            if ln[:1] in (" ", "\t") and self.headers:  # folded line
                n, v = self.headers[-1]
                self.headers[-1] = (n, v + " " + ln.strip())
                continue
            name, _, value = ln.partition(":")
            name = name.strip().lower()
            name = COMPACT.get(name, name)
            self.headers.append((name, value.strip()))
        m = re.match(r"^SIP/2\.0 (\d{3}) ?(.*)$", self.start_line)
        self.status = int(m.group(1)) if m else None
        self.reason = m.group(2) if m else None

    def get(self, name) -> str | None:
        vals = self.get_all(name)
        return vals[0] if vals else None

    def get_all(self, name) -> list[str]:
        name = COMPACT.get(name.lower(), name.lower())
        return [v for n, v in self.headers if n == name]

    def contacts(self) -> list[str]:
        """Individual Contact values (comma-separated lists split, honouring <> and quotes)."""
        out = []
        for v in self.get_all("contact"):
            out.extend(split_header_list(v))
        return out

    def __repr__(self):
        return self.raw.decode("utf-8", "replace")


def split_header_list(v: str) -> list[str]:
    parts, cur, depth, quote = [], "", 0, False
    for ch in v:
        if ch == '"':
            quote = not quote
        elif not quote and ch == "<":
            depth += 1
        elif not quote and ch == ">":
            depth -= 1
        if ch == "," and depth == 0 and not quote:
            parts.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur.strip())
    return parts


def parse_auth_params(value: str) -> dict:
    """Parse 'Digest realm="x", nonce="y", algorithm=MD5, qop="auth", stale=true'."""
    scheme, _, rest = value.strip().partition(" ")
    params = {"_scheme": scheme}
    for m in re.finditer(r'([A-Za-z0-9_-]+)\s*=\s*("((?:[^"\\]|\\.)*)"|[^,\s]+)', rest):
        key = m.group(1).lower()
        params[key] = m.group(3) if m.group(3) is not None else m.group(2)
    return params


def _h(alg: str, data: str) -> str:
    alg = alg.upper()
    if alg in ("MD5", ""):
        return hashlib.md5(data.encode()).hexdigest()
    if alg == "SHA-256":
        return hashlib.sha256(data.encode()).hexdigest()
    if alg == "SHA-512-256":
        return hashlib.new("sha512_256", data.encode()).hexdigest()
    raise ValueError(alg)


def digest_authorization(chal: dict, method: str, uri: str, user: str, password: str,
                         nc: int = 1, cnonce: str | None = None) -> str:
    alg = chal.get("algorithm", "MD5")
    realm = chal["realm"]
    nonce = chal["nonce"]
    cnonce = cnonce or "".join(random.choices("0123456789abcdef", k=16))
    ha1 = _h(alg, f"{user}:{realm}:{password}")
    ha2 = _h(alg, f"{method}:{uri}")
    qop = chal.get("qop")
    parts = [f'username="{user}"', f'realm="{realm}"', f'nonce="{nonce}"', f'uri="{uri}"',
             f"algorithm={alg}"]
    if qop:
        q = "auth" if "auth" in [x.strip() for x in qop.split(",")] else qop
        ncs = f"{nc:08x}"
        resp = _h(alg, f"{ha1}:{nonce}:{ncs}:{cnonce}:{q}:{ha2}")
        parts += [f"qop={q}", f"nc={ncs}", f'cnonce="{cnonce}"']
    else:
        resp = _h(alg, f"{ha1}:{nonce}:{ha2}")
    parts.append(f'response="{resp}"')
    if "opaque" in chal:
        parts.append(f'opaque="{chal["opaque"]}"')
    return "Digest " + ", ".join(parts)


def rand_token(n=10):
    return "".join(random.choices(string.ascii_lowercase + string.digits, k=n))


class SipClient:
    """A deliberately simple SIP UAC for hand-built requests (no retransmissions)."""

    def __init__(self, server_addr, transport="udp", local_host=None, timeout=SIP_TIMEOUT_S):
        self.server_addr = server_addr
        self.transport = transport.lower()
        self.timeout = timeout
        host = server_addr[0]
        self.family = socket.AF_INET6 if ":" in host else socket.AF_INET
        local_host = local_host or ("::1" if self.family == socket.AF_INET6 else "127.0.0.1")
        if self.transport == "udp":
            self.sock = socket.socket(self.family, socket.SOCK_DGRAM)
            self.sock.bind((local_host, 0))
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        else:
            self.sock = socket.socket(self.family, socket.SOCK_STREAM)
            self.sock.bind((local_host, 0))
            self.sock.settimeout(timeout)
            self.sock.connect(server_addr)
        self.local = self.sock.getsockname()[:2]
        self._buf = b""
        self.call_id = rand_token(16) + "@interop"
        self.from_tag = rand_token(8)
        self.cseq = 0

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    @property
    def local_hostport(self):
        h, p = self.local
        return f"[{h}]:{p}" if ":" in h else f"{h}:{p}"

    def via(self, branch=None):
        return (f"SIP/2.0/{self.transport.upper()} {self.local_hostport};"
                f"branch=z9hG4bK{branch or rand_token(12)};rport")

    # -- raw I/O
    def send_raw(self, data: bytes):
        if self.transport == "udp":
            self.sock.sendto(data, self.server_addr)
        else:
            self.sock.sendall(data)

    def recv_msg(self, timeout=None) -> SipMessage | None:
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        if self.transport == "udp":
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.sock.settimeout(left)
                try:
                    data, _ = self.sock.recvfrom(70000)
                except socket.timeout:
                    return None
                if data.strip():  # ignore keep-alive CRLFs
                    return SipMessage(data)
        while True:
            msg = self._take_stream_msg()
            if msg is not None:
                return msg
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return None
            except OSError:
                chunk = b""
            if not chunk:
                msg = self._take_stream_msg()
                return msg
            self._buf += chunk

    def _take_stream_msg(self):
        self._buf = self._buf.lstrip(b"\r\n")
        idx = self._buf.find(b"\r\n\r\n")
        if idx < 0:
            return None
        head = self._buf[:idx].decode("utf-8", "replace")
        m = re.search(r"(?im)^(?:content-length|l)\s*:\s*(\d+)", head)
        clen = int(m.group(1)) if m else 0
        end = idx + 4 + clen
        if len(self._buf) < end:
            return None
        raw, self._buf = self._buf[:end], self._buf[end:]
        return SipMessage(raw)

    def final_response(self, timeout=None) -> SipMessage | None:
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            msg = self.recv_msg(left)
            if msg is None or (msg.status is not None and msg.status >= 200):
                return msg

    def exchange_raw(self, data: bytes, timeout=None) -> SipMessage | None:
        self.send_raw(data)
        return self.final_response(timeout)

    # -- requests
    def build(self, method, ruri, headers=None, body=b"", to_uri=None, from_uri=None,
              cseq=None, call_id=None, max_forwards=70, extra_lines=()):
        if cseq is None:
            self.cseq += 1
            cseq = self.cseq
        from_uri = from_uri or to_uri or ruri
        to_uri = to_uri or ruri
        lines = [f"{method} {ruri} SIP/2.0",
                 f"Via: {self.via()}"]
        if max_forwards is not None:
            lines.append(f"Max-Forwards: {max_forwards}")
        lines += [f"From: <{from_uri}>;tag={self.from_tag}",
                  f"To: <{to_uri}>",
                  f"Call-ID: {call_id or self.call_id}",
                  f"CSeq: {cseq} {method}"]
        for k, v in (headers or []):
            lines.append(f"{k}: {v}")
        lines += list(extra_lines)
        lines.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body

    def request(self, method, ruri, headers=None, body=b"", timeout=None, **kw) -> SipMessage | None:
        return self.exchange_raw(self.build(method, ruri, headers, body, **kw), timeout)

    def contact_uri(self, user, suffix=""):
        return f"sip:{user}{suffix}@{self.local_hostport};transport={self.transport}"

    def register(self, user, domain, password, expires=3600, contacts=None, prefer_alg=None,
                 timeout=None, extra_headers=()):
        """REGISTER, answer a 401 with digest. Returns (first_response, final_response)."""
        ruri = f"sip:{domain}"
        aor = f"sip:{user}@{domain}"
        if contacts is None:
            contacts = [f"<{self.contact_uri(user)}>"]
        hdrs = [("Contact", c) for c in contacts]
        if expires is not None:
            hdrs.append(("Expires", str(expires)))
        hdrs.append(("User-Agent", "orbit-interop-pyclient"))
        hdrs += list(extra_headers)
        first = self.request("REGISTER", ruri, hdrs, to_uri=aor, from_uri=aor, timeout=timeout)
        if first is None or first.status != 401:
            return first, first
        chal = pick_challenge(first, prefer_alg)
        auth = digest_authorization(chal, "REGISTER", ruri, user, password)
        final = self.request("REGISTER", ruri, hdrs + [("Authorization", auth)], to_uri=aor,
                             from_uri=aor, timeout=timeout)
        return first, final


def pick_challenge(resp: SipMessage, prefer_alg=None) -> dict:
    chals = [parse_auth_params(v) for v in resp.get_all("www-authenticate")]
    assert chals, f"401 without WWW-Authenticate:\n{resp}"
    if prefer_alg:
        for c in chals:
            if c.get("algorithm", "MD5").upper() == prefer_alg.upper():
                return c
    return chals[0]


# --------------------------------------------------------------------------- sipp


class SippResult:
    def __init__(self, argv, proc, stdout, message_file: Path, error_file: Path):
        self.argv = argv
        self.returncode = proc.returncode if proc else None
        self.stdout = stdout
        self.message_file = message_file
        self.error_file = error_file

    @property
    def messages(self) -> str:
        try:
            return self.message_file.read_text(errors="replace")
        except OSError:
            return ""

    @property
    def errors(self) -> str:
        try:
            return self.error_file.read_text(errors="replace")
        except OSError:
            return ""

    def received(self) -> list[SipMessage]:
        """SIP messages sipp logged as received, in order."""
        out = []
        blocks = re.split(r"\n-{20,}[^\n]*\n", "\n" + self.messages)
        for b in blocks:
            m = re.match(r"\s*(UDP|TCP|TLS|SCTP) message received \[\d+\] bytes :\n\n", b)
            if not m:
                continue
            msg = b[m.end():]
            text = msg.rstrip("\n")
            head, sep, body = text.partition("\n\n")
            raw = head.replace("\r\n", "\n").replace("\n", "\r\n") + "\r\n\r\n" + body
            out.append(SipMessage(raw.encode()))
        return out

    def explain(self) -> str:
        return (f"sipp {' '.join(map(str, self.argv))}\nexit={self.returncode}\n"
                f"--- stdout (tail)\n{self.stdout[-3000:]}\n--- errors\n{self.errors[-4000:]}\n"
                f"--- messages\n{self.messages[-8000:]}")


def run_sipp(tmp_path: Path, scenario: str, server_addr, *, user, domain, password,
             keys: dict | None = None, transport="udp", timeout_s=SIPP_TIMEOUT_S,
             local_port=None, tag="sipp") -> SippResult:
    """Run one bounded sipp call (-m 1) of tests/interop/sipp/<scenario> against the server."""
    sipp = sipp_path()
    host, port = server_addr
    v6 = ":" in host
    work = Path(tmp_path) / f"{tag}-{rand_token(6)}"
    work.mkdir(parents=True)
    inf = work / "users.csv"
    inf.write_text("SEQUENTIAL\n"
                   f"{user};{domain};[authentication username={user} password={password}]\n")
    msg_file = work / "messages.log"
    err_file = work / "errors.log"
    local_ip = "::1" if v6 else "127.0.0.1"
    if local_port is None:
        local_port = free_port((local_ip,))
    remote = f"[{host}]:{port}" if v6 else f"{host}:{port}"
    keys = dict(keys or {})
    keys.setdefault("expires", "3600")
    keys.setdefault("cuser", user)
    argv = [sipp, "-sf", str(SIPP_DIR / scenario), "-inf", str(inf),
            "-i", local_ip, "-p", str(local_port),
            "-t", "t1" if transport == "tcp" else "u1",
            "-m", "1", "-l", "1", "-r", "1",
            "-timeout", f"{int(timeout_s)}s", "-timeout_error",
            "-recv_timeout", "8000", "-max_recv_loops", "1000",
            "-buff_size", "4194304", "-nostdin",
            # digest uri = the Request-URI (sip:<domain>), not sipp's default remote ip:port
            "-auth_uri", domain,
            "-trace_msg", "-message_file", str(msg_file),
            "-trace_err", "-error_file", str(err_file)]
    for k, v in keys.items():
        argv += ["-key", k, str(v)]
    argv.append(remote)
    try:
        proc = subprocess.run(argv, cwd=work, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=timeout_s + 15)
        out = proc.stdout.decode("utf-8", "replace")
    except subprocess.TimeoutExpired as e:
        proc = None
        out = (e.stdout or b"").decode("utf-8", "replace") + "\n[killed: sipp exceeded time bound]"
    res = SippResult(argv, proc, out, msg_file, err_file)
    (work / "stdout.txt").write_text(out)
    return res
