"""Calling actions: validate the input, build the request, send it, check the output.

:class:`Runtime` holds what calls share: the catalog, one pooled HTTP client per app, the
per-location rate limiters, the credentials to use, and the strictness of output checking.
Output that does not match an action's schema is a warning by default (logged once per
action and field path, the data still returned) and an error in strict mode.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from connector.catalog import Catalog
from connector.errors import ConnectorError, InputError, Location, RemoteError
from connector.hookspecs import Action, App, RateLimit
from connector.request import Reply, RequestSpec, fill_path
from connector.schema import Validator, compile_validator, problems

if TYPE_CHECKING:
    import httpx

    from connector.http import HttpClient

__all__ = ["Runtime", "Settings"]

log = logging.getLogger("connector.runtime")

AuthProvider = Callable[[App, Action], "httpx.Auth | None"]


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
    """

    strict: bool = False
    base_urls: Mapping[str, str] = field(default_factory=dict)
    location_id: str | None = None
    timeout: float | None = None
    retry: Any = None
    rate_limits: Mapping[str, RateLimit] = field(default_factory=dict)


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

    # -- the parts of a call -------------------------------------------------------------

    def prepare_input(self, action: Action, data: Mapping[str, Any]) -> dict[str, Any]:
        """Fill the location input from the settings, then validate against the input schema.

        :raises InputError: listing every field at fault, with its path.
        """
        filled = dict(data)
        location = self.settings.location_id
        if location and action.location_param and action.location_param not in filled:
            filled[action.location_param] = location
        found = problems(self._validator(action, "input"), filled, _input_location)
        if found:
            raise InputError(action.id, found)
        return filled

    def build_request(self, action: Action, data: Mapping[str, Any]) -> RequestSpec:
        """The request for a validated flat input: path, query, headers and body from ``params``."""
        path_values: dict[str, Any] = {}
        query: list[tuple[str, str]] = []
        headers: dict[str, str] = {}
        body: dict[str, Any] = {}
        places = {p.name: p for p in action.params}
        for name, value in data.items():
            param = places.get(name)
            if param is None:
                body[name] = value
            elif param.location == "path":
                path_values[param.wire_name] = value
            elif param.location == "query":
                query.extend((param.wire_name, _query_text(v)) for v in _as_list(value))
            elif param.location == "header":
                headers[param.wire_name] = str(value)
            else:
                body[param.wire_name] = value
        json_body = body if action.body else None
        return RequestSpec(
            action.method, fill_path(action.path, path_values), tuple(query), json_body, headers
        )

    def check_output(self, action: Action, data: Any) -> None:
        """Warn (or, strict, raise) when ``data`` does not match the action's output schema."""
        found = problems(self._validator(action, "output"), data, _output_location)
        if not found:
            return
        if self.settings.strict:
            detail = "; ".join(
                f"{p.location.pointer or '(output)'}: {p.message}" for p in found[:5]
            )
            raise ConnectorError(
                f"{action.id}: the response does not match the output schema: {detail}"
            )
        for p in found:
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
        return self._send(action, filled).data

    def iterate(
        self, action_id: str, data: Mapping[str, Any], *, max_items: int | None = None
    ) -> Iterator[Any]:
        """Every record of a paginated action, page by page, lazily (constant memory)."""
        from connector.pagination import iterate

        action = self.catalog.action(action_id)
        if not action.pagination:
            raise ConnectorError(f"{action_id} does not paginate [call it without --all-pages]")
        filled = self.prepare_input(action, data)

        def one_page(page_input: Mapping[str, Any]) -> Any:
            return self._send(action, self.prepare_input(action, page_input)).data

        return iterate(one_page, action.pagination, filled, max_items=max_items)

    def dry_run(self, action_id: str, data: Mapping[str, Any]) -> dict[str, Any]:
        """The request a call would send, with credentials masked; nothing is sent."""
        action = self.catalog.action(action_id)
        filled = self.prepare_input(action, data)
        if action.kind == "http_request":
            from connector.generic_http import preview_http_request

            return preview_http_request(action, filled)
        request = self.build_request(action, filled)
        app = self.catalog.app(action.app)
        headers = {**app.headers, **request.headers}
        if self._auth is not None or "none" not in app.auth:
            headers["Authorization"] = "Bearer ****"
        out: dict[str, Any] = {
            "action": action.id,
            "method": request.method,
            "url": request.url(self._base_url(app)),
            "headers": headers,
        }
        if request.json is not None:
            out["json"] = request.json
        return out

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
        if action.kind == "http_request":  # the generic HTTP action (connector/generic_http.py)
            from connector.generic_http import execute_http_request

            reply = execute_http_request(action, data, self.settings)
            self.check_output(action, reply.data)
            return reply
        if action.kind != "http":
            raise ConnectorError(f"{action.id}: no executor for action kind {action.kind!r}")
        request = self.build_request(action, data)
        app = self.catalog.app(action.app)
        auth = self._auth(app, action) if self._auth else None
        key = str(data.get(action.location_param, "") if action.location_param else "") or (
            self.settings.location_id or "default"
        )
        retry_unsafe = action.retry_safe
        reply = self._client(app).send(
            request, auth=auth, limiter_key=key, retry_unsafe=retry_unsafe
        )
        if action.success and reply.status not in action.success:
            raise RemoteError(
                f"{request.method} {request.path} -> {reply.status}: unexpected status",
                method=request.method,
                url=request.path,
                status=reply.status,
            )
        self.check_output(action, reply.data)
        return reply

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
        from connector.http import HttpClient
        from connector.ratelimit import RateLimiter

        limit = self.settings.rate_limits.get(app.id, app.rate_limit)
        limiter = (
            RateLimiter(requests=limit.requests, per_seconds=limit.per_seconds, daily=limit.daily)
            if limit
            else None
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

    def _validator(self, action: Action, part: str) -> Validator:
        key = (action.id, part)
        validator = self._validators.get(key)
        if validator is None:
            schema = action.input_schema if part == "input" else action.output_schema
            # Schemas were checked when their manifest was loaded (or by the pack's tests).
            validator = compile_validator(schema, source=f"{action.id} {part} schema", check=False)
            self._validators[key] = validator
        return validator


def _input_location(path: tuple[str | int, ...]) -> Location:
    from connector.document import pointer

    return Location(None, pointer=pointer(path))


def _output_location(path: tuple[str | int, ...]) -> Location:
    return _input_location(path)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _query_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
