"""Fixtures: each test module / test gets its own real `orbit serve` in a temp data dir.

Server output goes to <tmp>/<name>.log; on a failing test the tail of every server
that was running is attached to the report ("orbit log" sections).
"""

from __future__ import annotations

import pytest

import harness
from harness import ACTIVE_SERVERS, OrbitServer


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for srv in list(ACTIVE_SERVERS) + list(getattr(item, "_orbit_stopped", [])):
            rep.sections.append((f"orbit log: {srv.name} ({srv.log_path})", srv.log_tail(15000)))


class _Factory:
    def __init__(self, base_dir, owner_item=None):
        self.base_dir = base_dir
        self.servers: list[OrbitServer] = []
        self.owner_item = owner_item

    def __call__(self, config=None, ipv6=False, name=None, start=True) -> OrbitServer:
        name = name or f"orbit{len(self.servers) + 1}"
        srv = OrbitServer(self.base_dir / name, config=config, ipv6=ipv6, name=name)
        self.servers.append(srv)
        if start:
            srv.start()
        return srv

    def close(self):
        died = []
        for srv in self.servers:
            if srv.proc is not None and srv.proc.poll() is not None and srv in ACTIVE_SERVERS \
                    and not getattr(srv, "expected_exit", False):
                died.append(srv)
            srv.close()
        return died


@pytest.fixture
def orbit_factory(tmp_path, request):
    """Function-scoped: start servers with custom config: orbit_factory(config={...}, ipv6=True)."""
    harness.wait_for_binary()
    f = _Factory(tmp_path, request.node)
    request.node._orbit_stopped = f.servers
    yield f
    died = f.close()
    if died:
        pytest.fail("orbit process died during the test (exit codes "
                    + ", ".join(str(s.proc.returncode) for s in died) + "):\n"
                    + "\n".join(s.log_tail(8000) for s in died), pytrace=False)


@pytest.fixture(scope="module")
def module_factory(tmp_path_factory, request):
    """Module-scoped variant; a module defines its own `orbit` fixture on top of it."""
    harness.wait_for_binary()
    base = tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1])
    f = _Factory(base)
    yield f
    died = f.close()
    if died:
        pytest.fail("orbit process died during the module (exit codes "
                    + ", ".join(str(s.proc.returncode) for s in died) + "):\n"
                    + "\n".join(s.log_tail(8000) for s in died), pytrace=False)


@pytest.fixture
def sipp():
    """Path of sipp; fails under CI (env CI), skips locally when missing."""
    return harness.sipp_path()


@pytest.fixture
def pjsua2():
    harness.require_pjsua2()
    return True
