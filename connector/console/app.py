"""The console as an ASGI app: :func:`console_app` (mount it at ``/console``), the ``/metrics``
endpoint (:func:`metrics_app`), and :class:`ServiceApp`, which puts both in front of another
app (``serve``'s webhook receiver) without touching that app's requests.

Every answer carries a strict Content-Security-Policy (scripts and styles from the console's
own static files only, nothing inline, no frames), ``nosniff`` and ``no-store``. Who may see
and change what is :mod:`connector.console.access`'s rule; what each page shows is
:mod:`connector.console.pages`'.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Awaitable, Callable, MutableMapping
from importlib import resources
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from connector.auth.connection import ConnectionStore, env_connection
from connector.console import charts, pages
from connector.console.access import (
    SESSION_COOKIE,
    SESSION_SECONDS,
    Session,
    host_is_loopback,
    token_valid,
)
from connector.console.metrics import CONTENT_TYPE, Metrics
from connector.console.state import ConsoleState
from connector.console.stream import Filters, stream
from connector.errors import StoreError
from connector.recipes.history import History
from connector.service.cursor import cursors
from connector.service.deadletters import DeadLetter, DeadLetters
from connector.service.inbox import Inbox
from connector.sync.audit import mentioning, of_records
from connector.sync.idmap import links_of
from connector.sync.mapping import match_value

__all__ = ["CONSOLE_PATH", "METRICS_PATH", "ServiceApp", "console_app", "metrics_app"]

CONSOLE_PATH = "/console"
METRICS_PATH = "/metrics"
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
       " connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
SECURITY_HEADERS = {
    "content-security-policy": CSP, "x-content-type-options": "nosniff",
    "x-frame-options": "DENY", "referrer-policy": "same-origin", "cache-control": "no-store",
}  # fmt: skip
_PRE_COOKIE = "ghl_console_pre"
_MAX_FORM = 64 * 1024
_STATIC = {"console.js": "text/javascript; charset=utf-8",
           "console.css": "text/css; charset=utf-8"}  # fmt: skip

Scope = MutableMapping[str, Any]
ASGI = Callable[[Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]],
                Awaitable[None]]
Page = Callable[[Request, "_Context"], Response]


class _Context:
    """One request's standing: its session (if any) and the CSRF token its forms carry."""

    def __init__(self, state: ConsoleState, request: Request) -> None:
        self.state = state
        self.base = request.scope.get("root_path", "")
        self.session: Session | None = state.sessions.get(request.cookies.get(SESSION_COOKIE))
        self.bearer = _bearer(request)
        self.csrf = state.sessions.csrf(self.session)

    def foreign(self, request: Request) -> Response | None:
        """The refusal of a request to a console without login whose ``Host`` is not this
        machine (DNS rebinding), else None."""
        host = request.headers.get("host", "")
        if self.state.login_required or host_is_loopback(host):
            return None
        return Response(f"refused: Host {host[:100]!r} is not this machine; without a login the"
                        " console answers only http://127.0.0.1, localhost or [::1]", 403,
                        headers=SECURITY_HEADERS)

    def allowed(self) -> bool:
        """Whether this request may read the console."""
        if not self.state.login_required or self.session is not None:
            return True
        return bool(self.bearer) and token_valid(self.state.store, self.bearer)

    def page(self, title: str, body: str, current: str, status: int = 200) -> HTMLResponse:
        return HTMLResponse(
            pages.layout(self.base, title, body, csrf=self.csrf, current=current,
                         logged_in=self.session is not None),
            status_code=status, headers=SECURITY_HEADERS,
        )


def _bearer(request: Request) -> str:
    value = request.headers.get("authorization", "")
    return value[7:].strip() if value[:7].lower() == "bearer " else ""


def _cross_site(request: Request) -> bool:
    """Whether the browser says another site sent this request."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:  # browsers set it and pages cannot: the strongest word
        return site not in ("same-origin", "none")
    origin = request.headers.get("origin")
    if origin is None:
        return False
    return origin == "null" or origin.split("://", 1)[-1] != request.headers.get("host", "")


async def _form(request: Request) -> dict[str, list[str]]:
    """A small urlencoded form (at most 64 KiB)."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > _MAX_FORM:
            return {}
    return parse_qs(body.decode("utf-8", "replace"), max_num_fields=500)


def console_app(state: ConsoleState) -> Starlette:
    """The console's pages, event stream, login and static files, as one ASGI app."""

    def guarded(page: Page, *, changes: bool = False) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            ctx = _Context(state, request)
            if (refused := ctx.foreign(request)) is not None:
                return refused
            if not ctx.allowed():
                if request.method == "GET" and not changes:
                    return RedirectResponse(f"{ctx.base}/login", 303, headers=SECURITY_HEADERS)
                return Response("log in first", 401, headers=SECURITY_HEADERS)
            if changes:
                form = await _form(request)
                given = (form.get("csrf") or [""])[0]
                if _cross_site(request) or not state.sessions.csrf_ok(ctx.session, given):
                    return Response("refused: missing or wrong CSRF token", 403,
                                    headers=SECURITY_HEADERS)
                request.state.form = form
            try:
                return await run_in_threadpool(page, request, ctx)
            except StoreError as exc:
                return ctx.page("State file unavailable", pages.message(str(exc), "error"),
                                "", 503)

        return endpoint

    async def events(request: Request) -> Response:
        ctx = _Context(state, request)
        if (refused := ctx.foreign(request)) is not None:
            return refused
        if not ctx.allowed():
            return Response("log in first", 401, headers=SECURITY_HEADERS)
        last = request.headers.get("last-event-id", "")
        start = int(last) if last.isascii() and last.isdigit() and len(last) < 19 else None
        body = stream(state.bus, Filters.of(request.query_params), start=start,
                      gone=state.stopping.is_set)
        headers = {**SECURITY_HEADERS, "x-accel-buffering": "no"}
        return StreamingResponse(body, media_type="text/event-stream", headers=headers)

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in _STATIC:
            return Response("not found", 404, headers=SECURITY_HEADERS)
        return Response(assets[name], media_type=_STATIC[name],
                        headers={**SECURITY_HEADERS, "cache-control": "max-age=300"})

    async def login_form(request: Request) -> Response:
        ctx = _Context(state, request)
        return ctx.foreign(request) or _login_page(ctx, request, "")

    async def login(request: Request) -> Response:
        ctx = _Context(state, request)
        if (refused := ctx.foreign(request)) is not None:
            return refused
        form = await _form(request)
        nonce = request.cookies.get(_PRE_COOKIE, "")
        given = (form.get("csrf") or [""])[0]
        if _cross_site(request) or not nonce or not state.sessions.csrf_ok(None, given, nonce):
            return Response("refused: missing or wrong CSRF token", 403, headers=SECURITY_HEADERS)
        token = (form.get("token") or [""])[0].strip()
        client = request.client.host if request.client else ""
        if state.sessions.throttled(client):
            return _login_page(ctx, request, "Too many failed logins; wait a minute.", 429)
        if not await run_in_threadpool(token_valid, state.store, token):
            state.sessions.failed(client)
            return _login_page(ctx, request, "That is not a console token of this service.", 401)
        session = state.sessions.open()
        answer = RedirectResponse(f"{ctx.base}/", 303, headers=SECURITY_HEADERS)
        answer.set_cookie(SESSION_COOKIE, session.id, max_age=SESSION_SECONDS,
                          path=ctx.base or "/", httponly=True, samesite="strict",
                          secure=request.url.scheme == "https")
        answer.delete_cookie(_PRE_COOKIE, path=ctx.base or "/")
        return answer

    def logout(request: Request, ctx: _Context) -> Response:
        state.sessions.close(request.cookies.get(SESSION_COOKIE))
        answer = RedirectResponse(f"{ctx.base}/login" if state.login_required else
                                  f"{ctx.base}/", 303, headers=SECURITY_HEADERS)
        answer.delete_cookie(SESSION_COOKIE, path=ctx.base or "/")
        return answer

    assets = {name: (resources.files("connector.console") / "static" / name).read_bytes()
              for name in _STATIC}
    routes = [
        Route("/", guarded(_activity)),
        Route("/runs", guarded(_runs)),
        Route("/runs/{run_id:path}", guarded(_run)),
        Route("/syncs", guarded(_syncs)),
        Route("/deadletters", guarded(_dead_letters)),
        Route("/deadletters", guarded(_dead_letter_action, changes=True), methods=["POST"]),
        Route("/connections", guarded(_connections)),
        Route("/events", events),
        Route("/static/{name}", static),
        Route("/login", login_form),
        Route("/login", login, methods=["POST"]),
        Route("/logout", guarded(logout, changes=True), methods=["POST"]),
    ]
    return Starlette(routes=routes)


def _login_page(ctx: _Context, request: Request, error: str, status: int = 200) -> Response:
    nonce = request.cookies.get(_PRE_COOKIE) or secrets.token_urlsafe(24)
    csrf = ctx.state.sessions.csrf(None, nonce)
    answer = HTMLResponse(
        pages.layout(ctx.base, "Log in", pages.login(ctx.base, csrf, error), csrf=csrf,
                     current="/login"),
        status_code=status, headers=SECURITY_HEADERS,
    )
    answer.set_cookie(_PRE_COOKIE, nonce, max_age=3600, path=ctx.base or "/", httponly=True,
                      samesite="strict", secure=request.url.scheme == "https")
    return answer


def _activity(request: Request, ctx: _Context) -> Response:
    now = time.time()
    store = ctx.state.store
    history = History(store)
    received = Inbox(store).received_since(now - 3600)
    ended = history.ended_since(now - 3600)
    timings = history.step_timings(now - 3600)
    figures = [
        charts.columns(charts.per_minute(received, now), "Events received per minute"),
        charts.columns(charts.per_minute((t for t, s in ended if s in ("failed", "dead_letter")),
                                         now), "Failed runs per minute", "bar error"),
        charts.latency_bars(((a, ms) for a, ms, _ in timings), "Action latency (last hour)"),
    ]
    filters = {k: v[:200] for k, v in request.query_params.items()}
    return ctx.page("Activity", pages.activity(filters, figures), "")


def _runs(request: Request, ctx: _Context) -> Response:
    recipe = request.query_params.get("recipe", "")[:200]
    status = request.query_params.get("status", "")[:40]
    found = History(ctx.state.store).recent(recipe=recipe or None, status=status or None,
                                            limit=200)
    return ctx.page("Runs", pages.runs(ctx.base, found, recipe, status), "/runs")


def _run(request: Request, ctx: _Context) -> Response:
    run_id = request.path_params["run_id"][:500]
    try:
        run = History(ctx.state.store).get(run_id)
    except StoreError as exc:
        return ctx.page("Run not found", pages.message(str(exc), "error"), "/runs", 404)
    return ctx.page(f"Run of {run.recipe}", pages.run_detail(run), "/runs")


def _syncs(request: Request, ctx: _Context) -> Response:
    query = request.query_params.get("q", "").strip()[:200]
    links: list[Any] = []
    trail: list[Any] = []
    if query:
        store = ctx.state.store
        found = mentioning(store, query)
        phone = match_value("phone", query) if any(c.isdigit() for c in query) else None
        if phone and phone != query:  # (415) 555-0199 is stored as +14155550199
            found += mentioning(store, phone)
        ids = [query, *(i for a in found for i in (a.ghl_id, a.partner_id) if i)]
        links = links_of(store, ids)
        ids += [i for k in links for i in (k.ghl_id, k.partner_id)]
        trail = of_records(store, ids) or found
    return ctx.page("Syncs", pages.syncs(query, links, trail), "/syncs")


def _dead_letters(request: Request, ctx: _Context) -> Response:
    params = request.query_params

    def count(name: str) -> int | None:  # an ASCII count ('²' is a digit to str.isdigit)
        text = params.get(name, "")
        return int(text) if text.isascii() and text.isdigit() and len(text) < 10 else None

    note = ""
    replayed, discarded, missing = count("replayed"), count("discarded"), count("missing")
    if replayed is not None:
        kept = count("kept") or 0
        note = f"{replayed} re-queued for the service"
        note += f"; {kept} stay dead (an unknown call could not be looked up)" if kept else ""
    elif discarded is not None:
        note = f"{discarded} discarded"
    elif missing is not None:
        note = f"{missing} of the chosen are no longer dead letters"
    letters = DeadLetters(ctx.state.store).dead()
    body = pages.dead_letters(ctx.base, letters, ctx.csrf, can_replay=ctx.state.replay is not None,
                              note=note)
    return ctx.page("Dead letters", body, "/deadletters")


def _dead_letter_action(request: Request, ctx: _Context) -> Response:
    form: dict[str, list[str]] = request.state.form
    action = (form.get("action") or [""])[0]
    letters = DeadLetters(ctx.state.store)
    chosen: list[DeadLetter] = []
    missing = 0
    for ident in list(dict.fromkeys(form.get("id", [])))[:500]:
        try:
            chosen.append(letters.one(ident))
        except StoreError:
            missing += 1
    target = f"{ctx.base}/deadletters"
    if action == "replay" and ctx.state.replay is not None and chosen:
        done = ctx.state.replay(chosen)
        target += f"?replayed={done.queued}&kept={len(done.kept)}"
    elif action == "discard" and chosen:
        target += f"?discarded={letters.discard(chosen)}"
    elif missing:
        target += f"?missing={missing}"
    return RedirectResponse(target, 303, headers=SECURITY_HEADERS)


def _connections(request: Request, ctx: _Context) -> Response:
    state = ctx.state
    connections = ConnectionStore(state.store)
    env = env_connection()
    summaries = [*([env.summary()] if env is not None else []), *connections.summaries()]
    body = pages.connections(summaries, connections.stored_times(),
                             state.needed_scopes(), state.rate_limits(), cursors(state.store),
                             None if state.peers is None else state.peers())
    return ctx.page("Connections and limits", body, "/connections")


def metrics_app(state: ConsoleState, metrics: Metrics) -> Callable[[Request], Awaitable[Response]]:
    """The ``/metrics`` endpoint (login rules as the console's; a bearer console token works)."""

    async def endpoint(request: Request) -> Response:
        ctx = _Context(state, request)
        if (refused := ctx.foreign(request)) is not None:
            return refused
        if not ctx.allowed():
            return Response("log in first: Authorization: Bearer <console token>", 401,
                            headers={"www-authenticate": "Bearer"})
        body = await run_in_threadpool(metrics.render)
        return Response(body, media_type=CONTENT_TYPE, headers={"cache-control": "no-store"})

    return endpoint


class ServiceApp:
    """``/console`` and ``/metrics`` in front of ``fallback`` (every other path goes there
    untouched, so the receiver's hot path pays one string comparison)."""

    def __init__(self, state: ConsoleState, fallback: ASGI, metrics: Metrics) -> None:
        self.fallback = fallback
        self.console = console_app(state)
        self.metrics = Starlette(routes=[Route(METRICS_PATH, metrics_app(state, metrics))])

    def __repr__(self) -> str:
        return f"ServiceApp({self.fallback!r})"

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:  # noqa: ANN401
        path = scope.get("path", "")
        if path.startswith(CONSOLE_PATH) and scope["type"] == "http":
            if path == CONSOLE_PATH:
                await RedirectResponse(CONSOLE_PATH + "/", 307)(scope, receive, send)
                return
            if path.startswith(CONSOLE_PATH + "/"):
                child = dict(scope)
                child["root_path"] = scope.get("root_path", "") + CONSOLE_PATH
                await self.console(child, receive, send)
                return
        if path == METRICS_PATH and scope["type"] == "http":
            await self.metrics(scope, receive, send)
            return
        await self.fallback(scope, receive, send)
