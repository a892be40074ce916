"""The console wired to a running service: what ``serve`` (and ``api``) hand it.

:func:`service_console` builds the :class:`~connector.console.state.ConsoleState` of a service
(its loaded recipes' scopes, its runtimes' rate limiters, replay through the service's own
dead-letter code) and its :class:`~connector.console.metrics.Metrics`; :func:`console_banner`
is the start-up lines that say where both are.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from connector.activity import BUS
from connector.auth.tokens import scopes_needed
from connector.catalog import Catalog
from connector.console.access import is_loopback
from connector.console.app import CONSOLE_PATH, METRICS_PATH
from connector.console.metrics import Metrics
from connector.console.state import ConsoleState, Replayed
from connector.errors import ConnectorError
from connector.runtime import Runtime
from connector.service.deadletters import DeadLetter, DeadLetters
from connector.service.dispatcher import Route
from connector.store import Store

__all__ = ["console_banner", "needed_scopes", "replayer", "service_console"]


def needed_scopes(routes: Sequence[Route], catalog: Catalog) -> dict[str, list[str]]:
    """Recipe key -> the scopes its trigger and its steps' actions need (as ``validate``
    reports them)."""
    needed: dict[str, list[str]] = {}
    for route in routes:
        actions = [s.use for s in route.recipe.steps if s.use in catalog.actions]
        needed[route.key] = sorted({*scopes_needed(actions, catalog), *route.trigger.scopes})
    return needed


def replayer(
    store: Store, catalog: Catalog, runtime_for: Callable[[str | None], Runtime],
    wake: Callable[[], None],
) -> Callable[[Sequence[DeadLetter]], Replayed]:
    """Replay from the console: calls whose outcome is unknown are looked up first (as
    ``ghl-connector replay`` does, without a person's word for calls that cannot be looked
    up), then the events go back to the service's inbox and the workers are woken."""

    def replay(letters: Sequence[DeadLetter]) -> Replayed:
        dead = DeadLetters(store)
        going: list[DeadLetter] = []
        kept: list[str] = []
        for letter in letters:
            if letter.event is None:  # a run of `ghl-connector run`: resumed by the CLI only
                kept += [run_id for run_id, _ in letter.runs]
                continue
            location = letter.event.location_id

            def runtime(location: str | None = location) -> Runtime:
                return runtime_for(location)

            runs = []
            for run_id, recipe in letter.runs:
                try:
                    found = dead.look_up(run_id, catalog, runtime, named=False)
                except ConnectorError:
                    found = []
                if all(f.replayable for f in found):
                    runs.append((run_id, recipe))
                else:
                    kept.append(run_id)
            if runs or not letter.runs:
                going.append(DeadLetter(letter.event, tuple(runs)))
        dead.requeue(going)
        wake()
        BUS.publish("deadletter", status="replayed", found=len(going))
        return Replayed(len(going), tuple(kept))

    return replay


def service_console(
    store: Store,
    host: str,
    *,
    routes: Callable[[], Sequence[Route]],
    catalog: Catalog,
    rate_limits: Callable[[], dict[str, list[dict[str, object]]]],
    replay: Callable[[Sequence[DeadLetter]], Replayed] | None,
    peers: Callable[[], list[dict[str, Any]]] | None = None,
) -> tuple[ConsoleState, Metrics]:
    """The console state and metrics of a service listening on ``host`` (``peers``: its
    fleet's live processes, when it is one)."""
    state = ConsoleState(
        store,
        login_required=not is_loopback(host),
        needed_scopes=lambda: needed_scopes(routes(), catalog),
        rate_limits=rate_limits,
        replay=replay,
        peers=peers,
    )
    return state, Metrics(store, BUS)


def console_banner(base: str, state: ConsoleState) -> list[str]:
    """``console: URL`` and ``metrics: URL`` (with the login rule beyond loopback)."""
    login = " (login: `ghl-connector console token`)" if state.login_required else ""
    return [f"console: {base}{CONSOLE_PATH}/{login}", f"metrics: {base}{METRICS_PATH}"]
