"""Fixtures for the fake API server: ``api_server`` (one per session) and ``api`` (reset per test)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fakeapi import FakeApi, serve


@pytest.fixture(scope="session")
def api_server() -> Iterator[FakeApi]:
    """The fake API, served on 127.0.0.1 in a daemon thread for the whole session."""
    with serve() as api:
        yield api


@pytest.fixture
def api(api_server: FakeApi) -> Iterator[FakeApi]:
    """The fake API with no queued answers, no routes and no recorded requests."""
    api_server.reset()
    yield api_server
    api_server.reset()
