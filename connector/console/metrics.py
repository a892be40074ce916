"""``/metrics``: the service in the Prometheus text format (prometheus-client).

Counters and histograms are fed by the activity bus (:mod:`connector.activity`) as things
happen in this process; gauges that describe the state file (inbox depth, the oldest pending
event's age, dead letters) are read from it when scraped. Every metric has its own registry
per :class:`Metrics`, so two consoles in one process (tests) do not collide. Labels are ids
the pack defines (recipe keys, action ids, refusal codes, sync directions), never data.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from connector.activity import Bus, Event
from connector.errors import StoreError
from connector.service.deadletters import DeadLetters
from connector.service.inbox import Inbox
from connector.store import Store

__all__ = ["CONTENT_TYPE", "Metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_PREFIX = "ghl_connector"
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_ENDED = frozenset({"succeeded", "failed", "skipped", "dead_letter"})


class _StoreGauges(Collector):
    """Gauges read from the state file at scrape time."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> Iterator[GaugeMetricFamily]:
        inbox = Inbox(self.store)
        try:
            counts = inbox.counts()
            oldest = inbox.oldest_pending()
            dead = DeadLetters(self.store).count()
        except StoreError:
            return
        depth = GaugeMetricFamily(f"{_PREFIX}_inbox_events", "Inbox events by status",
                                  labels=["status"])
        for status in ("pending", "processing", "done", "dead"):
            depth.add_metric([status], counts.get(status, 0))
        yield depth
        yield GaugeMetricFamily(
            f"{_PREFIX}_inbox_oldest_pending_age_seconds",
            "Age of the oldest pending inbox event (0 when none)",
            value=0.0 if oldest is None else max(0.0, time.time() - oldest),
        )
        yield GaugeMetricFamily(f"{_PREFIX}_dead_letters", "Dead letters waiting (events and"
                                " runs of `run`)", value=dead)


class Metrics:
    """The console's metrics: subscribes to ``bus`` until :meth:`close`.

    :param store: the state file the gauges read.
    """

    def __init__(self, store: Store, bus: Bus) -> None:
        self.bus = bus
        self.registry = registry = CollectorRegistry(auto_describe=True)
        self.received = Counter(f"{_PREFIX}_webhooks_received", "Webhooks accepted, by app",
                                ["app"], registry=registry)
        self.refused = Counter(f"{_PREFIX}_webhooks_refused", "Webhooks refused or ignored,"
                               " by reason", ["reason"], registry=registry)
        self.runs = Counter(f"{_PREFIX}_runs", "Recipe runs ended, by recipe and status",
                            ["recipe", "status"], registry=registry)
        self.latency = Histogram(f"{_PREFIX}_action_latency_seconds", "Recipe step duration,"
                                 " by action", ["action"], buckets=_LATENCY_BUCKETS,
                                 registry=registry)
        self.throttled = Counter(f"{_PREFIX}_http_429", "429 answers from apps", ["base_url"],
                                 registry=registry)
        self.retries = Counter(f"{_PREFIX}_http_retries", "Requests retried", ["base_url"],
                               registry=registry)
        self.refreshes = Counter(f"{_PREFIX}_token_refreshes", "Token refreshes, by outcome",
                                 ["outcome"], registry=registry)
        self.dead = Counter(f"{_PREFIX}_dead_lettered", "Runs that ended dead_letter",
                            registry=registry)
        self.syncs = Counter(f"{_PREFIX}_sync_changes", "Sync decisions, by direction and"
                             " action", ["direction", "action"], registry=registry)
        self.polled = Counter(f"{_PREFIX}_poller_events", "Records pollers turned into events",
                              ["trigger"], registry=registry)
        registry.register(_StoreGauges(store))
        bus.subscribe(self.observe)

    def __repr__(self) -> str:
        return f"Metrics({self.bus!r})"

    def close(self) -> None:
        """Stop counting."""
        self.bus.unsubscribe(self.observe)

    def render(self) -> bytes:
        """The text exposition of every metric."""
        return generate_latest(self.registry)

    def observe(self, event: Event) -> None:
        """Count one bus event (called in the publisher's thread)."""
        kind, status = event["kind"], event.get("status")
        if kind == "webhook":
            if status == "accepted":
                self.received.labels(str(event.get("app"))).inc()
            else:
                self.refused.labels(str(event.get("code", status))).inc()
        elif kind == "run" and status in _ENDED:
            self.runs.labels(str(event.get("recipe")), status).inc()
            if status == "dead_letter":
                self.dead.inc()
        elif kind == "step" and isinstance(event.get("duration_ms"), float | int):
            self.latency.labels(str(event.get("action"))).observe(event["duration_ms"] / 1000)
        elif kind == "http":
            counter = self.throttled if status == "429" else self.retries
            counter.labels(str(event.get("base"))).inc()
        elif kind == "token":
            self.refreshes.labels(str(status)).inc()
        elif kind == "sync":
            self.syncs.labels(str(event.get("direction")), str(status)).inc()
        elif kind == "poll":
            self.polled.labels(str(event.get("trigger"))).inc(int(event.get("found", 1)))
