#!/usr/bin/env python3
"""Helper for bench/park/run.sh (python3 standard library only).

Sub-commands:
  gen        write the numbers and the registration injection file
  wait-http  poll an HTTP URL until it answers 200
  seed       create the tenant and the extensions over Orbit's REST API
  register   register the parker extensions from the parker port (sipp)
  cycles     part 1: park-and-retrieve cycles at a rate
  many       part 2: N calls parked at once with music (CPU, RSS, pacing)
  recall     part 3: N parked calls recalled after recall_time_s
  notify     part 4: park -> NOTIFY latency to group watchers
  fanout     part 5: park -> last NOTIFY with thousands of phones (fanout.py)
  quiet      wait until other processes leave the CPUs alone
  report     the result tables of a run directory
"""

import argparse
import hashlib
import http.client
import json
import os
import random
import re
import select
import signal
import socket
import statistics
import struct
import subprocess
import sys
import time


CLK_TCK = os.sysconf("SC_CLK_TCK")
PF_KTHREAD = 0x00200000
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ HTTP
class Api:
    def __init__(self, hostport, token, domain):
        self.host, port = hostport.rsplit(":", 1)
        self.port = int(port)
        self.token = token
        self.domain = domain
        self.conn = None

    def req(self, method, path, body=None, timeout=60):
        hdrs = {"Authorization": f"Bearer {self.token}"}
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        for attempt in range(3):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
                self.conn.request(method, path, body=data, headers=hdrs)
                r = self.conn.getresponse()
                raw = r.read()
                try:
                    js = json.loads(raw) if raw else None
                except ValueError:
                    js = None
                return r.status, js, raw
            except (http.client.HTTPException, OSError):
                if self.conn:
                    self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise
                time.sleep(0.2)

    def t(self, rest):
        return f"/api/v1/tenants/{self.domain}{rest}"

    def parked(self):
        st, js, _ = self.req("GET", self.t("/parked-calls"))
        return js.get("items", []) if st == 200 and js else None

    def calls(self):
        st, js, _ = self.req("GET", self.t("/calls"))
        return js.get("calls", []) if st == 200 and js else None

    def park_settings(self, recall_time_s, max_attempts=3, max_per_ext=10):
        body = {"enabled": True, "park_code": "*68", "group_park_code": "*58",
                "retrieve_code": "*88", "notify_parker": False,
                "max_parked_per_extension": max_per_ext,
                "recall": {"recall_time_s": recall_time_s, "recall_to": "PARKER_ONLY",
                           "max_recall_attempts": max_attempts, "retry_interval_s": 10,
                           "final_destination": None}}
        st, js, raw = self.req("PUT", self.t("/call-park"), body)
        if st != 200:
            raise RuntimeError(f"PUT call-park: HTTP {st} {raw[:300]!r}")

    def park_events(self, kinds):
        """Every park event of the given kinds (paged on `until`)."""
        out, until = {}, None
        while True:
            q = f"/park-events?kind={kinds}&limit=1000" + (f"&until={until}" if until else "")
            st, js, raw = self.req("GET", self.t(q))
            if st != 200:
                raise RuntimeError(f"park-events: HTTP {st} {raw[:300]!r}")
            items = js.get("items", [])
            new = [e for e in items if e["id"] not in out]
            for e in items:
                out[e["id"]] = e
            if not new or len(items) < 1000:
                break
            until = int(min(at_ms(e["at"]) for e in items)) + 1
        return list(out.values())


def at_ms(v):
    """park-events `at`: Unix ms (number) or RFC 3339."""
    if isinstance(v, (int, float)):
        return float(v)
    import datetime
    s = v.replace("Z", "+00:00")
    return datetime.datetime.fromisoformat(s).timestamp() * 1000


# --------------------------------------------------------------- gen/seed
def nums(first, count):
    return [str(n) for n in range(first, first + count)]


def cmd_gen(a):
    os.makedirs(a.out, exist_ok=True)
    callers, retrievers, parkers = (nums(a.first_caller, a.callers),
                                    nums(a.first_retriever, a.retrievers),
                                    nums(a.first_parker, a.parkers))
    with open(os.path.join(a.out, "numbers.txt"), "w") as f:
        f.write("\n".join(callers + retrievers + parkers) + "\n")
    with open(os.path.join(a.out, "parkers.csv"), "w") as f:
        f.write("SEQUENTIAL\n")
        for n in parkers:
            f.write(f"{n};[authentication username={n} password={a.pw_prefix}{n}];{a.domain}\n")
    json.dump({"callers": callers, "retrievers": retrievers, "parkers": parkers,
               "domain": a.domain, "pw_prefix": a.pw_prefix},
              open(os.path.join(a.out, "numbers.json"), "w"))
    print(f"generated {len(callers)} callers, {len(retrievers)} retrievers, "
          f"{len(parkers)} parkers ({parkers[0]}..{parkers[-1]})")


def cmd_wait_http(a):
    host, port = a.hostport.rsplit(":", 1)
    deadline = time.time() + a.timeout
    while time.time() < deadline:
        if a.pid and not os.path.exists(f"/proc/{a.pid}"):
            return 1
        try:
            c = http.client.HTTPConnection(host, int(port), timeout=2)
            c.request("GET", "/healthz")
            r = c.getresponse()
            r.read()
            if r.status == 200:
                return 0
        except OSError:
            pass
        time.sleep(0.2)
    return 1


def cmd_seed(a):
    api = Api(a.http, a.token, a.domain)
    t0 = time.time()
    st, _, raw = api.req("POST", "/api/v1/tenants", {"name": "Bench", "domain": a.domain})
    if st not in (201, 409):
        print(f"tenant: HTTP {st} {raw[:300]!r}", file=sys.stderr)
        return 1
    numbers = [l.strip() for l in open(a.numbers) if l.strip()]
    bad = 0
    for n in numbers:
        st, _, raw = api.req("POST", api.t("/extensions"),
                             {"number": n, "password": f"{a.pw_prefix}{n}",
                              "display_name": f"U {n}"})
        if st not in (201, 409):
            bad += 1
            if bad <= 5:
                print(f"extension {n}: HTTP {st} {raw[:200]!r}", file=sys.stderr)
    print(f"seeded {a.domain} + {len(numbers)} extensions in {time.time() - t0:.1f}s, {bad} errors")
    return 1 if bad else 0


def sipp_common():
    return ["-buff_size", "4194304", "-max_recv_loops", "100000",
            "-max_sched_loops", "100000", "-nostdin", "-trace_screen",
            "-default_behaviors", "none", "-trace_err", "-error_file", "errors.log"]


def pin(cpu, cmd):
    return (["taskset", "-c", str(cpu)] + cmd) if cpu is not None else cmd


def cmd_register(a):
    os.makedirs(a.outdir, exist_ok=True)
    scen = os.path.basename(a.scenario)
    subprocess.call(["cp", a.scenario, a.outdir])
    count = sum(1 for l in open(a.users) if ";" in l)
    cmd = pin(a.cpu, [a.sipp, a.server, "-sf", scen, "-inf", a.users, "-i", "127.0.0.1",
                      "-p", str(a.port), "-t", "u1", "-r", str(a.rate), "-m", str(count),
                      "-l", str(a.rate), "-auth_uri", a.domain, "-recv_timeout", "5000",
                      "-timeout", f"{count // a.rate + 30}s"] + sipp_common())
    open(os.path.join(a.outdir, "cmd.txt"), "w").write(" ".join(cmd) + "\n")
    with open(os.path.join(a.outdir, "sipp.out"), "w") as out:
        rc = subprocess.call(cmd, cwd=a.outdir, stdout=out, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, timeout=count // a.rate + 60)
    ok = screen_count(a.outdir, "Successful call")
    print(f"registered {ok}/{count} parkers from 127.0.0.1:{a.port} (sipp rc {rc})")
    return 0 if ok == count else 1


def screen_count(d, label):
    for fn in os.listdir(d):
        if fn.endswith("_screen.log"):
            for l in open(os.path.join(d, fn), errors="replace"):
                if l.strip().startswith(label):
                    try:
                        return int(l.split("|")[2].split()[0])
                    except (IndexError, ValueError):
                        pass
    return 0


# ----------------------------------------------------------- proc stats
def proc_ticks(pid):
    try:
        s = open(f"/proc/{pid}/stat").read()
    except OSError:
        return 0
    f = s[s.rindex(")") + 2:].split()
    return int(f[11]) + int(f[12])


def proc_rss_kb(pid):
    try:
        for l in open(f"/proc/{pid}/status"):
            if l.startswith("VmRSS:"):
                return int(l.split()[1])
    except OSError:
        pass
    return 0


def proc_fds(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def all_proc_ticks():
    out = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                s = open(f"/proc/{d}/stat").read()
            except OSError:
                continue
            f = s[s.rindex(")") + 2:].split()
            out[int(d)] = (int(f[11]) + int(f[12]), bool(int(f[6]) & PF_KTHREAD))
    return out


def descendants(root):
    ch = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                s = open(f"/proc/{d}/stat").read()
            except OSError:
                continue
            ch.setdefault(int(s[s.rindex(")") + 2:].split()[1]), []).append(int(d))
    out, todo = set(), [root]
    while todo:
        p = todo.pop()
        out.add(p)
        todo.extend(ch.get(p, []))
    return out


def other_cpu_pct(a0, a1, skip, wall):
    user = 0
    for pid, (t, kt) in a1.items():
        if pid in skip or kt:
            continue
        user += t - a0.get(pid, (0, kt))[0]
    return user / CLK_TCK / wall * 100


def cmd_quiet(a):
    me = descendants(os.getppid()) | {os.getpid()}
    deadline, calm = time.time() + a.max_wait, 0
    prev = all_proc_ticks()
    while time.time() < deadline:
        time.sleep(1)
        cur = all_proc_ticks()
        busy = other_cpu_pct(prev, cur, me, 1.0)
        prev = cur
        calm = calm + 1 if busy <= a.threshold else 0
        if calm >= 3:
            return 0
    log(f"machine not quiet after {a.max_wait}s (others at {busy:.0f}%), going on")
    return 1


def pct(vals, q):
    if not vals:
        return None
    s = sorted(vals)
    return s[min(len(s) - 1, max(0, int(round(q / 100 * len(s) + 0.5)) - 1))]


def stats(vals):
    if not vals:
        return {"n": 0}
    return {"n": len(vals), "p50": round(pct(vals, 50), 3), "p99": round(pct(vals, 99), 3),
            "max": round(max(vals), 3), "min": round(min(vals), 3)}


# ------------------------------------------------------------ sipp runs
RUNNING = []


def _stop_all():
    """Never leave a sipp behind (a crashed step would otherwise keep its
    ports and run until its -timeout)."""
    for sp in RUNNING:
        if sp.p.poll() is None:
            try:
                os.killpg(sp.p.pid, signal.SIGKILL)
            except OSError:
                pass


import atexit  # noqa: E402
atexit.register(_stop_all)


class Sipp:
    def __init__(self, name, d, cmd):
        self.name, self.dir, self.cmd = name, d, cmd
        os.makedirs(d, exist_ok=True)
        open(os.path.join(d, "cmd.txt"), "w").write(" ".join(cmd) + "\n")
        self.out = open(os.path.join(d, "sipp.out"), "w")
        self.p = subprocess.Popen(cmd, cwd=d, stdout=self.out, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, start_new_session=True)
        RUNNING.append(self)

    def wait(self, timeout):
        try:
            return self.p.wait(timeout=max(0.1, timeout))
        except subprocess.TimeoutExpired:
            return None

    def stop(self):
        if self.p.poll() is None:
            try:
                os.killpg(self.p.pid, signal.SIGINT)   # sipp: final screens, then exit
            except OSError:
                pass
            if self.wait(5) is None:
                os.killpg(self.p.pid, signal.SIGKILL)
                self.p.wait()
        self.out.close()

    def count(self, label):
        return screen_count(self.dir, label)

    def lines(self, tag):
        p = os.path.join(self.dir, "msg.log")
        if not os.path.exists(p):
            return []
        return [l.split() for l in open(p, errors="replace") if l.startswith(tag + " ")]


def scen(a, name, d):
    os.makedirs(d, exist_ok=True)
    subprocess.call(["cp", os.path.join(a.here, name), d])
    return name


def parker_uas(a, d, bound_s):
    return Sipp("parker", d, pin(a.uac_cpu, [
        a.sipp, "-sf", scen(a, "parker.xml", d), "-i", "127.0.0.1", "-p", str(a.parker_port),
        "-t", "u1", "-mp", str(a.parker_media_port), "-timeout", f"{int(bound_s)}s",
        "-recv_timeout", str(a.recv_timeout_ms),
        "-trace_logs", "-log_file", "msg.log"] + sipp_common()))


def uac(a, name, d, csv, rate, count, port, media_port, bound_s, recv_timeout_ms, limit,
        hold_ms=0):
    return Sipp(name, d, pin(a.uac_cpu, [
        a.sipp, a.server, "-sf", scen(a, name + ".xml", d), "-inf", csv, "-i", "127.0.0.1",
        "-p", str(port), "-t", "u1", "-mp", str(media_port),
        "-r", str(rate), "-rp", "1000", "-m", str(count), "-l", str(limit),
        "-d", str(hold_ms), "-auth_uri", a.domain,
        "-recv_timeout", str(recv_timeout_ms), "-timeout", f"{int(bound_s)}s",
        "-trace_logs", "-log_file", "msg.log"] + sipp_common()))


def write_callers(path, a, numbers, exts, count, media_port_of):
    callers = numbers["callers"]
    with open(path, "w") as f:
        f.write("SEQUENTIAL\n")
        for i in range(count):
            c = callers[i % len(callers)]
            f.write(f"{c};[authentication username={c} password={a.pw_prefix}{c}];"
                    f"{exts[i % len(exts)]};{a.domain};{media_port_of(i)}\n")


def write_retrievers(path, a, numbers, exts, count, media_port):
    callers, rets = numbers["callers"], numbers["retrievers"]
    with open(path, "w") as f:
        f.write("SEQUENTIAL\n")
        for i in range(count):
            r = rets[i % len(rets)]
            f.write(f"{r};[authentication username={r} password={a.pw_prefix}{r}];"
                    f"{exts[i % len(exts)]};{a.domain};{media_port};{callers[i % len(callers)]}\n")


def tv(s, u):
    return float(s) + float(u) / 1e6


def leak_check(api, settle, wait):
    try:
        return _leak_check(api, settle, wait)
    except (OSError, http.client.HTTPException, AttributeError) as e:
        return {"parked_left": None, "calls_left": None, "leak_check_error": str(e)}


def clear_parked(api, wait=15):
    """Hang up every call still parked (DELETE), then wait for the call
    list to empty: what is left then is held by Orbit with nobody on it."""
    try:
        for c in api.parked() or []:
            api.req("DELETE", api.t(f"/parked-calls/{c['id']}"))
        deadline = time.time() + wait
        while True:
            cl = api.calls()
            if cl is not None and (not cl or time.time() >= deadline):
                return {"calls_left_after_clear": len(cl),
                        "calls_left_after_clear_states": sorted({c.get("state") for c in cl})}
            time.sleep(1)
    except (OSError, http.client.HTTPException, AttributeError) as e:
        return {"calls_left_after_clear": None, "clear_error": str(e)}


def _leak_check(api, settle, wait):
    time.sleep(settle)
    deadline = time.time() + wait
    while True:
        pk, cl = api.parked(), api.calls()
        np_, nc = (len(pk) if pk is not None else None), (len(cl) if cl is not None else None)
        if (np_ == 0 and nc == 0) or time.time() >= deadline:
            return {"parked_left": np_, "calls_left": nc,
                    "calls_left_states": sorted({c.get("state") for c in (cl or [])})}
        time.sleep(1)


class sink_socket:
    """UDP sockets nobody reads (RTP port and RTCP port + 1), with small
    buffers: music sent there is dropped by the kernel, and no ICMP port
    unreachable goes back to Orbit."""

    def __init__(self, port):
        self.socks = []
        for p in (port, port + 1):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.bind(("127.0.0.1", p))
            self.socks.append(s)

    def close(self):
        for s in self.socks:
            s.close()


def load_numbers(a):
    return json.load(open(os.path.join(a.data, "numbers.json")))


def result(a, res):
    res["date"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    with open(os.path.join(a.outdir, "results.jsonl"), "a") as f:
        f.write(json.dumps(res) + "\n")


# ------------------------------------------------------- part 1: cycles
def cmd_cycles(a):
    numbers = load_numbers(a)
    api = Api(a.http, a.token, a.domain)
    api.park_settings(recall_time_s=a.recall_s)
    exts = numbers["parkers"]
    rate, dur = a.rate, a.duration
    count = rate * dur
    label = a.label or f"cycles-{rate}"
    d = os.path.join(a.outdir, label)
    os.makedirs(d, exist_ok=True)
    sink = sink_socket(a.sink_port)
    write_callers(os.path.join(d, "callers.csv"), a, numbers, exts, count, lambda i: a.sink_port)
    write_retrievers(os.path.join(d, "retrievers.csv"), a, numbers, exts, count, a.sink_port)
    cyc_s = a.delay_ms / 1000 + a.hold_ms / 1000
    bound = dur + cyc_s + a.recv_timeout_ms / 1000 + 20
    limit = int(rate * (cyc_s + 3)) + 500
    srv = a.server_pid
    t0_ticks, a0 = proc_ticks(srv), all_proc_ticks()
    rss0 = proc_rss_kb(srv)
    park = parker_uas(a, os.path.join(d, "parker"), bound + 10)
    time.sleep(0.5)
    wall0 = time.time()
    caller = uac(a, "caller", os.path.join(d, "caller"), os.path.join(d, "callers.csv"),
                 rate, count, a.caller_port, a.caller_media_port, bound,
                 a.recv_timeout_ms + int(cyc_s * 1000), limit)
    time.sleep(a.delay_ms / 1000)
    retr = uac(a, "retriever", os.path.join(d, "retriever"), os.path.join(d, "retrievers.csv"),
               rate, count, a.retriever_port, a.retriever_media_port, bound,
               a.recv_timeout_ms, limit, hold_ms=a.hold_ms)
    # CPU over the offered window
    time.sleep(max(0, dur - a.delay_ms / 1000))
    wall1 = time.time()
    t1_ticks, a1 = proc_ticks(srv), all_proc_ticks()
    rss_peak = proc_rss_kb(srv)
    fds_peak = proc_fds(srv)
    me = descendants(os.getpid()) | {srv}
    retr.wait(bound + 5 - (time.time() - wall0))
    caller.wait(bound + 5 - (time.time() - wall0))
    retr.stop()
    caller.stop()
    time.sleep(1)
    park.stop()
    sink.close()
    leak = leak_check(api, a.settle, a.leak_wait)
    if leak.get("parked_left"):
        leak.update(clear_parked(api))

    res = {"kind": "cycles", "label": label, "rate": rate, "duration": dur, "planned": count,
           "delay_ms": a.delay_ms, "hold_ms": a.hold_ms}
    c_ok = caller.count("Successful call")
    r_ok = retr.count("Successful call")
    p_ok = park.count("Successful call")
    res.update({"caller_ok": c_ok, "retriever_ok": r_ok, "parker_ok": p_ok,
                "caller_failed": caller.count("Failed call"),
                "retriever_failed": retr.count("Failed call"),
                "parker_failed": park.count("Failed call")})
    # A call refused for overload (503) ends "successfully" in sipp.
    c_ref, r_ref = len(caller.lines("REFUSED")), len(retr.lines("REFUSED"))
    res.update({"caller_refused": c_ref, "retriever_refused": r_ref})
    # A RET line whose PAI was empty has fewer fields: not a retrieve we can time.
    rets = [r for r in retr.lines("RET") if len(r) >= 9]
    mism = [r for r in rets if r[2] != r[3]]
    res["pai_mismatch"] = len(mism)
    ok = min(c_ok - c_ref, r_ok - r_ref)
    # achieved: completed cycles over the span of retrieve answers
    t200 = sorted(tv(r[6], r[7]) for r in rets)
    if len(t200) > 1:
        span = t200[-1] - t200[0] + 1 / rate
        res["achieved"] = round(ok / span, 1) if span > 0 else None
    else:
        res["achieved"] = 0
    res["failure_pct"] = round((count - ok) / count * 100, 4)
    res["retrieve_setup_ms"] = stats([(tv(r[6], r[7]) - tv(r[4], r[5])) * 1000 for r in rets])
    parks = [p for p in park.lines("PARK") if len(p) > 6]  # a line cut when sipp stops
    res["refer_to_release_ms"] = stats([(tv(p[4], p[5]) - tv(p[2], p[3])) * 1000 for p in parks])
    res["notifies_per_park"] = stats([int(float(p[6])) for p in parks])
    wall = wall1 - wall0
    res["server_cpu_pct"] = round((t1_ticks - t0_ticks) / CLK_TCK / wall * 100, 1)
    res["other_cpu_pct"] = round(other_cpu_pct(a0, a1, me, wall), 1)
    res["rss_mb_before"], res["rss_mb_peak"] = round(rss0 / 1024, 1), round(rss_peak / 1024, 1)
    res["server_fds_peak"] = fds_peak
    res.update(leak)
    res["sustained"] = bool(res["achieved"] and res["achieved"] >= 0.97 * rate
                            and res["failure_pct"] < 0.1 and leak["parked_left"] == 0
                            and leak["calls_left"] == 0)
    result(a, res)
    print(fmt_cycles(res))
    return 0


def fmt_cycles(r):
    return (f"cycles offered {r['rate']}/s achieved {r['achieved']}/s failed {r['failure_pct']}% "
            f"retrieve p50/p99 {r['retrieve_setup_ms'].get('p50')}/{r['retrieve_setup_ms'].get('p99')} ms "
            f"REFER->released p50/p99 {r['refer_to_release_ms'].get('p50')}/{r['refer_to_release_ms'].get('p99')} ms "
            f"cpu {r['server_cpu_pct']}% refused (503) callers/retrievers {r.get('caller_refused')}/"
            f"{r.get('retriever_refused')} left parked/calls {r['parked_left']}/{r['calls_left']} "
            f"after hanging up the parked {r.get('calls_left_after_clear')} "
            f"sustained {'yes' if r['sustained'] else 'no'}")


# ----------------------------------------------------- RTP pacing probe
def rtp_probe(ports, seconds):
    """Kernel arrival times (SO_TIMESTAMPNS) of the packets on `ports`."""
    socks = {}
    for p in ports:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        s.bind(("127.0.0.1", p))
        s.setblocking(False)
        socks[s.fileno()] = (p, s)
    return socks


def drain_probe(socks, arrivals):
    for fd, (p, s) in socks.items():
        while True:
            try:
                data, anc, _, _ = s.recvmsg(2048, socket.CMSG_SPACE(16))
            except BlockingIOError:
                break
            t = None
            for lvl, typ, cd in anc:
                if lvl == socket.SOL_SOCKET and typ == SO_TIMESTAMPNS:
                    sec, ns = struct.unpack("qq", cd[:16])
                    t = sec + ns / 1e9
            if t is None:
                t = time.time()
            if len(data) < 12 or data[1] >= 200:   # RTCP, not music
                continue
            seq = struct.unpack("!H", data[2:4])[0]
            arrivals.setdefault(p, []).append((t, seq, len(data)))


def jitter_stats(arrivals, t_from, t_to):
    gaps, per_port = [], {}
    for p, xs in arrivals.items():
        xs = [x for x in xs if t_from <= x[0] <= t_to]
        g = [(xs[i][0] - xs[i - 1][0]) * 1000 for i in range(1, len(xs))]
        per_port[p] = {"packets": len(xs), "pps": round(len(xs) / max(1e-9, t_to - t_from), 1)}
        gaps += g
    # deviation of each inter-arrival gap from the 20 ms packet time
    dev = [abs(g - 20.0) for g in gaps]
    return {"gap_ms": stats(gaps), "gap_dev_ms": stats(dev), "ports": per_port}


# -------------------------------------------------------- part 2: many
def cmd_many(a):
    numbers = load_numbers(a)
    api = Api(a.http, a.token, a.domain)
    api.park_settings(recall_time_s=900, max_per_ext=100)
    exts = numbers["parkers"]
    n = a.count
    if n > len(exts):
        log(f"only {len(exts)} parker extensions: parking up to "
            f"{(n + len(exts) - 1) // len(exts)} per extension")
    label = a.label or f"many-{n}"
    d = os.path.join(a.outdir, label)
    os.makedirs(d, exist_ok=True)
    # probe ports: spread over the calls (first, middle, last, ...)
    k = min(a.probes, n)
    probe_idx = sorted({int(i * (n - 1) / max(1, k - 1)) for i in range(k)})
    probe_port = {i: a.probe_port + 4 * j for j, i in enumerate(probe_idx)}
    write_callers(os.path.join(d, "callers.csv"), a, numbers, exts, n,
                  lambda i: probe_port.get(i, a.sink_port))
    sink = sink_socket(a.sink_port)
    rtcp = [sink_socket(p + 1) for p in probe_port.values()]  # RTCP sinks (probes are 4 ports apart)
    socks = rtp_probe(list(probe_port.values()), 0)
    srv = a.server_pid
    # idle figures
    time.sleep(2)
    rss_idle = proc_rss_kb(srv)
    fds_idle = proc_fds(srv)
    t0, w0 = proc_ticks(srv), time.time()
    time.sleep(a.window / 2)
    cpu_idle = (proc_ticks(srv) - t0) / CLK_TCK / (time.time() - w0) * 100
    bound = n / a.park_rate + a.window + 600
    park = parker_uas(a, os.path.join(d, "parker"), bound + 30)
    time.sleep(0.5)
    caller = uac(a, "caller", os.path.join(d, "caller"), os.path.join(d, "callers.csv"),
                 a.park_rate, n, a.caller_port, a.caller_media_port, bound,
                 int(bound * 1000), n + 100)
    arrivals = {}
    tstart = time.time()
    parked_n = 0
    last_change, last_n = time.time(), -1
    while True:
        drain_probe(socks, arrivals)
        time.sleep(0.2)
        if time.time() - tstart > 1 and int((time.time() - tstart) * 5) % 10 == 0:
            try:
                pk = api.parked()
            except (OSError, http.client.HTTPException) as e:
                log(f"GET parked-calls failed: {e}")
                pk = None
            parked_n = len(pk) if pk is not None else parked_n
            if parked_n != last_n:
                last_n, last_change = parked_n, time.time()
            if parked_n >= n or time.time() - last_change > 15 or caller.p.poll() is not None:
                break
    t_parked = time.time() - tstart
    log(f"{parked_n}/{n} parked after {t_parked:.1f}s; measuring {a.window}s")
    time.sleep(1)
    arrivals = {}
    drain_probe(socks, {})
    m0, c0 = time.time(), proc_ticks(srv)
    a0 = all_proc_ticks()
    end = m0 + a.window
    rss_samples = []
    while time.time() < end:
        select.select([s for _, s in socks.values()], [], [], 0.05)
        drain_probe(socks, arrivals)
        if not rss_samples or time.time() - rss_samples[-1][0] > 1:
            rss_samples.append((time.time(), proc_rss_kb(srv)))
    m1, c1 = time.time(), proc_ticks(srv)
    a1 = all_proc_ticks()
    me = descendants(os.getpid()) | {srv}
    rss_parked = statistics.median([x[1] for x in rss_samples]) if rss_samples else proc_rss_kb(srv)
    fds = proc_fds(srv)
    js = jitter_stats(arrivals, m0, m1)
    # clean up: hang every parked call up over the API
    try:
        pk = api.parked() or []
    except (OSError, http.client.HTTPException) as e:
        log(f"GET parked-calls failed: {e}")
        pk = []
    t_del = time.time()
    bad = 0
    for p in pk:
        try:
            st, _, _ = api.req("DELETE", api.t(f"/parked-calls/{p['id']}"))
        except (OSError, http.client.HTTPException):
            st = None
        if st not in (200, 204):
            bad += 1
    t_del = time.time() - t_del
    caller.wait(60)
    caller.stop()
    park.stop()
    for _, s in socks.values():
        s.close()
    for s in rtcp:
        s.close()
    sink.close()
    leak = leak_check(api, a.settle, a.leak_wait)
    res = {"kind": "many", "label": label, "count": n, "parked": parked_n,
           "park_rate": a.park_rate, "seconds_to_park": round(t_parked, 1),
           "window_s": a.window, "rss_mb_idle": round(rss_idle / 1024, 1),
           "rss_mb_parked": round(rss_parked / 1024, 1),
           "kb_per_parked_call": round((rss_parked - rss_idle) / max(1, parked_n), 2),
           "cpu_pct_idle": round(cpu_idle, 1),
           "cpu_pct_parked": round((c1 - c0) / CLK_TCK / (m1 - m0) * 100, 1),
           "other_cpu_pct": round(other_cpu_pct(a0, a1, me, m1 - m0), 1),
           "server_fds_idle": fds_idle, "server_fds": fds,
           "fds_per_parked_call": round((fds - fds_idle) / max(1, parked_n), 2), "probe_ports": len(probe_port), "jitter": js,
           "delete_failed": bad, "delete_s": round(t_del, 1),
           "caller_ok": caller.count("Successful call"),
           "caller_failed": caller.count("Failed call")}
    res.update(leak)
    result(a, res)
    print(fmt_many(res))
    return 0


def fmt_many(r):
    j = r["jitter"]
    return (f"many {r['parked']}/{r['count']} parked: cpu {r['cpu_pct_parked']}% rss {r['rss_mb_parked']} MB "
            f"({r['kb_per_parked_call']} KB/call) gap p50/p99 {j['gap_ms'].get('p50')}/{j['gap_ms'].get('p99')} ms "
            f"|gap-20| p99 {j['gap_dev_ms'].get('p99')} ms left {r['parked_left']}/{r['calls_left']}")


# ------------------------------------------------------ part 3: recall
def cmd_recall(a):
    numbers = load_numbers(a)
    api = Api(a.http, a.token, a.domain)
    api.park_settings(recall_time_s=a.recall_s, max_attempts=1)
    exts = numbers["parkers"]
    n = min(a.count, len(exts))
    label = a.label or f"recall-{n}"
    d = os.path.join(a.outdir, label)
    os.makedirs(d, exist_ok=True)
    write_callers(os.path.join(d, "callers.csv"), a, numbers, exts, n, lambda i: a.sink_port)
    sink = sink_socket(a.sink_port)
    since = int(time.time() * 1000) - 1
    bound = n / a.park_rate + a.recall_s + 120
    park = parker_uas(a, os.path.join(d, "parker"), bound + 30)
    time.sleep(0.5)
    caller = uac(a, "caller", os.path.join(d, "caller"), os.path.join(d, "callers.csv"),
                 a.park_rate, n, a.caller_port, a.caller_media_port, bound,
                 int(bound * 1000), n + 100)
    rc = caller.wait(bound + 10)
    caller.stop()
    time.sleep(2)
    park.stop()
    sink.close()
    ev = [e for e in api.park_events("parked,recall_started") if at_ms(e["at"]) >= since]
    parked_at = {}
    recall_ev = {}
    for e in sorted(ev, key=lambda e: at_ms(e["at"])):
        ext = e.get("extension")
        if e["kind"] == "parked":
            parked_at.setdefault(ext, at_ms(e["at"]))
        elif e["kind"] == "recall_started":
            recall_ev.setdefault(ext, at_ms(e["at"]))
    recalls = {}
    for r in park.lines("RECALL"):
        recalls.setdefault(r[1], tv(r[2], r[3]) * 1000)
    wire, orbit = [], []
    for ext, t in parked_at.items():
        due = t + a.recall_s * 1000
        if ext in recalls:
            wire.append(recalls[ext] - due)
        if ext in recall_ev:
            orbit.append(recall_ev[ext] - due)
    pts = sorted(parked_at.values())
    leak = leak_check(api, a.settle, a.leak_wait)
    res = {"kind": "recall", "label": label, "count": n, "park_rate": a.park_rate,
           "recall_s": a.recall_s, "parked_events": len(parked_at),
           "park_span_s": round((pts[-1] - pts[0]) / 1000, 2) if pts else None,
           "recalls_received": len(recalls), "recall_events": len(recall_ev),
           "wire_error_ms": stats(wire), "event_error_ms": stats(orbit),
           "caller_ok": caller.count("Successful call"), "caller_failed": caller.count("Failed call")}
    res.update(leak)
    result(a, res)
    print(fmt_recall(res))
    return 0


def fmt_recall(r):
    w = r["wire_error_ms"]
    return (f"recall {r['recalls_received']}/{r['count']} (parked over {r['park_span_s']} s): "
            f"error p50/p99/max {w.get('p50')}/{w.get('p99')}/{w.get('max')} ms "
            f"(event log {r['event_error_ms'].get('p99')} p99) left {r['parked_left']}/{r['calls_left']}")


# -------------------------------------------------- part 4: watchers
def md5(s):
    return hashlib.md5(s.encode()).hexdigest()


def cmd_notify(a):
    numbers = load_numbers(a)
    api = Api(a.http, a.token, a.domain)
    api.park_settings(recall_time_s=900)
    members = numbers["parkers"][:a.group_size]
    label = a.label or f"notify-{a.group_size}x{a.rate}"
    d = os.path.join(a.outdir, label)
    os.makedirs(d, exist_ok=True)
    st, js, raw = api.req("POST", api.t("/call-park-groups"),
                          {"name": f"bench-{label}-{int(time.time())}", "members": members})
    if st not in (200, 201):
        raise RuntimeError(f"call-park-groups: HTTP {st} {raw[:300]!r}")
    gid = js["id"]
    ruri = f"sip:parkgroup-{gid}@{a.domain}"
    server = (a.server.split(":")[0], int(a.server.split(":")[1]))
    import fanout  # the phones of part 5; here each has one key, the group's
    ws = []
    for i, u in enumerate(members[:a.watchers]):
        w = fanout.Phone(u, f"{a.pw_prefix}{u}", a.domain, server, a.watcher_port + i, 4 << 20)
        w.sub = w.add(ruri, "group")
        ws.append(w)
    for w in ws:
        w.subscribe(w.sub)
    deadline = time.time() + 10
    while time.time() < deadline and any(w.sub.state != "active" or not w.answered for w in ws):
        select.select([w.s for w in ws], [], [], 0.1)
        for w in ws:
            w.handle(False)
    active = sum(1 for w in ws if w.sub.state == "active")
    log(f"{active}/{len(ws)} watchers subscribed to {ruri}")
    for w in ws:
        w.notifies, w.seen, w.answered = [], set(), 0
    count = a.rate * a.duration
    write_callers(os.path.join(d, "callers.csv"), a, numbers, members, count, lambda i: a.sink_port)
    write_retrievers(os.path.join(d, "retrievers.csv"), a, numbers, members, count, a.sink_port)
    sink = sink_socket(a.sink_port)
    cyc_s = a.delay_ms / 1000 + a.hold_ms / 1000
    bound = a.duration + cyc_s + a.recv_timeout_ms / 1000 + 20
    park = parker_uas(a, os.path.join(d, "parker"), bound + 10)
    time.sleep(0.5)
    caller = uac(a, "caller", os.path.join(d, "caller"), os.path.join(d, "callers.csv"),
                 a.rate, count, a.caller_port, a.caller_media_port, bound,
                 a.recv_timeout_ms + int(cyc_s * 1000), count + 100)
    time.sleep(a.delay_ms / 1000)
    retr = uac(a, "retriever", os.path.join(d, "retriever"), os.path.join(d, "retrievers.csv"),
               a.rate, count, a.retriever_port, a.retriever_media_port, bound,
               a.recv_timeout_ms, count + 100, hold_ms=a.hold_ms)
    t_end = time.time() + bound + 10
    while time.time() < t_end:
        select.select([w.s for w in ws], [], [], 0.05)
        for w in ws:
            w.handle(True)
        if retr.p.poll() is not None and caller.p.poll() is not None:
            break
    t1 = time.time() + 1
    while time.time() < t1:
        select.select([w.s for w in ws], [], [], 0.05)
        for w in ws:
            w.handle(True)
    retr.stop()
    caller.stop()
    park.stop()
    sink.close()
    # unsubscribe
    for w in ws:
        w.sub.state = "new"
        w.subscribe(w.sub, expires=0)
    t1 = time.time() + 2
    while time.time() < t1:
        select.select([w.s for w in ws], [], [], 0.05)
        for w in ws:
            w.handle(True)
    # REFER send times per parked-on extension, in order
    refers = {}
    for p in park.lines("PARK"):
        refers.setdefault(p[1], []).append(tv(p[2], p[3]))
    for v in refers.values():
        v.sort()
    # caller call-id -> extension: call-id is "<call_number>-<pid>@..."
    lat, unmatched, seen_total = [], 0, 0
    unmatched_diff = []
    per_watcher_notifies = []
    with open(os.path.join(d, "notifies.jsonl"), "w") as f:
        for w in ws:
            for t, _, ids in w.notifies:
                f.write(json.dumps({"w": w.user, "t": t, "ids": ids}) + "\n")
    for w in ws:
        seen = set()
        per_watcher_notifies.append(w.answered)
        for t, _, ids in sorted(w.notifies):
            for cid in ids:
                if cid in seen:
                    continue
                seen.add(cid)
                seen_total += 1
                try:
                    k = int(cid.split("-", 1)[0])
                except ValueError:
                    unmatched += 1
                    continue
                ext = members[(k - 1) % len(members)]
                cands = [x for x in refers.get(ext, []) if x <= t]
                if not cands or t - cands[-1] > 1.5:
                    unmatched += 1
                    allr = refers.get(ext, [])
                    if allr:
                        unmatched_diff.append(round(min((t - x for x in allr), key=abs) * 1000, 3))
                    continue
                lat.append((t - cands[-1]) * 1000)
    leak = leak_check(api, a.settle, a.leak_wait)
    res = {"kind": "notify", "label": label, "group_size": a.group_size, "watchers": len(ws),
           "watchers_active": active, "rate": a.rate, "duration": a.duration, "parks_planned": count,
           "parks_logged": sum(len(v) for v in refers.values()),
           "caller_ok": caller.count("Successful call"), "retriever_ok": retr.count("Successful call"),
           "notifies_per_watcher": stats(per_watcher_notifies),
           "park_appearances": seen_total, "unmatched": unmatched,
           "unmatched_nearest_refer_ms": stats(unmatched_diff),
           "refer_to_notify_ms": stats(lat)}
    res.update(leak)
    result(a, res)
    print(fmt_notify(res))
    return 0


def fmt_notify(r):
    l = r["refer_to_notify_ms"]
    return (f"notify {r['watchers_active']}/{r['watchers']} watchers, {r['rate']} parks/s: "
            f"REFER->NOTIFY p50/p99/max {l.get('p50')}/{l.get('p99')}/{l.get('max')} ms "
            f"over {l.get('n')} (park x watcher) pairs, unmatched {r['unmatched']}")


# ---------------------------------------------------------------- report
def cmd_report(a):
    rows = [json.loads(l) for l in open(os.path.join(a.resdir, "results.jsonl"))]
    out = []
    cyc = [r for r in rows if r["kind"] == "cycles" and not r["label"].startswith("smoke")]
    if cyc:
        out += ["### Park-and-retrieve cycles", "",
                "| offered/s | achieved/s | failed % | refused 503 callers / retrievers | retrieve set-up p50/p99 ms | REFER→released p50/p99 ms | Orbit CPU % | RSS peak MB | left parked/calls | calls left after hanging up the parked | sustained |",
                "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|:---:|"]
        for r in cyc:
            out.append(f"| {r['rate']:,} | {r['achieved']:,} | {r['failure_pct']} | "
                       f"{r.get('caller_refused', '–')} / {r.get('retriever_refused', '–')} | "
                       f"{r['retrieve_setup_ms'].get('p50')} / {r['retrieve_setup_ms'].get('p99')} | "
                       f"{r['refer_to_release_ms'].get('p50')} / {r['refer_to_release_ms'].get('p99')} | "
                       f"{r['server_cpu_pct']} | {r['rss_mb_peak']} | {r['parked_left']}/{r['calls_left']} | "
                       f"{r.get('calls_left_after_clear', '–')} | "
                       f"{'yes' if r['sustained'] else 'no'} |")
        best = max([r["rate"] for r in cyc if r["sustained"]], default=None)
        out += ["", f"Highest sustained: {best}/s" + (f" (Asterisk reference 80/s: ratio {best / 80:.1f})" if best else ""), ""]
    many = [r for r in rows if r["kind"] == "many"]
    if many:
        out += ["### Calls parked at once, hearing music", "",
                "| parked | Orbit CPU % | RSS idle → parked MB | KB per parked call | open fds (per call) | probes | gap p50 / p99 / max ms | \\|gap−20\\| p99 ms | left |",
                "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in many:
            j = r["jitter"]
            out.append(f"| {r['parked']:,} of {r['count']:,} | {r['cpu_pct_parked']} | {r['rss_mb_idle']} → {r['rss_mb_parked']} | "
                       f"{r['kb_per_parked_call']} | {r['server_fds']} ({r.get('fds_per_parked_call')}) | {r['probe_ports']} | "
                       f"{j['gap_ms'].get('p50')} / {j['gap_ms'].get('p99')} / {j['gap_ms'].get('max')} | "
                       f"{j['gap_dev_ms'].get('p99')} | {r['parked_left']}/{r['calls_left']} |")
        out.append("")
    rec = [r for r in rows if r["kind"] == "recall"]
    if rec:
        out += ["### Recall timer accuracy", "",
                "| parked | parked over s | recalls received | error p50 / p99 / max ms (wire) | event-log error p50 / p99 ms | left |",
                "|---:|---:|---:|---:|---:|---:|"]
        for r in rec:
            w, e = r["wire_error_ms"], r["event_error_ms"]
            out.append(f"| {r['parked_events']:,} | {r['park_span_s']} | {r['recalls_received']:,} | "
                       f"{w.get('p50')} / {w.get('p99')} / {w.get('max')} | {e.get('p50')} / {e.get('p99')} | "
                       f"{r['parked_left']}/{r['calls_left']} |")
        out.append("")
    nt = [r for r in rows if r["kind"] == "notify"]
    if nt:
        out += ["### Park → NOTIFY to group watchers", "",
                "| group / watchers | parks/s | pairs measured | REFER→NOTIFY p50 / p99 / max ms | NOTIFYs per watcher | unmatched | left |",
                "|---:|---:|---:|---:|---:|---:|---:|"]
        for r in nt:
            l = r["refer_to_notify_ms"]
            out.append(f"| {r['group_size']} / {r['watchers_active']} | {r['rate']} | {l.get('n')} | "
                       f"{l.get('p50')} / {l.get('p99')} / {l.get('max')} | "
                       f"{r['notifies_per_watcher'].get('p50')} | {r['unmatched']} | {r['parked_left']}/{r['calls_left']} |")
        out.append("")
    import fanout
    out += fanout.report_rows(rows)
    text = "\n".join(out)
    open(os.path.join(a.resdir, "summary.md"), "w").write(text + "\n")
    print(text)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("gen")
    g.add_argument("--out", required=True)
    g.add_argument("--domain", required=True)
    g.add_argument("--pw-prefix", required=True)
    for k, first, cnt in (("caller", 20000, 100), ("retriever", 21000, 100), ("parker", 30000, 10000)):
        g.add_argument(f"--first-{k}", type=int, default=first)
        g.add_argument(f"--{k}s", type=int, default=cnt)
    w = sub.add_parser("wait-http")
    w.add_argument("hostport")
    w.add_argument("--timeout", type=float, default=30)
    w.add_argument("--pid", type=int)
    s = sub.add_parser("seed")
    s.add_argument("--http", required=True)
    s.add_argument("--token", required=True)
    s.add_argument("--domain", required=True)
    s.add_argument("--numbers", required=True)
    s.add_argument("--pw-prefix", required=True)
    r = sub.add_parser("register")
    for k in ("server", "scenario", "users", "outdir", "domain", "sipp"):
        r.add_argument(f"--{k}", required=True)
    r.add_argument("--port", type=int, required=True)
    r.add_argument("--rate", type=int, default=1000)
    r.add_argument("--cpu", type=int)
    q = sub.add_parser("quiet")
    q.add_argument("--threshold", type=float, default=10)
    q.add_argument("--max-wait", type=float, default=300)
    rp = sub.add_parser("report")
    rp.add_argument("resdir")

    def common(p):
        for k in ("server", "http", "token", "domain", "outdir", "data", "here", "sipp", "pw-prefix"):
            p.add_argument(f"--{k}", required=True)
        p.add_argument("--server-pid", type=int, required=True)
        p.add_argument("--label")
        p.add_argument("--uac-cpu", type=int)
        for k, v in (("parker-port", 47262), ("parker-media-port", 47400), ("caller-port", 47270),
                     ("caller-media-port", 47410), ("retriever-port", 47271),
                     ("retriever-media-port", 47420), ("sink-port", 47430), ("probe-port", 47440),
                     ("watcher-port", 47500), ("recv-timeout-ms", 5000), ("settle", 3),
                     ("leak-wait", 15), ("recall-s", 900)):
            p.add_argument(f"--{k}", type=int, default=v)
    c = sub.add_parser("cycles")
    common(c)
    c.add_argument("--rate", type=int, required=True)
    c.add_argument("--duration", type=int, default=30)
    c.add_argument("--delay-ms", type=int, default=1000)
    c.add_argument("--hold-ms", type=int, default=1000)
    m = sub.add_parser("many")
    common(m)
    m.add_argument("--count", type=int, required=True)
    m.add_argument("--park-rate", type=int, default=500)
    m.add_argument("--window", type=int, default=20)
    m.add_argument("--probes", type=int, default=8)
    rc = sub.add_parser("recall")
    common(rc)
    rc.add_argument("--count", type=int, required=True)
    rc.add_argument("--park-rate", type=int, default=1000)
    n = sub.add_parser("notify")
    common(n)
    n.add_argument("--group-size", type=int, default=100)
    n.add_argument("--watchers", type=int, default=100)
    n.add_argument("--rate", type=int, default=50)
    n.add_argument("--duration", type=int, default=20)
    n.add_argument("--delay-ms", type=int, default=1000)
    n.add_argument("--hold-ms", type=int, default=1000)
    f = sub.add_parser("fanout")
    common(f)
    f.add_argument("--extensions", type=int, default=5000)
    f.add_argument("--keys", type=int, default=5)
    f.add_argument("--group-size", type=int, default=100)
    f.add_argument("--rate", type=int, default=50)
    f.add_argument("--duration", type=int, default=20)
    f.add_argument("--delay-ms", type=int, default=1000)
    f.add_argument("--hold-ms", type=int, default=1000)
    f.add_argument("--subscribe-rate", type=int, default=2000)
    f.add_argument("--subscribe-batch", type=int, default=500)
    a = ap.parse_args()
    # fanout.py imports this file as `bench`: let it find this very module
    # (one copy of the running-sipp list the signal handler stops).
    sys.modules.setdefault("bench", sys.modules[__name__])
    import fanout
    return {"gen": cmd_gen, "wait-http": cmd_wait_http, "seed": cmd_seed, "register": cmd_register,
            "quiet": cmd_quiet, "report": cmd_report, "cycles": cmd_cycles, "many": cmd_many,
            "recall": cmd_recall, "notify": cmd_notify,
            "fanout": fanout.cmd_fanout}[a.cmd](a) or 0


if __name__ == "__main__":
    sys.exit(main())
