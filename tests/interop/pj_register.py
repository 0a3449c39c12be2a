#!/usr/bin/env python3
"""One PJSIP (pjsua2) phone that registers to Orbit, run as its own process.

pjsua2 wants one Endpoint per process and can crash at interpreter exit, so the
pytest process runs this script as a subprocess and reads the JSON lines it
prints on stdout (one object per line):

  {"event": "registered", "code": 200, ...}   after the REGISTER transaction ended
                                               (also for failures: check "code")
  {"event": "unregistered", "code": 200, ...} after "unregister" was read on stdin
  {"event": "done", ...}                       last line; then os._exit()

With --hold the script waits (bounded by --hold-timeout) for a line on stdin:
"unregister" (send REGISTER Expires: 0) or "quit". Every JSON object carries the
Authorization / WWW-Authenticate headers seen so far, so a test can tell which
digest algorithm PJSIP picked.

Single-threaded as the practical notes advise: threadCnt=0, mainThreadOnly,
events pumped with libHandleEvents(), null audio device.
"""

import argparse
import json
import os
import re
import select
import sys
import time

import pjsua2 as pj

AUTH_RE = re.compile(r"^(Authorization|WWW-Authenticate|User-Agent):[^\r\n]*", re.M | re.I)
STATUS_RE = re.compile(r"^SIP/2\.0 \d{3}[^\r\n]*", re.M)


class Collector(pj.LogWriter):
    def __init__(self, path):
        pj.LogWriter.__init__(self)
        self.fh = open(path, "a") if path else None
        self.authorization = []
        self.challenges = []
        self.statuses = []

    def write(self, entry):
        msg = entry.msg
        if self.fh:
            self.fh.write(msg if msg.endswith("\n") else msg + "\n")
            self.fh.flush()
        for m in AUTH_RE.finditer(msg):
            line = m.group(0).strip()
            if line.lower().startswith("authorization:"):
                self.authorization.append(line)
            elif line.lower().startswith("www-authenticate:"):
                self.challenges.append(line)
        for m in STATUS_RE.finditer(msg):
            self.statuses.append(m.group(0).strip())


class Phone(pj.Account):
    def __init__(self):
        pj.Account.__init__(self)
        self.events = []

    def onRegState(self, prm):
        self.events.append({"code": prm.code, "reason": prm.reason, "expiration": prm.expiration})


def emit(obj, log):
    obj["authorization"] = list(log.authorization)
    obj["challenges"] = list(log.challenges)
    obj["statuses"] = list(log.statuses)
    algs = []
    for a in log.authorization:
        m = re.search(r"algorithm=\"?([A-Za-z0-9-]+)", a)
        algs.append(m.group(1).upper() if m else "MD5")
    obj["auth_algorithms"] = algs
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def pump(ep, seconds, until=None):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        ep.libHandleEvents(10)
        if until is not None and until():
            return True
    return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True, help="host:port of Orbit (outbound proxy)")
    ap.add_argument("--domain", required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--expires", type=int, default=300)
    ap.add_argument("--transport", choices=["udp", "tcp"], default="udp")
    ap.add_argument("--user-agent", default="PJSIP pjsua2-python (orbit-interop)")
    ap.add_argument("--timeout", type=float, default=15.0, help="bound for each transaction wait")
    ap.add_argument("--hold", action="store_true", help="after registering, wait for stdin command")
    ap.add_argument("--hold-timeout", type=float, default=60.0)
    ap.add_argument("--log", default=None, help="file for PJSIP's log (messages included)")
    args = ap.parse_args()

    ep = pj.Endpoint()
    ep.libCreate()
    cfg = pj.EpConfig()
    cfg.uaConfig.threadCnt = 0
    cfg.uaConfig.mainThreadOnly = True
    cfg.uaConfig.userAgent = args.user_agent
    cfg.uaConfig.maxCalls = 2
    log = Collector(args.log)
    cfg.logConfig.writer = log
    cfg.logConfig.level = 5
    cfg.logConfig.consoleLevel = 5
    cfg.logConfig.msgLogging = True
    cfg.medConfig.clockRate = 8000
    cfg.medConfig.noVad = True
    ep.libInit(cfg)

    tcfg = pj.TransportConfig()
    tcfg.port = 0
    tcfg.boundAddress = "127.0.0.1"
    ttype = pj.PJSIP_TRANSPORT_TCP if args.transport == "tcp" else pj.PJSIP_TRANSPORT_UDP
    ep.transportCreate(ttype, tcfg)
    ep.libStart()
    ep.audDevManager().setNullDev()

    acfg = pj.AccountConfig()
    acfg.idUri = f"sip:{args.user}@{args.domain}"
    acfg.regConfig.registrarUri = f"sip:{args.domain}"
    acfg.regConfig.timeoutSec = args.expires
    acfg.regConfig.retryIntervalSec = 0
    acfg.regConfig.firstRetryIntervalSec = 0
    proxy = f"sip:{args.server};lr"
    if args.transport == "tcp":
        proxy += ";transport=tcp"
    acfg.sipConfig.proxies.append(proxy)
    acfg.sipConfig.authCreds.append(pj.AuthCredInfo("digest", "*", args.user, 0, args.password))
    acfg.natConfig.contactRewriteUse = 0
    acfg.natConfig.viaRewriteUse = 0
    acfg.natConfig.sdpNatRewriteUse = 0

    phone = Phone()
    phone.create(acfg)
    ok = pump(ep, args.timeout, lambda: len(phone.events) > 0)
    ev = phone.events[-1] if phone.events else {"code": None, "reason": "timeout", "expiration": None}
    try:
        active = phone.getInfo().regIsActive
    except pj.Error:
        active = False
    emit({"event": "registered", "ok": ok, "active": active, **ev}, log)

    if args.hold and ok:
        deadline = time.monotonic() + args.hold_timeout
        cmd = None
        while time.monotonic() < deadline and cmd is None:
            ep.libHandleEvents(10)
            r, _, _ = select.select([sys.stdin], [], [], 0)
            if r:
                line = sys.stdin.readline()
                cmd = line.strip() or "quit"
        if cmd == "unregister":
            n = len(phone.events)
            phone.setRegistration(False)
            got = pump(ep, args.timeout, lambda: len(phone.events) > n)
            ev = phone.events[-1] if got else {"code": None, "reason": "timeout", "expiration": None}
            try:
                active = phone.getInfo().regIsActive
            except pj.Error:
                active = None
            emit({"event": "unregistered", "ok": got, "active": active, **ev}, log)

    emit({"event": "done"}, log)
    try:
        phone.shutdown()
        pump(ep, 0.3)
    except Exception:  # noqa: BLE001
        pass
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
