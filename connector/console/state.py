"""What the console reads and may do: :class:`ConsoleState`, given by whoever mounts it."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from connector.activity import BUS, Bus
from connector.console.access import Sessions
from connector.service.deadletters import DeadLetter
from connector.store import Store

__all__ = ["ConsoleState", "Replayed"]


@dataclass(frozen=True, slots=True)
class Replayed:
    """What a replay from the console did: letters re-queued, and runs that stay dead (their
    unknown calls could not be looked up), each with why."""

    queued: int
    kept: tuple[str, ...] = ()


def _no_limits() -> dict[str, list[dict[str, object]]]:
    return {}


def _no_scopes() -> dict[str, list[str]]:
    return {}


@dataclass(slots=True)
class ConsoleState:
    """The console's view of one service (``serve``, ``api``, or the demo).

    :param store: the state file every page reads.
    :param login_required: bound beyond loopback (see :mod:`connector.console.access`).
    :param needed_scopes: recipe key -> the scopes its actions need (the loaded recipes).
    :param rate_limits: app id -> the rate limiter's state per location.
    :param replay: re-queues dead letters for the running service (None: replay from the
        command line only, as the demo has no workers).
    :param stopping: set when the server stops (event streams end).
    :param peers: the live processes of the service's fleet (``serve --broker``), for the
        connections page; None: not a fleet.
    """

    store: Store
    login_required: bool = False
    bus: Bus = BUS
    needed_scopes: Callable[[], dict[str, list[str]]] = _no_scopes
    rate_limits: Callable[[], dict[str, list[dict[str, object]]]] = _no_limits
    replay: Callable[[Sequence[DeadLetter]], Replayed] | None = None
    sessions: Sessions = field(default_factory=Sessions)
    stopping: threading.Event = field(default_factory=threading.Event)
    peers: Callable[[], list[dict[str, Any]]] | None = None
    title: str = "ghl-connector"
