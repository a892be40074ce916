"""A clock a test steps forward to order two moments without sleeping.

Give the same :class:`SteppedClock` to the sandboxes (``server.use_clock(clock)``) and to the
code under test (a poller's ``clock``): ``clock.advance()`` then puts everything stamped after
it strictly later than everything stamped before, whatever the machine's load.
"""

from __future__ import annotations

import time

__all__ = ["STEP", "SteppedClock"]

STEP = 1.0
"""Seconds one :meth:`SteppedClock.advance` moves by default: more than the lead a sandbox's
stamps can take over its clock (each stamp is at least 1 ms after the one before, so a burst of
writes within one millisecond runs ahead by a millisecond per write)."""


class SteppedClock:
    """The wall clock plus the steps the test made (epoch seconds, like ``time.time``)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float = STEP) -> None:
        """Move the clock ``seconds`` forward (it never goes back)."""
        if seconds < 0:
            raise ValueError(f"SteppedClock: cannot go back {seconds!r}s")
        self.offset += seconds
