"""Brute-force guard, per source IP.

Config: delay_after=3, delay_ms=500, block_after=6, window_s=60, block_s=300.

Expectation tested here (one "attempt" = REGISTER -> 401, answer with a wrong
password -> 403; each 403 is one failure of the source 127.0.0.1):
  * attempts 1..delay_after-1 are answered promptly (< delay_ms / 2 in total);
  * attempts delay_after+1..block_after (the source already has >= delay_after
    failures) are delayed: the attempt takes >= 0.8 * delay_ms;
    (attempt delay_after itself may go either way: the failure it causes is the
    delay_after-th)
  * attempts 1..block_after-1 are still processed (401 then 403);
  * once the source has block_after failures, it is refused: the next plain
    REGISTER gets no 401 challenge (a final non-401 error without
    WWW-Authenticate, or no answer at all) — also for another user and even with
    the right password;
  * another source (::1, same server) is unaffected: 401 then 200, not delayed.
"""

import time

import harness
from harness import SipClient

PW = "guard-pass-77"
DELAY_AFTER, DELAY_MS, BLOCK_AFTER = 3, 500, 6
CONFIG = {
    "auth": {"algorithms": ["MD5", "SHA-256"]},
    "guard": {"enabled": True, "delay_after": DELAY_AFTER, "delay_ms": DELAY_MS,
              "block_after": BLOCK_AFTER, "window_s": 60, "block_s": 300},
}


def refused(resp):
    return resp is None or (resp.status != 401 and resp.status >= 400 and not resp.get_all("www-authenticate"))


def test_guard_delays_then_blocks_source(orbit_factory):
    srv = orbit_factory(config=CONFIG, ipv6=True, name="orbit-guard")
    srv.create_extension("5001", PW)
    srv.create_extension("5002", PW)

    attempts = []  # (n, first_status, final_status, seconds)
    blocked_at = None
    with SipClient(srv.sip_addr, timeout=4) as c:
        for n in range(1, BLOCK_AFTER + 3):
            t0 = time.monotonic()
            first, final = c.register("5001", srv.domain, "wrong-password-x")
            dt = time.monotonic() - t0
            attempts.append((n, first.status if first else None, final.status if final else None, round(dt, 3)))
            if refused(first):
                blocked_at = n
                break
            assert first.status == 401, f"attempt {n}: {first}"
            assert final is not None and final.status == 403, f"attempt {n}: wrong password -> {final}"

    report = f"attempts (n, first, final, seconds): {attempts}"
    assert blocked_at is not None, "source never refused; " + report
    assert blocked_at >= BLOCK_AFTER, f"refused too early (before {BLOCK_AFTER - 1} failures); " + report
    assert blocked_at <= BLOCK_AFTER + 1, f"not refused after {BLOCK_AFTER} failures; " + report
    for n, _, _, dt in attempts:
        if n < DELAY_AFTER:
            assert dt < DELAY_MS / 1000 / 2, f"attempt {n} should not be delayed; " + report
        elif DELAY_AFTER < n <= min(BLOCK_AFTER, blocked_at - 1):
            assert dt >= 0.8 * DELAY_MS / 1000, f"attempt {n} should be delayed; " + report

    # refused for another user, and even with the right password, from the same source
    with SipClient(srv.sip_addr, timeout=4) as c:
        first, final = c.register("5002", srv.domain, PW)
        assert refused(first), f"blocked source got a challenge / was served: {first}"
        assert final is None or final.status != 200, final
    assert srv.registrations(extension="5002") == []

    # another source (::1) is unaffected
    if srv.ipv6:
        with SipClient(srv.sip_addr6, timeout=4) as c:
            t0 = time.monotonic()
            first, final = c.register("5002", srv.domain, PW)
            dt = time.monotonic() - t0
        assert first is not None and first.status == 401, first
        assert final is not None and final.status == 200, final
        assert dt < DELAY_MS / 1000 / 2, f"other source was delayed ({dt:.3f}s)"
        assert len(srv.registrations(extension="5002")) == 1

    assert srv.healthz() == (200, {"status": "ok"})


def test_guard_disabled_never_blocks(orbit_factory):
    srv = orbit_factory(config={**CONFIG, "guard": {**CONFIG["guard"], "enabled": False}},
                        name="orbit-noguard")
    srv.create_extension("5003", PW)
    with SipClient(srv.sip_addr, timeout=4) as c:
        for n in range(BLOCK_AFTER + 2):
            t0 = time.monotonic()
            first, final = c.register("5003", srv.domain, "wrong-password-x")
            assert first is not None and first.status == 401, first
            assert final is not None and final.status == 403, final
            assert time.monotonic() - t0 < DELAY_MS / 1000 / 2
        _, final = c.register("5003", srv.domain, PW)
        assert final is not None and final.status == 200, final
