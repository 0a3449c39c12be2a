"""SIP side of the browser test: real PJSIP phones (tests/interop/phones.py)
park a call so the Live page can show it, and answer the retrieve the page
starts. Driven over stdin/stdout, one JSON object per line:

  out {"event": "parked"}     106 called 101, 101 parked it with *68
  in  "answer 102"            102 answers the next incoming call (the retrieve)
  out {"event": "answered"}   102 is connected to the parked caller
  in  "quit"                  hang up and exit

Usage: sip_park.py SIP_PORT DOMAIN WORKDIR (passwords are secret-<ext>-pass).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "interop"))

from phones import Phones  # noqa: E402


def log(msg):
    print(f"  sip: {msg}", file=sys.stderr, flush=True)


def say(**ev):
    print(json.dumps(ev), flush=True)


def main():
    sip_port, domain, workdir = int(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
    proxy = f"sip:127.0.0.1:{sip_port};lr"

    def spec(ext):
        return {"name": ext, "user": ext, "password": f"secret-{ext}-pass", "domain": domain}

    outside = Phones(spec("106"), workdir=workdir / "outside", name="outside", proxy=proxy)
    office = Phones(spec("101"), spec("102"), workdir=workdir / "office", name="office", proxy=proxy)
    try:
        for p, exts in ((outside, ["106"]), (office, ["101", "102"])):
            for e in exts:
                assert p.wait_event("registered", phone=e)["code"] == 200
        call = outside.call("106", f"sip:101@{domain}")
        inc = office.wait_incoming("101")
        office.answer("101", 200, call=inc["call"])
        outside.wait_state("106", "CONFIRMED", call=call)
        office.wait_media("101", "ACTIVE", call=inc["call"])
        office.xfer("101", f"sip:*68@{domain}", call=inc["call"])
        code = office.wait_event("transfer_status", phone="101", pred=lambda e: e.get("final"))["code"]
        assert code == 200, f"park answered {code}"
        say(event="parked")
        for line in sys.stdin:
            cmd = line.split()
            log(f"command {cmd} at {time.time():.1f}")
            if cmd[:1] == ["answer"]:
                t0 = time.monotonic()
                r = office.wait_incoming(cmd[1], timeout=15)
                log(f"{cmd[1]} rang after {time.monotonic() - t0:.1f} s")
                office.answer(cmd[1], 200, call=r["call"])
                office.wait_media(cmd[1], "ACTIVE", call=r["call"])
                log(f"{cmd[1]} connected after {time.monotonic() - t0:.1f} s")
                say(event="answered", phone=cmd[1])
            elif cmd[:1] == ["quit"]:
                break
    except Exception as e:  # noqa: BLE001
        say(event="error", message=str(e))
        raise
    finally:
        outside.close()
        office.close()


if __name__ == "__main__":
    main()
