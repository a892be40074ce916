"""The URL guard for outbound URLs that users choose (the HTTP action, REST hook targets).

Which hosts and addresses a request may reach.

A URL passes :meth:`UrlGuard.check` when its scheme is ``http`` or ``https``, it carries no
user info, and every address its host resolves to (``socket.getaddrinfo``) is public, or
allowed. Refused: loopback, private, link-local, shared (100.64.0.0/10), reserved, multicast
and unspecified addresses, IPv4 and IPv6 alike, including IPv4 addresses carried inside IPv6
(IPv4-mapped ``::ffff:a.b.c.d``, 6to4, Teredo, NAT64 ``64:ff9b::/96``). The checked addresses
are returned so the caller connects to exactly those (a second DNS answer cannot swap them).

The allow-list holds host names, addresses and networks, each optionally with a port
(``localhost``, ``127.0.0.1:8080``, ``10.0.0.0/8``, ``[::1]:9000``). It comes from the
``CONNECTOR_HTTP_ALLOW`` environment variable (comma-separated) plus the process-wide entries
added with :func:`allow` or, for a block of code, :func:`allowing` (demo and test mode use
these to reach the local sandbox). A host name entry trusts whatever that name resolves to.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import httpx

from connector.client.exchange import safe_url
from connector.errors import ConnectorError, RemoteError

__all__ = [
    "ALLOW_ENV",
    "AllowEntry",
    "GuardedUrl",
    "UrlGuard",
    "address_risk",
    "allow",
    "allowed",
    "allowing",
]

ALLOW_ENV = "CONNECTOR_HTTP_ALLOW"
"""Environment variable holding extra allowed hosts/networks, comma-separated."""

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_HOST_NAME = re.compile(r"^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*$")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_ENTRY_HINT = "e.g. localhost, 127.0.0.1:8080, 10.0.0.0/8, [::1]:9000"

_lock = threading.Lock()
_process_entries: list[AllowEntry] = []


@dataclass(frozen=True, slots=True)
class AllowEntry:
    """One allow-list entry: a host name or a network, and optionally a port."""

    host: str | None = None
    network: IPNetwork | None = None
    port: int | None = None

    @classmethod
    def parse(cls, text: str) -> AllowEntry:
        """Parse ``name``, ``address``, ``network`` or ``[v6]``, each with an optional ``:port``.

        :raises ConnectorError: the text is none of these.
        """
        raw = text.strip().lower()
        host, port = raw, None
        if raw.startswith("["):
            host, _, rest = raw[1:].partition("]")
            port = _port(rest[1:], text) if rest.startswith(":") else None
            if rest and port is None:
                raise _bad_entry(text)
        elif raw.count(":") == 1:
            host, _, digits = raw.partition(":")
            port = _port(digits, text)
        try:
            return cls(network=ipaddress.ip_network(host, strict=False), port=port)
        except ValueError:
            pass
        name = host.rstrip(".")
        if not _HOST_NAME.match(name):
            raise _bad_entry(text)
        return cls(host=name, port=port)

    def matches(self, host: str, address: IPAddress, port: int) -> bool:
        """Whether this entry allows ``address`` reached as ``host:port``."""
        if self.port is not None and self.port != port:
            return False
        if self.host is not None:
            return self.host == host.lower().rstrip(".")
        assert self.network is not None
        return any(a in self.network for a in (address, *_embedded(address)))


def _port(digits: str, text: str) -> int:
    if not (digits.isascii() and digits.isdigit()) or not 0 < int(digits) < 65536:
        raise _bad_entry(text)
    return int(digits)


def _bad_entry(text: str) -> ConnectorError:
    return ConnectorError(
        f"{ALLOW_ENV}: {text.strip()!r} is not a host name, address or network [{_ENTRY_HINT}]"
    )


@dataclass(frozen=True, slots=True)
class GuardedUrl:
    """A URL that passed the guard, and the addresses to connect to (in resolver order)."""

    url: httpx.URL
    addresses: tuple[IPAddress, ...]

    @property
    def port(self) -> int:
        """The port, explicit or the scheme's default."""
        return self.url.port or (443 if self.url.scheme == "https" else 80)


class UrlGuard:
    """Checks URLs against the address rules and an allow-list.

    :param allow: allow-list entries (see :meth:`AllowEntry.parse`).
    :raises ConnectorError: an entry cannot be parsed.
    """

    def __init__(self, allow: Iterable[str | AllowEntry] = ()) -> None:
        self.entries = tuple(e if isinstance(e, AllowEntry) else AllowEntry.parse(e) for e in allow)

    def __repr__(self) -> str:
        return f"UrlGuard(entries={len(self.entries)})"

    @classmethod
    def from_config(cls, environ: Mapping[str, str] | None = None) -> UrlGuard:
        """The guard configuration gives: ``CONNECTOR_HTTP_ALLOW`` plus :func:`allowed`."""
        env = os.environ if environ is None else environ
        listed = [part for part in env.get(ALLOW_ENV, "").split(",") if part.strip()]
        return cls([*listed, *allowed()])

    def check(self, url: str | httpx.URL, *, where: str = "url") -> GuardedUrl:
        """Check ``url`` and resolve its host; return where it may connect.

        :param where: names the URL in messages (``url``, ``redirect from ...``).
        :raises ConnectorError: the URL is malformed or reaches a refused address.
        :raises RemoteError: the host name does not resolve.
        """
        parsed = _parse(url, where)
        host = parsed.host
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        addresses = _resolve(host, port, where, parsed)
        for address in addresses:
            risk = address_risk(address)
            if risk and not any(e.matches(host, address, port) for e in self.entries):
                shown = host if host == str(address) else f"{host!r} resolves to {address}, which"
                raise ConnectorError(
                    f"{where} {safe_url(parsed)!r}: {shown} is a {risk} address; requests to "
                    "loopback, private, link-local and reserved addresses are refused "
                    f"[allow it with {ALLOW_ENV}={_suggest(host, address)} if intended]"
                )
        return GuardedUrl(parsed, addresses)


def _parse(url: str | httpx.URL, where: str) -> httpx.URL:
    try:
        parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
        parsed.host  # noqa: B018  # decodes an IDNA host: a malformed one raises here
    except (httpx.InvalidURL, UnicodeError) as exc:  # idna's errors are UnicodeErrors
        raise ConnectorError(f"{where}: invalid URL ({exc})") from exc
    if parsed.port is not None and not 0 < parsed.port < 65536:
        raise ConnectorError(f"{where}: invalid URL (port {parsed.port} is not 1 to 65535)")
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ConnectorError(
            f"{where} {safe_url(parsed)!r}: only absolute http:// and https:// URLs are allowed"
        )
    if parsed.userinfo:
        raise ConnectorError(
            f"{where} {safe_url(parsed)!r}: user info in URLs is refused [send credentials in "
            "headers]"
        )
    return parsed


def _resolve(host: str, port: int, where: str, url: httpx.URL) -> tuple[IPAddress, ...]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        reason = exc.strerror if isinstance(exc, socket.gaierror) else str(exc)
        raise RemoteError(
            f"{where} {safe_url(url)!r}: cannot resolve host {host!r} ({reason})",
            url=safe_url(url),
        ) from exc
    found: dict[IPAddress, None] = {}
    for info in infos:
        text = str(info[4][0]).split("%", 1)[0]  # drop an IPv6 zone id
        found.setdefault(ipaddress.ip_address(text), None)
    return tuple(found)


def _suggest(host: str, address: IPAddress) -> str:
    return f"[{address}]" if host == str(address) and address.version == 6 else host


def address_risk(address: IPAddress) -> str | None:
    """Why ``address`` is refused (``'loopback'``, ``'private'``, ...), or ``None`` if public."""
    for inner in _embedded(address):
        risk = address_risk(inner)
        if risk:
            return f"{risk} (inside IPv6 {address})"
    checks = (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
        ("non-global", not address.is_global),
    )
    return next((name for name, hit in checks if hit), None)


def _embedded(address: IPAddress) -> tuple[ipaddress.IPv4Address, ...]:
    """IPv4 addresses carried inside an IPv6 address (mapped, 6to4, Teredo, NAT64)."""
    if not isinstance(address, ipaddress.IPv6Address):
        return ()
    inner: list[ipaddress.IPv4Address] = []
    if address.ipv4_mapped is not None:
        inner.append(address.ipv4_mapped)
    if address.sixtofour is not None:
        inner.append(address.sixtofour)
    if address.teredo is not None:
        inner.extend(address.teredo)
    if address in _NAT64:
        inner.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return tuple(inner)


def allow(*entries: str) -> None:
    """Add entries to the process-wide allow-list (demo and test mode reach the sandbox so).

    :raises ConnectorError: an entry cannot be parsed.
    """
    parsed = [AllowEntry.parse(e) for e in entries]
    with _lock:
        _process_entries.extend(parsed)


def allowed() -> tuple[AllowEntry, ...]:
    """The process-wide allow-list entries added with :func:`allow` and :func:`allowing`."""
    with _lock:
        return tuple(_process_entries)


@contextmanager
def allowing(*entries: str) -> Iterator[None]:
    """Allow ``entries`` process-wide while the block runs; removed again on exit."""
    parsed = [AllowEntry.parse(e) for e in entries]
    with _lock:
        _process_entries.extend(parsed)
    try:
        yield
    finally:
        with _lock:
            for entry in parsed:
                _process_entries.remove(entry)
