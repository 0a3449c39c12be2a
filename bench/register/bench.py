#!/usr/bin/env python3
"""Helper for bench/register/run.sh (python3 standard library only).

Sub-commands:
  gen         write the sipp users CSV and the Kamailio db_text tables
  wait-http   poll an HTTP URL until it answers 200
  seed-orbit  create the tenant and the extensions over Orbit's REST API
  step        run one sipp UAC step against a target, measure, write JSON
  report      print the results table of a run directory
"""

import argparse
import hashlib
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")
DBTEXT_SCHEMA = "/usr/share/kamailio/dbtext/kamailio"


# --------------------------------------------------------------------- gen
def cmd_gen(a):
    users = range(a.first, a.first + a.count)
    os.makedirs(a.out, exist_ok=True)
    csv = os.path.join(a.out, "users.csv")
    with open(csv, "w") as f:
        f.write("SEQUENTIAL\n")
        for n in users:
            f.write(f"{n};[authentication username={n} password={a.pw_prefix}{n}];{a.domain}\n")

    db = os.path.join(a.out, "dbtext")
    os.makedirs(db, exist_ok=True)
    realm = a.domain
    with open(os.path.join(db, "subscriber"), "w") as f:
        f.write("id(int,auto) username(string) domain(string) password(string) "
                "ha1(string) ha1b(string) \n")
        for i, n in enumerate(users, 1):
            u, p = str(n), f"{a.pw_prefix}{n}"
            ha1 = hashlib.md5(f"{u}:{realm}:{p}".encode()).hexdigest()
            ha1b = hashlib.md5(f"{u}@{a.domain}:{realm}:{p}".encode()).hexdigest()
            f.write(f"{i}:{u}:{a.domain}:{p}:{ha1}:{ha1b}\n")
    # htable-format copy of the credentials (kamailio.cfg WITH_HTABLE_AUTH)
    with open(os.path.join(db, "htable"), "w") as f:
        f.write("id(int,auto) key_name(string) key_type(int) value_type(int) "
                "key_value(string) expires(int) \n")
        for i, n in enumerate(users, 1):
            f.write(f"{i}:{n}:0:0:{a.pw_prefix}{n}:0\n")
    # empty location table + version table, taken from the installed schema
    for t in ("location", "version"):
        shutil.copy(os.path.join(DBTEXT_SCHEMA, t), os.path.join(db, t))
    with open(os.path.join(db, "version"), "a") as f:
        f.write("0:htable:2\n")
    print(f"generated {a.count} users ({a.first}..{a.first + a.count - 1}) in {a.out}")


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
                text = r.read()
                return r.status, text
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
    bad = 0
    for n in range(a.first, a.first + a.count):
        st, body = post(f"/api/v1/tenants/{a.domain}/extensions",
                        {"number": str(n), "password": f"{a.pw_prefix}{n}",
                         "display_name": f"U {n}"})
        if st not in (201, 409):
            bad += 1
            if bad <= 5:
                print(f"extension {n}: HTTP {st} {body[:300]!r}", file=sys.stderr)
    dt = time.time() - t0
    print(f"seeded tenant {a.domain} + {a.count} extensions in {dt:.1f}s, {bad} errors")
    return 1 if bad else 0


# -------------------------------------------------------------------- step
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
    """utime+stime of the given processes (each covers all its threads)."""
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


PF_KTHREAD = 0x00200000


def proc_io(pids):
    """(write syscalls, bytes written to storage) summed over the processes."""
    sysw = wb = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/io") as f:
                kv = dict(l.split(": ") for l in f.read().splitlines())
            sysw += int(kv.get("syscw", 0))
            wb += int(kv.get("write_bytes", 0))
        except (OSError, ValueError):
            continue
    return sysw, wb


def all_proc_ticks():
    """{pid: (utime+stime, is_kernel_thread)} for every process."""
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
    """CPU % used between two all_proc_ticks() snapshots by processes not in
    `skip`, split into (user-space processes, kernel threads)."""
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
    deadline, quiet, last = time.time() + a.max_wait, 0, None
    a0 = all_proc_ticks()
    while True:
        time.sleep(1)
        a1 = all_proc_ticks()
        user, _ = other_cpu(a0, a1, skip, 1.0)
        a0, last = a1, user
        quiet = quiet + 1 if user <= a.threshold else 0
        if quiet >= a.seconds:
            return 0
        if time.time() > deadline:
            print(f"machine still busy after {a.max_wait}s "
                  f"(other processes at {user:.0f}% CPU); going on", file=sys.stderr)
            return 1


def udp_drops(ports):
    """{port: drops} for the given local UDP ports (/proc/net/udp, IPv4)."""
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


def parse_stat_csv(path):
    with open(path) as f:
        lines = [l.rstrip("\n") for l in f if l.strip()]
    if len(lines) < 2:
        return []
    hdr = lines[0].split(";")
    rows = []
    for l in lines[1:]:
        v = l.split(";")
        rows.append(dict(zip(hdr, v)))
    return rows


def epoch(field):
    # "2024-01-01\t10:00:00.123456\t1704103200.123456"
    return float(field.split("\t")[-1])


def percentile(sorted_vals, q):
    if not sorted_vals:
        return None
    k = min(len(sorted_vals) - 1, max(0, int(round(q * (len(sorted_vals) - 1)))))
    return sorted_vals[k]


def analyze(stepdir, rate, calls, res):
    """Fill `res` with sipp's figures for one step directory."""
    rows = []
    try:
        rows = parse_stat_csv(os.path.join(stepdir, "stat.csv"))
    except OSError:
        pass
    if rows:
        last = rows[-1]
        g = lambda k: int(float(last.get(k, "0") or 0))
        created, ok = g("TotalCallCreated"), g("SuccessfulCall(C)")
        # end = first statistics row showing the final success count (sipp
        # writes one more row when it exits, a few hundred ms later)
        t_start = epoch(last["StartTime"])
        t_end = min(epoch(r["CurrentTime"]) for r in rows
                    if int(float(r.get("SuccessfulCall(C)", "0") or 0)) == ok)
        span = max(1e-3, t_end - t_start)
        # per-second successful-call rates, for information (steady state)
        per = []
        for r0, r1 in zip(rows, rows[1:]):
            dt = epoch(r1["CurrentTime"]) - epoch(r0["CurrentTime"])
            if dt > 0.5:
                per.append((int(r1["SuccessfulCall(C)"]) - int(r0["SuccessfulCall(C)"])) / dt)
        per_sorted = sorted(per)
        res.update({
            "created": created, "successful": ok, "failed": g("FailedCall(C)"),
            "unfinished": created - ok - g("FailedCall(C)"),
            "retransmissions": g("Retransmissions(C)"),
            "timeouts_recv": g("FailedTimeoutOnRecv(C)"),
            "failed_max_udp_retrans": g("FailedMaxUDPRetrans(C)"),
            "failed_unexpected": g("FailedUnexpectedMessage(C)"),
            "watchdog_major": g("WatchdogMajor(C)"),
            "span_s": round(span, 3),
            # achieved = successful registrations / (start -> last success row)
            "achieved": round(ok / span, 1),
            "per_second_median": round(percentile(per_sorted, 0.5), 1) if per else None,
            # failure % = calls not ending in 200 (failed, aborted or unfinished)
            "failure_pct": round((calls - ok) / calls * 100, 4) if calls else None,
        })
    else:
        res.update({"created": 0, "successful": 0, "achieved": 0.0,
                    "failure_pct": 100.0, "error": "no stat.csv"})

    # latency: rtd 1 (first REGISTER sent -> 200 received), ms resolution
    lat = []
    for fn in os.listdir(stepdir):
        if fn.endswith("_rtt.csv"):
            with open(os.path.join(stepdir, fn)) as f:
                next(f, None)
                for l in f:
                    parts = l.split(";")
                    if len(parts) >= 3 and parts[2].strip() == "1":
                        try:
                            lat.append(float(parts[1]))
                        except ValueError:
                            pass
    lat.sort()
    res["lat_samples"] = len(lat)
    res["p50_ms"] = percentile(lat, 0.50)
    res["p99_ms"] = percentile(lat, 0.99)
    res["p999_ms"] = percentile(lat, 0.999)
    res["max_ms"] = lat[-1] if lat else None

    res["sustained"] = bool(res.get("achieved", 0) >= 0.97 * rate
                            and res.get("failure_pct", 100) < 0.1)
    return res


def cmd_step(a):
    stepdir = os.path.join(a.outdir, a.target, a.label or str(a.rate))
    os.makedirs(stepdir, exist_ok=True)
    scen = os.path.basename(a.scenario)
    shutil.copy(a.scenario, os.path.join(stepdir, scen))
    calls = a.calls or a.rate * a.duration
    limit = a.limit or max(1000, a.rate * 2)
    cmd = [a.sipp, a.server,
           "-sf", scen, "-inf", a.users,
           "-i", "127.0.0.1", "-p", str(a.uac_port), "-t", "u1",
           "-r", str(a.rate), "-rp", "1000", "-m", str(calls), "-l", str(limit),
           "-buff_size", "4194304",
           # digest uri = Request-URI (sipp's default would be sip:<remote ip:port>);
           # sipp puts "sip:" in front of the value itself
           "-auth_uri", a.domain,
           "-recv_timeout", str(a.recv_timeout_ms),
           "-timeout", f"{a.duration + a.recv_timeout_ms // 1000 + 10}s",
           "-max_recv_loops", "100000", "-max_sched_loops", "100000",
           "-default_behaviors", "none",
           "-nostdin",
           "-trace_stat", "-stf", "stat.csv", "-fd", "1",
           "-trace_rtt", "-rtt_freq", "1000",
           "-trace_screen"]
    if a.trace_err:
        cmd += ["-trace_err", "-error_file", "errors.log"]
    if a.uac_cpu is not None:
        cmd = ["taskset", "-c", str(a.uac_cpu)] + cmd
    with open(os.path.join(stepdir, "cmd.txt"), "w") as f:
        f.write(" ".join(cmd) + "\n")

    srv_pids = proc_tree(a.server_pid) if a.server_pid else []
    with open("/proc/loadavg") as f:
        loadavg = f.read().split()[0]
    srv_port = int(a.server.rsplit(":", 1)[1])
    d0, e0 = udp_drops([srv_port, a.uac_port]), udp_rcvbuf_errors()
    io0 = proc_io(srv_pids)
    s0, a0, w0 = proc_ticks(srv_pids), all_proc_ticks(), time.time()
    out = open(os.path.join(stepdir, "sipp.out"), "w")
    p = subprocess.Popen(cmd, cwd=stepdir, stdout=out, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL)
    hard = a.duration + a.recv_timeout_ms / 1000 + 30
    killed = False
    uac_drops, next_probe = 0, 0.0
    s_win = None  # server ticks when the offered window (duration) ends
    while True:
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        now = time.time()
        if s_win is None and (pid or now - w0 >= a.duration):
            s_win, w_win = proc_ticks(srv_pids), now
        if pid:
            break
        if now >= next_probe:  # the UAC socket's counter dies with sipp
            uac_drops = max(uac_drops, udp_drops([a.uac_port])[a.uac_port])
            next_probe = now + 0.25
        if time.time() - w0 > hard and not killed:
            os.kill(p.pid, signal.SIGKILL)
            killed = True
        time.sleep(0.05)
    p.returncode = os.waitstatus_to_exitcode(status)
    s1, a1, w1 = proc_ticks(srv_pids), all_proc_ticks(), time.time()
    d1, e1 = udp_drops([srv_port, a.uac_port]), udp_rcvbuf_errors()
    io1 = proc_io(srv_pids)
    out.close()
    wall = w1 - w0
    # server CPU over the offered window [start, start + duration] (the
    # tail spent waiting for late answers/timeouts would dilute it)
    srv_cpu = (s_win - s0) / CLK_TCK / (w_win - w0) * 100 if srv_pids else None
    srv_cpu_all = (s1 - s0) / CLK_TCK / wall * 100 if srv_pids else None
    uac_cpu = (ru.ru_utime + ru.ru_stime) / wall * 100
    # CPU used meanwhile by every other process on the machine (other jobs,
    # kernel threads such as ksoftirqd); processes that exited are not seen
    skip = set(srv_pids) | {p.pid, os.getpid()}
    o_user, o_kern = other_cpu(a0, a1, skip, wall)

    res = {"target": a.target, "offered": a.rate, "duration": a.duration,
           "calls_planned": calls, "sipp_rc": p.returncode, "killed": killed,
           "wall_s": round(wall, 2),
           "server_cpu_pct": None if srv_cpu is None else round(srv_cpu, 1),
           "server_cpu_pct_whole_step": None if srv_cpu_all is None else round(srv_cpu_all, 1),
           "uac_cpu_pct": round(uac_cpu, 1),
           # CPU of everything else: user-space processes (other jobs on the
           # machine: the step is flagged noisy above NOISY_PCT) and kernel
           # threads (ksoftirqd etc., partly the loopback traffic itself)
           "other_cpu_pct": round(o_user, 1),
           "kernel_threads_cpu_pct": round(o_kern, 1),
           "noisy": o_user > a.noisy_pct,
           "loadavg_before": loadavg,
           # datagrams dropped by the kernel on the server's / sipp's socket
           # (receive buffer full); the per-socket counter resets when a
           # socket is closed: the UAC value is the last one seen while
           # sipp ran (sampled every 0.25 s, may miss the final instants)
           "server_udp_drops": d1[srv_port] - d0[srv_port],
           "uac_udp_drops": uac_drops,
           "udp_rcvbuf_errors_total": e1 - e0,
           # server's write-type syscalls (incl. UDP sends) and bytes it
           # caused to be written to storage (/proc/<pid>/io)
           "server_write_syscalls": io1[0] - io0[0],
           "server_storage_write_bytes": io1[1] - io0[1], "server_pids": len(srv_pids)}

    analyze(stepdir, a.rate, calls, res)
    with open(os.path.join(stepdir, "result.json"), "w") as f:
        json.dump(res, f, indent=1)
    if not a.label:
        with open(os.path.join(a.outdir, "results.jsonl"), "a") as f:
            f.write(json.dumps(res) + "\n")
    print(fmt_row(res))
    if a.expect_ok and res.get("successful", 0) < calls:
        return 1
    return 0


# ------------------------------------------------------------------ report
HDR = (f"{'target':<10} {'offered/s':>9} {'achieved/s':>10} {'fail %':>7} "
       f"{'p50 ms':>6} {'p99 ms':>6} {'srv CPU%':>8} {'uac CPU%':>8} "
       f"{'other%':>6} {'kern%':>5} {'retrans':>7}  ok")


def fmt_ms(v):
    if v is None:
        return "-"
    return "<1" if v < 1 else f"{v:.0f}"


def fmt_row(r):
    cpu = r.get("server_cpu_pct")
    return (f"{r['target']:<10} {r['offered']:>9} {r.get('achieved', 0):>10.0f} "
            f"{r.get('failure_pct', 100):>7.3f} {fmt_ms(r.get('p50_ms')):>6} "
            f"{fmt_ms(r.get('p99_ms')):>6} "
            f"{('-' if cpu is None else f'{cpu:.0f}'):>8} "
            f"{r.get('uac_cpu_pct', 0):>8.0f} {r.get('other_cpu_pct', 0):>6.0f} "
            f"{r.get('kernel_threads_cpu_pct', 0):>5.0f} "
            f"{r.get('retransmissions', 0):>7}  {'yes' if r.get('sustained') else 'NO'}"
            f"{'  (noisy)' if r.get('noisy') else ''}")


def cmd_reanalyze(a):
    """Recompute the sipp-derived figures of a run from its step directories
    (e.g. after a change of formula); CPU/drop figures are kept as recorded."""
    path = os.path.join(a.resdir, "results.jsonl")
    with open(path) as f:
        rows = [json.loads(l) for l in f if l.strip()]
    for r in rows:
        stepdir = os.path.join(a.resdir, r["target"], str(r["offered"]))
        analyze(stepdir, r["offered"], r["calls_planned"], r)
        with open(os.path.join(stepdir, "result.json"), "w") as f:
            json.dump(r, f, indent=1)
    with open(path, "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    return cmd_report(a)


def cmd_report(a):
    path = os.path.join(a.resdir, "results.jsonl")
    rows = []
    if os.path.exists(path):
        with open(path) as f:
            rows = [json.loads(l) for l in f if l.strip()]
    out = []
    out.append(HDR)
    out.append("-" * len(HDR))
    best, tops, noisy = {}, {}, {}
    for r in rows:
        out.append(fmt_row(r))
        t = r["target"]
        noisy[t] = noisy.get(t, 0) + (1 if r.get("noisy") else 0)
        tops[t] = max(tops.get(t, 0), r["offered"])
        if r.get("sustained"):
            best[t] = max(best.get(t, 0), r["offered"])
    out.append("")
    out.append("Highest sustained rate (>=97% of offered achieved, <0.1% failures):")
    order = []
    for r in rows:
        if r["target"] not in order:
            order.append(r["target"])
    for t in order:
        b = best.get(t)
        note = ""
        if b and b == tops[t]:
            note = "  (top of the ladder: real limit may be higher)"
        if noisy.get(t):
            note += f"  [{noisy[t]} noisy step(s): other jobs used CPU, rerun]"
        out.append(f"  {t:<10} {str(b) + '/s' if b else 'none':>10}{note}")
    o, s = best.get("orbit"), best.get("sipp")
    out.append("")
    for k_name in ("kamailio", "kamailio_ht"):
        if k_name not in order:
            continue
        k = best.get(k_name)
        label = f"Orbit / {k_name} (highest sustained)"
        if o and k:
            out.append(f"{label}: {o / k:.2f}")
        else:
            out.append(f"{label}: n/a (orbit={o or 'n/a'}, {k_name}={k or 'n/a'})")
    if s:
        for t in order:
            if t != "sipp" and best.get(t):
                out.append(f"{t} / sipp ceiling: {best[t] / s:.2f}")
    text = "\n".join(out)
    print(text)
    with open(os.path.join(a.resdir, "summary.txt"), "w") as f:
        f.write(text + "\n")
    return 0


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)

    g = sub.add_parser("gen")
    g.add_argument("--out", required=True)
    g.add_argument("--first", type=int, default=10000)
    g.add_argument("--count", type=int, default=3000)
    g.add_argument("--domain", default="bench.test")
    g.add_argument("--pw-prefix", default="benchpw")

    w = sub.add_parser("wait-http")
    w.add_argument("hostport")
    w.add_argument("--path", default="/healthz")
    w.add_argument("--timeout", type=float, default=30)
    w.add_argument("--pid", type=int, default=0, help="give up if it exits")

    s = sub.add_parser("seed-orbit")
    s.add_argument("hostport")
    s.add_argument("--token", default="secret")
    s.add_argument("--domain", default="bench.test")
    s.add_argument("--first", type=int, default=10000)
    s.add_argument("--count", type=int, default=3000)
    s.add_argument("--pw-prefix", default="benchpw")

    st = sub.add_parser("step")
    st.add_argument("--target", required=True)
    st.add_argument("--server", required=True, help="host:port of the SIP target")
    st.add_argument("--server-pid", type=int, default=0)
    st.add_argument("--rate", type=int, required=True)
    st.add_argument("--duration", type=int, required=True)
    st.add_argument("--calls", type=int, default=0)
    st.add_argument("--limit", type=int, default=0)
    st.add_argument("--outdir", required=True)
    st.add_argument("--label", default="", help="sub-dir name; labelled steps "
                    "(smoke tests) are not added to results.jsonl")
    st.add_argument("--scenario", required=True)
    st.add_argument("--users", required=True)
    st.add_argument("--uac-port", type=int, default=47070)
    st.add_argument("--domain", default="bench.test")
    st.add_argument("--uac-cpu", type=int, default=None)
    st.add_argument("--recv-timeout-ms", type=int, default=5000)
    st.add_argument("--sipp", default="/usr/bin/sipp")
    st.add_argument("--noisy-pct", type=float, default=10.0)
    st.add_argument("--trace-err", action="store_true",
                    help="keep sipp's error log (unbounded size: smoke tests only)")
    st.add_argument("--expect-ok", action="store_true",
                    help="exit 1 unless every planned call succeeded")

    q = sub.add_parser("quiet")
    q.add_argument("--threshold", type=float, default=10.0)
    q.add_argument("--seconds", type=int, default=3)
    q.add_argument("--max-wait", type=float, default=300)

    r = sub.add_parser("report")
    r.add_argument("resdir")
    ra = sub.add_parser("reanalyze")
    ra.add_argument("resdir")

    a = ap.parse_args()
    fn = {"gen": cmd_gen, "wait-http": cmd_wait_http, "seed-orbit": cmd_seed_orbit,
          "step": cmd_step, "quiet": cmd_quiet, "report": cmd_report,
          "reanalyze": cmd_reanalyze}[a.cmd]
    sys.exit(fn(a) or 0)


if __name__ == "__main__":
    main()
