"""Footprints: every write the pack makes, so its echo is recognised and loops are stopped.

A recipe or a sync that writes to an app (GHL, a partner app, any plugin's) soon hears
about it again: the app sends a webhook for the change the pack itself made. Left alone, two
recipes (or a recipe and a sync) that copy the same thing in opposite directions ping-pong
forever. So every write made on behalf of a recipe run or a sync leaves a *footprint* in the
state file: which app and record, who wrote it (``recipe:<key>`` or ``sync:<name>``), the chain
of writers that led to it, when, and a digest of each field it wrote.

An event is the pack's own **echo** (:meth:`Footprints.echo_of`) when the pack wrote its record
(its ``id``, or ``data.id`` in a partner's envelope) within ``echo_window`` seconds before the
event arrived, and the event shows that write and nothing else:

* every field the write set that the event carries still has the written value, and it carries
  at least one of them (a delete: none needed);
* every other field the event carries shows the record as the write's *answer* showed it (the
  create or update's output: ``{"contact": {...}}``, ``{"task": {...}}`` or the record itself,
  whichever names the record's id). A field the answer did not hold counts as empty when the
  action's output schema declares it (GHL answers leave unset fields out), and is not compared
  otherwise (a field only the webhook carries, such as GHL's ``name`` or ``attachments``).
  Bookkeeping fields (ids, ``type``, ``locationId``, ``dateAdded``/``dateUpdated``,
  ``createdAt``/``updatedAt``, ``timestamp``, ``webhookId``...) and object values are not
  compared; a list must hold the same items as the answer's;
* a field its event type means without carrying it (the app's ``sync_events``: GHL's
  ``TaskComplete`` means ``completed: true``) has that value in the write or its answer;
* a delete event (``ContactDelete``, ``task.deleted``: a type ending in ``Delete`` or
  ``deleted``, or a ``deleted`` type of ``sync_events``) echoes only the pack's delete.

So a person's edit, of a field the pack wrote or of any other within the window (a website
set, a tag added, a task completed or deleted), is never an echo. Values are compared
after normalising: text trimmed and case-folded, dates as instants, phone numbers as digits, and
a list matches a written one when it holds every item written (tags added to a longer list).

Loop protection (:meth:`Footprints.check`): before a write, the pack refuses it with
:class:`LoopDetected` when the same writer already wrote the same record ``loop_limit`` times
within ``loop_window`` seconds, or when the writer already appears ``loop_limit`` times in the
chain of writes that caused the event it is handling.

Writes are recorded only inside :func:`acting` (set by the recipe engine, the service's syncs
and the backfill); the runtime asks :func:`current` on every call. An update or a delete is
recorded before it is sent, a create as soon as its answer names the new record; the answer's
digests are added to the row then (one SQLite transaction before the call and one after,
without fsync: about 0.1 ms each). Field values are stored as keyed digests, never in clear
(the answer's under the ``@answer`` key of the row's ``fields``); rows older than a day are
pruned.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import hashlib
import json
import os
import random
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from connector.errors import ConnectorError
from connector.hookspecs import Action, SyncEvents
from connector.store import Store

__all__ = [
    "DEFAULT_ECHO_WINDOW",
    "DEFAULT_LOOP_LIMIT",
    "DEFAULT_LOOP_WINDOW",
    "Echo",
    "Footprints",
    "LoopDetected",
    "ORIGIN_SCHEMA",
    "OUTSIDE",
    "Origin",
    "Pending",
    "acting",
    "current",
    "is_read",
    "is_write",
    "record_of",
    "store_salt",
]

DEFAULT_ECHO_WINDOW = 120.0
DEFAULT_LOOP_LIMIT = 10
DEFAULT_LOOP_WINDOW = 60.0
_KEEP = 86_400.0
"""Footprints older than this (seconds) are pruned (by one write in about a thousand)."""
_PRUNE_CHANCE = 0.001
_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"})
_READ_VERBS = re.compile(r"^(get|list|search|find|lookup|read|count)")
_PHONE = re.compile(r"^\+?[\d\s().-]{7,}$")
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
_ANSWER = "@answer"
"""The key of a row's ``fields`` holding the answer's digests (name -> digest, list, or None:
empty)."""
_DELETE = "@delete"
"""The key of a row's ``fields`` marking the delete of the record itself."""
_VOLATILE = re.compile(
    r"(?i)^(id|_id|type|location_?id|webhook_?id|event_?id|timestamp|version|etag|"
    r"date_?(added|updated|modified)|(created|updated|modified)(_?(at|on|date|time))?|"
    r"last_?activity\w*|\w*lowercase)$"
)
"""Bookkeeping fields an answer and a webhook may show differently for one state (ids, the
event envelope, update times, derived lower-case copies): never compared with the answer."""
_DELETE_TYPE = re.compile(r"(?i)delete[d]?$")
_DELETE_VERB = re.compile(r"^(delete|remove)")


class LoopDetected(ConnectorError):
    """A write refused because its writer keeps acting on the same record (see module doc)."""

    def __init__(self, message: str, chain: Sequence[str]) -> None:
        super().__init__(message)
        self.chain = tuple(chain)


@dataclass(frozen=True, slots=True)
class Origin:
    """Who is writing: ``recipe:<key>`` or ``sync:<name>``, the run (or event) it writes
    for, and the chain of writers whose writes led to the event being handled (itself last)."""

    writer: str
    run: str | None = None
    chain: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Echo:
    """The pack's write an event echoes: who wrote the record, when, and the chain of writes."""

    writer: str
    run: str | None
    at: float
    chain: tuple[str, ...]

    def as_trigger(self) -> dict[str, Any]:
        """What ``trigger.origin`` holds for this echo."""
        kind, _, name = self.writer.partition(":")
        return {
            "pack": True,
            "by": kind,
            "name": name,
            "run": self.run,
            "at": datetime.fromtimestamp(self.at).astimezone().isoformat(),
            "chain": list(self.chain),
        }


OUTSIDE: dict[str, Any] = {"pack": False, "by": None, "name": None, "run": None, "at": None,
                           "chain": []}  # fmt: skip
"""``trigger.origin`` of an event that is not the pack's echo."""

ORIGIN_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Where the change came from: the pack's own write (a recipe or a sync), or not.",
    "properties": {
        "pack": {"type": "boolean", "description": "True when the pack itself made this change."},
        "by": {"type": ["string", "null"], "enum": ["recipe", "sync", None]},
        "name": {"type": ["string", "null"], "description": "The recipe key or sync name."},
        "run": {"type": ["string", "null"]},
        "at": {"type": ["string", "null"], "format": "date-time"},
        "chain": {"type": "array", "items": {"type": "string"}},
    },
}
"""The schema of ``trigger.origin``, which recipes may read like any payload field."""


@dataclass(frozen=True, slots=True)
class Pending:
    """A write about to be sent, completed by :meth:`Footprints.after` (``own``: ``record`` is
    the written record itself, else its parent, or None)."""

    app: str
    record: str | None
    own: bool
    writer: str
    run: str | None
    chain: str
    fields: str
    at: float
    declared: tuple[str, ...] = ()
    """The record fields the action's output schema declares (compared as empty when the
    answer leaves them out)."""


def is_write(action: Action) -> bool:
    """Whether calling ``action`` changes something (creates, updates, deletes).

    A POST (PUT, PATCH, DELETE) whose verb reads (``search``, ``get_...``) is a read, unless it
    needs a ``.write`` scope or is an OAuth endpoint (``/oauth/``: it mints a token, and a
    refresh token rotates). ``http.request`` (any method) is not counted here: a step's own
    method decides; :func:`is_read` is the rule for refusing writes."""
    if action.kind == "graphql":
        options = action.options.get("graphql")
        return isinstance(options, Mapping) and bool(options.get("mutation"))
    if action.kind != "http" or action.method.upper() not in ("POST", "PUT", "PATCH", "DELETE"):
        return False
    verb = action.id.rpartition(".")[2]
    if any(scope.endswith(".write") for scope in action.scopes) or "/oauth/" in action.path:
        return True
    return not _READ_VERBS.match(verb)


def is_read(action: Action) -> bool:
    """Whether calling ``action`` only reads, whatever its input: not :func:`is_write`, and
    sent with one fixed HTTP method (``http.request``, any method, may write). Read-only API
    keys and ``mcp --read-only`` offer only these."""
    return action.method.upper() in _METHODS and not is_write(action)


def record_of(payload: Mapping[str, Any]) -> tuple[str | None, Mapping[str, Any]]:
    """The record an event is about: its id and its fields (a partner's are under ``data``)."""
    data = payload.get("data")
    record: Mapping[str, Any] = data if isinstance(data, Mapping) and "id" in data else payload
    found = record.get("id")
    return (found if isinstance(found, str) and found else None), record


class Footprints:
    """The pack's writes, in the state file (table ``footprints``); thread-safe.

    :param echo_window: how long (seconds) after a write its echo is expected.
    :param loop_limit: writes by one writer to one record (or appearances of one writer in a
        chain) that are allowed before the next is refused as a loop.
    :param loop_window: the window (seconds) those writes are counted in.
    :param events: app id -> how its webhooks are read (the manifest's ``sync_events``): the
        fields an event type means without carrying them, and its deletes.
    """

    def __init__(
        self,
        store: Store,
        *,
        echo_window: float = DEFAULT_ECHO_WINDOW,
        loop_limit: int = DEFAULT_LOOP_LIMIT,
        loop_window: float = DEFAULT_LOOP_WINDOW,
        events: Mapping[str, SyncEvents] | None = None,
    ) -> None:
        if echo_window <= 0 or loop_limit < 1 or loop_window <= 0:
            raise ValueError("Footprints: windows must be > 0 and loop_limit >= 1")
        self.store = store
        self.echo_window = echo_window
        self.loop_limit = loop_limit
        self.loop_window = loop_window
        self.events: Mapping[str, SyncEvents] = dict(events or {})
        self._salt = store_salt(store)
        self._schemas: dict[tuple[str, str], tuple[str, ...]] = {}

    def __repr__(self) -> str:
        return f"Footprints(echo_window={self.echo_window}, loop_limit={self.loop_limit})"

    # -- writes -----------------------------------------------------------------------------

    def check(self, origin: Origin, app: str, target: str | None) -> None:
        """Refuse the write when ``origin`` loops (see the module doc).

        :raises LoopDetected: naming the record and the chain of writers.
        """
        writer = origin.writer
        if origin.chain.count(writer) > self.loop_limit:
            raise LoopDetected(
                f"loop detected: {writer} acted again on a change its own writes caused"
                f" ({origin.chain.count(writer) - 1} times): chain {' -> '.join(origin.chain)}",
                origin.chain,
            )
        if target is None:
            return
        since = time.time() - self.loop_window
        rows = self.store.query(
            "SELECT COUNT(*) AS n FROM footprints"
            " WHERE writer = ? AND app = ? AND record = ? AND at >= ?",
            (writer, app, target, since),
        )
        if rows and int(rows[0]["n"]) >= self.loop_limit:
            raise LoopDetected(
                f"loop detected: {writer} already wrote {app} record {target!r}"
                f" {int(rows[0]['n'])} times in {self.loop_window:g} s"
                f" (limit {self.loop_limit}): chain {' -> '.join(origin.chain)}",
                origin.chain,
            )

    def before(self, origin: Origin, action: Action, data: Mapping[str, Any]) -> Pending:
        """Check for a loop; record an update or delete now (its record is known, and its
        echo may come back at once); a create is recorded by :meth:`after`, with its id.

        :raises LoopDetected: the write would continue a loop.
        """
        target, own = _target(action, data)
        self.check(origin, action.app, target if own else None)
        written = self._digests(_written(action, data))
        if own and _is_delete(action):
            written[_DELETE] = True
        pending = Pending(
            action.app, target, own, origin.writer, origin.run,
            json.dumps(list(origin.chain)), json.dumps(written, sort_keys=True), time.time(),
            self._declares(action),
        )  # fmt: skip
        if own:
            self._insert(pending, [(target, pending.fields)])
        return pending

    def after(self, pending: Pending, output: Any) -> None:
        """Record the write's other records: a create's new id, an upsert's record, and the
        parent a sub-record was written to (``POST /contacts/{id}/tags``); add the answer's
        digests to the row of each record the answer shows. One transaction."""
        found = [i for i in _answer_ids(output) if i != pending.record]
        if not pending.own and pending.record is not None:
            found.insert(0, pending.record)
        rows = [(record, self._with_answer(pending, record, output)) for record in found]
        update = None
        if pending.own and pending.record is not None:
            answered = self._with_answer(pending, pending.record, output)
            if answered != pending.fields:
                update = answered
        self._insert(pending, rows, update)

    def _with_answer(self, pending: Pending, record: str | None, output: Any) -> str:
        """The row's ``fields`` for ``record``: the written digests, plus the answer's when
        the answer shows that record."""
        answer = _answer_record(output, record)
        if answer is None:
            return pending.fields
        fields = json.loads(pending.fields)
        fields[_ANSWER] = self._answer_digests(answer, pending.declared)
        return json.dumps(fields, sort_keys=True)

    def _insert(
        self,
        pending: Pending,
        records: Sequence[tuple[str | None, str]],
        update: str | None = None,
    ) -> None:
        """One row per record (with its ``fields``), and the own row's ``fields`` replaced by
        ``update``, in one transaction (and now and then, prune old rows)."""
        if not records and update is None:
            return
        rows = [
            (pending.at, pending.app, record, pending.writer, pending.run, pending.chain, fields)
            for record, fields in records
        ]  # fmt: skip
        with self.store.transaction(durable=False) as conn:
            if rows:
                conn.executemany(
                    "INSERT INTO footprints (at, app, record, writer, run, chain, fields)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
            if update is not None:
                conn.execute(
                    "UPDATE footprints SET fields = ?"
                    " WHERE app = ? AND record = ? AND writer = ? AND at = ?",
                    (update, pending.app, pending.record, pending.writer, pending.at),
                )
            if random.random() < _PRUNE_CHANCE:
                conn.execute("DELETE FROM footprints WHERE at < ?", (pending.at - _KEEP,))

    # -- events -----------------------------------------------------------------------------

    def echo_of(self, app: str, payload: Mapping[str, Any], received_at: float) -> Echo | None:
        """The pack's write that ``payload`` (an event of ``app``) echoes, or None."""
        record, carried = record_of(payload)
        kind = payload.get("type")
        implied: Mapping[str, Any] = {}
        deleting = isinstance(kind, str) and bool(_DELETE_TYPE.search(kind))
        events = self.events.get(app)
        if events is not None and isinstance(payload.get(events.type), str):
            known = events.types.get(payload[events.type])
            if known is not None:
                implied = {k: v for k, v in known.sets.items() if k not in carried}
                deleting = deleting or known.deleted
        fields = {**implied, **carried}
        since = received_at - self.echo_window
        rows = self.store.query(
            "SELECT at, record, writer, run, chain, fields FROM footprints"
            " WHERE app = ? AND record = ? AND at >= ? AND at <= ?"
            " ORDER BY at DESC LIMIT 20",
            (app, record or "", since, received_at + self.echo_window),
        )
        for row in rows:
            written: dict[str, Any] = json.loads(row["fields"])
            answer: dict[str, Any] | None = written.pop(_ANSWER, None)
            if written.pop(_DELETE, False) is not True and deleting:
                continue  # a delete event echoes only the pack's delete
            if written and not written.keys() & fields.keys():
                continue  # a write of other fields (a task of this contact): not its echo
            if not self._explains(written, answer, implied):
                continue  # the event type means a change the write did not make
            if self._matches(written, fields) and self._answered(answer, fields):
                chain = tuple(json.loads(row["chain"]))
                return Echo(str(row["writer"]), row["run"], float(row["at"]), chain)
        return None

    # -- internals --------------------------------------------------------------------------

    def _declares(self, action: Action) -> tuple[str, ...]:
        """The record fields ``action``'s output schema declares, less bookkeeping fields
        (cached per action)."""
        key = (action.app, action.id)
        found = self._schemas.get(key)
        if found is None:
            names = _declared(action.output_schema)
            found = self._schemas[key] = tuple(n for n in names if not _volatile(n))
        return found

    def _answer_digests(self, answer: Mapping[str, Any], declared: Sequence[str]) -> dict[str, Any]:
        """The answer's fields as compared: a digest, a sorted list of digests, or None for an
        empty value (and for a declared field the answer leaves out); objects and bookkeeping
        fields are left out."""
        out: dict[str, Any] = dict.fromkeys(declared)
        for name, value in answer.items():
            if _volatile(name):
                continue
            if _empty(value):
                out[name] = None
            elif isinstance(value, list) and all(_comparable(v) for v in value):
                out[name] = sorted({self._digest(v) for v in value})
            elif _comparable(value):
                out[name] = self._digest(value)
            else:
                out.pop(name, None)
        return out

    def _answered(self, answer: Mapping[str, Any] | None, fields: Mapping[str, Any]) -> bool:
        """Whether every field the event carries that the answer showed has the answer's
        value (no answer: nothing to compare)."""
        if not answer:
            return True
        for name, want in answer.items():
            if name not in fields:
                continue
            have = fields[name]
            if want is None:
                if not _empty(have):
                    return False
            elif isinstance(want, list):
                if not isinstance(have, list) or not all(_comparable(v) for v in have):
                    return False
                if {self._digest(v) for v in have} != set(want):
                    return False
            elif not _comparable(have) or self._digest(have) != want:
                return False
        return True

    def _explains(
        self,
        written: Mapping[str, Any],
        answer: Mapping[str, Any] | None,
        implied: Mapping[str, Any],
    ) -> bool:
        """Whether the write (or its answer) set every field the event type means."""
        for name, value in implied.items():
            if not _comparable(value):
                continue
            digest = self._digest(value)
            if written.get(name) != digest and (answer or {}).get(name) != digest:
                return False
        return True

    def _digests(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, value in fields.items():
            if isinstance(value, list):
                items = [self._digest(v) for v in value if _comparable(v)]
                out[name] = items
            elif _comparable(value):
                out[name] = self._digest(value)
        return out

    def _digest(self, value: Any) -> str:
        text = _normal(value)
        return hashlib.blake2b(text.encode(), key=self._salt, digest_size=12).hexdigest()

    def _matches(self, written: Mapping[str, Any], fields: Mapping[str, Any]) -> bool:
        for name, digest in written.items():
            if name not in fields:
                continue
            have = fields[name]
            if isinstance(digest, list):
                if not isinstance(have, list):
                    return False
                present = {self._digest(v) for v in have if _comparable(v)}
                if not set(digest) <= present:
                    return False
            elif not _comparable(have) or self._digest(have) != digest:
                return False
        return True


_current: contextvars.ContextVar[tuple[Origin, Footprints] | None] = contextvars.ContextVar(
    "connector_acting", default=None
)


@contextlib.contextmanager
def acting(origin: Origin, footprints: Footprints | None) -> Iterator[None]:
    """Record every write made inside the block as ``origin``'s (nothing without footprints)."""
    if footprints is None:
        yield
        return
    token = _current.set((origin, footprints))
    try:
        yield
    finally:
        _current.reset(token)


def current() -> tuple[Origin, Footprints] | None:
    """The writer the calls of this thread (or task) are made for, if any."""
    return _current.get()


def _target(action: Action, data: Mapping[str, Any]) -> tuple[str | None, bool]:
    """The record a write changes as far as the input names it, and whether it is the
    record itself: the path's last parameter when the path ends with it
    (``PUT /contacts/{contactId}``: itself), else its last parameter as the parent of what
    is written (``POST /contacts/{contactId}/tags``: the contact's tags; a new task's own id
    comes with the answer), else an ``id`` input (GraphQL: itself)."""
    path = action.path.rstrip("/")
    names = re.findall(r"{([^}]+)}", path)
    if names:
        value = data.get(names[-1])
        found = str(value) if isinstance(value, str | int) and value != "" else None
        return found, path.endswith("}")
    if action.kind != "http":
        value = data.get("id")
        return (value if isinstance(value, str) and value else None), True
    return None, False


def _written(action: Action, data: Mapping[str, Any]) -> dict[str, Any]:
    """The fields a write sets: its input less path parameters and the location."""
    skip = {p.name for p in action.params if p.location == "path"}
    skip.update(action.location_names())
    skip.add("id")
    return {k: v for k, v in data.items() if k not in skip and v is not None}


@functools.lru_cache(maxsize=4096)
def _volatile(name: str) -> bool:
    """Whether a field is bookkeeping (:data:`_VOLATILE`)."""
    return bool(_VOLATILE.match(name))


def _is_delete(action: Action) -> bool:
    """Whether ``action`` deletes (an HTTP DELETE, or a mutation named ``delete...``)."""
    if action.kind == "http":
        return action.method.upper() == "DELETE"
    return bool(_DELETE_VERB.match(action.id.rpartition(".")[2]))


def _answer_record(output: Any, record: str | None) -> Mapping[str, Any] | None:
    """The record ``record`` as an answer shows it: the answer itself or one of its members
    (``{"contact": {...}}``), whichever has that ``id``; None when the answer does not show it."""
    if record is None or not isinstance(output, Mapping):
        return None
    for value in (output, *output.values()):
        if isinstance(value, Mapping) and value.get("id") == record:
            return value
    return None


def _declared(schema: Mapping[str, Any]) -> tuple[str, ...]:
    """The fields of the record an output schema describes: its properties when they include
    ``id``, else those of its member that does (``{"contact": {...}}``)."""
    properties = schema.get("properties")
    if not isinstance(properties, Mapping):
        return ()
    if "id" in properties:
        return tuple(str(name) for name in properties)
    for member in properties.values():
        inner = member.get("properties") if isinstance(member, Mapping) else None
        if isinstance(inner, Mapping) and "id" in inner:
            return tuple(str(name) for name in inner)
    return ()


def _empty(value: Any) -> bool:
    """None, blank text, an empty list or object: no value."""
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    return isinstance(value, list | dict | Mapping) and not value


def _answer_ids(output: Any) -> list[str]:
    """Record ids an answer names: its ``id`` and its members' (``{"task": {"id": ...}}``)."""
    found: list[str] = []
    if not isinstance(output, Mapping):
        return found
    for value in (output, *output.values()):
        if isinstance(value, Mapping):
            got = value.get("id")
            if isinstance(got, str) and got and got not in found:
                found.append(got)
    return found


def _comparable(value: Any) -> bool:
    return isinstance(value, str | int | float | bool) and not isinstance(value, list)


def _normal(value: Any) -> str:
    """A value as compared: text trimmed and case-folded, dates as UTC instants, phone
    numbers as their digits."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(float(value))
    text = str(value).strip()
    if _ISO.match(text):
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            if moment.tzinfo is not None:
                return f"@{moment.timestamp():.0f}"
    if _PHONE.match(text) and sum(c.isdigit() for c in text) >= 7:
        return "#" + "".join(c for c in text if c.isdigit())[-10:]
    return text.casefold()


def store_salt(store: Store) -> bytes:
    """A per-store random key for the field digests (so stored digests reveal nothing), made
    by the first process that needs it; also what the fleet's store identity derives from
    (:mod:`connector.fleet.identity`)."""
    rows = store.query("SELECT value FROM footprint_salt LIMIT 1")
    if rows:
        return bytes(rows[0]["value"])
    salt = os.urandom(16)
    with store.transaction() as conn:
        conn.execute(
            "INSERT INTO footprint_salt (id, value) VALUES (1, ?) ON CONFLICT DO NOTHING", (salt,)
        )
    rows = store.query("SELECT value FROM footprint_salt LIMIT 1")
    return bytes(rows[0]["value"])
