import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from strato_harness import ALICE, BOB, Strato  # noqa: E402


@pytest.fixture(scope="session")
def strato():
    """One server with two configured accounts, shared by most tests. Tests
    keep out of each other's way by using their own regions."""
    s = Strato().start()
    yield s
    s.stop()


@pytest.fixture
def fresh_strato():
    """A server of the test's own, for tests that restart or kill it."""
    servers = []

    def make(**kw):
        s = Strato(**kw).start()
        servers.append(s)
        return s

    yield make
    from strato_harness import kill_vms
    for s in servers:
        s.kill9()
        kill_vms(s)


@pytest.fixture
def alice():
    return ALICE


@pytest.fixture
def bob():
    return BOB
