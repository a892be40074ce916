"""Fixtures for the GHL sandbox: ``sandbox`` (one per session) and ``ghl`` (reset per test)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from connector.sandbox.config import SandboxConfig
from connector.sandbox.server import SandboxServer

SANDBOX_SEED_CONTACTS = 12


@pytest.fixture(scope="session")
def sandbox() -> Iterator[SandboxServer]:
    """The GHL sandbox on 127.0.0.1 in a background thread for the whole session."""
    config = SandboxConfig(seed_contacts=SANDBOX_SEED_CONTACTS, seed=7)
    with SandboxServer(config) as server:
        yield server


@pytest.fixture
def ghl(sandbox: SandboxServer) -> Iterator[SandboxServer]:
    """The sandbox back at its seed state: no faults, zero counters, default limits; after
    the test, back on the wall clock (a test may set its own, ``use_clock``)."""
    sandbox.reset()
    yield sandbox
    sandbox.use_clock(None)
