#!/usr/bin/env python3
"""Helper for bench/calls/run.sh (python3 standard library only).

Sub-commands:
  gen         write the sipp injection files and Kamailio's db_text tables
  wait-http   poll an HTTP URL until it answers 200
  seed-orbit  create the tenant and the extensions over Orbit's REST API
  register    register the callees from the UAS port (short sipp run)
  step        one step: sipp UAS + sipp UAC at a rate, measure, write JSON
  quiet       wait until other processes leave the CPUs alone
  report      the results table of a run directory (medians over repeats)
  reanalyze   recompute the sipp-derived figures of a run from its files
"""

import argparse
import http.client
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")
DBTEXT_SCHEMA = "/usr/share/kamailio/dbtext/kamailio"
PF_KTHREAD = 0x00200000


# --------------------------------------------------------------------- gen
def numbers(first, count):
    return [str(n) for n in range(first, first + count)]


def cmd_gen(a):
    callers = numbers(a.first_caller, a.callers)
    callees = numbers(a.first_callee, a.callees)
    os.makedirs(a.out, exist_ok=True)
    # callers: caller i calls callee i mod callees (SEQUENTIAL: round robin)
    with open(os.path.join(a.out, "callers.csv"), "w") as f:
        f.write("SEQUENTIAL\n")
        for i, n in enumerate(callers):
            c = callees[i % len(callees)]
            f.write(f"{n};[authentication username={n} password={a.pw_prefix}{n}];{c};{a.domain}\n")
    with open(os.path.join(a.out, "callees.csv"), "w") as f:
        f.write("SEQUENTIAL\n")
        for n in callees:
            f.write(f"{n};[authentication username={n} password={a.pw_prefix}{n}];{a.domain}\n")
    with open(os.path.join(a.out, "numbers.txt"), "w") as f:
        for n in callers + callees:
            f.write(n + "\n")

    # Kamailio: credentials in an htable loaded from db_text
    db = os.path.join(a.out, "dbtext")
    os.makedirs(db, exist_ok=True)
    with open(os.path.join(db, "htable"), "w") as f:
        f.write("id(int,auto) key_name(string) key_type(int) value_type(int) "
                "key_value(string) expires(int) \n")
        for i, n in enumerate(callers + callees, 1):
            f.write(f"{i}:{n}:0:0:{a.pw_prefix}{n}:0\n")
    if os.path.isdir(DBTEXT_SCHEMA):
        for t in ("location", "version"):
            shutil.copy(os.path.join(DBTEXT_SCHEMA, t), os.path.join(db, t))
        with open(os.path.join(db, "version"), "a") as f:
            f.write("0:htable:2\n")
    print(f"generated {len(callers)} callers ({callers[0]}..{callers[-1]}), "
          f"{len(callees)} callees ({callees[0]}..{callees[-1]}) in {a.out}")


# --------------------------------------------------------------- wait-http
def cmd_wait_http(a):
    host, port = a.hostport.rsplit(":", 1)
    deadline = time.time() + a.timeout
    while time.time() < deadline:
        if a.pid and not os.path.exists(f"/proc/{a.pid}"):
            print(f"process {a.pid} exited", file=sys.stderr)
            return 1
        try:
            c = http.client.HTTPConnection(host, int(port), timeout=2)
            c.request("GET", a.path)
            r = c.getresponse()
            r.read()
            if r.status == 200:
                return 0
        except OSError:
            pass
        time.sleep(0.2)
    print(f"timeout waiting for http://{a.hostport}{a.path}", file=sys.stderr)
    return 1


def http_get(hostport, path, token=None, timeout=10):
    host, port = hostport.rsplit(":", 1)
    c = http.client.HTTPConnection(host, int(port), timeout=timeout)
    hdrs = {"Authorization": f"Bearer {token}"} if token else {}
    c.request("GET", path, headers=hdrs)
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, body


# -------------------------------------------------------------- seed-orbit
def cmd_seed_orbit(a):
    host, port = a.hostport.rsplit(":", 1)
    hdrs = {"Authorization": f"Bearer {a.token}", "Content-Type": "application/json"}
    conn = http.client.HTTPConnection(host, int(port), timeout=10)

    def post(path, body):
        nonlocal conn
        data = json.dumps(body)
        for attempt in range(3):
            try:
                conn.request("POST", path, body=data, headers=hdrs)
                r = conn.getresponse()
                return r.status, r.read()
            except (http.client.HTTPException, OSError):
                conn.close()
                conn = http.client.HTTPConnection(host, int(port), timeout=10)
                if attempt == 2:
                    raise
        return None, b""

    t0 = time.time()
    st, body = post("/api/v1/tenants", {"name": "Bench", "domain": a.domain})
    if st not in (201, 409):
        print(f"tenant create failed: HTTP {st} {body[:300]!r}", file=sys.stderr)
        return 1
    with open(a.numbers) as f:
        nums = [l.strip() for l in f if l.strip()]
    bad = 0
    for n in nums:
        st, body = post(f"/api/v1/tenants/{a.domain}/extensions",
                        {"number": n, "password": f"{a.pw_prefix}{n}",
                         "display_name": f"U {n}"})
        if st not in (201, 409):
            bad += 1
            if bad <= 5:
                print(f"extension {n}: HTTP {st} {body[:300]!r}", file=sys.stderr)
    print(f"seeded tenant {a.domain} + {len(nums)} extensions in "
          f"{time.time() - t0:.1f}s, {bad} errors")
    return 1 if bad else 0


# ---------------------------------------------------------------- register
def cmd_register(a):
    """Register every callee from the UAS port (sipp, digest auth)."""
    os.makedirs(a.outdir, exist_ok=True)
    scen = os.path.basename(a.scenario)
    shutil.copy(a.scenario, os.path.join(a.outdir, scen))
    with open(a.users) as f:
        count = sum(1 for l in f if ";" in l)
    cmd = [a.sipp, a.server, "-sf", scen, "-inf", a.users,
           "-i", "127.0.0.1", "-p", str(a.port), "-t", "u1",
           "-r", str(a.rate), "-m", str(count), "-l", str(a.rate),
           "-buff_size", "4194304", "-auth_uri", a.domain,
           "-recv_timeout", "5000", "-timeout", f"{count // a.rate + 20}s",
           "-default_behaviors", "none", "-nostdin",
           "-trace_err", "-error_file", "errors.log", "-trace_screen"]
    if a.cpu is not None:
        cmd = ["taskset", "-c", str(a.cpu)] + cmd
    with open(os.path.join(a.outdir, "cmd.txt"), "w") as f:
        f.write(" ".join(cmd) + "\n")
    with open(os.path.join(a.outdir, "sipp.out"), "w") as out:
        rc = subprocess.call(cmd, cwd=a.outdir, stdout=out, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, timeout=count // a.rate + 60)
    ok = screen_count(a.outdir, "Successful call")
    print(f"registered {ok}/{count} callees from 127.0.0.1:{a.port} (sipp rc {rc})")
    return 0 if ok == count else 1


def screen_count(d, label):
    """Cumulative counter from sipp's final screen (-trace_screen)."""
    for fn in os.listdir(d):
        if fn.endswith("_screen.log"):
            with open(os.path.join(d, fn), errors="replace") as f:
                for l in f:
                    if l.strip().startswith(label):
                        try:
                            return int(l.split("|")[2].split()[0])
                        except (IndexError, ValueError):
                            pass
    return 0


# ---------------------------------------------------------- process stats
def proc_tree(root):
    """root pid plus all its descendants (Kamailio forks worker processes)."""
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                s = f.read()
        except OSError:
            continue
        ppid = int(s[s.rindex(")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(d))
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def proc_ticks(pids):
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                s = f.read()
        except OSError:
            continue
        fields = s[s.rindex(")") + 2:].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total


def thread_ticks(pids):
    """{"process/thread name": utime+stime} over the threads of the given
    processes (Orbit: tokio workers vs the SQLite worker; Kamailio workers
    vs rtpengine)."""
    out = {}
    for p in pids:
        try:
            with open(f"/proc/{p}/comm") as f:
                pname = f.read().strip()
            tids = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for t in tids:
            try:
                with open(f"/proc/{p}/task/{t}/stat") as f:
                    s = f.read()
            except OSError:
                continue
            name = s[s.index("(") + 1:s.rindex(")")]
            fields = s[s.rindex(")") + 2:].split()
            k = f"{pname}/{name}"
            out[k] = out.get(k, 0) + int(fields[11]) + int(fields[12])
    return out


def proc_rss_kb(pids):
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/status") as f:
                for l in f:
                    if l.startswith("VmRSS:"):
                        total += int(l.split()[1])
        except OSError:
            continue
    return total


def proc_fds(pids):
    n = 0
    for p in pids:
        try:
            n += len(os.listdir(f"/proc/{p}/fd"))
        except OSError:
            continue
    return n


def all_proc_ticks():
    out = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    s = f.read()
            except OSError:
                continue
            fields = s[s.rindex(")") + 2:].split()
            out[int(d)] = (int(fields[11]) + int(fields[12]),
                           bool(int(fields[6]) & PF_KTHREAD))
    return out


def other_cpu(a0, a1, skip, wall):
    user = kern = 0
    for pid, (t, kt) in a1.items():
        if pid in skip:
            continue
        d = t - a0.get(pid, (0, kt))[0]
        if kt:
            kern += d
        else:
            user += d
    return user / CLK_TCK / wall * 100, kern / CLK_TCK / wall * 100


def cmd_quiet(a):
    """Wait until no other user-space process uses more than --threshold %
    CPU for --seconds consecutive seconds (other builds, other benchmarks)."""
    skip = {os.getpid()} | set(proc_tree(os.getppid()))
    for p in a.also_skip or []:
        skip |= set(proc_tree(p))
    deadline, quiet = time.time() + a.max_wait, 0
    a0 = all_proc_ticks()
    while True:
        time.sleep(1)
        a1 = all_proc_ticks()
        user, _ = other_cpu(a0, a1, skip, 1.0)
        a0 = a1
        quiet = quiet + 1 if user <= a.threshold else 0
        if quiet >= a.seconds:
            return 0
        if time.time() > deadline:
            print(f"machine still busy after {a.max_wait}s "
                  f"(other processes at {user:.0f}% CPU); going on", file=sys.stderr)
            return 1


def udp_drops(ports):
    out = {p: 0 for p in ports}
    try:
        with open("/proc/net/udp") as f:
            next(f)
            for l in f:
                v = l.split()
                port = int(v[1].split(":")[1], 16)
                if port in out:
                    out[port] += int(v[-1])
    except OSError:
        pass
    return out


def udp_rcvbuf_errors():
    try:
        with open("/proc/net/snmp") as f:
            udp = [l.split() for l in f if l.startswith("Udp:")]
        return int(udp[1][udp[0].index("RcvbufErrors")])
    except (OSError, ValueError, IndexError):
        return 0


# ------------------------------------------------------ Orbit's /metrics
def orbit_metrics(hostport):
    """{name{labels}: value} of Orbit's Prometheus text, orbit_* only."""
    try:
        st, body = http_get(hostport, "/metrics", timeout=5)
    except OSError:
        return {}
    if st != 200:
        return {}
    out = {}
    for l in body.decode(errors="replace").splitlines():
        if l.startswith("orbit_"):
            k, _, v = l.rpartition(" ")
            try:
                out[k] = float(v)
            except ValueError:
                pass
    return out


def metrics_delta(m0, m1):
    """Counters: increase; gauges (no _total suffix): value after."""
    d = {}
    for k, v in m1.items():
        name = k.split("{")[0]
        if name.endswith("_total"):
            inc = v - m0.get(k, 0.0)
            if inc:
                d[k] = inc
        else:
            d[k] = v
    return d


def orbit_active_calls(hostport, token, domain):
    try:
        st, body = http_get(hostport, f"/api/v1/tenants/{domain}/calls", token=token)
        if st != 200:
            return None, body[:300].decode(errors="replace")
        calls = json.loads(body).get("calls", [])
        return len(calls), calls
    except (OSError, ValueError) as e:
        return None, str(e)


def rtpengine_sessions(ctl, cli):
    if not cli:
        return None
    host, port = cli.rsplit(":", 1)
    try:
        out = subprocess.run([ctl, "-ip", host, "-port", port, "list", "numsessions"],
                             capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    for l in out.splitlines():
        if l.startswith("Current sessions total:"):
            return int(l.split(":")[1])
    return None


# -------------------------------------------------------------------- step
def parse_stat_csv(path):
    with open(path) as f:
        lines = [l.rstrip("\n") for l in f if l.strip()]
    if len(lines) < 2:
        return []
    hdr = lines[0].split(";")
    return [dict(zip(hdr, l.split(";"))) for l in lines[1:]]


def percentile(sorted_vals, q):
    if not sorted_vals:
        return None
    k = min(len(sorted_vals) - 1, max(0, int(round(q * (len(sorted_vals) - 1)))))
    return sorted_vals[k]


def stat_totals(path):
    try:
        rows = parse_stat_csv(path)
    except OSError:
        return {}
    if not rows:
        return {}
    last = rows[-1]
    g = lambda k: int(float(last.get(k, "0") or 0))
    return {"created": g("TotalCallCreated"), "successful": g("SuccessfulCall(C)"),
            "failed": g("FailedCall(C)"), "retransmissions": g("Retransmissions(C)"),
            "timeouts_recv": g("FailedTimeoutOnRecv(C)"),
            "failed_max_udp_retrans": g("FailedMaxUDPRetrans(C)"),
            "failed_unexpected": g("FailedUnexpectedMessage(C)"),
            "failed_regexp": g("FailedRegexpDoesntMatch(C)") + g("FailedRegexpHdrNotFound(C)"),
            "failed_call_rejected": g("FailedCallRejected(C)"),
            "dead_call_msgs": g("DeadCallMsgs(C)"),
            "out_of_call_msgs": g("OutOfCallMsgs(C)"),
            "watchdog_major": g("WatchdogMajor(C)")}


def parse_lat(path):
    """LAT lines -> list of (t0, t1, t2, t3, t4, t5, c_ip, m_port)."""
    out = []
    try:
        f = open(path, errors="replace")
    except OSError:
        return out
    with f:
        for l in f:
            # split on single spaces: sipp prints a variable holding 0 as an
            # empty string (a stamp whose microseconds are exactly 0)
            p = l.rstrip("\n").split(" ")
            if len(p) < 15 or p[0] != "LAT":
                continue
            num = lambda v: float(v) if v else 0.0
            try:
                ts = [num(p[1 + 2 * i]) + num(p[2 + 2 * i]) / 1e6 for i in range(6)]
                out.append((*ts, p[13], int(num(p[14]))))
            except ValueError:
                continue
    return out


def lat_stats(vals_ms):
    v = sorted(vals_ms)
    return {"p50": percentile(v, 0.5), "p90": percentile(v, 0.9),
            "p99": percentile(v, 0.99), "p999": percentile(v, 0.999),
            "max": v[-1] if v else None}


def analyze(stepdir, rate, calls, res, media_expect):
    """Fill `res` with the sipp-derived figures of one step directory."""
    uac = os.path.join(stepdir, "uac")
    uas = os.path.join(stepdir, "uas")
    res["uac"] = stat_totals(os.path.join(uac, "stat.csv"))
    res["uas"] = stat_totals(os.path.join(uas, "stat.csv"))
    lat = parse_lat(os.path.join(uac, "lat.log"))
    ok = len(lat)
    res["successful"] = ok
    res["successful_sipp"] = res["uac"].get("successful")
    if lat:
        first = min(x[0] for x in lat)
        last = max(x[3] for x in lat)
        span = max(1e-3, last - first)
        # achieved = successful calls / (first INVITE sent -> last 200 received)
        res["span_s"] = round(span, 3)
        res["achieved"] = round(ok / span, 1) if ok > 1 else 0.0
        # per-second set-ups (by the second the 200 arrived), steady state
        buckets = {}
        for x in lat:
            b = int(x[3] - first)
            buckets[b] = buckets.get(b, 0) + 1
        inner = [buckets.get(i, 0) for i in range(1, int(span))]
        res["per_second_min"] = min(inner) if inner else None
        res["per_second_median"] = statistics.median(inner) if inner else None
        res["setup_ms"] = lat_stats([(x[3] - x[0]) * 1000 for x in lat])
        res["invite200_ms"] = lat_stats([(x[3] - x[2]) * 1000 for x in lat])
        res["challenge_ms"] = lat_stats([(x[1] - x[0]) * 1000 for x in lat])
        res["bye_ms"] = lat_stats([(x[5] - x[4]) * 1000 for x in lat])
        res["hold_ms"] = lat_stats([(x[4] - x[3]) * 1000 for x in lat])
        # SDP of the 200: is the media anchored where it should be?
        ip, lo, hi = media_expect
        bad = [x for x in lat if x[6] != ip or not (lo <= x[7] <= hi)]
        res["sdp_unexpected"] = len(bad)
        res["sdp_ports_seen"] = [min(x[7] for x in lat), max(x[7] for x in lat)]
    else:
        res.update({"achieved": 0.0, "setup_ms": {}, "invite200_ms": {}, "bye_ms": {},
                    "sdp_unexpected": None})
    res["failure_pct"] = round((calls - ok) / calls * 100, 4) if calls else None
    res["sustained"] = bool(res.get("achieved", 0) >= 0.97 * rate
                            and res.get("failure_pct", 100) < 0.1)
    return res


def sipp_common(a):
    return ["-buff_size", "4194304", "-max_recv_loops", "100000",
            "-max_sched_loops", "100000", "-nostdin",
            "-trace_stat", "-stf", "stat.csv", "-fd", "1", "-trace_screen"]


def cmd_step(a):
    label = a.label or str(a.rate)
    stepdir = os.path.join(a.outdir, a.target, f"rep{a.rep}", label)
    uacdir, uasdir = os.path.join(stepdir, "uac"), os.path.join(stepdir, "uas")
    for d in (uacdir, uasdir):
        os.makedirs(d, exist_ok=True)
    shutil.copy(a.scenario, os.path.join(uacdir, os.path.basename(a.scenario)))
    shutil.copy(a.uas_scenario, os.path.join(uasdir, os.path.basename(a.uas_scenario)))
    calls = a.calls or a.rate * a.duration
    hold_s = a.hold_ms / 1000
    limit = a.limit or int(a.rate * (hold_s + 3)) + 500
    bound = a.duration + hold_s + a.recv_timeout_ms / 1000 + 15
    pin = (lambda c: ["taskset", "-c", str(a.uac_cpu)] + c) if a.uac_cpu is not None else (lambda c: c)

    uas_cmd = pin([a.sipp, "-sf", os.path.basename(a.uas_scenario),
                   "-i", "127.0.0.1", "-p", str(a.uas_port), "-t", "u1",
                   "-mp", str(a.uas_media_port),
                   "-timeout", f"{int(bound) + 20}s"] + sipp_common(a))
    uac_cmd = pin([a.sipp, a.server, "-sf", os.path.basename(a.scenario),
                   "-inf", a.users, "-i", "127.0.0.1", "-p", str(a.uac_port), "-t", "u1",
                   "-mp", str(a.uac_media_port),
                   "-r", str(a.rate), "-rp", "1000", "-m", str(calls), "-l", str(limit),
                   "-d", str(a.hold_ms),
                   "-auth_uri", a.domain,
                   "-recv_timeout", str(a.recv_timeout_ms),
                   "-timeout", f"{int(bound)}s",
                   "-default_behaviors", "none",
                   "-trace_logs", "-log_file", "lat.log"] + sipp_common(a))
    if a.trace_err:
        uac_cmd += ["-trace_err", "-error_file", "errors.log"]
        uas_cmd += ["-trace_err", "-error_file", "errors.log"]
    if a.trace_msg:
        uac_cmd += ["-trace_msg", "-message_file", "messages.log"]
        uas_cmd += ["-trace_msg", "-message_file", "messages.log"]
    with open(os.path.join(stepdir, "cmd.txt"), "w") as f:
        f.write("UAS: " + " ".join(uas_cmd) + "\nUAC: " + " ".join(uac_cmd) + "\n")

    srv_pids = []
    for p in a.server_pid or []:
        srv_pids += proc_tree(p)
    with open("/proc/loadavg") as f:
        loadavg = f.read().split()[0]
    srv_port = int(a.server.rsplit(":", 1)[1])
    ports = [srv_port, a.uac_port, a.uas_port]
    m0 = orbit_metrics(a.orbit_http) if a.orbit_http else {}

    uas_out = open(os.path.join(uasdir, "sipp.out"), "w")
    uas = subprocess.Popen(uas_cmd, cwd=uasdir, stdout=uas_out, stderr=subprocess.STDOUT,
                           stdin=subprocess.DEVNULL)
    # wait until the UAS has bound its port
    for _ in range(100):
        if udp_bound(a.uas_port) or uas.poll() is not None:
            break
        time.sleep(0.05)
    d0, e0 = udp_drops(ports), udp_rcvbuf_errors()
    s0, a0, w0 = proc_ticks(srv_pids), all_proc_ticks(), time.time()
    th0 = thread_ticks(srv_pids)
    uas_t0 = proc_ticks([uas.pid])
    uac_out = open(os.path.join(uacdir, "sipp.out"), "w")
    p = subprocess.Popen(uac_cmd, cwd=uacdir, stdout=uac_out, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL)
    hard = bound + 30
    killed = False
    s_win = None
    peak_fds = peak_rss = 0
    drops_seen = {}
    next_probe = 0.0
    while True:
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        now = time.time()
        if s_win is None and (pid or now - w0 >= a.duration):
            s_win, w_win = proc_ticks(srv_pids), now
            th_win = thread_ticks(srv_pids)
            uas_win = proc_ticks([uas.pid])
        if pid:
            break
        if now >= next_probe:
            next_probe = now + 0.5
            peak_fds = max(peak_fds, proc_fds(srv_pids))
            peak_rss = max(peak_rss, proc_rss_kb(srv_pids))
            for port, v in udp_drops(ports).items():  # sockets die with sipp
                drops_seen[port] = max(drops_seen.get(port, 0), v)
        if now - w0 > hard and not killed:
            os.kill(p.pid, signal.SIGKILL)
            killed = True
        time.sleep(0.05)
    p.returncode = os.waitstatus_to_exitcode(status)
    s1, a1, w1 = proc_ticks(srv_pids), all_proc_ticks(), time.time()
    d1, e1 = udp_drops(ports), udp_rcvbuf_errors()
    uas_t1 = proc_ticks([uas.pid])
    uac_out.close()

    # calls left in the PBX afterwards (after a short grace for the last BYEs)
    leftover = {}
    time.sleep(a.settle)
    if a.orbit_http:
        n, calls_list = orbit_active_calls(a.orbit_http, a.token, a.domain)
        leftover["orbit_calls_after_settle"] = n
        if n:
            with open(os.path.join(stepdir, "calls_left.json"), "w") as f:
                json.dump(calls_list, f, indent=1)
        # still there a while later? (e.g. 2xx never ACKed: Orbit gives up
        # after 64*T1 = 32 s; calls whose caller never sent BYE stay until
        # calls.rtp_timeout_s)
        t_wait0 = time.time()
        series = []
        while n and time.time() < t_wait0 + a.leak_wait:
            time.sleep(1)
            n, calls_list = orbit_active_calls(a.orbit_http, a.token, a.domain)
            series.append([round(time.time() - t_wait0, 1), n])
        leftover["orbit_calls_after_wait"] = n
        leftover["orbit_calls_wait_s"] = round(time.time() - t_wait0, 1)
        if series:
            leftover["orbit_calls_series"] = series[::max(1, len(series) // 20)]
        if n:
            with open(os.path.join(stepdir, "calls_left_after_wait.json"), "w") as f:
                json.dump(calls_list, f, indent=1)
    if a.rtpengine_cli:
        leftover["rtpengine_sessions_after_settle"] = rtpengine_sessions(a.rtpengine_ctl,
                                                                         a.rtpengine_cli)
    m1 = orbit_metrics(a.orbit_http) if a.orbit_http else {}

    # stop the UAS: SIGINT lets it write its final statistics
    if uas.poll() is None:
        uas.send_signal(signal.SIGINT)
        try:
            uas.wait(timeout=10)
        except subprocess.TimeoutExpired:
            uas.kill()
            uas.wait()
    uas_out.close()

    wall = w1 - w0
    srv_cpu = (s_win - s0) / CLK_TCK / (w_win - w0) * 100 if srv_pids else None
    srv_cpu_all = (s1 - s0) / CLK_TCK / wall * 100 if srv_pids else None
    uac_cpu = (ru.ru_utime + ru.ru_stime) / wall * 100
    uas_cpu = (uas_t1 - uas_t0) / CLK_TCK / wall * 100
    skip = set(srv_pids) | {p.pid, uas.pid, os.getpid()}
    o_user, o_kern = other_cpu(a0, a1, skip, wall)

    res = {"target": a.target, "rep": a.rep, "offered": a.rate, "duration": a.duration,
           "hold_ms": a.hold_ms, "calls_planned": calls, "sipp_rc": p.returncode,
           "killed": killed, "wall_s": round(wall, 2),
           "server_cpu_pct": None if srv_cpu is None else round(srv_cpu, 1),
           "server_cpu_pct_whole_step": None if srv_cpu_all is None else round(srv_cpu_all, 1),
           # CPU % per process/thread name over the offered window
           "server_cpu_by_thread": {k: round((v - th0.get(k, 0)) / CLK_TCK / (w_win - w0) * 100, 1)
                                    for k, v in sorted(th_win.items())
                                    if v - th0.get(k, 0) > 0},
           "server_peak_fds": peak_fds, "server_peak_rss_mb": round(peak_rss / 1024, 1),
           "uac_cpu_pct": round(uac_cpu, 1), "uas_cpu_pct": round(uas_cpu, 1),
           "uas_cpu_pct_window": round((uas_win - uas_t0) / CLK_TCK / (w_win - w0) * 100, 1),
           "other_cpu_pct": round(o_user, 1), "kernel_threads_cpu_pct": round(o_kern, 1),
           "noisy": o_user > a.noisy_pct, "loadavg_before": loadavg,
           "udp_drops": {str(pt): max(d1.get(pt, 0), drops_seen.get(pt, 0)) - d0.get(pt, 0)
                         for pt in ports},
           "udp_rcvbuf_errors_total": e1 - e0,
           "leftover": leftover,
           "orbit_metrics_delta": metrics_delta(m0, m1) if m1 else None}
    ip, lo, hi = a.media_ip, a.media_lo, a.media_hi
    res["media_expect"] = [ip, lo, hi]
    analyze(stepdir, a.rate, calls, res, (ip, lo, hi))
    with open(os.path.join(stepdir, "result.json"), "w") as f:
        json.dump(res, f, indent=1)
    if not a.label:
        with open(os.path.join(a.outdir, "results.jsonl"), "a") as f:
            f.write(json.dumps(res) + "\n")
    print(fmt_row(res))
    if a.expect_ok and (res.get("successful", 0) < calls or res.get("sdp_unexpected")):
        return 1
    return 0


def udp_bound(port):
    try:
        with open("/proc/net/udp") as f:
            next(f)
            for l in f:
                if int(l.split()[1].split(":")[1], 16) == port:
                    return True
    except OSError:
        pass
    return False


# ------------------------------------------------------------------ report
LABELS = {"orbit": "orbit (media anchored)",
          "kamailio_rtpe": "kamailio+rtpengine",
          "kamailio": "kamailio (no media)",
          "sipp": "sipp ceiling"}


def fmt_ms(v):
    if v is None:
        return "-"
    return f"{v:.1f}" if v < 10 else f"{v:.0f}"


HDR = (f"{'target':<14} {'rep':>3} {'offered':>7} {'achieved':>8} {'fail %':>7} "
       f"{'setup p50':>9} {'p99':>6} {'inv200 p50':>10} {'p99':>6} {'srv CPU%':>8} "
       f"{'uac%':>5} {'uas%':>5} {'other%':>6} {'retr':>6} {'left':>4}  ok")


def leftover_str(r):
    lo = r.get("leftover") or {}
    for k in ("orbit_calls_after_wait", "rtpengine_sessions_after_settle"):
        if lo.get(k) is not None:
            return str(lo[k])
    return "-"


def fmt_row(r):
    cpu = r.get("server_cpu_pct")
    s, i = r.get("setup_ms") or {}, r.get("invite200_ms") or {}
    retr = (r.get("uac") or {}).get("retransmissions", 0) + (r.get("uas") or {}).get("retransmissions", 0)
    return (f"{r['target']:<14} {r.get('rep', 1):>3} {r['offered']:>7} {r.get('achieved', 0):>8.0f} "
            f"{r.get('failure_pct', 100):>7.3f} {fmt_ms(s.get('p50')):>9} {fmt_ms(s.get('p99')):>6} "
            f"{fmt_ms(i.get('p50')):>10} {fmt_ms(i.get('p99')):>6} "
            f"{('-' if cpu is None else f'{cpu:.0f}'):>8} "
            f"{r.get('uac_cpu_pct', 0):>5.0f} {r.get('uas_cpu_pct', 0):>5.0f} "
            f"{r.get('other_cpu_pct', 0):>6.0f} {retr:>6} {leftover_str(r):>4}  "
            f"{'yes' if r.get('sustained') else 'NO'}"
            f"{'  (noisy)' if r.get('noisy') else ''}"
            f"{'  SDP!' if r.get('sdp_unexpected') else ''}")


def med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def load_rows(resdir):
    path = os.path.join(resdir, "results.jsonl")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(l) for l in f if l.strip()]


def cmd_report(a):
    rows = load_rows(a.resdir)
    out = ["Every step (one line per repeat):", HDR, "-" * len(HDR)]
    out += [fmt_row(r) for r in rows]
    order = []
    for r in rows:
        if r["target"] not in order:
            order.append(r["target"])
    groups = {}
    for r in rows:
        groups.setdefault((r["target"], r["offered"]), []).append(r)

    out += ["", "Medians over repeats (sustained = median achieved >= 97% of offered "
            "and median failures < 0.1%):",
            f"{'target':<22} {'offered':>7} {'n':>2} {'achieved':>8} {'fail %':>7} "
            f"{'failed calls':>12} {'setup p50':>9} {'p99':>6} {'inv200 p50':>10} {'p99':>6} "
            f"{'srv CPU%':>8} {'sust.':>5}  ok"]
    best = {}
    med_rows = []
    for t in order:
        for rate in sorted({r["offered"] for r in rows if r["target"] == t}):
            g = groups[(t, rate)]
            m = {"target": t, "offered": rate, "n": len(g),
                 "achieved": med([r.get("achieved") for r in g]),
                 "failure_pct": med([r.get("failure_pct") for r in g]),
                 "failed_calls": med([r["calls_planned"] - r.get("successful", 0) for r in g]),
                 "setup_p50": med([(r.get("setup_ms") or {}).get("p50") for r in g]),
                 "setup_p99": med([(r.get("setup_ms") or {}).get("p99") for r in g]),
                 "inv_p50": med([(r.get("invite200_ms") or {}).get("p50") for r in g]),
                 "inv_p99": med([(r.get("invite200_ms") or {}).get("p99") for r in g]),
                 "cpu": med([r.get("server_cpu_pct") for r in g]),
                 "sustained_reps": sum(1 for r in g if r.get("sustained")),
                 "noisy": sum(1 for r in g if r.get("noisy"))}
            m["sustained"] = bool(m["achieved"] is not None and m["achieved"] >= 0.97 * rate
                                  and m["failure_pct"] is not None and m["failure_pct"] < 0.1)
            med_rows.append(m)
            if m["sustained"]:
                best[t] = max(best.get(t, 0), rate)
            cpu = "-" if m["cpu"] is None else f"{m['cpu']:.0f}"
            out.append(f"{LABELS.get(t, t):<22} {rate:>7} {m['n']:>2} {m['achieved'] or 0:>8.0f} "
                       f"{m['failure_pct'] if m['failure_pct'] is not None else 100:>7.3f} "
                       f"{m['failed_calls']:>12.0f} {fmt_ms(m['setup_p50']):>9} "
                       f"{fmt_ms(m['setup_p99']):>6} {fmt_ms(m['inv_p50']):>10} "
                       f"{fmt_ms(m['inv_p99']):>6} {cpu:>8} "
                       f"{m['sustained_reps']}/{m['n']:<3}  {'yes' if m['sustained'] else 'NO'}"
                       f"{'  (noisy)' if m['noisy'] else ''}")
    out += ["", "Highest sustained rate (medians):"]
    tops = {t: max(r["offered"] for r in rows if r["target"] == t) for t in order}
    for t in order:
        b = best.get(t)
        note = "  (top of the ladder: real limit may be higher)" if b and b == tops[t] else ""
        out.append(f"  {LABELS.get(t, t):<22} {str(b) + '/s' if b else 'none':>8}{note}")
    out.append("")
    o = best.get("orbit")
    for ref in ("kamailio_rtpe", "kamailio", "sipp"):
        if ref in order:
            k = best.get(ref)
            if o and k:
                out.append(f"Orbit / {LABELS[ref]} (highest sustained): {o / k:.2f}")
            else:
                out.append(f"Orbit / {LABELS[ref]}: n/a (orbit={o or 'none'}, {ref}={k or 'none'})")
    # CPU per 1000 calls/s at the highest rate both sustained
    out.append("")
    out.append("Server CPU % per 1,000 calls/s (median, sustained steps):")
    for t in order:
        if t == "sipp":
            continue
        per = [m["cpu"] / m["offered"] * 1000 for m in med_rows
               if m["target"] == t and m["sustained"] and m["cpu"] is not None and m["offered"] >= 500]
        if per:
            out.append(f"  {LABELS.get(t, t):<22} {statistics.median(per):.0f} % of a core")
    left = [(r["target"], r["offered"], r.get("rep"), leftover_str(r)) for r in rows
            if leftover_str(r) not in ("-", "0")]
    out.append("")
    if left:
        out.append("Calls/sessions left active after a step (should be none):")
        for t, rate, rep, n in left:
            out.append(f"  {t} {rate}/s rep {rep}: {n}")
    else:
        out.append("Calls/sessions left active after steps: none")
    sdp_bad = [(r["target"], r["offered"], r.get("sdp_unexpected")) for r in rows
               if r.get("sdp_unexpected")]
    if sdp_bad:
        out.append("Steps whose 200 carried unexpected SDP (media not where expected):")
        out += [f"  {t} {rate}/s: {n} calls" for t, rate, n in sdp_bad]
    text = "\n".join(out)
    print(text)
    with open(os.path.join(a.resdir, "summary.txt"), "w") as f:
        f.write(text + "\n")
    with open(os.path.join(a.resdir, "medians.json"), "w") as f:
        json.dump({"medians": med_rows, "best": best}, f, indent=1)
    return 0


def cmd_reanalyze(a):
    rows = load_rows(a.resdir)
    for r in rows:
        stepdir = os.path.join(a.resdir, r["target"], f"rep{r.get('rep', 1)}", str(r["offered"]))
        exp = r.get("media_expect") or ["127.0.0.1", 0, 65535]
        analyze(stepdir, r["offered"], r["calls_planned"], r, exp)
    with open(os.path.join(a.resdir, "results.jsonl"), "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    return cmd_report(a)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)

    g = sub.add_parser("gen")
    g.add_argument("--out", required=True)
    g.add_argument("--callers", type=int, default=100)
    g.add_argument("--first-caller", type=int, default=20000)
    g.add_argument("--callees", type=int, default=100)
    g.add_argument("--first-callee", type=int, default=30000)
    g.add_argument("--domain", default="bench.test")
    g.add_argument("--pw-prefix", default="benchpw")

    w = sub.add_parser("wait-http")
    w.add_argument("hostport")
    w.add_argument("--path", default="/healthz")
    w.add_argument("--timeout", type=float, default=30)
    w.add_argument("--pid", type=int, default=0)

    s = sub.add_parser("seed-orbit")
    s.add_argument("hostport")
    s.add_argument("--token", required=True)
    s.add_argument("--domain", default="bench.test")
    s.add_argument("--numbers", required=True)
    s.add_argument("--pw-prefix", default="benchpw")

    rg = sub.add_parser("register")
    rg.add_argument("--server", required=True)
    rg.add_argument("--port", type=int, required=True)
    rg.add_argument("--users", required=True)
    rg.add_argument("--scenario", required=True)
    rg.add_argument("--outdir", required=True)
    rg.add_argument("--rate", type=int, default=200)
    rg.add_argument("--domain", default="bench.test")
    rg.add_argument("--cpu", type=int, default=None)
    rg.add_argument("--sipp", default="/usr/bin/sipp")

    st = sub.add_parser("step")
    st.add_argument("--target", required=True)
    st.add_argument("--rep", type=int, default=1)
    st.add_argument("--server", required=True, help="host:port the UAC sends to")
    st.add_argument("--server-pid", type=int, action="append",
                    help="process (tree) whose CPU counts as the server's; repeatable")
    st.add_argument("--rate", type=int, required=True)
    st.add_argument("--duration", type=int, required=True)
    st.add_argument("--hold-ms", type=int, default=1000)
    st.add_argument("--calls", type=int, default=0)
    st.add_argument("--limit", type=int, default=0)
    st.add_argument("--outdir", required=True)
    st.add_argument("--label", default="")
    st.add_argument("--scenario", required=True)
    st.add_argument("--uas-scenario", required=True)
    st.add_argument("--users", required=True)
    st.add_argument("--uac-port", type=int, required=True)
    st.add_argument("--uas-port", type=int, required=True)
    st.add_argument("--uac-media-port", type=int, default=47310)
    st.add_argument("--uas-media-port", type=int, default=47300)
    st.add_argument("--domain", default="bench.test")
    st.add_argument("--uac-cpu", type=int, default=None)
    st.add_argument("--recv-timeout-ms", type=int, default=5000)
    st.add_argument("--sipp", default="/usr/bin/sipp")
    st.add_argument("--noisy-pct", type=float, default=10.0)
    st.add_argument("--orbit-http", default="")
    st.add_argument("--token", default="")
    st.add_argument("--rtpengine-cli", default="")
    st.add_argument("--rtpengine-ctl", default="rtpengine-ctl")
    st.add_argument("--media-ip", default="127.0.0.1")
    st.add_argument("--media-lo", type=int, default=0)
    st.add_argument("--media-hi", type=int, default=65535)
    st.add_argument("--settle", type=float, default=3.0,
                    help="seconds after the UAC ends before calls left are counted")
    st.add_argument("--leak-wait", type=float, default=10.0,
                    help="if calls are left, wait up to this long for them to go")
    st.add_argument("--trace-err", action="store_true")
    st.add_argument("--trace-msg", action="store_true")
    st.add_argument("--expect-ok", action="store_true")

    q = sub.add_parser("quiet")
    q.add_argument("--threshold", type=float, default=10.0)
    q.add_argument("--seconds", type=int, default=3)
    q.add_argument("--max-wait", type=float, default=300)
    q.add_argument("--also-skip", type=int, action="append")

    r = sub.add_parser("report")
    r.add_argument("resdir")
    ra = sub.add_parser("reanalyze")
    ra.add_argument("resdir")

    a = ap.parse_args()
    fn = {"gen": cmd_gen, "wait-http": cmd_wait_http, "seed-orbit": cmd_seed_orbit,
          "register": cmd_register, "step": cmd_step, "quiet": cmd_quiet,
          "report": cmd_report, "reanalyze": cmd_reanalyze}[a.cmd]
    sys.exit(fn(a) or 0)


if __name__ == "__main__":
    main()
