"""The plugin contract: the project name, the hook specifications and the descriptors hooks return.

Built-in plugins (``actions/``, ``triggers/``) and external packages implement these hooks the
same way. External packages are found through the entry-point group named
:data:`PROJECT_NAME`::

    [project.entry-points.ghl_connector]
    myapp = "myapp.plugin"

A hook implementation is a module-level function (or method) decorated with
``connector.hookimpl`` whose name is one of the specs below; a misspelled name fails loudly
when the plugin is registered.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import pluggy

if TYPE_CHECKING:
    import httpx

    from connector.client.httpclient import HttpClient
    from connector.client.request import Reply
    from connector.expressions.syntax import FilterSpec

__all__ = [
    "LOCATION",
    "PROJECT_NAME",
    "SEARCH_INPUT",
    "SEARCH_RANGE",
    "Action",
    "App",
    "AuthProvider",
    "Call",
    "EventMatch",
    "EventType",
    "Executor",
    "Gone",
    "Param",
    "Polling",
    "RateLimit",
    "Settings",
    "SyncEvents",
    "Trigger",
    "Webhooks",
    "hookimpl",
    "hookspec",
]

PROJECT_NAME = "ghl_connector"
"""Name of the plugin project and of the entry-point group external plugins declare."""

LOCATION = "{location}"
"""In :attr:`Action.location_inputs`, the value standing for the connection's location id."""

hookspec = pluggy.HookspecMarker(PROJECT_NAME)

hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
"""Marks a plugin function as the implementation of a hook (exported as ``connector.hookimpl``)."""


@dataclass(frozen=True, slots=True)
class RateLimit:
    """Requests allowed per sliding window of ``per_seconds``, and per day, for one location."""

    requests: int
    per_seconds: float
    daily: int | None = None


@dataclass(frozen=True, slots=True)
class Webhooks:
    """How an app signs the webhooks it sends, and what their envelope holds (the manifest's
    ``webhooks``; the service's receiver and the syncs read partner webhooks by it).

    A delivery is authentic when ``header`` holds ``prefix`` + the hex HMAC (``algorithm``,
    e.g. ``hmac-sha256``) of the raw body under the app's webhook secret, read from
    ``secret_env`` (default ``CONNECTOR_<APP>_WEBHOOK_SECRET``). The body is a JSON envelope:
    the event id is the first of ``id`` present, its type (``<noun>.<verb>``) is at ``type``,
    the record at ``record``; ``objects`` maps a type's noun to the object it reports
    (``contact: contacts``), ``deleted`` lists the verbs that mean a delete, ``updated`` the
    record fields holding its update time (else the envelope's ``time``) and ``contact`` those
    naming the contact a task or note belongs to.
    """

    header: str
    algorithm: str = "hmac-sha256"
    prefix: str = ""
    secret_env: str | None = None
    id: tuple[str, ...] = ("id",)
    type: str = "type"
    time: str | None = None
    record: str = "data"
    objects: Mapping[str, str] = field(default_factory=dict)
    deleted: tuple[str, ...] = ("deleted",)
    updated: tuple[str, ...] = ()
    contact: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Gone:
    """An answer meaning the record a listing was for no longer exists: HTTP ``status`` and,
    when ``says`` is set, a body containing it (case-insensitive; GHL answers a deleted
    contact's task list with 400 "Contact not found")."""

    status: int
    says: str | None = None


SEARCH_INPUT: Mapping[str, Any] = {
    "locationId": "$location",
    "pageLimit": "$limit",
    "sort": [{"field": "$field", "direction": "$direction"}],
}
"""The search input pollers send by default (HighLevel's ``POST /contacts/search``)."""

SEARCH_RANGE: Mapping[str, Any] = {
    "filters": [{"field": "$field", "operator": "range", "value": {"gte": "$from", "lte": "$to"}}],
}
"""What pollers add to the search input for a date range by default (HighLevel's)."""


@dataclass(frozen=True, slots=True)
class Polling:
    """How pollers read an app (the manifest's ``polling``; HighLevel's in the pack).

    Pollers search contacts with ``search`` (a range filter on a date field, sorted by it);
    a polling trigger whose action is ``search`` fires per record, one without a cursor lists
    each changed contact's records with its action (the contact named by ``contact_input``),
    and a webhook trigger whose event ``reconcile`` names fires for changes no stored webhook
    announced. ``changed`` and ``created`` are the update and creation time fields of a
    contact (and of the records listed per contact); an event reconciled on a field other
    than ``created`` reports an update.
    """

    search: str
    contact_input: str = "contactId"
    changed: str = "dateUpdated"
    created: str = "dateAdded"
    reconcile: Mapping[str, str] = field(default_factory=dict)
    """Webhook event type -> the contact field that dates it (``ContactCreate: dateAdded``)."""
    search_input: Mapping[str, Any] = field(default_factory=lambda: dict(SEARCH_INPUT))
    """The input of a search, a template: ``$location`` (the location polled), ``$limit``
    (records per page), ``$field`` (the date field searched and sorted by) and ``$direction``
    (``asc``, or ``desc`` looking for the newest record) are replaced where they are a whole
    string value."""
    search_range: Mapping[str, Any] = field(default_factory=lambda: dict(SEARCH_RANGE))
    """Merged into ``search_input`` when the search has bounds: ``$from`` and ``$to`` are
    the bounds (ISO 8601 UTC with milliseconds); a key whose bound is unset is left out."""
    gone: tuple[Gone, ...] = (Gone(404),)
    """Answers of a per-contact listing that mean the contact was deleted since the search:
    the poller lists nothing for it instead of failing the poll."""


@dataclass(frozen=True, slots=True)
class EventMatch:
    """How the hub's webhook event of a trigger is known when its body's type is not the
    event's name (GHL's ProviderOutboundMessage says ``SMS`` or ``Email``): a body whose type
    is one of ``types`` and that holds a string at each of ``has`` is that event."""

    types: tuple[str, ...]
    has: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class EventType:
    """What a webhook event type reports to a sync: the object (``contacts``), whether it is a
    delete, and fields the event means without carrying them (``completed: true``)."""

    object: str
    deleted: bool = False
    sets: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SyncEvents:
    """How a two-way sync reads an app's flat webhook events (the manifest's ``sync_events``;
    HighLevel's: the record's fields at the top of the payload, beside the envelope's).

    The type is at ``type`` and read by ``types``; the record is the payload without the
    ``envelope`` keys, its id at ``id``; the event id is the first of ``event_id`` present, the
    change's time the first of ``time`` and the parent contact the first of ``contact`` (dots walk
    into objects; the worker pool orders the hub's events by it, contact events by ``id``). The
    events of the ``reread`` objects carry a partial record (GHL's tasks and notes): the sync
    reads the record with the object's ``get`` adapter first and dates the change by it.
    """

    types: Mapping[str, EventType]
    type: str = "type"
    id: str = "id"
    event_id: tuple[str, ...] = ()
    time: tuple[str, ...] = ()
    contact: tuple[str, ...] = ()
    envelope: tuple[str, ...] = ()
    reread: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class App:
    """An API the pack talks to (HighLevel, a partner app, any plugin's)."""

    id: str
    title: str
    base_url: str
    auth: tuple[str, ...]
    description: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    oauth: Mapping[str, str] = field(default_factory=dict)
    rate_limit: RateLimit | None = None
    timeout_seconds: float = 30.0
    api_key_header: str | None = None
    assumptions: tuple[str, ...] = ()
    webhooks: Webhooks | None = None
    """How the app's own webhooks are signed and shaped (None: the service takes none)."""
    sync_adapters: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Object (``contacts``, ``tasks``, ``notes``) -> how a two-way sync reads and writes it in
    this app: the keys of :class:`connector.sync.spec.Adapter` (action ids, id and time fields)."""
    hub: bool = False
    """Whether this is the hub app (HighLevel in the pack's catalog): stored connections are its,
    its webhook events are typed by its own names, its pollers run per location and it is the
    fixed side of every two-way sync. At most one app of a catalog is the hub."""
    polling: Polling | None = None
    """How pollers search and reconcile this app's records (None: they cannot)."""
    sync_events: SyncEvents | None = None
    """How syncs read this app's flat webhook events (the hub's; partners' use ``webhooks``)."""


@dataclass(frozen=True, slots=True)
class Param:
    """Where one input property goes on the wire: ``path``, ``query``, ``header`` or ``body``."""

    name: str
    location: str
    wire_name: str


@dataclass(frozen=True, slots=True)
class Action:
    """A callable operation of an app, with its input and output schemas.

    Input is one flat JSON object; :attr:`params` says where each property goes (properties
    not listed go to the JSON body when :attr:`body` is true).
    """

    id: str
    app: str
    title: str
    input_schema: Mapping[str, Any]
    output_schema: Mapping[str, Any]
    method: str = "GET"
    path: str = "/"
    kind: str = "http"
    description: str = ""
    operation: str | None = None
    scopes: tuple[str, ...] = ()
    deprecated: bool = False
    use_instead: str | None = None
    params: tuple[Param, ...] = ()
    body: bool = False
    retry_safe: bool = False
    pagination: Mapping[str, Any] | None = None
    location_param: str | None = None
    """The input that carries the location id (``locationId``, ``location_id``): filled from
    the connection's location when the input leaves it out."""
    success: tuple[int, ...] = ()
    options: Mapping[str, Any] = field(default_factory=dict)
    """Settings of the action's executor, by kind (e.g. ``{"graphql": {"document": ...}}``)."""
    source: str = ""
    """Where the action was declared (a manifest file or a plugin module), for error messages."""
    tags: tuple[str, ...] = ()
    """Its groups in the app's own documentation (GHL's spec tags); ``catalog --tag`` filters."""
    location_inputs: Mapping[str, str] = field(default_factory=dict)
    """Inputs filled together from the connection's location, besides :attr:`location_param`:
    each input's name and its value, :data:`LOCATION` standing for the location id (GHL's
    ``{"altId": "{location}", "altType": "location"}``). They are filled when the input holds
    none of the location-id ones and every fixed value it holds is the one here, so an
    ``altType`` of ``company`` leaves the pair alone."""

    def located_inputs(self) -> tuple[str, ...]:
        """The inputs that take the location id itself."""
        names = [self.location_param] if self.location_param else []
        names += [n for n, v in self.location_inputs.items() if v == LOCATION]
        return tuple(names)

    def location_names(self) -> tuple[str, ...]:
        """Every input the connection's location fills (so none the caller must give)."""
        names = [self.location_param] if self.location_param else []
        return (*names, *(n for n in self.location_inputs if n not in names))

    def location_fill(self, data: Mapping[str, Any], location: str | None) -> dict[str, str]:
        """The location inputs ``data`` leaves out, with the values that fill them; a ``None``
        location is a placeholder, ``<NAME>``, for each input that takes it."""
        def value(name: str, given: str) -> str:
            if given != LOCATION:
                return given
            return location if location is not None else f"<{name}>"

        filled: dict[str, str] = {}
        if self.location_param and self.location_param not in data:
            filled[self.location_param] = value(self.location_param, LOCATION)
        group = self.location_inputs
        if group and all(
            n not in data if v == LOCATION else data.get(n, v) == v for n, v in group.items()
        ):
            filled.update({n: value(n, v) for n, v in group.items() if n not in data})
        return filled

    def location_in(self, data: Mapping[str, Any]) -> Any:
        """The location ``data`` names in its location inputs (``None``: it names none)."""
        if self.location_param and data.get(self.location_param):
            return data[self.location_param]
        group = self.location_inputs
        if group and all(v == LOCATION or data.get(n) == v for n, v in group.items()):
            return next((data[n] for n, v in group.items() if v == LOCATION and data.get(n)), None)
        return None


@dataclass(frozen=True, slots=True)
class Trigger:
    """Something that starts a recipe: a webhook event or records found by polling."""

    id: str
    app: str
    title: str
    kind: str
    payload_schema: Mapping[str, Any]
    event: str | None = None
    description: str = ""
    scopes: tuple[str, ...] = ()
    options_schema: Mapping[str, Any] = field(default_factory=dict)
    action: str | None = None
    cursor: str | None = None
    dedupe: tuple[str, ...] = ()
    enrich: Mapping[str, Any] | None = None
    source: str = ""
    match: EventMatch | None = None
    """A hub webhook trigger whose body does not carry ``event`` as its type: how the
    receiver knows it (the manifest's ``match``); it is stored, and routed, as ``event``."""


AuthProvider = Callable[[App, Action], "httpx.Auth | None"]
"""Which credential a call of ``action`` sends to ``app`` (``None``: none); the runtime asks it
once per call. :mod:`connector.auth.credentials` and :mod:`connector.auth.tokens` build them."""


@dataclass(frozen=True, slots=True)
class Settings:
    """How a runtime calls actions.

    :param strict: an output that fails its schema is an error, not a warning.
    :param base_urls: app id -> base URL overriding the manifest's (sandbox, tests).
    :param location_id: fills an action's location input when the caller leaves it out,
        and keys the rate limiter.
    :param retry: overrides the HTTP retry policy (tests use short backoffs).
    :param rate_limits: app id -> rate limit overriding the manifest's (e.g. a sandbox
        started with another limit).
    :param limiter: builds an app's rate limiter from its id and limit (a fleet's limiter
        shared through Redis, :mod:`connector.client.sharedlimiter`); None: the in-process
        sliding window.
    """

    strict: bool = False
    base_urls: Mapping[str, str] = field(default_factory=dict)
    location_id: str | None = None
    timeout: float | None = None
    retry: Any = None
    rate_limits: Mapping[str, RateLimit] = field(default_factory=dict)
    limiter: Callable[[str, RateLimit], Any] | None = None


@dataclass(frozen=True, slots=True)
class Call:
    """One call of one action, as its executor sees it.

    :param input: the validated flat input.
    :param client: the app's pooled HTTP client (rate limiter, retries, error mapping); an
        executor sends through its ``send`` so the app's limits apply (and each attempt is kept
        in the run history; an executor sending another way calls ``connector.note_request``).
    :param auth: the credential flow for this action, or ``None``.
    :param limiter_key: the location (or account) the call counts against.
    :param base_url: the app's base URL for this run (the manifest's, or an override).
    """

    action: Action
    app: App
    input: Mapping[str, Any]
    client: HttpClient
    auth: httpx.Auth | None
    limiter_key: str
    base_url: str
    settings: Settings


class Executor(Protocol):
    """Runs actions of one kind (the contract of ``connector_register_executors``)."""

    def execute(self, call: Call) -> Reply:
        """Send the call and return the reply (its ``data`` is checked by the runtime).

        :raises ConnectorError: any failure, already translated (never a library exception).
        """
        ...

    def preview(self, call: Call) -> dict[str, Any]:
        """What ``--dry-run`` prints: the request that would be sent, credentials masked."""
        ...


@hookspec
def connector_register_apps() -> list[App]:
    """Declare apps (base URL, auth kinds, rate limits).

    Called once when the catalog is built, on every registered plugin.

    :returns: the apps this plugin provides; ids must be unique across all plugins.
    """
    raise AssertionError("hook specification")


@hookspec
def connector_register_actions() -> list[Action]:
    """Declare actions.

    Called once when the catalog is built, on every registered plugin, after
    :func:`connector_register_apps`. Each action's ``app`` must name a registered app.

    :returns: the actions this plugin provides; ids must be unique across all plugins.
    """
    raise AssertionError("hook specification")


@hookspec
def connector_register_triggers() -> list[Trigger]:
    """Declare triggers (webhook events and polling sources).

    Called once when the catalog is built, on every registered plugin.

    :returns: the triggers this plugin provides; ids must be unique across all plugins.
    """
    raise AssertionError("hook specification")


@hookspec
def connector_register_filters() -> Mapping[str, FilterSpec]:
    """Declare expression filters usable in recipes as ``{{ value | name(args) }}``.

    Called once when the catalog is built. Filters receive and return plain JSON values
    only; they must not reach files, the network or the process.

    :returns: filter name -> :class:`connector.expressions.filters.FilterSpec`; names must be
    unique.
    """
    raise AssertionError("hook specification")


@hookspec
def connector_register_executors() -> Mapping[str, Executor]:
    """Declare how actions of a ``kind`` run (declarative REST, GraphQL, custom Python).

    Called once when the catalog is built. The runtime validates an action's input before
    its executor runs and checks the output after; an executor sends through the app's pooled
    client (:attr:`Call.client`) so rate limits and retries apply. The built-in kinds are
    plugins too: ``http`` (``actions.rest``), ``graphql`` (``actions.graphql``) and
    ``http_request`` (``actions.httprequest``).

    :returns: kind name -> :class:`Executor`; kinds must be unique.
    """
    raise AssertionError("hook specification")
