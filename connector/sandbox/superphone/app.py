"""The SuperPhone sandbox's ASGI application: one ``POST /graphql`` request's path through API-key
auth, fault injection, the rate limit and graphql-core, plus the control endpoints.

All state lives on the server's event loop; nothing here is thread-safe, and nothing needs to
be: the server runs the app on one loop, and the thread runner hops onto it. Reused from the
GHL sandbox (imported, unchanged): the rate limiter, the traffic counters, fault rules and the
ASGI wire helpers.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import math
import time
from collections import Counter
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from graphql import (
    DocumentNode,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    execute_sync,
    parse,
    validate,
)

from connector.sandbox.faults import Fault, FaultInjector
from connector.sandbox.ratelimit import RateLimiter
from connector.sandbox.superphone import control
from connector.sandbox.superphone.config import SuperPhoneConfig
from connector.sandbox.superphone.records import Record, Records
from connector.sandbox.superphone.schema import Root, build
from connector.sandbox.superphone.webhooks import WebhookSender
from connector.sandbox.traffic import Traffic
from connector.service.wire import (
    Disconnected,
    Receive,
    Scope,
    Send,
    cut,
    header,
    read_body,
    send_json,
)

__all__ = ["ACCOUNT", "ENDPOINT", "SuperPhoneApp", "error_body"]

ENDPOINT = "/graphql"
ACCOUNT = "account"
"""The traffic key of requests with the right API key (one account per sandbox)."""
_ANONYMOUS = "anonymous"
_log = logging.getLogger(__name__)
_MESSAGES = {429: "Too Many Requests", 500: "Internal server error", 502: "Bad Gateway",
             503: "Service Unavailable", 504: "Gateway Timeout"}


def error_body(message: str, code: str) -> dict[str, Any]:
    """A GraphQL-shaped error answer: ``{"errors": [{"message", "extensions": {"code"}}]}``."""
    return {"errors": [{"message": message, "extensions": {"code": code}}]}


class SuperPhoneApp:
    """The ASGI callable, and the Python API over its state (stats, faults, reset)."""

    def __init__(self, config: SuperPhoneConfig) -> None:
        self.config = config = config.with_secrets()
        self.base_url = f"http://{config.host}:{config.port}"
        assert config.webhook_secret is not None and config.api_key is not None
        self.sender = WebhookSender(config.webhook_secret, config.webhook_urls,
                                    max_retries=config.webhook_max_retries,
                                    backoff=config.webhook_backoff)
        self.events: Counter[str] = Counter()
        self._quiet = False
        self.records = Records(self._emit, seed=config.seed)
        self.root = Root(self.records, config.max_page_size)
        self.schema = build()
        self.limiter = RateLimiter(config.rate_limit_requests, config.rate_limit_seconds,
                                   config.daily_quota)
        self.traffic = Traffic(config.rate_limit_seconds)
        self.faults = FaultInjector(config.seed)
        self._seed()

    def __repr__(self) -> str:
        return f"SuperPhoneApp(base_url={self.base_url!r}, contacts={len(self.records.contacts)})"

    @property
    def api_key(self) -> str:
        """The account's API key (sent in ``X-Api-Key``)."""
        assert self.config.api_key is not None
        return self.config.api_key

    def _seed(self) -> None:
        self._quiet = True
        try:
            for n in range(1, self.config.seed_contacts + 1):
                self.records.create_contact({
                    "firstName": f"Seed{n}", "lastName": "Contact",
                    "email": f"seed{n}@example.com", "phone": f"+1555010{n:04d}",
                    "tags": ["seed"],
                })
        finally:
            self._quiet = False

    def _emit(self, event_type: str, record: Record) -> None:
        if self._quiet:
            return
        self.events[event_type] += 1
        self.sender.emit(event_type, record)

    def set_clock(self, clock: Callable[[], float] | None) -> None:
        """Stamp records by ``clock`` (epoch seconds) from now on; None: the wall clock again.
        Tests order two moments with it instead of sleeping; :meth:`reset` restores the wall
        clock."""
        self.records.clock = clock or time.time

    def reset(self) -> None:
        """Back to the start: seed data, no faults, zero counters, configured limits and URLs,
        the wall clock."""
        config = self.config
        self.set_clock(None)
        self.records.clear()
        self._seed()
        self.root.writes.clear()
        self.events.clear()
        self.limiter.configure(requests=config.rate_limit_requests,
                               seconds=config.rate_limit_seconds, daily=config.daily_quota)
        self.limiter.reset()
        self.traffic.window = config.rate_limit_seconds
        self.traffic.reset()
        self.faults.reset()
        self.sender.set_urls(config.webhook_urls)
        self.sender.deliveries.clear()
        self.sender.sent_bodies.clear()

    def stats(self) -> dict[str, Any]:
        """Counters as plain data: traffic per operation, writes per mutation, events by type,
        record counts, limits, webhook deliveries and active faults."""
        traffic = self.traffic.snapshot()
        return {
            "traffic": traffic.get(ACCOUNT, {"requests": 0, "max_window": 0, "throttled": 0,
                                             "routes": {}}),
            "anonymous": traffic.get(_ANONYMOUS, {}).get("requests", 0),
            "writes": dict(self.root.writes),
            "events": dict(self.events),
            "records": {"contacts": len(self.records.contacts),
                        "notes": len(self.records.notes), "tasks": len(self.records.tasks)},
            "rate_limit": {"requests": self.limiter.requests, "seconds": self.limiter.seconds,
                           "daily": self.limiter.daily},
            "webhooks": {"urls": list(self.sender.urls),
                         "deliveries": list(self.sender.deliveries)},
            "faults": [rule.as_dict() for rule in self.faults.rules],
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        try:
            await self._route(scope, receive, send)
        except Disconnected:
            return  # the client left mid-body: no one to answer

    async def _route(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        if path.startswith("/_sandbox/"):
            await control.serve(self, scope, receive, send)
        elif path != ENDPOINT:
            await send_json(send, 404, error_body(f"no route {path!r}", "NOT_FOUND"))
        elif scope["method"] != "POST":
            await send_json(send, 405, error_body("use POST", "METHOD_NOT_ALLOWED"),
                            [(b"allow", b"POST")])
        else:
            await self._graphql(scope, receive, send)

    async def _graphql(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw = await read_body(scope, receive, self.config.max_body_bytes)
        if raw is None:
            await send_json(send, 413, error_body("request entity too large", "BAD_REQUEST"))
            return
        request, problem = _decode(raw)
        route, document, invalid = _prepared(self.schema, str(request.get("query") or ""))
        given = header(scope, b"x-api-key") or ""
        known = hmac.compare_digest(given.encode(), self.api_key.encode())
        key = ACCOUNT if known else _ANONYMOUS
        self.traffic.saw(key, route)
        fault = self.faults.plan(route) if self.faults.rules else None
        if fault is not None and await self._fault_first(scope, send, fault, key, route):
            return
        if not known:
            why = "invalid API key" if given else "missing API key [send it in X-Api-Key]"
            self.traffic.answered(key, route, 401, wrote=False)
            await send_json(send, 401, error_body(why, "UNAUTHENTICATED"))
            return
        allowed, limits = self.limiter.admit(key)
        if not allowed:
            retry = str(math.ceil(self.limiter.seconds)).encode()
            self.traffic.answered(key, route, 429, wrote=False)
            await send_json(send, 429, error_body("Too Many Requests", "RATE_LIMITED"),
                            [*limits, (b"retry-after", retry)])
            return
        if problem is not None:
            self.traffic.answered(key, route, 400, wrote=False)
            await send_json(send, 400, error_body(problem, "BAD_REQUEST"), limits)
            return
        status, answer, wrote = self._execute(request, document, invalid)
        self.traffic.answered(key, route, status, wrote=wrote)
        if fault is not None and fault.ambiguous and wrote:
            if fault.ambiguous == "reset" and await cut(scope):
                return
            status = fault.status
            answer = error_body(_MESSAGES.get(status, "Error"), "INTERNAL_SERVER_ERROR")
        await send_json(send, status, answer, limits)

    def _execute(self, request: dict[str, Any], document: DocumentNode | None,
                 invalid: tuple[GraphQLError, ...]) -> tuple[int, dict[str, Any], bool]:
        """Run the operation (``document``, checked; ``invalid``: why it cannot run)."""
        if document is None or invalid:
            return 200, {"data": None, "errors": [error.formatted for error in invalid]}, False
        before = sum(self.root.writes.values())
        try:
            result = execute_sync(
                self.schema, document, self.root,
                variable_values=request.get("variables") or {},
                operation_name=request.get("operationName"),
            )
        except Exception:  # the server must answer and keep its state; the bug is logged
            _log.exception("superphone sandbox: executing an operation failed")
            return 500, error_body("Internal server error", "INTERNAL_SERVER_ERROR"), False
        answer: dict[str, Any] = {"data": result.data}
        if result.errors:
            answer["errors"] = [error.formatted for error in result.errors]
        return 200, answer, sum(self.root.writes.values()) > before

    async def _fault_first(self, scope: Scope, send: Send, fault: Fault, key: str,
                           route: str) -> bool:
        """Apply the part of a fault that comes before the operation; True when it answered."""
        if fault.latency:
            await asyncio.sleep(fault.latency)
        if fault.action is None:
            return False
        if fault.action == "reset" and await cut(scope):
            self.traffic.answered(key, route, 0, wrote=False)
            return True
        status = {"429": 429, "hang": 504}.get(fault.action, fault.status)
        if fault.action == "hang":
            await asyncio.sleep(fault.hang)
        self.traffic.answered(key, route, status, wrote=False)
        code = "RATE_LIMITED" if status == 429 else "INTERNAL_SERVER_ERROR"
        extra = [(b"retry-after", b"1")] if status == 429 else []
        await send_json(send, status, error_body(_MESSAGES.get(status, "Error"), code), extra)
        return True


def _decode(raw: bytes) -> tuple[dict[str, Any], str | None]:
    """The ``{query, variables, operationName}`` request, or a problem with it."""
    try:
        data = json.loads(raw) if raw.strip() else None
    except (ValueError, UnicodeDecodeError) as exc:
        return {}, f"body is not JSON: {exc}"
    if not isinstance(data, dict) or not isinstance(data.get("query"), str):
        return {}, "body must be a JSON object with a 'query' string"
    variables = data.get("variables")
    if variables is not None and not isinstance(variables, dict):
        return {}, "'variables' must be an object"
    return data, None


_CACHED_QUERY = 16384
"""Operations up to this many characters are parsed and checked once (the clients send the
same few again and again); longer ones each time, so the cache stays small."""


def _prepared(
    schema: GraphQLSchema, query: str
) -> tuple[str, DocumentNode | None, tuple[GraphQLError, ...]]:
    """The operation's route (:func:`_route`), its document and why it cannot run (syntax or
    validation errors; the document is None when it does not parse)."""
    if len(query) <= _CACHED_QUERY:
        return _checked(schema, query)
    return _check(schema, query)


def _check(
    schema: GraphQLSchema, query: str
) -> tuple[str, DocumentNode | None, tuple[GraphQLError, ...]]:
    try:
        document = parse(query)
    except GraphQLError as error:
        return "graphql", None, (error,)
    return _route(document), document, tuple(validate(schema, document))


_checked = lru_cache(maxsize=256)(_check)


def _route(document: DocumentNode) -> str:
    """The operation's first root field (``createContact``), for counters and fault rules."""
    for node in document.definitions:
        if isinstance(node, OperationDefinitionNode):
            for selection in node.selection_set.selections:
                name = getattr(selection, "name", None)
                if name is not None:
                    return str(name.value)
    return "graphql"
