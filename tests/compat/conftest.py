import atexit
import itertools
import os
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))

import zkserver  # noqa: E402
from zkserver import ZkServer  # noqa: E402

atexit.register(zkserver.kill_all)

SUPER_PASSWORD = "superpw"
# base64(sha1("super:superpw")), the value the super-user digest key takes.
SUPER_DIGEST = "super:g9oN2HttPfn8MMWJZ2r45Np/LIA="

# One config shared by the kazoo module's server.
CONFORMANCE_CFG = {
    "extendedTypesEnabled": "true",
    "znode.container.checkIntervalMs": "100",
    "DigestAuthenticationProvider.superDigest": SUPER_DIGEST,
}


def pytest_report_header(config):
    t = zkserver.target()
    extra = f" ({zkserver.rzk_bin()})" if t == "rzk" else ""
    return f"rzk compat target: {t}{extra}"


@pytest.fixture(scope="module")
def server():
    s = ZkServer(cfg=CONFORMANCE_CFG)
    try:
        s.start()
        yield s
    finally:
        s.cleanup()


@pytest.fixture
def make_server():
    """Factory for servers with a specific config; all are killed at teardown."""
    made = []

    def make(cfg=None, kind=None, workdir=None, start=True):
        s = ZkServer(kind=kind, cfg=cfg, workdir=workdir)
        made.append(s)
        if start:
            s.start()
        return s

    yield make
    for s in made:
        s.cleanup()


_counter = itertools.count()


@pytest.fixture
def base(request):
    """A unique top-level path per test (created by the test as needed)."""
    name = request.node.name.replace("[", "_").replace("]", "").replace("/", "_")
    return f"/t{next(_counter)}_{name}"[:60]


def wait_for(cond, timeout=15.0, interval=0.05, msg="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {msg}")
