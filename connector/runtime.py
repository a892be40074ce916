"""Calling actions: validate the input, build the request, send it, check the output.

:class:`Runtime` holds what calls share: the catalog, one pooled HTTP client per app, the
per-location rate limiters, the credentials to use, and the strictness of output checking.
Output that does not match an action's schema is a warning by default (logged once per
action and field path, the data still returned) and an error in strict mode.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from connector.catalog import Catalog
from connector.client.request import Reply
from connector.documents.drift import Drift
from connector.documents.schema import Validator, compile_validator, input_problem, problems
from connector.errors import ConnectorError, InputError, Location
from connector.hookspecs import LOCATION, Action, App, AuthProvider, Call, Executor, Settings
from connector.recipes.footprints import current, is_write

if TYPE_CHECKING:
    from connector.client.httpclient import HttpClient
    from connector.client.transcript import Transcript

__all__ = ["Runtime", "Settings", "location_optional"]

log = logging.getLogger("connector.runtime")


class Runtime:
    """Calls catalog actions over HTTP; thread-safe, one per process is plenty."""

    def __init__(
        self,
        catalog: Catalog,
        settings: Settings | None = None,
        *,
        auth: AuthProvider | None = None,
    ) -> None:
        self.catalog = catalog
        self.settings = settings or Settings()
        self._auth = auth
        self._lock = threading.Lock()
        self._clients: dict[str, HttpClient] = {}
        self._validators: dict[tuple[str, str], Validator] = {}
        self._warned: set[tuple[str, str]] = set()
        self._drifts: dict[str, Drift] = {}

    # -- the parts of a call -------------------------------------------------------------

    def prepare_input(self, action: Action, data: Mapping[str, Any]) -> dict[str, Any]:
        """Fill the location inputs from the settings, then validate against the input schema.

        :raises InputError: listing every field at fault, with its path.
        """
        filled = dict(data)
        location = self.settings.location_id
        if location:
            filled.update(action.location_fill(filled, location))
        found = problems(self._validator(action, "input"), filled, _input_location)
        if found:
            schema = action.input_schema
            raise InputError(action.id, [input_problem(p, "", schema, action.id) for p in found])
        return filled

    def check_output(self, action: Action, data: Any) -> None:
        """Warn (or, strict, raise) when ``data`` does not match the action's output schema.

        Warnings come once per action and field; the schema is then widened to accept what
        came (:mod:`connector.documents.drift`), so later pages with the same drift are checked at
        full
        speed.
        """
        if self.settings.strict:
            found = problems(self._validator(action, "output"), data, _output_location)
            if found:
                detail = "; ".join(
                    f"{p.location.pointer or '(output)'}: {p.message}" for p in found[:5]
                )
                raise ConnectorError(
                    f"{action.id}: the response does not match the output schema: {detail}"
                )
            return
        for p in self._drift(action).check(data, _output_location):
            key = (action.id, p.location.pointer)
            if key not in self._warned:
                self._warned.add(key)
                log.warning(
                    "%s: response field %s: %s",
                    action.id,
                    p.location.pointer or "(output)",
                    p.message,
                )

    # -- calls ------------------------------------------------------------------------------

    def call(self, action_id: str, data: Mapping[str, Any]) -> Any:
        """Call one action once and return its (checked) JSON output."""
        action = self.catalog.action(action_id)
        filled = self.prepare_input(action, data)
        acting = current()
        if acting is None or not is_write(action):
            return self._send(action, filled).data
        origin, footprints = acting
        pending = footprints.before(origin, action, filled)
        output = self._send(action, filled).data
        footprints.after(pending, output)
        return output

    def iterate(
        self, action_id: str, data: Mapping[str, Any], *, max_items: int | None = None
    ) -> Iterator[Any]:
        """Every record of a paginated action, page by page, lazily (constant memory)."""
        from connector.client.pagination import iterate

        action = self.catalog.action(action_id)
        if not action.pagination:
            raise ConnectorError(f"{action_id} does not paginate [call it without --all-pages]")
        filled = self.prepare_input(action, data)

        def one_page(page_input: Mapping[str, Any]) -> Any:
            page_input = _cursor_text(action, page_input)
            return self._send(action, self.prepare_input(action, page_input)).data

        return iterate(one_page, action.pagination, filled, max_items=max_items)

    def dry_run(self, action_id: str, data: Mapping[str, Any]) -> dict[str, Any]:
        """The request a call would send, with credentials and every secret-named header,
        query value and body field masked (:func:`connector.auth.redaction.redact_json`); nothing
        is sent."""
        from connector.auth.redaction import redact_json

        action = self.catalog.action(action_id)
        call = self._call(action, self.prepare_input(action, data), with_auth=False)
        preview: dict[str, Any] = redact_json(self._executor(action).preview(call))
        return preview

    def transcribing(self) -> AbstractContextManager[Transcript]:
        """Note each request the calls made inside the block send, per attempt: method,
        redacted URL, the status answered (:mod:`connector.client.transcript`). The recipe
        engine keeps a step's in the run history; executors need do nothing when they send
        through ``call.client`` or an ``Exchange``, else they call ``connector.note_request``.
        """
        from connector.client.transcript import transcribing

        return transcribing()

    def close(self) -> None:
        """Close every pooled HTTP client."""
        with self._lock:
            clients, self._clients = self._clients, {}
        for client in clients.values():
            client.close()

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- internals -----------------------------------------------------------------------

    def _send(self, action: Action, data: Mapping[str, Any]) -> Reply:
        reply = self._executor(action).execute(self._call(action, data))
        self.check_output(action, reply.data)
        return reply

    def _executor(self, action: Action) -> Executor:
        executor = self.catalog.executors.get(action.kind)
        if executor is None:
            known = ", ".join(sorted(self.catalog.executors)) or "none"
            raise ConnectorError(
                f"{action.id}: no executor for action kind {action.kind!r} [known kinds: {known}]"
            )
        return executor

    def _call(self, action: Action, data: Mapping[str, Any], *, with_auth: bool = True) -> Call:
        app = self.catalog.app(action.app)
        auth = self._auth(app, action) if self._auth and with_auth else None
        located = action.location_in(data)
        key = str(located or self.settings.location_id or "default")
        return Call(
            action, app, data, self._client(app), auth, key, self._base_url(app), self.settings
        )

    def rate_limits(self) -> dict[str, list[dict[str, object]]]:
        """Each app's rate-limiter state per key (location) seen so far, by app id."""
        with self._lock:
            clients = dict(self._clients)
        return {app_id: [client.limiter.snapshot(key) for key in client.limiter.keys()]
                for app_id, client in sorted(clients.items()) if client.limiter is not None}

    def _client(self, app: App) -> HttpClient:
        client = self._clients.get(app.id)
        if client is not None:
            return client
        with self._lock:
            client = self._clients.get(app.id)
            if client is None:
                client = self._new_client(app)
                self._clients[app.id] = client
            return client

    def _new_client(self, app: App) -> HttpClient:
        from connector.client.httpclient import HttpClient
        from connector.client.ratelimiter import RateLimiter

        limit = self.settings.rate_limits.get(app.id, app.rate_limit)
        build = self.settings.limiter
        limiter = (
            None if not limit
            else build(app.id, limit) if build is not None
            else RateLimiter(requests=limit.requests, per_seconds=limit.per_seconds,
                             daily=limit.daily)
        )
        return HttpClient(
            base_url=self._base_url(app),
            headers=app.headers,
            timeout=self.settings.timeout or app.timeout_seconds,
            limiter=limiter,
            retry=self.settings.retry,
        )

    def _base_url(self, app: App) -> str:
        return self.settings.base_urls.get(app.id, app.base_url)

    def _drift(self, action: Action) -> Drift:
        found = self._drifts.get(action.id)
        if found is None:
            with self._lock:
                found = self._drifts.get(action.id)
                if found is None:
                    found = self._drifts[action.id] = Drift(action.output_schema)
        return found

    def _validator(self, action: Action, part: str) -> Validator:
        key = (action.id, part)
        validator = self._validators.get(key)
        if validator is None:
            schema = action.input_schema if part == "input" else action.output_schema
            # Schemas were checked when their manifest was loaded (or by the pack's tests).
            validator = compile_validator(schema, source=f"{action.id} {part} schema", check=False)
            self._validators[key] = validator
        return validator


def location_optional(action: Action, schema: Mapping[str, Any]) -> dict[str, Any]:
    """``schema`` (``action``'s input schema) as a caller with a connection sees it: the inputs
    the connection's location fills (:meth:`Action.location_names`) not required, each
    described as filled when left out. ``schema`` itself is not changed."""
    relaxed = dict(schema)
    filled = action.location_names()
    if not filled:
        return relaxed
    if "required" in relaxed:
        required = [n for n in relaxed["required"] if n not in filled]
        if required:
            relaxed["required"] = required
        else:
            del relaxed["required"]
    properties = dict(relaxed.get("properties", {}))
    for name in filled:
        prop = properties.get(name)
        if isinstance(prop, Mapping):
            value = action.location_inputs.get(name, LOCATION)
            note = (
                "(Filled from the connection when left out.)"
                if value == LOCATION
                else f"(Filled with {json.dumps(value)} when left out.)"
            )
            described = f"{prop.get('description', '')} {note}".strip()
            properties[name] = {**prop, "description": described}
    if "properties" in relaxed:
        relaxed["properties"] = properties
    return relaxed


def _cursor_text(action: Action, page_input: Mapping[str, Any]) -> Mapping[str, Any]:
    """A cursor read from an answer as a number (GHL's ``meta.startAfter``) where the input
    takes text (its query parameter ``startAfter`` is a string): sent as its text, which is what
    goes on the wire either way."""
    nexts = (action.pagination or {}).get("next") or {}
    props = action.input_schema.get("properties") or {}
    changed = dict(page_input)
    for name in nexts:
        value = changed.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool) and (
                props.get(name, {}).get("type") == "string"):
            changed[name] = str(int(value)) if float(value).is_integer() else str(value)
    return changed


def _input_location(path: tuple[str | int, ...]) -> Location:
    from connector.documents.document import pointer

    return Location(None, pointer=pointer(path))


def _output_location(path: tuple[str | int, ...]) -> Location:
    return _input_location(path)
