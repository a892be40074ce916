"""REST-hook delivery: inbox events to subscribers, signed as Standard Webhooks, durably.

**Fan-out.** :func:`fan_out` turns one stored inbox event into one ``hook_deliveries`` row
(store migration 9) per subscription whose trigger and filter match it
(:mod:`connector.api.subscriptions`). ``serve`` calls it from its worker pool before the
event's recipes run, so the rows are written after the event is stored and before it is
marked ``done``: a process killed in between runs the event again at its next start, and the
rows, keyed by a deterministic message id, are written once. The row holds the exact body
that is POSTed on every attempt::

    {"type": "<trigger id>", "timestamp": "<event received, RFC 3339 UTC>", "data": <payload>}

**Sending.** :class:`Deliverer` is the worker a process starts: ``senders`` threads (4) that
each claim one ready delivery (under a lease, so several processes may share the table), check
its ``target_url`` again with the SSRF guard (:mod:`connector.client.urlguard`), connect only to
the addresses the guard checked (:class:`~connector.client.exchange.Exchange`), and POST it
with the Standard Webhooks headers:

- ``webhook-id``: the message id, ``msg_`` + 32 hex digits, the same on every attempt and
  after a restart (receivers deduplicate on it: delivery is at least once);
- ``webhook-timestamp``: the attempt's Unix time in seconds;
- ``webhook-signature``: ``v1,`` + base64 of HMAC-SHA256, keyed with the subscription's
  secret (the bytes after ``whsec_``, base64-decoded), over ``<id>.<timestamp>.<body>``.

A 2xx answer is ``delivered``. A 410 deletes the subscription (its pending deliveries are
``cancelled``, this one too). Anything else (another status, a redirect, a refused
connection, a timeout) is retried after the pack's one jittered backoff
(:mod:`connector.client.retry`; a ``Retry-After`` is honoured up to the cap), until
``retry.attempts`` attempts were made: then the delivery is ``dead`` and stays listed
(:func:`deliveries`, :func:`delivery_counts`, ``serve``'s ``/healthz``, ``ghl-connector
hooks deliveries``) until :func:`redeliver` sends it again. A target the guard refuses is
``dead`` at once. Delivered and cancelled rows are purged after ``keep`` seconds.

Use::

    deliverer = Deliverer(store)          # DeliverySettings() for the timings
    deliverer.start()                     # hands back claims of dead processes, starts threads
    deliverer.wake()                      # after fan_out queued something (else within `idle`)
    deliverer.stop()                      # on shutdown: claims in flight are handed back

A process killed mid-send leaves its claims ``sending``; the next :meth:`Deliverer.start` on
the same host hands back those of processes no longer alive (others' are taken over when their
lease ends), and the message is sent again with the same ``webhook-id``. Secrets never reach
logs or stored errors; logs name the target's host only (a hook URL's path is often a
capability).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import httpx

from connector.api.subscriptions import drop, open_secret
from connector.auth.redaction import redact
from connector.auth.vault import Vault
from connector.client.exchange import Exchange
from connector.client.retry import RetryPolicy, parse_retry_after
from connector.client.urlguard import UrlGuard
from connector.errors import ConnectorError, RemoteError, StoreError
from connector.service.dispatcher import event_payload
from connector.service.inbox import InboxEvent
from connector.store import Db, Store

__all__ = [
    "Deliverer",
    "Delivery",
    "DeliverySettings",
    "Status",
    "deliveries",
    "delivery_counts",
    "envelope",
    "fan_out",
    "message_id",
    "purge",
    "recover",
    "redeliver",
    "sign",
]

Status = Literal["pending", "sending", "delivered", "dead", "cancelled"]
_log = logging.getLogger(__name__)
_MAX_ERROR_CHARS = 500
_COLUMNS = (
    "id, subscription_id, event_id, status, attempts, available_at, last_status, last_error,"
    " created_at, finished_at"
)


@dataclass(frozen=True, slots=True)
class DeliverySettings:
    """How deliveries are sent.

    :param retry: attempts (the first included) and the backoff between them.
    :param timeout: seconds per attempt (connect and read).
    :param senders: threads sending in parallel (one slow target holds one of them).
    :param lease: seconds after which another process may take over a claimed delivery.
    :param idle: seconds between looks at the table when nothing is ready (deliveries another
        process queued are seen within it).
    :param keep: seconds ``delivered`` and ``cancelled`` rows are kept (``dead`` ones stay).
    """

    retry: RetryPolicy = field(default_factory=lambda: RetryPolicy(attempts=10, base=5.0,
                                                                   cap=3600.0))
    timeout: float = 10.0
    senders: int = 4
    lease: float = 120.0
    idle: float = 1.0
    keep: float = 7 * 86400.0


@dataclass(frozen=True, slots=True)
class Delivery:
    """One delivery as listed (the body is left out)."""

    id: str
    subscription_id: str
    event_id: str
    status: Status
    attempts: int
    available_at: float
    last_status: int | None
    last_error: str | None
    created_at: float
    finished_at: float | None

    def as_dict(self) -> dict[str, Any]:
        """The delivery as JSON-ready data."""
        return {name: getattr(self, name) for name in self.__slots__}


def message_id(subscription_id: str, event_id: str) -> str:
    """The ``webhook-id`` of one event for one subscription: the same every time."""
    digest = hashlib.sha256(f"{subscription_id}\n{event_id}".encode()).hexdigest()
    return "msg_" + digest[:32]


def envelope(trigger_id: str, payload: Any, received_at: float) -> bytes:  # noqa: ANN401
    """The body POSTed for one event: Standard Webhooks' ``type``, ``timestamp``, ``data``."""
    when = datetime.fromtimestamp(received_at, UTC).isoformat(timespec="milliseconds")
    document = {"type": trigger_id, "timestamp": when.replace("+00:00", "Z"), "data": payload}
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value: ``v1,`` + base64 HMAC-SHA256 of ``id.timestamp.body``.

    :param secret: the subscription's ``whsec_...`` secret.
    """
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def fan_out(store: Store, event: InboxEvent, *, now: float | None = None) -> int:
    """Queue ``event`` for every subscription it matches (in one transaction).

    Repeating it for the same event queues nothing twice (the rows' ids are
    :func:`message_id`). An event whose body is not a JSON object matches no subscription.

    :returns: how many deliveries were newly queued.
    :raises StoreError: the state file failed (the caller retries the event).
    """
    from connector.api.subscriptions import matches

    if not event.type:
        return 0
    rows = store.query("SELECT id, trigger_id, filter FROM hook_subscriptions"
                       " WHERE event_type = ?", (event.type,))
    if not rows:
        return 0
    payload = event_payload(event)
    if isinstance(payload, str):
        _log.warning("hooks: %s; not delivered to %d subscriptions", payload, len(rows))
        return 0
    moment = time.time() if now is None else now
    queued = []
    for row in rows:
        wanted = json.loads(row["filter"]) if row["filter"] is not None else None
        if matches(wanted, payload):
            body = envelope(str(row["trigger_id"]), payload, event.received_at)
            queued.append((message_id(str(row["id"]), event.webhook_id), str(row["id"]),
                           event.webhook_id, body, moment, moment))
    if not queued:
        return 0
    with store.transaction() as db:
        added = sum(db.execute(
            "INSERT INTO hook_deliveries (id, subscription_id, event_id, body, available_at,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING", row,
        ).rowcount for row in queued)
    return int(added)


def deliveries(
    store: Store, *, status: Status | None = None, subscription_id: str | None = None,
    limit: int = 100, ids: Sequence[str] | None = None,
) -> list[Delivery]:
    """Deliveries, newest first, optionally of one status, one subscription or these ids."""
    where: list[str] = []
    params: list[object] = []
    if ids is not None:
        where.append(f"id IN ({', '.join('?' * len(ids))})" if ids else "1 = 0")
        params.extend(ids)
    if status is not None:
        where.append("status = ?")
        params.append(status)
    if subscription_id is not None:
        where.append("subscription_id = ?")
        params.append(subscription_id)
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    rows = store.query(f"SELECT {_COLUMNS} FROM hook_deliveries{clause}"
                       " ORDER BY created_at DESC, id LIMIT ?", [*params, limit])
    return [Delivery(str(r["id"]), str(r["subscription_id"]), str(r["event_id"]), r["status"],
                     int(r["attempts"]), float(r["available_at"]), r["last_status"],
                     r["last_error"], float(r["created_at"]), r["finished_at"]) for r in rows]


def delivery_counts(store: Store) -> dict[str, int]:
    """How many deliveries have each status (statuses with none are left out)."""
    rows = store.query("SELECT status, COUNT(*) AS n FROM hook_deliveries GROUP BY status")
    return {str(r["status"]): int(r["n"]) for r in rows}


def purge(store: Store, finished_before: float) -> int:
    """Delete ``delivered`` and ``cancelled`` deliveries finished before a time."""
    with store.transaction() as db:
        return int(db.execute(
            "DELETE FROM hook_deliveries WHERE status IN ('delivered', 'cancelled')"
            " AND finished_at < ?", (finished_before,),
        ).rowcount)


def redeliver(store: Store, ids: Sequence[str] | None = None) -> int:
    """Send ``dead`` deliveries again (all of them when ``ids`` is None): ``pending`` now, with
    their attempts counted from zero; a running deliverer picks them up within ``idle``.

    :returns: how many were revived (deliveries not ``dead`` are left alone).
    """
    sql = ("UPDATE hook_deliveries SET status = 'pending', attempts = 0, available_at = ?,"
           " finished_at = NULL WHERE status = 'dead'")
    params: list[object] = [time.time()]
    if ids is not None:
        if not ids:
            return 0
        sql += f" AND id IN ({', '.join('?' * len(ids))})"
        params.extend(ids)
    with store.transaction() as db:
        return int(db.execute(sql, params).rowcount)


_HOST = socket.gethostname()


def recover(store: Store, claimers: Sequence[str] | None = None) -> int:
    """Hand back (``pending`` again) the claims of this host's processes that are gone (or,
    given ``claimers``, exactly theirs); returns how many."""
    if claimers is None:
        rows = store.query("SELECT DISTINCT claimed_by FROM hook_deliveries"
                           " WHERE status = 'sending'")
        gone = [str(r["claimed_by"]) for r in rows
                if r["claimed_by"] and _dead(str(r["claimed_by"]))]
    else:
        gone = list(claimers)
    if not gone:
        return 0
    with store.transaction() as db:
        return sum(int(db.execute(
            "UPDATE hook_deliveries SET status = 'pending', claimed_by = NULL,"
            " claimed_at = NULL WHERE status = 'sending' AND claimed_by = ?", (claimer,),
        ).rowcount) for claimer in gone)


def _dead(claimer: str) -> bool:
    """Whether a claimer (``host:pid:name``) is a process of this host that is gone (a
    predecessor that had our pid is left to its lease)."""
    host, _, rest = claimer.partition(":")
    pid_text = rest.partition(":")[0]
    if host != _HOST or not (pid_text.isascii() and pid_text.isdigit()):
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


@dataclass(frozen=True, slots=True)
class _Claim:
    id: str
    subscription_id: str
    body: bytes
    attempts: int
    claimer: str


@dataclass(frozen=True, slots=True)
class _Result:
    """One attempt's end: ``delivered``, ``retry``, ``dead`` or ``gone`` (410)."""

    kind: Literal["delivered", "retry", "dead", "gone"]
    status: int | None = None
    error: str | None = None
    retry_after: float | None = None


class Deliverer:
    """Sends queued deliveries from sender threads (see the module doc).

    :param store: the state file holding subscriptions and deliveries.
    :param settings: timings and sizes.
    :param vault: opens the subscriptions' secrets (default: beside the state file).
    :param guard: the SSRF guard, made for each attempt (default:
        :meth:`UrlGuard.from_config`, which sees later ``allow`` entries too).
    :raises ConnectorError: the guard's configuration is wrong (a bad ``CONNECTOR_HTTP_ALLOW``
        entry): said now, at the start, rather than as every delivery going dead.
    """

    def __init__(
        self,
        store: Store,
        settings: DeliverySettings | None = None,
        *,
        vault: Vault | None = None,
        guard: Callable[[], UrlGuard] | None = None,
    ) -> None:
        self.store = store
        self.settings = settings or DeliverySettings()
        self.vault = vault or Vault.beside(store.path)
        self._guard = guard or UrlGuard.from_config
        self._guard()
        self._backoff = self.settings.retry.backoff()
        self._secrets: dict[str, str] = {}
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._purged = 0.0
        self._token = os.urandom(4).hex()

    def __repr__(self) -> str:
        return f"Deliverer({self.store!r}, senders={len(self._threads)})"

    @property
    def alive(self) -> bool:
        """Whether every sender thread runs."""
        return bool(self._threads) and all(t.is_alive() for t in self._threads)

    def start(self) -> None:
        """Hand back claims dead processes left (:func:`recover`), then start the senders."""
        if self._threads:
            return
        try:
            handed = recover(self.store)
        except StoreError as exc:
            _log.warning("hooks: cannot hand back old claims (their lease will): %s", exc)
        else:
            if handed:
                _log.info("hooks: handed back deliveries a stopped process left",
                          extra={"fields": {"handed_back": handed}})
        self._stop.clear()
        for index in range(self.settings.senders):
            thread = threading.Thread(target=self._loop, args=(index,), daemon=True,
                                      name=f"hooks-{index}")
            self._threads.append(thread)
            thread.start()

    def stop(self, timeout: float = 10.0) -> int:
        """Stop the senders (a send in flight ends within its timeout, else is handed back by
        the next start); returns how many claims were handed back now."""
        self._stop.set()
        self._wake.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        claimers = [self._claimer(t.name) for t in self._threads]
        self._threads = []
        try:
            return recover(self.store, claimers)
        except StoreError:
            return 0

    def wake(self) -> None:
        """Look for ready deliveries now (call after :func:`fan_out` queued some)."""
        self._wake.set()

    def run_once(self) -> int:
        """Send every delivery ready now, once each, in this thread; returns how many."""
        sent = 0
        claimer = self._claimer("once")
        while self._deliver_next(claimer):
            sent += 1
        return sent

    def _claimer(self, name: str) -> str:
        """Who claims: host, pid, this deliverer and its thread (``recover`` reads the pid)."""
        return f"{_HOST}:{os.getpid()}:{self._token}-{name}"

    def _loop(self, index: int) -> None:
        claimer = self._claimer(f"hooks-{index}")
        while not self._stop.is_set():
            sent = False
            try:
                sent = self._deliver_next(claimer)
                if index == 0:
                    self._maybe_purge()
            except StoreError as exc:
                _log.warning("hooks: the state file failed: %s", exc)
            except Exception:  # thread top level: a sender must not die
                _log.exception("hooks: delivering failed")
            if not sent:
                self._wake.wait(self._idle())
                self._wake.clear()

    def _idle(self) -> float:
        """Seconds to wait: until the next retry is due, at most ``idle``."""
        try:
            rows = self.store.query("SELECT MIN(available_at) AS t FROM hook_deliveries"
                                    " WHERE status = 'pending'")
        except StoreError:
            return self.settings.idle
        due = rows[0]["t"]
        if due is None:
            return self.settings.idle
        return min(self.settings.idle, max(0.01, float(due) - time.time()))

    def _maybe_purge(self) -> None:
        now = time.time()
        if now - self._purged >= 3600.0:
            self._purged = now
            purge(self.store, now - self.settings.keep)

    def _claim(self, claimer: str) -> _Claim | None:
        now = time.time()
        with self.store.transaction() as db:
            row = db.execute(
                "UPDATE hook_deliveries SET status = 'sending', claimed_by = ?, claimed_at = ?,"
                " attempts = attempts + 1 WHERE id = (SELECT id FROM hook_deliveries WHERE"
                " (status = 'pending' AND available_at <= ?) OR (status = 'sending' AND"
                " claimed_at <= ?) ORDER BY available_at, created_at LIMIT 1"
                # PostgreSQL: a delivery another process is claiming is passed over.
                f"{self.store.skip_locked})"
                " RETURNING id, subscription_id, body, attempts",
                (claimer, now, now, now - self.settings.lease),
            ).fetchone()
        if row is None:
            return None
        return _Claim(str(row[0]), str(row[1]), bytes(row[2]), int(row[3]), claimer)

    def _deliver_next(self, claimer: str) -> bool:
        """Claim, send and settle one delivery; False when none is ready."""
        claim = self._claim(claimer)
        if claim is None:
            return False
        try:
            rows = self.store.query("SELECT target_url, secret FROM hook_subscriptions"
                                    " WHERE id = ?", (claim.subscription_id,))
            if not rows:
                self._settle(claim, "cancelled", None, "the subscription was removed")
                return True
            secret = self._secrets.get(claim.subscription_id)
            if secret is None:
                secret = open_secret(self.vault, claim.subscription_id, rows[0]["secret"])
                self._secrets[claim.subscription_id] = secret
            result = self._send(claim, str(rows[0]["target_url"]), secret)
        except ConnectorError as exc:  # the state file or the key: counts as a failed attempt
            result = _Result("retry", error=str(exc))
        except Exception as exc:  # a bug must not leave the claim to its lease forever
            _log.exception("hooks: delivery %r failed", claim.id)
            result = _Result("retry", error=f"unexpected error: {exc!r}")
        self._record(claim, result)
        return True

    def _send(self, claim: _Claim, target_url: str, secret: str) -> _Result:
        try:
            target = self._guard().check(target_url, where="target_url")
        except RemoteError as exc:  # the host does not resolve (now)
            return _Result("retry", error=_origin_only(str(exc), target_url))
        except ConnectorError as exc:
            return _Result("dead", error=_origin_only(str(exc), target_url))
        stamp = int(time.time())
        headers = {
            "content-type": "application/json",
            "user-agent": "ghl-connector-hooks",
            "webhook-id": claim.id,
            "webhook-timestamp": str(stamp),
            "webhook-signature": sign(secret, claim.id, stamp, claim.body),
        }
        try:
            with Exchange(self.settings.timeout) as exchange:
                answer = exchange.send("POST", target.url, headers, claim.body, target.addresses)
        except ConnectorError as exc:
            return _Result("retry", error=_origin_only(str(exc), target_url))
        if 200 <= answer.status < 300:
            return _Result("delivered", answer.status)
        if answer.status == 410:
            return _Result("gone", 410, "the target answered 410 Gone: unsubscribed")
        wait = parse_retry_after(answer.headers.get("retry-after"))
        said = f"POST {_origin(target.url)} -> {answer.status}"
        if 300 <= answer.status < 400:  # following it could lead anywhere the guard never saw
            said += " (a redirect: never followed) [subscribe the URL it points to instead]"
        return _Result("retry", answer.status, said, wait)

    def _record(self, claim: _Claim, result: _Result) -> None:
        fields = {"delivery": claim.id, "subscription": claim.subscription_id,
                  "attempt": claim.attempts, "status": result.status}
        if result.kind == "delivered":
            self._settle(claim, "delivered", result.status, None)
        elif result.kind == "gone":
            with self.store.transaction() as db:
                drop(db, claim.subscription_id, "the target answered 410 Gone")
                self._update(db, claim, "cancelled", result.status, result.error, None)
            self._secrets.pop(claim.subscription_id, None)
            _log.info("hooks: the target answered 410; subscription removed",
                      extra={"fields": fields})
        elif result.kind == "retry" and claim.attempts < self.settings.retry.attempts:
            wait = self._backoff.delay(claim.attempts, retry_after=result.retry_after)
            wait = min(wait, self.settings.retry.cap)
            self._settle(claim, "pending", result.status, result.error, time.time() + wait)
            _log.info("hooks: delivery failed; retrying in %.1f s: %s", wait, result.error,
                      extra={"fields": fields})
        else:
            self._settle(claim, "dead", result.status, result.error)
            _log.warning("hooks: delivery is dead after %d attempts: %s", claim.attempts,
                         result.error, extra={"fields": fields})

    def _settle(self, claim: _Claim, status: Status, code: int | None, error: str | None,
                retry_at: float | None = None) -> None:
        with self.store.transaction() as db:
            self._update(db, claim, status, code, error, retry_at)

    @staticmethod
    def _update(db: Db, claim: _Claim, status: Status, code: int | None,
                error: str | None, retry_at: float | None) -> None:
        now = time.time()
        finished = None if status == "pending" else now
        text = redact(error)[:_MAX_ERROR_CHARS] if error else None
        db.execute(
            "UPDATE hook_deliveries SET status = ?, last_status = ?, last_error = ?,"
            " available_at = COALESCE(?, available_at), claimed_by = NULL, claimed_at = NULL,"
            " finished_at = ? WHERE id = ? AND status = 'sending' AND claimed_by = ?",
            (status, code, text, retry_at, finished, claim.id, claim.claimer),
        )


def _origin(url: httpx.URL) -> str:
    """``scheme://host:port`` only: a hook URL's path and query are often a capability."""
    port = f":{url.port}" if url.port else ""
    host = f"[{url.host}]" if ":" in url.host else url.host
    return f"{url.scheme}://{host}{port}"


def _origin_only(message: str, target_url: str) -> str:
    """``message`` with the target's path (as :func:`~connector.client.exchange.safe_url`
    shows it) cut to its origin."""
    try:
        url = httpx.URL(target_url)
    except httpx.InvalidURL:
        return message
    origin = _origin(url)
    for shown in (str(url), f"{origin}{url.path}", f"{url.scheme}://{url.host}{url.path}"):
        if url.path not in ("", "/"):
            message = message.replace(shown, origin)
    return message
