"""Fixtures for calling actions: ``catalog`` (the pack's, one per module), ``store`` (a fresh
state file per test) and ``runtime`` (reaching the GHL sandbox with its private token, no HTTP
retries: the engine's own retries are what tests look at)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from connector.auth.bearer import StaticBearer
from connector.catalog import Catalog, build_catalog
from connector.client.retry import RetryPolicy
from connector.runtime import Runtime, Settings
from connector.sandbox.server import SandboxServer
from connector.store import Store


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return build_catalog()


@pytest.fixture
def store(store_location: Path | str) -> Iterator[Store]:
    """A fresh store, on SQLite and on PostgreSQL (``store_location``, tests/fixtures_store.py)."""
    with Store(store_location) as opened:
        yield opened


@pytest.fixture
def runtime(ghl: SandboxServer, catalog: Catalog) -> Iterator[Runtime]:
    bearer = StaticBearer(ghl.private_token)
    settings = Settings(
        base_urls={"ghl": ghl.base_url}, location_id=ghl.location_id,
        retry=RetryPolicy(attempts=1),
    )  # fmt: skip
    with Runtime(catalog, settings, auth=lambda app, action: bearer) as made:
        yield made
