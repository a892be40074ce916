"""Leases (connector/storage/leases.py) on SQLite and PostgreSQL: one holder at a time, renewed
by its holder, taken over once it expires, including when the holder is killed."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from connector.storage.leases import Leases, holder_name
from connector.store import Store

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def leases(store_location):
    with Store(store_location) as store:
        yield Leases(store)


def test_lease_one_holder_until_it_expires(leases):
    """A held lease refuses others, is renewed by its holder, and is free after expiry."""
    assert leases.acquire("job", "a", 10, now=100.0) is True
    assert leases.acquire("job", "b", 10, now=105.0) is False
    assert leases.acquire("job", "a", 10, now=108.0) is True  # renewed to 118
    assert leases.acquire("job", "b", 10, now=117.0) is False
    held = leases.get("job")
    assert held is not None and (held.holder, held.expires, held.taken_at) == ("a", 118.0, 100.0)
    assert leases.acquire("job", "b", 10, now=118.0) is True  # expired: taken over
    assert leases.get("job").holder == "b" and leases.get("job").taken_at == 118.0
    assert leases.acquire("other", "a", 10, now=118.0) is True  # names are independent


def test_lease_release_frees_it_for_the_next(leases):
    """Only the holder releases; then anyone takes it at once."""
    assert leases.acquire("job", "a", 60)
    assert leases.release("job", "b") is False
    assert leases.release("job", "a") is True
    assert leases.get("job") is None
    assert leases.acquire("job", "b", 60)


def test_lease_bad_ttl_is_refused(leases):
    with pytest.raises(ValueError, match="ttl must be positive"):
        leases.acquire("job", "a", 0)


HOLDER = textwrap.dedent(
    """
    import sys, time
    from connector.storage.leases import Leases
    from connector.store import Store
    leases = Leases(Store(sys.argv[1]))
    while True:
        print("held" if leases.acquire("poll:x", sys.argv[2], float(sys.argv[3])) else "not",
              flush=True)
        time.sleep(0.1)
    """
)


def test_lease_taken_over_when_its_holder_is_killed(leases):
    """A holder process renews its lease; while it lives no one else gets it; after kill -9
    the lease is taken over once it expires, not before."""
    ttl = 1.5
    holder = holder_name("test")
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, leases.store.url, holder, str(ttl)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        deadline = time.monotonic() + 2 * ttl  # longer than a ttl: the holder keeps renewing
        while time.monotonic() < deadline:
            assert leases.acquire("poll:x", "me", ttl) is False
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        killed = time.time()
        expires = leases.get("poll:x").expires
        while not leases.acquire("poll:x", "me", ttl):
            assert time.time() < expires + 5, "the lease was never taken over"
            time.sleep(0.05)
        taken = time.time()
        assert taken >= expires - 0.01 and taken - killed <= ttl + 1.0
        assert leases.get("poll:x").holder == "me"
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)
