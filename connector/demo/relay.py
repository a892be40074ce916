"""The demo's webhook relay: verified webhooks from each app, applied in order by sync engines.

A :class:`Relay` is a small HTTP server on 127.0.0.1 taking ``POST /webhooks/<app>``. Each app
has its own check of the raw body: GHL's Ed25519 (else RSA) signature against the given public
keys (:func:`~connector.service.partnerhooks.ghl_check`), a partner's ``sha256=<hex>`` HMAC of the
body
under its shared secret (:func:`~connector.service.partnerhooks.hmac_check`); GHL tasks are
completed
by :func:`connector.sync.syncs.hub_reader` (all three shared with the service). A verified
body becomes a :class:`~connector.sync.engine.Change`
(:mod:`connector.sync.events`) and is queued on every :class:`Lane` listening to that app; a lane
is one sync engine fed from a thread of its own, so changes reach an engine in the order they
arrived and the sandbox's delivery never waits for a sync. Unlike the service's receiver
(:mod:`connector.service.receiver`) nothing is stored: a change is lost if the process stops, which
is
fine for a demo and for tests, not for production.

Each applied change is reported as an :class:`Applied`, with its latency: from the event's own
timestamp (when the app made the change) to the moment the sync's write on the other side
returned.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from connector.documents.manifest import pack_manifest
from connector.errors import ConnectorError
from connector.service.partnerhooks import Check, ghl_check, hmac_check
from connector.sync.audit import AuditEntry, record
from connector.sync.engine import Change, Outcome, SyncEngine
from connector.sync.events import change_from_hub, change_from_partner
from connector.sync.mapping import digest, projection, record_time
from connector.sync.spec import other
from connector.sync.syncs import Prepare, hub_reader

__all__ = [
    "LATE_ECHO", "WRITES", "Applied", "Check", "Echoes", "Lane", "Prepare", "Relay", "ghl_check",
    "hmac_check", "hub_reader",
]  # fmt: skip

WRITES = frozenset({"create", "update", "delete", "archive"})
"""Outcome actions that wrote on the other side."""
LATE_ECHO = "echo: a state the sync wrote before its latest write, arriving late; not sent back"
_MAX_BODY = 1_048_576
_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Applied:
    """One change a lane applied: the app it came from, the sync, the engine's outcome (None
    when applying failed, ``error`` says why) and, for a write, the seconds from the app's
    change to the end of the sync's write."""

    source: str
    sync: str
    change: Change
    outcome: Outcome | None
    latency: float | None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class _Item:
    source: str
    change: Change
    stamp: float | None


class Lane:
    """One sync engine, fed changes in arrival order by a thread of its own.

    :param engine: the engine applying the changes.
    :param report: called with each :class:`Applied` (from the lane's thread).
    :param prepare: per source app, completes a change before it is applied.
    """

    def __init__(
        self,
        engine: SyncEngine,
        report: Callable[[Applied], None],
        *,
        prepare: Mapping[str, Prepare] | None = None,
    ) -> None:
        self.engine = engine
        self._report = report
        self._prepare = dict(prepare or {})
        self.echoes = Echoes(engine)
        self._queue: queue.Queue[_Item | None] = queue.Queue()
        self._open = threading.Event()
        self._open.set()
        self._thread = threading.Thread(target=self._run, name=f"lane-{engine.spec.name}")
        self._thread.daemon = True

    def __repr__(self) -> str:
        return f"Lane({self.engine.spec.name!r}, queued={self._queue.qsize()})"

    def start(self) -> None:
        """Start applying changes."""
        self._thread.start()

    def stop(self) -> None:
        """Finish what is queued, then stop the thread."""
        self._open.set()
        self._queue.put(None)
        self._thread.join(10)

    def put(self, source: str, change: Change, stamp: float | None) -> None:
        """Queue a change from ``source`` made at ``stamp`` (epoch seconds, if known)."""
        self._queue.put(_Item(source, change, stamp))

    def hold(self) -> None:
        """Keep queueing changes without applying them (until :meth:`release`)."""
        self._open.clear()

    def release(self) -> None:
        """Apply changes again, starting with those queued while held."""
        self._open.set()

    def join(self) -> None:
        """Wait until every change queued so far has been applied."""
        self._queue.join()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            self._open.wait()  # after get: a change taken while held waits for the release
            try:
                if item is None:
                    return
                self._report(self._apply(item))
            except Exception:  # the lane's thread is a top level: log, keep applying
                _log.exception("relay: lane %s failed on a change", self.engine.spec.name)
            finally:
                self._queue.task_done()

    def _apply(self, item: _Item) -> Applied:
        name = self.engine.spec.name
        try:
            change = item.change
            prepare = self._prepare.get(item.source)
            if prepare is not None:
                change = prepare(change)
            if self.echoes.late(change):
                return Applied(item.source, name, change, self.echoes.skip(change), None)
            outcome = self.engine.apply(change)
            self.echoes.remember(change, outcome)
        except ConnectorError as exc:
            return Applied(item.source, name, item.change, None, None, str(exc))
        latency = None
        if outcome.action in WRITES and item.stamp is not None:
            latency = max(0.0, time.time() - item.stamp)
        return Applied(item.source, name, change, outcome, latency)


class Relay:
    """``POST /webhooks/<app>`` on a free 127.0.0.1 port: checked, parsed, queued on lanes.

    :param checks: app id -> how its webhooks are verified (other apps get 404).
    :param lanes: app id -> the lanes its changes go to (GHL's go to every sync).

    Answers 401 for a body that fails its check, 400 for one that is not a JSON object, and
    200 otherwise (an event no sync handles is counted as ignored). Use it as a context
    manager; it starts and stops the lanes too.
    """

    def __init__(self, checks: Mapping[str, Check], lanes: Mapping[str, Sequence[Lane]]) -> None:
        self._checks = dict(checks)
        self._routes = {app: tuple(found) for app, found in lanes.items()}
        self._lanes = list({id(lane): lane for v in self._routes.values() for lane in v}.values())
        self._lock = threading.Lock()
        self.received = 0
        self.rejected = 0
        self.ignored = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="relay")
        self._thread.daemon = True

    def __repr__(self) -> str:
        return f"Relay(apps={sorted(self._checks)}, lanes={len(self._lanes)})"

    def __enter__(self) -> Relay:
        for lane in self._lanes:
            lane.start()
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        for lane in self._lanes:
            lane.stop()

    def url(self, app: str) -> str:
        """Where ``app`` should send its webhooks."""
        return f"http://127.0.0.1:{self._server.server_address[1]}/webhooks/{app}"

    @property
    def lanes(self) -> list[Lane]:
        """Every lane, once each."""
        return list(self._lanes)

    def hold(self) -> None:
        """Hold every lane (changes queue up unapplied)."""
        for lane in self._lanes:
            lane.hold()

    def release(self) -> None:
        """Release every lane."""
        for lane in self._lanes:
            lane.release()

    def join(self) -> None:
        """Wait until every lane has applied what it was given so far."""
        for lane in self._lanes:
            lane.join()

    def accept(self, app: str, body: bytes, headers: Mapping[str, str]) -> int:
        """Check, parse and queue one webhook; returns the HTTP status to answer."""
        check = self._checks.get(app)
        if check is None:
            return 404
        if not check(body, headers):
            self._count("rejected")
            return 401
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            self._count("rejected")
            return 400
        found = pack_manifest().apps[app]
        if found.sync_events is not None:  # the hub's flat events (GHL's)
            change = change_from_hub(payload, found.sync_events)
        else:
            webhooks = found.webhooks
            change = change_from_partner(payload, webhooks) if webhooks else None
        self._count("received" if change is not None else "ignored")
        if change is not None:
            stamp = record_time(payload.get("timestamp"))
            for lane in self._routes.get(app, ()):
                lane.put(app, change, stamp)
        return 200

    def _count(self, name: str) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + 1)


def _handler(relay: Relay) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802  # the name http.server calls
            prefix, _, app = self.path.partition("/webhooks/")
            length = int(self.headers.get("content-length") or 0)
            if prefix or not app or length > _MAX_BODY:
                self._answer(404 if length <= _MAX_BODY else 413)
                return
            body = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            self._answer(relay.accept(app, body, headers))

        def _answer(self, status: int) -> None:
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002, ANN401  # http.server's signature
            return

    return Handler


class Echoes:
    """The states a sync wrote lately, per record, as the engine hashes them.

    The engine knows only the hash of the last state it wrote to a record, so when it writes
    one record twice in a row (a GHL edit, then a GHL tag change), the first write's webhook
    comes back after the second write and looks like a real change: copied back, it starts a
    ping-pong that never ends. A lane asks :meth:`late` before applying a change, and skips
    (and audits) a change showing a state the sync itself wrote before its latest write.
    """

    def __init__(self, engine: SyncEngine, depth: int = 8) -> None:
        self.engine = engine
        self._depth = depth
        self._recent: dict[tuple[str, str, str], list[str]] = {}

    def late(self, change: Change) -> bool:
        """Whether ``change`` shows an earlier state the sync wrote (not its latest one)."""
        obj = self.engine.spec.objects.get(change.object)
        if obj is None or change.record is None:
            return False
        found = self._recent.get((obj.name, change.side, change.record_id), [])
        shown = digest(projection(obj, change.side, change.record), self.engine.spec.phone_region)
        link = self.engine.ids.find(obj.name, change.side, change.record_id)
        return shown in found and (link is None or link.hash(change.side) != shown)

    def remember(self, change: Change, outcome: Outcome) -> None:
        """Note the state the sync just wrote for ``change`` (after a create or update)."""
        if outcome.action not in ("create", "update"):
            return
        target = other(change.side)
        target_id = outcome.ghl_id if target == "ghl" else outcome.partner_id
        link = self.engine.ids.find(change.object, target, str(target_id))
        written = link.hash(target) if link else None
        if written:
            found = self._recent.setdefault((change.object, target, str(target_id)), [])
            found.append(written)
            del found[: -self._depth]

    def skip(self, change: Change) -> Outcome:
        """Audit a late echo as skipped; returns the outcome."""
        spec = self.engine.spec
        link = self.engine.ids.find(change.object, change.side, change.record_id)
        ids = {"ghl": link.ghl_id, "partner": link.partner_id} if link else {}
        outcome = Outcome("skip", LATE_ECHO, ids.get("ghl"), ids.get("partner"))
        entry = AuditEntry(
            at=time.time(), sync=spec.name, event_id=change.event_id, object=change.object,
            direction=f"{spec.app(change.side)}->{spec.app(other(change.side))}",
            action="skip", reason=LATE_ECHO, ghl_id=outcome.ghl_id,
            partner_id=outcome.partner_id, changes={},
        )  # fmt: skip
        with self.engine.store.transaction() as db:
            record(db, entry)
        return outcome
