"""Part 5 of bench/park: notification fan-out at scale (`fanout`).

Every extension of the first EXTENSIONS parkers is a phone with five keys:
its own Visual Park (`park-<ext>`), its group's Visual Group Park
(`parkgroup-<id>`), and the BLF of the next three members of its group.
Groups have GROUP_SIZE members. Calls are parked at a rate, each retrieved
DELAY_MS later as in the other parts, consecutive parks on members of
different groups, so every group sees parks, retrieves and BLF changes at
the same time (part 4 is the other extreme: every park in one group). One
UDP socket per phone; all its subscriptions share it, as a desk phone's do.

Latency of a park at a watcher: kernel arrival time (SO_TIMESTAMPNS) of the
first NOTIFY of a park or park-group subscription whose body lists the
parked caller's dialog, minus the parker's REFER stamp for that extension.
Per park, "last" is the largest of these over every watcher that saw it:
the time from the park to the last NOTIFY on the wire.
"""

import json
import os
import random
import re
import selectors
import socket
import struct
import time

import bench as b
import sipwire

RE_PARAM = re.compile(r'(\w+)="?([^",]*)"?')


class Sub:
    def __init__(self, ruri, kind):
        self.ruri, self.kind = ruri, kind
        self.callid = f"f{random.getrandbits(64):x}@bench"
        self.tag = f"{random.getrandbits(32):x}"
        self.cseq = 0
        self.state = "new"


class Phone:
    """One phone: a UDP socket and its subscriptions (by Call-ID)."""

    def __init__(self, user, pw, domain, server, port, rcvbuf):
        self.user, self.pw, self.domain, self.server = user, pw, domain, server
        self.s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.s.setsockopt(socket.SOL_SOCKET, b.SO_TIMESTAMPNS, 1)
        self.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.s.bind(("127.0.0.1", port))
        self.s.setblocking(False)
        self.port = port
        self.subs = {}
        self.notifies = []   # (t, kind, call-ids appearing first)
        self.seen = set()
        self.answered = 0

    def add(self, ruri, kind):
        sub = Sub(ruri, kind)
        self.subs[sub.callid] = sub
        return sub

    def subscribe(self, sub, auth=None, expires=600):
        sub.cseq += 1
        lines = [f"SUBSCRIBE {sub.ruri} SIP/2.0",
                 f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};branch=z9hG4bK{random.getrandbits(48):x};rport",
                 "Max-Forwards: 70",
                 f"From: <sip:{self.user}@{self.domain}>;tag={sub.tag}",
                 f"To: <{sub.ruri}>", f"Call-ID: {sub.callid}", f"CSeq: {sub.cseq} SUBSCRIBE",
                 f"Contact: <sip:{self.user}@127.0.0.1:{self.port}>",
                 "Event: dialog", "Accept: application/dialog-info+xml",
                 f"Expires: {expires}"]
        if auth:
            lines.append(auth)
        lines.append("Content-Length: 0")
        self.s.sendto(("\r\n".join(lines) + "\r\n\r\n").encode(), self.server)

    def challenge(self, sub, hdr):
        p = dict(RE_PARAM.findall(hdr))
        realm, nonce = p["realm"], p["nonce"]
        cnonce, nc = f"{random.getrandbits(32):08x}", "00000001"
        ha1 = b.md5(f"{self.user}:{realm}:{self.pw}")
        resp = b.md5(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{b.md5('SUBSCRIBE:' + sub.ruri)}")
        opaque = f', opaque="{p["opaque"]}"' if "opaque" in p else ""
        return (f'Proxy-Authorization: Digest username="{self.user}", realm="{realm}", '
                f'nonce="{nonce}", uri="{sub.ruri}", response="{resp}", algorithm=MD5, '
                f'qop=auth, nc={nc}, cnonce="{cnonce}"{opaque}')

    def handle(self, record):
        while True:
            try:
                data, anc, _, _ = self.s.recvmsg(65535, socket.CMSG_SPACE(16))
            except BlockingIOError:
                return
            t = None
            for lvl, typ, cd in anc:
                if lvl == socket.SOL_SOCKET and typ == b.SO_TIMESTAMPNS:
                    sec, ns = struct.unpack("qq", cd[:16])
                    t = sec + ns / 1e9
            self.on_message(data, t if t is not None else time.time(), record)

    def on_message(self, data, t, record):
        first, lines, body = sipwire.split(data)
        sub = self.subs.get(sipwire.header(lines, b"call-id").decode(errors="replace"))
        if first.startswith(b"SIP/2.0"):
            if sub is None:
                return
            code = int(first.split()[1])
            if code in (401, 407) and sub.state == "new":
                h = sipwire.header(lines, b"proxy-authenticate") or sipwire.header(lines, b"www-authenticate")
                sub.state = "auth"
                self.subscribe(sub, self.challenge(sub, h.decode()))
            elif 200 <= code < 300:
                sub.state = "active"
            elif code >= 300:
                sub.state = f"failed {code}"
        elif first.startswith(b"NOTIFY"):
            self.s.sendto(sipwire.ok_for(lines), self.server)
            self.answered += 1
            if record and sub is not None and sub.kind != "blf":
                # Only a call's first appearance per key matters, and
                # keeping every body's list costs memory at this rate.
                new = [c for c in sipwire.call_ids(body) if (sub.kind, c) not in self.seen]
                for c in new:
                    self.seen.add((sub.kind, c))
                if new:
                    self.notifies.append((t, sub.kind, new))


def pump(sel, seconds, record, until=None):
    end = time.time() + seconds
    while time.time() < end:
        for key, _ in sel.select(0.05):
            key.data.handle(record)
        if until is not None and until():
            return


def delete_groups(api):
    st, js, raw = api.req("GET", api.t("/call-park-groups"))
    if st != 200:
        raise RuntimeError(f"GET call-park-groups: HTTP {st} {raw[:300]!r}")
    for g in js.get("items", []):
        api.req("DELETE", api.t(f"/call-park-groups/{g['id']}"))


def cmd_fanout(a):
    numbers = b.load_numbers(a)
    api = b.Api(a.http, a.token, a.domain)
    api.park_settings(recall_time_s=900)
    exts = numbers["parkers"][:a.extensions]
    label = a.label or f"fanout-{len(exts)}x{a.keys}-{a.rate}"
    d = os.path.join(a.outdir, label)
    os.makedirs(d, exist_ok=True)
    delete_groups(api)
    group_of = {}
    groups = [exts[i:i + a.group_size] for i in range(0, len(exts), a.group_size)]
    for n, members in enumerate(groups):
        st, js, raw = api.req("POST", api.t("/call-park-groups"),
                              {"name": f"fanout-{n}", "members": members})
        if st not in (200, 201):
            raise RuntimeError(f"call-park-groups: HTTP {st} {raw[:300]!r}")
        for m in members:
            group_of[m] = (js["id"], members)
    server = (a.server.split(":")[0], int(a.server.split(":")[1]))
    sel = selectors.DefaultSelector()
    phones = []
    for i, u in enumerate(exts):
        p = Phone(u, f"{a.pw_prefix}{u}", a.domain, server, a.watcher_port + i, 1 << 20)
        gid, members = group_of[u]
        p.add(f"sip:park-{u}@{a.domain}", "park")
        p.add(f"sip:parkgroup-{gid}@{a.domain}", "group")
        at = members.index(u)
        for k in range(1, a.keys - 1):
            p.add(f"sip:{members[(at + k) % len(members)]}@{a.domain}", "blf")
        phones.append(p)
        sel.register(p.s, selectors.EVENT_READ, p)
    subs = [(p, s) for p in phones for s in p.subs.values()]
    t0 = time.time()
    # Paced: SUBSCRIBE, 407, SUBSCRIBE, 200 and the first NOTIFY per key.
    for i in range(0, len(subs), a.subscribe_batch):
        for p, s in subs[i:i + a.subscribe_batch]:
            p.subscribe(s)
        pump(sel, a.subscribe_batch / a.subscribe_rate, False)
    pump(sel, 15, False, until=lambda: all(s.state != "new" and s.state != "auth" for _, s in subs))
    active = sum(1 for _, s in subs if s.state == "active")
    states = {}
    for _, s in subs:
        states[s.state] = states.get(s.state, 0) + 1
    b.log(f"{active}/{len(subs)} subscriptions active in {time.time() - t0:.1f} s: {states}")
    pump(sel, 3, False)
    count = a.rate * a.duration
    # Consecutive parks go to different groups (the first member of each
    # group, then the second of each...): every group sees about rate /
    # groups parks a second, as offices parking independently would.
    order = [g[j] for j in range(a.group_size) for g in groups if j < len(g)]
    b.write_callers(os.path.join(d, "callers.csv"), a, numbers, order, count, lambda i: a.sink_port)
    b.write_retrievers(os.path.join(d, "retrievers.csv"), a, numbers, order, count, a.sink_port)
    sink = b.sink_socket(a.sink_port)
    cyc_s = a.delay_ms / 1000 + a.hold_ms / 1000
    bound = a.duration + cyc_s + a.recv_timeout_ms / 1000 + 20
    park = b.parker_uas(a, os.path.join(d, "parker"), bound + 10)
    time.sleep(0.5)
    c0 = b.proc_ticks(a.server_pid)
    w0 = time.time()
    caller = b.uac(a, "caller", os.path.join(d, "caller"), os.path.join(d, "callers.csv"),
                   a.rate, count, a.caller_port, a.caller_media_port, bound,
                   a.recv_timeout_ms + int(cyc_s * 1000), count + 100)
    time.sleep(a.delay_ms / 1000)
    retr = b.uac(a, "retriever", os.path.join(d, "retriever"), os.path.join(d, "retrievers.csv"),
                 a.rate, count, a.retriever_port, a.retriever_media_port, bound,
                 a.recv_timeout_ms, count + 100, hold_ms=a.hold_ms)
    pump(sel, bound + 10, True,
         until=lambda: retr.p.poll() is not None and caller.p.poll() is not None)
    cpu = (b.proc_ticks(a.server_pid) - c0) / b.CLK_TCK / (time.time() - w0) * 100
    pump(sel, 1, True)
    retr.stop()
    caller.stop()
    park.stop()
    sink.close()
    for p, s in subs:
        s.state = "new"
        p.subscribe(s, expires=0)
    pump(sel, 3, False)
    refers = {}
    for line in park.lines("PARK"):
        refers.setdefault(line[1], []).append(b.tv(line[2], line[3]))
    for v in refers.values():
        v.sort()
    with open(os.path.join(d, "notifies.jsonl"), "w") as f:
        for p in phones:
            for t, kind, ids in p.notifies:
                f.write(json.dumps({"w": p.user, "t": t, "kind": kind, "ids": ids}) + "\n")
    pairs, unmatched = [], 0
    last = {}          # call-id -> (refer time, latest first-arrival, watchers)
    for p in phones:
        seen = set()
        for t, kind, ids in sorted(p.notifies):
            for cid in ids:
                if (kind, cid) in seen:
                    continue
                seen.add((kind, cid))
                try:
                    k = int(cid.split("-", 1)[0])
                except ValueError:
                    unmatched += 1
                    continue
                ext = order[(k - 1) % len(order)]
                cands = [x for x in refers.get(ext, []) if x <= t]
                if not cands or t - cands[-1] > 1.5:
                    unmatched += 1
                    continue
                ms = (t - cands[-1]) * 1000
                pairs.append(ms)
                r, worst, n = last.get(cid, (cands[-1], 0.0, 0))
                last[cid] = (r, max(worst, ms), n + 1)
    per_park = [w for _, w, _ in last.values()]
    watchers_per_park = [n for _, _, n in last.values()]
    leak = b.leak_check(api, a.settle, a.leak_wait)
    res = {"kind": "fanout", "label": label, "extensions": len(exts), "keys": a.keys,
           "group_size": a.group_size, "groups": len(groups), "subscriptions": len(subs),
           "subscriptions_active": active, "rate": a.rate, "duration": a.duration,
           "parks_planned": count, "parks_logged": sum(len(v) for v in refers.values()),
           "caller_ok": caller.count("Successful call"), "retriever_ok": retr.count("Successful call"),
           "parks_seen": len(last), "watchers_per_park": b.stats(watchers_per_park),
           "notifies_answered": sum(p.answered for p in phones),
           "server_cpu_pct": round(cpu, 1), "unmatched": unmatched,
           "park_to_notify_ms": b.stats(pairs), "park_to_last_notify_ms": b.stats(per_park)}
    res.update(leak)
    b.result(a, res)
    print(fmt_fanout(res))
    return 0


def fmt_fanout(r):
    l, w = r["park_to_last_notify_ms"], r["park_to_notify_ms"]
    return (f"fanout {r['extensions']} phones x {r['keys']} keys ({r['subscriptions_active']} active), "
            f"{r['rate']} parks/s: park->last NOTIFY p50/p99/max {l.get('p50')}/{l.get('p99')}/{l.get('max')} ms "
            f"over {l.get('n')} parks; per watcher p50/p99 {w.get('p50')}/{w.get('p99')} ms; "
            f"unmatched {r['unmatched']}")


def report_rows(rows):
    fo = [r for r in rows if r["kind"] == "fanout"]
    if not fo:
        return []
    out = ["### Notification fan-out (phones × keys, groups)", "",
           "| phones × keys (active) | groups of | parks/s | parks seen | watchers per park p50 | park→last NOTIFY p50 / p99 / max ms | park→NOTIFY per watcher p50 / p99 ms | Orbit CPU % | unmatched | left |",
           "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in fo:
        l, w = r["park_to_last_notify_ms"], r["park_to_notify_ms"]
        out.append(f"| {r['extensions']:,} × {r['keys']} ({r['subscriptions_active']:,}) | {r['group_size']} | "
                   f"{r['rate']} | {r['parks_seen']:,} of {r['parks_planned']:,} | {r['watchers_per_park'].get('p50')} | "
                   f"{l.get('p50')} / {l.get('p99')} / {l.get('max')} | {w.get('p50')} / {w.get('p99')} | "
                   f"{r['server_cpu_pct']} | {r['unmatched']} | {r['parked_left']}/{r['calls_left']} |")
    out.append("")
    return out
