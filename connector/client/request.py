"""The request an action sends and the reply it gets, as plain data independent of httpx.

:class:`RequestSpec` is what the runtime builds from an action's declaration and its flat
input (path, query and body side by side); the HTTP layer sends it. Keeping it as data lets
``--dry-run`` print exactly what would go out, and lets tests check it against the spec.
Credentials are never part of a RequestSpec: the HTTP layer adds them when sending.
"""

from __future__ import annotations

import base64
import json
import mimetypes
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlencode

import httpx

from connector.errors import ConnectorError, InputError, Location, Problem

__all__ = ["MAX_TARGET_LENGTH", "Reply", "RequestSpec", "check_target", "fill_path",
           "path_segment"]

MAX_TARGET_LENGTH = 8192
"""The longest path and query string (the request line's target) a request may carry: web
servers and proxies refuse longer ones with 414 URI Too Long (Apache's limit is 8190
characters, nginx's 8 KB buffers), and httpx refuses URLs over 64 KB outright."""

_DOT_SEGMENTS = frozenset({".", ".."})
_SEPARATORS = ("/", "\\")
_DECODE_ROUNDS = 4


@dataclass(frozen=True, slots=True)
class RequestSpec:
    """One HTTP request, before credentials are added.

    :param method: upper-case HTTP method.
    :param path: the path with its parameters filled in (already percent-encoded).
    :param query: query parameters in order; values are strings.
    :param json: the JSON body, or ``None`` for no body.
    :param headers: non-secret headers the app or action declares (e.g. ``Version``).
    :param form: how ``json`` (the body fields) is encoded: ``json``, ``multipart`` or ``form``.
    """

    method: str
    path: str
    query: tuple[tuple[str, str], ...] = ()
    json: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    form: str = "json"

    @property
    def target(self) -> str:
        """The path with its query string: what the request line carries."""
        return f"{self.path}?{urlencode(self.query)}" if self.query else self.path

    def url(self, base_url: str) -> str:
        """The absolute URL against ``base_url``, as ``--dry-run`` prints it: the text of
        :meth:`wire_url`, which the HTTP client sends, so the two cannot differ."""
        return str(self.wire_url(base_url))

    def wire_url(self, base_url: str) -> httpx.URL:
        """The URL that is sent: the one place a request's URL is made.

        It is parsed as httpx parses it (dot segments of the base URL resolved, say); a path
        parameter never adds or removes a segment (see :func:`path_segment`).
        """
        try:
            return httpx.URL(base_url.rstrip("/") + self.target)
        except httpx.InvalidURL as exc:  # e.g. over httpx's 64 KB: a local mistake, not remote
            raise ConnectorError(f"{self.method} {self.path}: invalid request URL ({exc});"
                                 " nothing was sent") from None

    def body(self) -> tuple[bytes | None, str | None]:
        """The encoded body and its Content-Type (``None, None`` without a body).

        ``multipart`` sends each file input (``{filename, content_base64 | path}``,
        docs/catalog.md "File uploads") as a file part and every other field as text;
        ``form`` sends the fields URL-encoded; ``json`` one JSON object.
        """
        if self.json is None:
            return None, None
        if self.form == "json":
            text = json.dumps(self.json, ensure_ascii=False, separators=(",", ":"))
            return text.encode(), "application/json"
        fields = {k: _field_text(v) for k, v in self.json.items() if not _is_file(v)}
        if self.form == "form":
            return urlencode(fields).encode(), "application/x-www-form-urlencoded"
        # Text fields as parts without a filename, so a body with no file is multipart too.
        parts: dict[str, Any] = {k: (None, v.encode()) for k, v in fields.items()}
        parts.update({k: _file_part(k, v) for k, v in self.json.items() if _is_file(v)})
        if not parts:
            return b"--" + _EMPTY_BOUNDARY + b"--\r\n", _EMPTY_MULTIPART
        encoded = httpx.Request("POST", "http://body.invalid/", files=parts)
        return encoded.read(), encoded.headers["Content-Type"]

    def with_query(self, **values: str) -> RequestSpec:
        """A copy with the given query parameters set (replacing same-named ones)."""
        kept = tuple((k, v) for k, v in self.query if k not in values)
        return RequestSpec(
            self.method,
            self.path,
            kept + tuple(values.items()),
            self.json,
            self.headers,
            self.form,
        )

    def with_json(self, **values: Any) -> RequestSpec:
        """A copy whose JSON body has the given properties set."""
        body = dict(self.json or {})
        body.update(values)
        return RequestSpec(self.method, self.path, self.query, body, self.headers, self.form)


_EMPTY_BOUNDARY = b"connector-empty-form"
_EMPTY_MULTIPART = "multipart/form-data; boundary=" + _EMPTY_BOUNDARY.decode()


def _is_file(value: Any) -> bool:
    return isinstance(value, Mapping) and "filename" in value


def _field_text(value: Any) -> str:
    """A form field's text: strings as they are, booleans lower-case, the rest as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _file_part(name: str, value: Mapping[str, Any]) -> tuple[str, bytes, str]:
    """``(filename, bytes, content type)`` of a file input.

    :raises ConnectorError: neither ``content_base64`` nor a readable ``path`` is given.
    """
    filename = str(value["filename"])
    kind = value.get("content_type") or mimetypes.guess_type(filename)[0]
    try:
        if "content_base64" in value:
            data = base64.b64decode(value["content_base64"], validate=True)
        elif "path" in value:
            data = Path(value["path"]).read_bytes()
        else:
            raise ConnectorError(f"input {name!r}: give content_base64 or path for {filename!r}")
    except (OSError, ValueError) as exc:
        raise ConnectorError(f"input {name!r}: cannot read the file: {exc}") from None
    return filename, data, kind or "application/octet-stream"


def check_target(action_id: str, request: RequestSpec, fields: Mapping[str, Any]) -> None:
    """Refuse a request whose path and query string exceed :data:`MAX_TARGET_LENGTH`.

    :param fields: the input fields placed in the path or the query (input name -> value);
        the problem points at the one adding the most characters.
    :raises InputError: the URL would be too long (nothing is sent).
    """
    length = len(request.target)
    if length <= MAX_TARGET_LENGTH:
        return

    def share(value: Any) -> int:  # noqa: ANN401
        values = value if isinstance(value, list) else [value]
        return sum(len(quote(str(v), safe="")) for v in values)

    widest = max(fields, key=lambda name: share(fields[name]), default=None)
    problem = Problem(
        Location(pointer=widest or ""),  # as the schema's problems name an input field
        f"makes the request URL {length} characters long (path and query), over the"
        f" {MAX_TARGET_LENGTH} servers accept; nothing was sent",
        "shorten it: a URL cannot carry that much",
    )
    raise InputError(action_id, [problem])


def fill_path(template: str, values: Mapping[str, Any], *, action_id: str) -> str:
    """Fill ``{name}`` placeholders of a path template, each value one encoded segment.

    :param values: wire name -> (input field, value); the field names the error.
    :raises InputError: a value that could change which endpoint is called.
    """
    out = template
    for name, (field_name, value) in values.items():
        out = out.replace("{" + name + "}", path_segment(action_id, field_name, value))
    return out


def path_segment(action_id: str, field_name: str, value: Any) -> str:
    """``value`` percent-encoded as one path segment that cannot move the call elsewhere.

    Refused, with an :class:`~connector.errors.InputError` naming ``field_name``: the empty
    string, and any value that is, or decodes to (percent-decoding repeated, Unicode NFKC
    folding, a NUL cut or surrounding blanks), ``.`` or ``..`` or holds ``/`` or ``\\``.
    URL normalisation (httpx's, a proxy's, the server's) would turn those into another path:
    ``tasks/..`` is the contact itself.
    """
    text = str(value)
    reason = _moving(text)
    if reason is not None:
        problem = Problem(
            Location(pointer=f"/{field_name}"),
            f"{text!r} {reason}",
            "a path parameter must name one item, never a path",
        )
        raise InputError(action_id, [problem])
    return quote(text, safe="")


def _moving(text: str) -> str | None:
    """Why ``text`` would change the path it is put in, or None."""
    if not text:
        return "is empty"
    for form in _readings(text):
        if any(sep in form for sep in _SEPARATORS):
            return "holds a path separator ('/' or '\\'), in some encoding"
        if form in _DOT_SEGMENTS or form.split("\0", 1)[0].strip() in _DOT_SEGMENTS:
            return "is a dot segment ('.' or '..'), in some encoding"
    return None


def _readings(text: str) -> list[str]:
    """``text`` as servers may read it: decoded again and again, and NFKC-folded."""
    forms = [text]
    for _ in range(_DECODE_ROUNDS):
        decoded = unquote(forms[-1]) if "%" in forms[-1] else forms[-1]
        if decoded == forms[-1]:
            break
        forms.append(decoded)
    return forms + [unicodedata.normalize("NFKC", form) for form in forms]


@dataclass(frozen=True, slots=True)
class Reply:
    """A response as the runtime sees it: status, headers (lower-case names) and parsed JSON."""

    status: int
    headers: Mapping[str, str]
    data: Any
    elapsed_ms: float = 0.0
