"""Unretried requests to addresses the caller checked, all held to one deadline and body cap.

An action kind that must see every answer itself (the generic ``http.request`` of
``actions.httprequest``: it follows redirects one by one, checking each target with its URL guard)
cannot use the app's pooled :class:`~connector.client.httpclient.HttpClient`. An
:class:`Exchange` gives it what it needs instead: :meth:`Exchange.send` dials only the
addresses it is given, in turn (the ``Host`` header and, for https, the TLS server name stay
the URL's host, so certificates are still verified against the name), never retries and never
follows a redirect. Every send of one exchange shares one total deadline and the decoded-body
cap of :class:`~connector.client.limits.ResponseLimits`, like every other outgoing call.
httpx's exceptions come out as :class:`~connector.errors.RemoteError` or
:class:`~connector.errors.ResponseLimitError`.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from types import TracebackType

import httpx

from connector.client.failure import mapped_failures
from connector.client.limits import (
    DeadlineExceeded,
    DeadlineWatch,
    ResponseLimits,
    read_limited,
)
from connector.client.transcript import note_request, recording
from connector.errors import ConnectorError, RemoteError

__all__ = [
    "REDIRECT_STATUSES",
    "Answer",
    "ClientFactory",
    "Exchange",
    "new_client",
    "safe_url",
]

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
"""Answers whose body is not read (the caller decides where to go next)."""
_CUT = 200

ClientFactory = Callable[[float], httpx.Client]
"""Makes the client for one exchange from its timeout in seconds."""
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def new_client(timeout: float) -> httpx.Client:
    """The default client: no automatic redirects, no proxy or ``.netrc`` from the environment."""
    return httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False)


def safe_url(url: httpx.URL) -> str:
    """The URL for messages: scheme, host, port and path; no user info, query or fragment."""
    port = f":{url.port}" if url.port else ""
    host = f"[{url.host}]" if ":" in url.host else url.host
    return f"{url.scheme}://{host}{port}{url.path}"


@dataclass(frozen=True, slots=True)
class Answer:
    """One answer: its status, headers and (decoded) body; a redirect's body is empty."""

    status: int
    headers: httpx.Headers
    content: bytes
    encoding: str | None

    @property
    def text(self) -> str:
        """The body as text (undecodable bytes replaced)."""
        return self.content.decode(self.encoding or "utf-8", errors="replace")


class Exchange:
    """One call's requests (a first request and its redirects) under one deadline.

    Use as a context manager: the client is opened on entry and the deadline starts then.

    :param timeout: the per-read timeout in seconds; the total deadline is derived from it
        (:meth:`ResponseLimits.seconds`).
    :param client_factory: makes the httpx client (default :func:`new_client`).
    """

    def __init__(self, timeout: float, client_factory: ClientFactory | None = None) -> None:
        self.timeout = timeout
        self.limits = ResponseLimits.from_env()
        self.seconds = self.limits.seconds(timeout)
        self._factory = client_factory or new_client
        self._stack = ExitStack()
        self._client: httpx.Client | None = None
        self._watch: DeadlineWatch | None = None

    def __enter__(self) -> Exchange:
        self._watch = DeadlineWatch(time.monotonic() + self.seconds)
        self._client = self._stack.enter_context(self._factory(self.timeout))
        self._stack.enter_context(self._watch)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stack.close()

    def send(
        self,
        method: str,
        url: httpx.URL,
        headers: Mapping[str, str],
        body: bytes | None,
        addresses: Sequence[Address],
    ) -> Answer:
        """Send to the first of ``addresses`` that accepts a connection; read the answer. In an
        open transcript (:func:`connector.client.transcript.transcribing`) the request is noted
        with its status, or why none came.

        :raises RemoteError: no address accepts a connection, a timeout, a lost connection.
        :raises ResponseLimitError: a body over the cap, or no complete answer by the deadline.
        """
        if self._client is None or self._watch is None:
            raise ConnectorError("Exchange.send outside its `with` block")
        client, watch = self._client, self._watch
        if not recording():
            return self._send(client, watch, method, url, headers, body, addresses)
        started = time.perf_counter()
        try:
            answer = self._send(client, watch, method, url, headers, body, addresses)
        except RemoteError as exc:
            why = str(exc).partition(" -> ")[2] or type(exc).__name__
            elapsed = (time.perf_counter() - started) * 1000
            note_request(method, url, exc.status, outcome=why, elapsed_ms=elapsed)
            raise
        elapsed = (time.perf_counter() - started) * 1000
        note_request(method, url, answer.status, elapsed_ms=elapsed)
        return answer

    def _send(
        self,
        client: httpx.Client,
        watch: DeadlineWatch,
        method: str,
        url: httpx.URL,
        headers: Mapping[str, str],
        body: bytes | None,
        addresses: Sequence[Address],
    ) -> Answer:
        """One request (see :meth:`send`), not noted."""
        failure: httpx.ConnectError | None = None
        for address in addresses:
            with self._mapped(method, url):
                if watch.fired:
                    raise DeadlineExceeded()
                try:
                    request = _pinned(client, method, url, headers, body, address, watch)
                    response = client.send(request, stream=True)
                except httpx.ConnectError as exc:
                    failure = exc
                    continue
                if response.status_code in REDIRECT_STATUSES:
                    response.close()
                    return Answer(response.status_code, response.headers, b"", None)
                deadline = watch.deadline
                full = read_limited(response, max_body=self.limits.max_body, deadline=deadline)
                return Answer(full.status_code, full.headers, full.content, full.encoding)
        listed = ", ".join(str(a) for a in addresses)
        reason = " ".join(str(failure).split())[:_CUT] or type(failure).__name__
        raise RemoteError(
            f"{method} {safe_url(url)} -> cannot connect to {listed} ({reason})",
            method=method,
            url=safe_url(url),
        ) from failure

    @contextmanager
    def _mapped(self, method: str, target: httpx.URL) -> Iterator[None]:
        """Translate httpx exceptions (:func:`~connector.client.failure.mapped_failures`, the
        one mapping of every outgoing call); those raised after the deadline's watch fired are
        the deadline."""
        watch = self._watch
        with mapped_failures(
            method, safe_url(target), timeout=self.timeout, max_body=self.limits.max_body,
            deadline_seconds=self.seconds,
        ):  # fmt: skip
            try:
                yield
            except httpx.HTTPError as exc:
                explained = watch.explain(exc) if watch else exc
                if explained is exc:
                    raise
                raise explained from exc


def _pinned(
    client: httpx.Client,
    method: str,
    url: httpx.URL,
    headers: Mapping[str, str],
    body: bytes | None,
    address: Address,
    watch: DeadlineWatch,
) -> httpx.Request:
    """The request to ``address``, still naming the URL's host (Host header, TLS server name)."""
    pinned = url.copy_with(host=str(address))
    sent = {**headers, "Host": url.netloc.decode("ascii")}
    extensions = watch.extensions()
    if url.scheme == "https":
        extensions["sni_hostname"] = url.raw_host.decode("ascii")
    return client.build_request(method, pinned, headers=sent, content=body, extensions=extensions)
