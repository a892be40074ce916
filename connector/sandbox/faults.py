"""Fault injection: per-route rules (latency, 5xx rates, forced 429 bursts, hung requests,
connection resets, ambiguous writes) drawn from a seeded random generator, so a run with the
same seed and the same requests fails the same way."""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, fields
from typing import Any

__all__ = ["Fault", "FaultInjector", "FaultRule"]

_STATUSES = (500, 502, 503, 504)


@dataclass(slots=True)
class FaultRule:
    """One rule. ``route`` is an operation (``"PUT /contacts/{contactId}"``) or ``"*"``.

    Rates are probabilities per matching request. ``burst_429`` answers the next N matching
    requests with 429. ``hang_seconds`` holds each matching request that long, then answers 504.
    ``ambiguous_rate`` applies the write and then fails the answer (with ``error_status``, or a
    connection reset when ``ambiguous_reset``). ``count`` limits the rule to that many matching
    requests (None: no limit).
    """

    route: str = "*"
    latency_ms: float = 0.0
    error_rate: float = 0.0
    error_status: int = 500
    burst_429: int = 0
    hang_seconds: float = 0.0
    reset_rate: float = 0.0
    ambiguous_rate: float = 0.0
    ambiguous_reset: bool = False
    count: int | None = None

    @classmethod
    def from_dict(cls, data: object) -> FaultRule:
        """Build a rule from JSON data.

        :raises ValueError: unknown keys, wrong types, rates outside 0..1, or a bad status
        """
        if not isinstance(data, dict):
            raise ValueError(f"fault rule: {data!r} is not an object")
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ValueError(f"fault rule: unknown keys {unknown!r} [known: {sorted(known)!r}]")
        rule = cls(**data)
        rule.check()
        return rule

    def check(self) -> None:
        """:raises ValueError: when a value is out of range or of the wrong type."""
        if not isinstance(self.route, str) or not self.route:
            raise ValueError(f"fault rule: route {self.route!r} must be a non-empty string")
        for name in ("error_rate", "reset_rate", "ambiguous_rate"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
                raise ValueError(f"fault rule: {name} {value!r} must be a number in 0..1")
        for name in ("latency_ms", "hang_seconds", "burst_429"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValueError(f"fault rule: {name} {value!r} must be a number >= 0")
        if self.error_status not in _STATUSES:
            raise ValueError(f"fault rule: error_status {self.error_status!r} not in {_STATUSES}")
        if self.count is not None and (not isinstance(self.count, int) or self.count < 1):
            raise ValueError(f"fault rule: count {self.count!r} must be a positive integer")

    def as_dict(self) -> dict[str, Any]:
        """The rule as JSON-ready data."""
        return asdict(self)


@dataclass(slots=True)
class Fault:
    """What to do to one request: wait ``latency`` s, then maybe ``action`` (``"429"``,
    ``"hang"``, ``"reset"``, ``"error"``), or apply it and fail the answer (``ambiguous``:
    ``"error"`` or ``"reset"``)."""

    latency: float = 0.0
    action: str | None = None
    status: int = 500
    hang: float = 0.0
    ambiguous: str | None = None


class FaultInjector:
    """The active rules and the seeded generator that decides each request's fate."""

    def __init__(self, seed: int = 0) -> None:
        self._seed = seed
        self.reset()

    def reset(self) -> None:
        """Drop every rule and restart the generator from the seed."""
        self.rules: list[FaultRule] = []
        self._rng = random.Random(self._seed)

    def add(self, rule: FaultRule) -> None:
        """Activate a rule (after those already active)."""
        rule.check()
        self.rules.append(rule)

    def load(self, data: object) -> list[dict[str, Any]]:
        """Add rules from JSON data (one rule, a list, or ``{rules, replace}``); every rule in
        force afterwards, as data.

        :raises ValueError: a rule is malformed (then no rule is added)
        """
        replace = False
        if isinstance(data, dict) and "rules" in data:
            replace = bool(data.get("replace", False))
            data = data["rules"]
        items: list[object] = data if isinstance(data, list) else [data]
        rules = [FaultRule.from_dict(item) for item in items]
        if replace:
            self.rules.clear()
        for rule in rules:
            self.add(rule)
        return [rule.as_dict() for rule in self.rules]

    def plan(self, route: str) -> Fault | None:
        """Decide the fault for one request to ``route``; None when nothing happens."""
        if not self.rules:
            return None
        fault = Fault()
        for rule in [r for r in self.rules if r.route in ("*", route)]:
            self._apply(rule, fault)
            if rule.count is not None:
                rule.count -= 1
                if rule.count <= 0:
                    self.rules.remove(rule)
        return fault if fault.latency or fault.action or fault.ambiguous else None

    def _apply(self, rule: FaultRule, fault: Fault) -> None:
        fault.latency += rule.latency_ms / 1000
        if fault.action is not None:
            return
        if rule.burst_429 > 0:
            rule.burst_429 -= 1
            fault.action = "429"
        elif rule.hang_seconds > 0:
            fault.action, fault.hang = "hang", rule.hang_seconds
        elif rule.reset_rate and self._rng.random() < rule.reset_rate:
            fault.action = "reset"
        elif rule.error_rate and self._rng.random() < rule.error_rate:
            fault.action, fault.status = "error", rule.error_status
        elif rule.ambiguous_rate and self._rng.random() < rule.ambiguous_rate:
            fault.ambiguous = "reset" if rule.ambiguous_reset else "error"
            fault.status = rule.error_status
