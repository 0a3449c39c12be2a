#!/usr/bin/env python3
"""Several PJSIP (pjsua2) phones on one endpoint, run as one subprocess.

pjsua2 wants one Endpoint per process and may crash at interpreter exit, so tests
run this script as a subprocess (see phones.py for the driver class). Every phone
is a pjsua2 Account; all share one UDP transport on 127.0.0.1:--port.

Single-threaded as the practical notes advise: threadCnt=0, mainThreadOnly=True,
events pumped with libHandleEvents(), null audio device, clock rate 8000, only
PCMU/PCMA (plus telephone-event, which PJSIP always offers).

Phones:  --phone name=a,user=101,password=pw,domain=acme.test,tone=440
  keys:  name (required), user (required), password, domain (default 127.0.0.1),
         display, register=yes|no (default: yes when a password is given),
         registrar (default sip:<domain>), expires (300), tone (Hz, 0 = silent;
         default 440), auto_answer=<code> (e.g. 200, 486, 180), answer_delay_ms (0),
         ring=yes|no (send 180 before a delayed auto answer; default yes),
         hold_tx=yes|no (keep sending the tone while this phone holds; default no),
         xfer=accept|reject (incoming REFER; default accept),
         xfer_hangup=yes|no (hang up the transferor leg on a final 2xx NOTIFY; default no)
Options: --port N (UDP on 127.0.0.1), --rtp-port N / --rtp-range N (media ports),
         --proxy sip:127.0.0.1:5060;lr (outbound proxy for every phone), --log FILE,
         --max-seconds S (the process quits by itself after S seconds).

Protocol: one JSON object per line on stdin (commands), one per line on stdout
(events, flushed; every event also has "t", seconds since the script started).
Calls are named by a serial number "call" unique within the process (pjsua's own
call ids are reused, so they are only reported as "pj_id"). Where a command takes
an optional "call", the default is the phone's most recent live call. Every command
may carry an "id" (any JSON value) that is echoed in its reply:
  -> {"event": "reply", "id": 1, "cmd": "<cmd>", "ok": true, ...result fields}
  -> {"event": "reply", "id": 1, "cmd": "<cmd>", "ok": false, "error": "..."}

Commands (result fields of the reply after "=>"):
  {"cmd": "ping"}
  {"cmd": "register", "phone": "a"}             => phone   (then a "registered" event)
  {"cmd": "unregister", "phone": "a"}           => phone   (then an "unregistered" event)
  {"cmd": "call", "phone": "a", "to": "sip:102@127.0.0.1:45001", "headers": {"X-H": "v"}}
                                                => phone, call
  {"cmd": "answer", "phone": "b", "code": 200, "call": N}   => phone, call, code
        (code 180/183 provisional, 2xx answers, >= 300 rejects; without "call": the newest
         ringing incoming call)
  {"cmd": "hangup", "phone": "a", "call": N, "code": 486, "all": false} => phone, calls, call
  {"cmd": "hold", "phone": "a", "call": N}      => phone, call   (re-INVITE a=sendonly)
  {"cmd": "unhold", "phone": "a", "call": N}    => phone, call   (re-INVITE a=sendrecv)
  {"cmd": "xfer", "phone": "a", "to": "sip:...", "call": N}  => phone, call, to  (blind REFER)
  {"cmd": "xfer_replaces", "phone": "a", "call": N, "other": M} => phone, call, other
        (attended: REFER on `call` whose Refer-To names `other`'s remote party with
         Replaces=<other's dialog>; defaults: oldest live call / newest other live call)
  {"cmd": "dtmf", "phone": "a", "digits": "12#", "call": N}   => phone, call  (RFC 2833)
  {"cmd": "record_start", "phone": "b", "path": "/tmp/x.wav", "call": N}
                                                => phone, call, path, connected, media
  {"cmd": "record_stop", "phone": "b", "call": N}  => phone, call, path, bytes
        (replies after the recorder was released and events pumped: the WAV is complete)
  {"cmd": "state", "phone": "a", "all": false}  => calls: [{phone, call, pj_id, state,
        origin, media, tone, recording, remote_uri, local_uri, call_id, code, reason, role,
        connect_s, remote_rtp, local_rtp, src_rtp, codec, dir, rx_pkt, tx_pkt}],
        registrations: {name: {code, reason, expiration, active} | null}
  {"cmd": "quit"}   => (then hangs up everything, unregisters, "bye", os._exit(0));
                       EOF on stdin and --max-seconds do the same.

Events:
  {"event": "ready", "port", "rtp_port", "pid", "phones": {name: {user, domain, uri, register, tone}}}
  {"event": "fatal", "error", "bind": true}        (could not bind --port; exit code 3)
  {"event": "registered" | "unregistered", "phone", "code", "reason", "expiration", "active"}
  {"event": "incoming_call", "phone", "call", "pj_id", "call_id", "from", "to", "pai",
   "request_uri", "src", "headers": {Name: [values]}, "sdp"}
  {"event": "call_state", "phone", "call", "pj_id", "state", "code", "reason", "role",
   "origin", "call_id", "remote_uri", "local_uri"[, "parent"]}
        state: CALLING INCOMING EARLY CONNECTING CONFIRMED DISCONNECTED;
        origin: outgoing | incoming | transfer (made for a REFER) | replace (INVITE w/ Replaces);
        parent: the call that caused a transfer/replace call
  {"event": "media_state", "phone", "call", "pj_id", "status", "tone", "recording",
   "remote_rtp", "local_rtp", "codec", "dir", ...}
        status: ACTIVE LOCAL_HOLD REMOTE_HOLD NONE ERROR (tone and recorder re-attached)
  {"event": "transfer_request", "phone", "call", "to", "accepted", "new_call"}
  {"event": "transfer_status", "phone", "call", "code", "reason", "final"}
  {"event": "replace_request", "phone", "call", "new_call", "code"}
  {"event": "replaced", "phone", "call", "new_call", "new_pj_id"}
  {"event": "dtmf", "phone", "call", "digit"}
  {"event": "warning" | "error", ...}, {"event": "timeout"}, {"event": "stdin_closed"},
  {"event": "bye"}
"""

import argparse
import json
import os
import random
import select
import sys
import time
import traceback

import pjsua2 as pj

T0 = time.monotonic()

STATE_NAMES = {
    pj.PJSIP_INV_STATE_NULL: "NULL",
    pj.PJSIP_INV_STATE_CALLING: "CALLING",
    pj.PJSIP_INV_STATE_INCOMING: "INCOMING",
    pj.PJSIP_INV_STATE_EARLY: "EARLY",
    pj.PJSIP_INV_STATE_CONNECTING: "CONNECTING",
    pj.PJSIP_INV_STATE_CONFIRMED: "CONFIRMED",
    pj.PJSIP_INV_STATE_DISCONNECTED: "DISCONNECTED",
}
MEDIA_NAMES = {
    pj.PJSUA_CALL_MEDIA_NONE: "NONE",
    pj.PJSUA_CALL_MEDIA_ACTIVE: "ACTIVE",
    pj.PJSUA_CALL_MEDIA_LOCAL_HOLD: "LOCAL_HOLD",
    pj.PJSUA_CALL_MEDIA_REMOTE_HOLD: "REMOTE_HOLD",
    pj.PJSUA_CALL_MEDIA_ERROR: "ERROR",
}
DIR_NAMES = {
    pj.PJMEDIA_DIR_NONE: "none",
    pj.PJMEDIA_DIR_ENCODING: "sendonly",
    pj.PJMEDIA_DIR_DECODING: "recvonly",
    pj.PJMEDIA_DIR_ENCODING_DECODING: "sendrecv",
}

APP = None  # the App instance (callbacks reach it through this)


def emit(obj):
    obj.setdefault("t", round(time.monotonic() - T0, 3))
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def emit_error(where, exc):
    emit({"event": "error", "where": where, "error": f"{type(exc).__name__}: {exc}",
          "trace": traceback.format_exc()[-2000:]})


def parse_headers(whole_msg):
    """Request line + headers (unfolded) of a raw SIP message; body returned apart."""
    text = whole_msg.replace("\r\n", "\n")
    head, _, body = text.partition("\n\n")
    lines = head.split("\n")
    first = lines[0] if lines else ""
    unfolded = []
    for ln in lines[1:]:
        if ln[:1] in (" ", "\t") and unfolded:
            unfolded[-1] += " " + ln.strip()
        else:
            unfolded.append(ln)
    headers = {}
    for ln in unfolded:
        name, sep, value = ln.partition(":")
        if not sep:
            continue
        headers.setdefault(name.strip(), []).append(value.strip())
    return first, headers, body


def header(headers, *names):
    low = {k.lower(): v for k, v in headers.items()}
    for n in names:
        v = low.get(n.lower())
        if v:
            return v[0]
    return None


class Logger(pj.LogWriter):
    def __init__(self, path):
        pj.LogWriter.__init__(self)
        self.fh = open(path, "a") if path else None

    def write(self, entry):
        if self.fh:
            msg = entry.msg
            self.fh.write(msg if msg.endswith("\n") else msg + "\n")
            self.fh.flush()


class PCall(pj.Call):
    def __init__(self, phone, call_id=pj.PJSUA_INVALID_ID, origin="outgoing", parent=None):
        pj.Call.__init__(self, phone, call_id)
        self.phone = phone
        self.serial = APP.next_serial()
        self.origin = origin
        self.parent = parent
        self.state = "NULL"
        self.media_status = "NONE"
        self.aud = None  # current AudioMedia (invalid after a re-INVITE changed the stream)
        self.tone_on = False
        self.recorder = None
        self.record_path = None
        self.created = time.monotonic()
        self.last_info = None
        APP.calls[self.serial] = self

    # --- helpers
    def base(self):
        d = {"phone": self.phone.name, "call": self.serial}
        try:
            d["pj_id"] = self.getId()
        except Exception:  # noqa: BLE001
            pass
        return d

    def live(self):
        return self.state not in ("DISCONNECTED",)

    def attach_media(self):
        """(Re-)connect tone and recorder to the call's current AudioMedia."""
        try:
            ci = self.getInfo()
        except pj.Error:
            return
        aud = None
        status = "NONE"
        for mi in ci.media:
            if mi.type != pj.PJMEDIA_TYPE_AUDIO:
                continue
            status = MEDIA_NAMES.get(mi.status, str(mi.status))
            if mi.status in (pj.PJSUA_CALL_MEDIA_ACTIVE, pj.PJSUA_CALL_MEDIA_REMOTE_HOLD,
                             pj.PJSUA_CALL_MEDIA_LOCAL_HOLD):
                try:
                    aud = self.getAudioMedia(mi.index)
                except pj.Error:
                    aud = None
            break
        self.media_status = status
        self.aud = aud
        self.tone_on = False
        if aud is None:
            return
        tone = self.phone.tone
        send_tone = status != "LOCAL_HOLD" or self.phone.opts["hold_tx"]
        if tone is not None:
            try:
                if send_tone:
                    tone.startTransmit(aud)
                    self.tone_on = True
                else:
                    tone.stopTransmit(aud)
            except pj.Error as e:
                emit_error("tone", e)
        if self.recorder is not None:
            try:
                aud.startTransmit(self.recorder)
            except pj.Error as e:
                emit_error("recorder", e)

    def stream_info(self):
        out = {}
        if self.aud is None:
            return out
        try:
            ci = self.getInfo()
            for mi in ci.media:
                if mi.type == pj.PJMEDIA_TYPE_AUDIO:
                    si = self.getStreamInfo(mi.index)
                    out["remote_rtp"] = si.remoteRtpAddress
                    out["codec"] = si.codecName
                    out["dir"] = DIR_NAMES.get(si.dir, str(si.dir))
                    try:
                        ti = self.getMedTransportInfo(mi.index)
                        out["local_rtp"] = ti.localRtpName
                        out["src_rtp"] = ti.srcRtpName
                    except pj.Error:
                        pass
                    try:
                        st = self.getStreamStat(mi.index)
                        out["rx_pkt"] = st.rtcp.rxStat.pkt
                        out["tx_pkt"] = st.rtcp.txStat.pkt
                    except pj.Error:
                        pass
                    break
        except pj.Error:
            pass
        return out

    # --- callbacks
    def onCallState(self, prm):
        try:
            ci = self.getInfo()
            self.last_info = ci
            self.state = STATE_NAMES.get(ci.state, str(ci.state))
            ev = {"event": "call_state", **self.base(), "state": self.state,
                  "code": ci.lastStatusCode, "reason": ci.lastReason,
                  "role": "caller" if ci.role == pj.PJSIP_ROLE_UAC else "callee",
                  "origin": self.origin, "call_id": ci.callIdString,
                  "remote_uri": ci.remoteUri, "local_uri": ci.localUri}
            if self.parent is not None:
                ev["parent"] = self.parent
            if self.state == "DISCONNECTED":
                self.aud = None
                self.media_status = "NONE"
            emit(ev)
            if self.state == "DISCONNECTED" and self.recorder is not None:
                pass  # kept until record_stop (or quit) finalizes the file
        except Exception as e:  # noqa: BLE001
            emit_error("onCallState", e)

    def onCallMediaState(self, prm):
        try:
            self.attach_media()
            emit({"event": "media_state", **self.base(), "status": self.media_status,
                  "tone": self.tone_on, "recording": self.recorder is not None,
                  **self.stream_info()})
        except Exception as e:  # noqa: BLE001
            emit_error("onCallMediaState", e)

    def onCallTransferRequest(self, prm):
        try:
            accept = self.phone.opts["xfer"] == "accept"
            ev = {"event": "transfer_request", **self.base(), "to": prm.dstUri, "accepted": accept}
            if accept:
                prm.statusCode = 202
                newc = PCall(self.phone, origin="transfer", parent=self.serial)
                prm.newCall = newc
                ev["new_call"] = newc.serial
            else:
                prm.statusCode = 603
            emit(ev)
        except Exception as e:  # noqa: BLE001
            emit_error("onCallTransferRequest", e)

    def onCallTransferStatus(self, prm):
        try:
            emit({"event": "transfer_status", **self.base(), "code": int(prm.statusCode),
                  "reason": prm.reason, "final": bool(prm.finalNotify)})
            prm.cont = True
            if prm.finalNotify and 200 <= int(prm.statusCode) < 300 and self.phone.opts["xfer_hangup"]:
                APP.later(0.0, lambda: self._safe_hangup())
        except Exception as e:  # noqa: BLE001
            emit_error("onCallTransferStatus", e)

    def _safe_hangup(self):
        try:
            if self.live():
                self.hangup(pj.CallOpParam(True))
        except pj.Error:
            pass

    def onCallReplaceRequest(self, prm):
        try:
            newc = PCall(self.phone, origin="replace", parent=self.serial)
            prm.newCall = newc
            self.pending_replace = newc
            emit({"event": "replace_request", **self.base(), "new_call": newc.serial,
                  "code": int(prm.statusCode)})
        except Exception as e:  # noqa: BLE001
            emit_error("onCallReplaceRequest", e)

    def onCallReplaced(self, prm):
        try:
            newc = getattr(self, "pending_replace", None)
            self.pending_replace = None
            if newc is None:
                newc = PCall(self.phone, prm.newCallId, origin="replace", parent=self.serial)
            prm.newCall = newc
            emit({"event": "replaced", **self.base(), "new_call": newc.serial,
                  "new_pj_id": prm.newCallId})
        except Exception as e:  # noqa: BLE001
            emit_error("onCallReplaced", e)

    def onDtmfDigit(self, prm):
        try:
            emit({"event": "dtmf", **self.base(), "digit": prm.digit})
        except Exception as e:  # noqa: BLE001
            emit_error("onDtmfDigit", e)


class Phone(pj.Account):
    def __init__(self, opts):
        pj.Account.__init__(self)
        self.opts = opts
        self.name = opts["name"]
        self.tone = None
        self.reg_mode = "registered"
        self.last_reg = None

    def onRegState(self, prm):
        try:
            try:
                active = self.getInfo().regIsActive
            except pj.Error:
                active = None
            self.last_reg = {"code": prm.code, "reason": prm.reason, "expiration": prm.expiration,
                             "active": active}
            emit({"event": self.reg_mode, "phone": self.name, **self.last_reg})
        except Exception as e:  # noqa: BLE001
            emit_error("onRegState", e)

    def onIncomingCall(self, prm):
        try:
            call = PCall(self, prm.callId, origin="incoming")
            first, headers, body = parse_headers(prm.rdata.wholeMsg)
            ruri = first.split(" ")[1] if first.count(" ") >= 2 else first
            emit({"event": "incoming_call", "phone": self.name, "call": call.serial,
                  "pj_id": prm.callId, "call_id": header(headers, "Call-ID", "i"),
                  "from": header(headers, "From", "f"), "to": header(headers, "To", "t"),
                  "pai": header(headers, "P-Asserted-Identity"), "request_uri": ruri,
                  "src": prm.rdata.srcAddress, "headers": headers, "sdp": body})
            code = self.opts.get("auto_answer")
            if code:
                code = int(code)
                delay = int(self.opts.get("answer_delay_ms") or 0) / 1000.0
                if delay > 0 and code >= 200 and self.opts["ring"]:
                    APP.later(0.0, lambda: APP.answer_call(call, 180))
                APP.later(delay, lambda: APP.answer_call(call, code))
        except Exception as e:  # noqa: BLE001
            emit_error("onIncomingCall", e)


class CmdError(Exception):
    pass


def yes(v):
    return str(v).lower() in ("1", "yes", "true", "on", "y")


def parse_phone(spec):
    opts = {}
    for part in spec.split(","):
        if not part.strip():
            continue
        k, sep, v = part.partition("=")
        if not sep:
            raise SystemExit(f"bad --phone part {part!r} (want key=value)")
        opts[k.strip()] = v.strip()
    for req in ("name", "user"):
        if req not in opts:
            raise SystemExit(f"--phone {spec!r}: {req}= is required")
    opts.setdefault("domain", "127.0.0.1")
    opts["register"] = yes(opts.get("register", "yes" if opts.get("password") else "no"))
    opts["ring"] = yes(opts.get("ring", "yes"))
    opts["hold_tx"] = yes(opts.get("hold_tx", "no"))
    opts["xfer_hangup"] = yes(opts.get("xfer_hangup", "no"))
    opts["xfer"] = opts.get("xfer", "accept")
    opts["tone"] = float(opts.get("tone", 440))
    return opts


class App:
    def __init__(self, args):
        self.args = args
        self.serial = 0
        self.calls = {}
        self.phones = {}
        self.timers = []  # (due, fn)
        self.quitting = False
        self.inbuf = b""

    def next_serial(self):
        self.serial += 1
        return self.serial

    def later(self, delay_s, fn):
        self.timers.append((time.monotonic() + delay_s, fn))

    def run_timers(self):
        if not self.timers:
            return
        now = time.monotonic()
        due = [t for t in self.timers if t[0] <= now]
        if not due:
            return
        self.timers = [t for t in self.timers if t[0] > now]
        for _, fn in due:
            try:
                fn()
            except Exception as e:  # noqa: BLE001
                emit_error("timer", e)

    def pump(self, seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.ep.libHandleEvents(10)

    # --- setup
    def start(self):
        a = self.args
        self.ep = ep = pj.Endpoint()
        ep.libCreate()
        cfg = pj.EpConfig()
        cfg.uaConfig.threadCnt = 0
        cfg.uaConfig.mainThreadOnly = True
        cfg.uaConfig.maxCalls = 16
        cfg.uaConfig.userAgent = a.user_agent
        self.logger = Logger(a.log)
        cfg.logConfig.writer = self.logger
        cfg.logConfig.level = a.log_level
        cfg.logConfig.consoleLevel = a.log_level
        cfg.logConfig.msgLogging = True
        cfg.medConfig.clockRate = 8000
        cfg.medConfig.sndClockRate = 8000
        cfg.medConfig.noVad = True
        cfg.medConfig.ecTailLen = 0
        cfg.medConfig.threadCnt = 1
        ep.libInit(cfg)

        tcfg = pj.TransportConfig()
        tcfg.port = a.port
        tcfg.boundAddress = "127.0.0.1"
        try:
            ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, tcfg)
        except pj.Error as e:
            emit({"event": "fatal", "error": f"cannot bind UDP 127.0.0.1:{a.port}: {e.info()}",
                  "bind": True})
            sys.stdout.flush()
            os._exit(3)
        ep.libStart()
        ep.audDevManager().setNullDev()

        for ci in ep.codecEnum2():
            cid = ci.codecId
            if cid.startswith("PCMU/"):
                ep.codecSetPriority(cid, 255)
            elif cid.startswith("PCMA/"):
                ep.codecSetPriority(cid, 254)
            else:
                ep.codecSetPriority(cid, 0)

        for spec in a.phone:
            self.add_phone(parse_phone(spec))

        emit({"event": "ready", "port": a.port, "rtp_port": a.rtp_port, "pid": os.getpid(),
              "phones": {n: {"user": p.opts["user"], "domain": p.opts["domain"],
                             "uri": f"sip:{p.opts['user']}@127.0.0.1:{a.port}",
                             "register": p.opts["register"], "tone": p.opts["tone"]}
                         for n, p in self.phones.items()}})

    def add_phone(self, o):
        a = self.args
        acfg = pj.AccountConfig()
        disp = o.get("display")
        uri = f"sip:{o['user']}@{o['domain']}"
        acfg.idUri = f'"{disp}" <{uri}>' if disp else uri
        if o["register"] or o.get("registrar"):
            acfg.regConfig.registrarUri = o.get("registrar") or f"sip:{o['domain']}"
        acfg.regConfig.registerOnAdd = bool(o["register"])
        acfg.regConfig.timeoutSec = int(o.get("expires", 300))
        acfg.regConfig.retryIntervalSec = 0
        acfg.regConfig.firstRetryIntervalSec = 0
        if a.proxy:
            acfg.sipConfig.proxies.append(a.proxy)
        if o.get("password"):
            acfg.sipConfig.authCreds.append(
                pj.AuthCredInfo("digest", "*", o.get("auth_user", o["user"]), 0, o["password"]))
        acfg.natConfig.contactRewriteUse = 0
        acfg.natConfig.viaRewriteUse = 0
        acfg.natConfig.sdpNatRewriteUse = 0
        acfg.natConfig.iceEnabled = False
        acfg.mediaConfig.transportConfig.port = a.rtp_port
        acfg.mediaConfig.transportConfig.portRange = a.rtp_range
        acfg.mediaConfig.transportConfig.boundAddress = "127.0.0.1"
        ph = Phone(o)
        if o["tone"] > 0:
            tg = pj.ToneGenerator()
            tg.createToneGenerator(8000, 1)
            td = pj.ToneDesc()
            td.freq1 = int(o["tone"])
            td.freq2 = 0
            td.on_msec = 30000  # 16-bit field: at most 32767
            td.off_msec = 0
            td.volume = 0
            tv = pj.ToneDescVector()
            tv.append(td)
            tg.play(tv, True)
            ph.tone = tg
        ph.create(acfg)
        self.phones[o["name"]] = ph
        return ph

    # --- lookups
    def phone(self, cmd):
        name = cmd.get("phone")
        if name is None and len(self.phones) == 1:
            name = next(iter(self.phones))
        if name not in self.phones:
            raise CmdError(f"unknown phone {name!r} (have {sorted(self.phones)})")
        return self.phones[name]

    def calls_of(self, ph, live_only=True):
        return [c for c in self.calls.values()
                if c.phone is ph and (c.live() or not live_only) and c.state != "NULL"]

    def pick_call(self, ph, serial=None):
        if serial is not None:
            c = self.calls.get(int(serial))
            if c is None or c.phone is not ph:
                raise CmdError(f"phone {ph.name} has no call {serial}")
            return c
        live = self.calls_of(ph)
        if not live:
            raise CmdError(f"phone {ph.name} has no live call")
        return max(live, key=lambda c: c.serial)

    def answer_call(self, call, code):
        if not call.live():
            return
        prm = pj.CallOpParam(True)
        prm.statusCode = int(code)
        try:
            if int(code) >= 300:
                call.hangup(prm)
            else:
                call.answer(prm)
        except pj.Error as e:
            emit({"event": "warning", **call.base(), "error": f"answer {code}: {e.info()}"})

    # --- commands
    def handle(self, cmd):
        cid = cmd.get("id")
        name = cmd.get("cmd")
        reply = {"event": "reply", "id": cid, "cmd": name}
        try:
            fn = getattr(self, "cmd_" + str(name), None)
            if fn is None:
                raise CmdError(f"unknown cmd {name!r}")
            out = fn(cmd) or {}
            reply.update(out)
            reply["ok"] = True
        except CmdError as e:
            reply.update(ok=False, error=str(e))
        except pj.Error as e:
            reply.update(ok=False, error=f"pjsua2: {e.info()}")
        except Exception as e:  # noqa: BLE001
            reply.update(ok=False, error=f"{type(e).__name__}: {e}", trace=traceback.format_exc()[-2000:])
        emit(reply)
        if name == "quit" and reply["ok"]:
            self.shutdown()

    def cmd_ping(self, cmd):
        return {}

    def cmd_register(self, cmd):
        ph = self.phone(cmd)
        if not ph.opts["register"] and not ph.opts.get("registrar"):
            raise CmdError(f"phone {ph.name} has no registrar (register=no)")
        ph.reg_mode = "registered"
        ph.setRegistration(True)
        return {"phone": ph.name}

    def cmd_unregister(self, cmd):
        ph = self.phone(cmd)
        ph.reg_mode = "unregistered"
        ph.setRegistration(False)
        return {"phone": ph.name}

    def cmd_call(self, cmd):
        ph = self.phone(cmd)
        to = cmd.get("to")
        if not to:
            raise CmdError("call needs 'to'")
        c = PCall(ph, origin="outgoing")
        prm = pj.CallOpParam(True)
        for k, v in (cmd.get("headers") or {}).items():
            h = pj.SipHeader()
            h.hName = k
            h.hValue = str(v)
            prm.txOption.headers.append(h)
        try:
            c.makeCall(to, prm)
        except pj.Error:
            c.state = "DISCONNECTED"
            raise
        if c.state == "NULL":
            c.state = "CALLING"
        return {"phone": ph.name, "call": c.serial}

    def cmd_answer(self, cmd):
        ph = self.phone(cmd)
        if cmd.get("call") is None:
            inc = [c for c in self.calls_of(ph) if c.origin in ("incoming",)
                   and c.state in ("INCOMING", "EARLY")]
            if not inc:
                raise CmdError(f"phone {ph.name} has no ringing incoming call")
            c = max(inc, key=lambda x: x.serial)
        else:
            c = self.pick_call(ph, cmd.get("call"))
        code = int(cmd.get("code", 200))
        prm = pj.CallOpParam(True)
        prm.statusCode = code
        if code >= 300:
            c.hangup(prm)
        else:
            c.answer(prm)
        return {"phone": ph.name, "call": c.serial, "code": code}

    def cmd_hangup(self, cmd):
        ph = self.phone(cmd)
        if cmd.get("all"):
            targets = self.calls_of(ph)
        else:
            targets = [self.pick_call(ph, cmd.get("call"))]
        done = []
        for c in targets:
            prm = pj.CallOpParam(True)
            if cmd.get("code"):
                prm.statusCode = int(cmd["code"])
            c.hangup(prm)
            done.append(c.serial)
        return {"phone": ph.name, "calls": done, "call": done[0] if done else None}

    def cmd_hold(self, cmd):
        ph = self.phone(cmd)
        c = self.pick_call(ph, cmd.get("call"))
        c.setHold(pj.CallOpParam(True))
        return {"phone": ph.name, "call": c.serial}

    def cmd_unhold(self, cmd):
        ph = self.phone(cmd)
        c = self.pick_call(ph, cmd.get("call"))
        prm = pj.CallOpParam(True)
        prm.opt.flag = pj.PJSUA_CALL_UNHOLD
        c.reinvite(prm)
        return {"phone": ph.name, "call": c.serial}

    def cmd_xfer(self, cmd):
        ph = self.phone(cmd)
        c = self.pick_call(ph, cmd.get("call"))
        to = cmd.get("to")
        if not to:
            raise CmdError("xfer needs 'to'")
        c.xfer(to, pj.CallOpParam(True))
        return {"phone": ph.name, "call": c.serial, "to": to}

    def cmd_xfer_replaces(self, cmd):
        """REFER on `call` (default: the phone's oldest live call) with Refer-To naming the
        remote party of `other` (default: its newest other live call) plus Replaces."""
        ph = self.phone(cmd)
        live = sorted(self.calls_of(ph), key=lambda c: c.serial)
        if cmd.get("call") is not None:
            c1 = self.pick_call(ph, cmd["call"])
        else:
            if len(live) < 2:
                raise CmdError(f"phone {ph.name} needs two live calls for xfer_replaces")
            c1 = live[0]
        if cmd.get("other") is not None:
            c2 = self.pick_call(ph, cmd["other"])
        else:
            others = [c for c in live if c is not c1]
            if not others:
                raise CmdError(f"phone {ph.name} has no second call for xfer_replaces")
            c2 = others[-1]
        if c1 is c2:
            raise CmdError("call and other are the same call")
        c1.xferReplaces(c2, pj.CallOpParam(True))
        return {"phone": ph.name, "call": c1.serial, "other": c2.serial}

    def cmd_dtmf(self, cmd):
        ph = self.phone(cmd)
        c = self.pick_call(ph, cmd.get("call"))
        c.dialDtmf(str(cmd.get("digits", "")))
        return {"phone": ph.name, "call": c.serial}

    def cmd_record_start(self, cmd):
        ph = self.phone(cmd)
        c = self.pick_call(ph, cmd.get("call"))
        path = cmd.get("path")
        if not path:
            raise CmdError("record_start needs 'path'")
        if c.recorder is not None:
            raise CmdError(f"call {c.serial} is already recording to {c.record_path}")
        rec = pj.AudioMediaRecorder()
        rec.createRecorder(str(path))
        c.recorder = rec
        c.record_path = str(path)
        if c.aud is not None:
            c.aud.startTransmit(rec)
        return {"phone": ph.name, "call": c.serial, "path": str(path),
                "connected": c.aud is not None, "media": c.media_status}

    def finish_recorder(self, c):
        rec = c.recorder
        path = c.record_path
        c.recorder = None
        c.record_path = None
        if c.aud is not None:
            try:
                c.aud.stopTransmit(rec)
            except pj.Error:
                pass
        # The WAV header is written when the recorder is destroyed; then let the
        # endpoint handle events a moment before the file is read.
        del rec
        return path

    def cmd_record_stop(self, cmd):
        ph = self.phone(cmd)
        if cmd.get("call") is not None:
            c = self.pick_call(ph, cmd["call"])
        else:
            rec = [x for x in self.calls.values() if x.phone is ph and x.recorder is not None]
            if not rec:
                raise CmdError(f"phone {ph.name} is not recording")
            c = max(rec, key=lambda x: x.serial)
        if c.recorder is None:
            raise CmdError(f"call {c.serial} is not recording")
        path = self.finish_recorder(c)
        self.pump(0.15)
        size = os.path.getsize(path) if os.path.exists(path) else None
        return {"phone": ph.name, "call": c.serial, "path": path, "bytes": size}

    def call_info(self, c):
        d = {**c.base(), "state": c.state, "origin": c.origin, "media": c.media_status,
             "tone": c.tone_on, "recording": c.record_path}
        if c.parent is not None:
            d["parent"] = c.parent
        if c.live():
            try:
                ci = c.getInfo()
                d.update(remote_uri=ci.remoteUri, local_uri=ci.localUri, call_id=ci.callIdString,
                         code=ci.lastStatusCode, reason=ci.lastReason,
                         role="caller" if ci.role == pj.PJSIP_ROLE_UAC else "callee",
                         connect_s=ci.connectDuration.sec + ci.connectDuration.msec / 1000.0)
            except pj.Error:
                pass
            d.update(c.stream_info())
        elif c.last_info is not None:
            ci = c.last_info
            d.update(remote_uri=ci.remoteUri, code=ci.lastStatusCode, reason=ci.lastReason)
        return d

    def cmd_state(self, cmd):
        phs = [self.phone(cmd)] if cmd.get("phone") else list(self.phones.values())
        calls = []
        for ph in phs:
            for c in sorted(self.calls.values(), key=lambda x: x.serial):
                if c.phone is ph and c.state != "NULL" and (c.live() or cmd.get("all")):
                    calls.append(self.call_info(c))
        regs = {ph.name: ph.last_reg for ph in phs}
        return {"calls": calls, "registrations": regs}

    def cmd_quit(self, cmd):
        return {}

    # --- main loop
    def read_commands(self):
        fd = sys.stdin.fileno()
        r, _, _ = select.select([fd], [], [], 0)
        if not r:
            return
        data = os.read(fd, 65536)
        if not data:
            emit({"event": "stdin_closed"})
            self.shutdown()
            return
        self.inbuf += data
        while b"\n" in self.inbuf:
            line, self.inbuf = self.inbuf.split(b"\n", 1)
            line = line.strip()
            if not line:
                continue
            try:
                cmd = json.loads(line)
                if not isinstance(cmd, dict):
                    raise ValueError("not an object")
            except ValueError as e:
                emit({"event": "reply", "id": None, "ok": False, "error": f"bad JSON line: {e}"})
                continue
            self.handle(cmd)

    def run(self):
        deadline = time.monotonic() + self.args.max_seconds
        while True:
            self.ep.libHandleEvents(10)
            self.run_timers()
            self.read_commands()
            if time.monotonic() > deadline:
                emit({"event": "timeout", "error": f"--max-seconds {self.args.max_seconds} reached"})
                self.shutdown()

    def shutdown(self):
        try:
            if any(c.live() and c.state != "NULL" for c in self.calls.values()):
                self.ep.hangupAllCalls()
                self.pump(0.4)
            for c in list(self.calls.values()):
                if c.recorder is not None:
                    self.finish_recorder(c)
            for ph in self.phones.values():
                try:
                    if ph.getInfo().regIsActive:
                        ph.reg_mode = "unregistered"
                        ph.setRegistration(False)
                except pj.Error:
                    pass
            self.pump(0.3)
        except Exception as e:  # noqa: BLE001
            emit_error("shutdown", e)
        emit({"event": "bye"})
        sys.stdout.flush()
        os._exit(0)


def main():
    global APP
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, required=True, help="SIP UDP port on 127.0.0.1")
    ap.add_argument("--phone", action="append", default=[], help="phone definition (repeatable)")
    ap.add_argument("--proxy", default=None, help="outbound proxy, e.g. sip:127.0.0.1:5060;lr")
    ap.add_argument("--log", default=None, help="file for PJSIP's log (SIP messages included)")
    ap.add_argument("--log-level", type=int, default=5)
    ap.add_argument("--rtp-port", type=int, default=None, help="first RTP port (default random 46000-46798)")
    ap.add_argument("--rtp-range", type=int, default=200)
    ap.add_argument("--max-seconds", type=float, default=300.0)
    ap.add_argument("--user-agent", default="PJSIP pjsua2-python (orbit-interop pj_phones)")
    args = ap.parse_args()
    # JSON events get the real stdout to themselves; anything PJSIP's C code prints to fd 1
    # (its console log before libInit installs our writer) goes to stderr instead.
    sys.stdout.flush()
    json_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = os.fdopen(json_fd, "w", buffering=1)
    if not args.phone:
        ap.error("at least one --phone is needed")
    if args.rtp_port is None:
        args.rtp_port = 46000 + 2 * random.randrange(0, 400)
    APP = App(args)
    APP.start()
    APP.run()


if __name__ == "__main__":
    main()
