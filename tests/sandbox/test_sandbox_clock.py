"""Each sandbox stamps its records by the clock a test gives it (``use_clock``), so tests order
moments by stepping a clock instead of sleeping; a reset goes back to the wall clock."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

import pytest
from clocks import SteppedClock

from connector.sandbox.linkedphone.server import LinkedPhoneSandboxServer
from connector.sandbox.server import SandboxServer
from connector.sandbox.superphone.server import SuperPhoneSandboxServer

YEAR_2100 = 4_102_444_800.0


def _seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def _stampers(
    ghl: SandboxServer, lp: LinkedPhoneSandboxServer, sp: SuperPhoneSandboxServer
) -> dict[str, tuple[SandboxServer | LinkedPhoneSandboxServer | SuperPhoneSandboxServer,
                     Callable[[], str]]]:
    """Per sandbox: the server, and a function making one record stamp on its loop."""
    made = iter(range(1_000_000))
    return {
        "ghl": (ghl, lambda: ghl.call(ghl.app.store.stamp)),
        "linkedphone": (lp, lambda: lp.call(lp.app.store.now)),
        "superphone": (sp, lambda: sp.call(
            lambda: sp.app.records.create_contact({"email": f"c{next(made)}@example.org"})
        )["createdAt"]),
    }


@pytest.mark.parametrize("name", ["ghl", "linkedphone", "superphone"])
def test_sandbox_clock_stamps_by_the_given_clock_until_reset(name, ghl, lp, sp):
    """A fixed clock far ahead: stamps are at it (then 1 ms apart); after a reset, at now."""
    server, stamp = _stampers(ghl, lp, sp)[name]
    server.use_clock(lambda: YEAR_2100)
    first, second = _seconds(stamp()), _seconds(stamp())
    assert (first, second) == (YEAR_2100, YEAR_2100 + 0.001)
    server.reset()
    assert abs(_seconds(stamp()) - time.time()) < 60


def test_sandbox_clock_a_step_orders_two_sandboxes(ghl, lp):
    """One stepped clock for two sandboxes: a stamp made after a step is later than every
    stamp made before it, on either side, however many were made in one millisecond."""
    clock = SteppedClock()
    for server in (ghl, lp):
        server.use_clock(clock)
    burst = [ghl.call(ghl.app.store.stamp) for _ in range(200)]
    clock.advance()
    later = lp.call(lp.app.store.now)
    assert _seconds(later) > max(_seconds(s) for s in burst)
