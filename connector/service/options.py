"""What ``ghl-connector serve`` runs: its options, as one frozen object."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from connector.fleet.options import FleetOptions
from connector.hookspecs import AuthProvider, RateLimit
from connector.recipes.footprints import DEFAULT_LOOP_LIMIT, DEFAULT_LOOP_WINDOW
from connector.service.signatures import PublicKeys, default_keys
from connector.service.workers import PoolSettings

__all__ = ["DEFAULT_KEEP_EVENTS", "ServeOptions"]

DEFAULT_KEEP_EVENTS = 7 * 86400.0
"""Seconds ``serve`` keeps processed inbox events (``--keep-events``, in days: 7)."""


@dataclass(frozen=True, slots=True)
class ServeOptions:
    """What ``serve`` runs.

    :param auth: the auth provider for one location id (None: the event names none); built
        from the stored connections by the CLI, or from the sandbox's token in sandbox mode.
    :param base_url: GHL's base URL override (a sandbox).
    :param rate_limit: GHL's per-location limit override (a sandbox started with another one).
    :param poll_locations: the locations polling triggers poll.
    :param app_urls: base URL overrides of other apps (partner sandboxes, tests).
    :param app_limits: rate limit overrides of other apps.
    :param sync_location: the GHL location the syncs keep in step with their partners, and
        where events that name no location (partner events) run their recipes.
    :param webhook_secrets: partner webhook secrets (sandbox mode; else from the environment).
    :param api_keys: partner API keys (sandbox mode; else from the environment); only checked
        here, ``auth`` sends them.
    :param banner: more start-up summary lines (the sandboxes' URLs and keys).
    :param keep_events: seconds a processed (``done``) inbox event is kept; ``dead`` ones stay
        until replayed or discarded.
    :param purge_every: seconds between purges of older ``done`` events (the first one runs
        at start).
    :param rest_hooks: deliver events to the REST-hook subscriptions of the state file
        (:mod:`connector.api.delivery`); ``--no-rest-hooks`` turns it off.
    :param fleet: run as part of a fleet (``--broker``): the feeder sends events to the
        queue and ``worker`` processes run them; None: the workers run in this process. A
        fleet without a broker (``--limits URL`` only) runs its workers here and shares only
        the rate limits.
    :param limiter: builds each app's rate limiter (a fleet's, shared through Redis); None:
        in-process limiters.
    """

    recipes: Path
    db: Path | str
    host: str = "127.0.0.1"
    port: int = 8000
    keys: PublicKeys = field(default_factory=default_keys)
    pool: PoolSettings = field(default_factory=PoolSettings)
    base_url: str | None = None
    rate_limit: RateLimit | None = None
    max_age: float = 300.0
    auth: Callable[[str | None], AuthProvider | None] | None = None
    poll_locations: tuple[str, ...] = ()
    poll_interval: float = 60.0
    app_urls: Mapping[str, str] = field(default_factory=dict)
    app_limits: Mapping[str, RateLimit] = field(default_factory=dict)
    sync_location: str | None = None
    webhook_secrets: Mapping[str, str] = field(default_factory=dict, repr=False)
    api_keys: Mapping[str, str] = field(default_factory=dict, repr=False)
    banner: tuple[str, ...] = field(default=(), repr=False)
    loop_limit: int = DEFAULT_LOOP_LIMIT
    loop_window: float = DEFAULT_LOOP_WINDOW
    keep_events: float = DEFAULT_KEEP_EVENTS
    purge_every: float = 3600.0
    rest_hooks: bool = True
    fleet: FleetOptions | None = None
    limiter: Callable[[str, RateLimit], Any] | None = field(default=None, repr=False)
