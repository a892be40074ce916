"""The retry policy of the HTTP layer: how many attempts, and how long to wait between them.

Waits grow exponentially (``base * 2**n``, at most ``cap``) with "full jitter" (a uniform draw
between 0 and that bound), so many clients that failed together do not retry together. A
``Retry-After`` from the server is a floor: we never retry sooner than the server asked.
Which failures are retried is decided by the callers; this module only does the sums, for every
backoff of the pack: the HTTP client's retries, a recipe step's ``on_error`` retries
(:mod:`connector.recipes.step`) and the service's retries of an inbox event
(:mod:`connector.service.workers`, through :func:`jittered`).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Literal

__all__ = ["Backoff", "RetryPolicy", "jittered", "parse_retry_after"]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently to retry a failed request.

    :param attempts: total attempts, the first one included (1 means never retry).
    :param base: the first wait bound in seconds; it doubles with each retry.
    :param cap: the largest wait in seconds, and the largest ``Retry-After`` we agree to wait.
    :param jitter: ``"full"`` draws each wait uniformly in ``[0, bound]``; ``"none"`` waits
        the bound itself.
    :param seed: seeds the jitter's random generator, for reproducible waits in tests.
    """

    attempts: int = 4
    base: float = 0.5
    cap: float = 30.0
    jitter: Literal["full", "none"] = "full"
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"RetryPolicy: attempts must be >= 1, not {self.attempts!r}")
        if self.base < 0 or self.cap < 0:
            raise ValueError(
                f"RetryPolicy: base and cap must be >= 0, not {self.base!r}, {self.cap!r}"
            )

    def backoff(self) -> Backoff:
        """A wait calculator with its own random generator (seeded by ``seed`` if set)."""
        return Backoff(self)


class Backoff:
    """Computes the wait before each retry for one :class:`RetryPolicy`."""

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy
        self._rng = random.Random(policy.seed)

    def delay(self, retry: int, *, retry_after: float | None = None) -> float:
        """The seconds to wait before retry number ``retry`` (1 for the first retry).

        :param retry: 1-based number of the retry about to happen.
        :param retry_after: the server's ``Retry-After`` in seconds, if it sent one; the
            wait is never shorter than this.
        :returns: the wait in seconds.
        """
        policy = self.policy
        if policy.jitter == "full":
            wait = jittered(policy.base, policy.cap, retry, rng=self._rng)
        else:
            wait = _bound(policy.base, policy.cap, retry)
        if retry_after is not None:
            wait = max(wait, retry_after)
        return wait

    def too_long(self, retry_after: float | None) -> bool:
        """Whether the server asks us to wait longer than the policy's ``cap`` (then give up)."""
        return retry_after is not None and retry_after > self.policy.cap


def jittered(base: float, cap: float, retry: int, *, rng: random.Random | None = None) -> float:
    """Full jitter: a uniform draw between 0 and ``base * 2**(retry-1)``, at most ``cap``.

    :param retry: 1-based number of the retry about to happen.
    :param rng: the random generator (default: one shared by the process).
    """
    return (rng or _RANDOM).uniform(0.0, _bound(base, cap, retry))


def _bound(base: float, cap: float, retry: int) -> float:
    return min(cap, base * 2.0 ** (retry - 1))


_RANDOM = random.Random()


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date).

    :param value: the header value, or ``None`` when absent.
    :param now: the current Unix time (defaults to :func:`time.time`), for HTTP dates.
    :returns: seconds (never negative), or ``None`` if absent or unreadable.
    """
    if value is None:
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)
