"""Walking every page of a list or search action, lazily and in constant memory.

:func:`iterate` is a generator: it fetches a page only when the previous one has been consumed,
and stops fetching as soon as ``max_items`` records have been yielded. The manifest's
``pagination`` object says how to get the next page (see ``$defs.pagination`` in
``schemas/manifest.schema.json``):

``cursor``
    The next request sends the values named in ``next``, read from the response
    (``meta.startAfterId``) or from the page's last record (``$last.searchAfter``). Stops on an
    empty page, a missing next value, or a cursor that does not advance.
``page``
    Sends ``page`` = 1, 2, ... Stops on an empty or short page, or when ``total`` is reached. If
    ``next`` is given and resolves, those values are sent instead of the page number (GHL search
    must use ``searchAfter`` past 10,000 records).
``offset``
    Sends ``offset`` advanced by the records received. Stops on an empty or short page, or when
    ``total`` is reached. GHL types ``skip``/``limit`` as strings on some endpoints, so numbers are
    sent as strings when the caller's first input used strings.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from connector.errors import RemoteError

__all__ = ["iterate"]

_MISSING = object()

Call = Callable[[Mapping[str, Any]], Any]


def iterate(
    call: Call,
    pagination: Mapping[str, Any],
    first_input: Mapping[str, Any],
    *,
    max_items: int | None = None,
) -> Iterator[Any]:
    """Yield every record of every page, fetching pages only as they are needed.

    :param call: performs one request with a flat input and returns the parsed JSON body.
    :param pagination: the action's ``pagination`` object from the manifest.
    :param first_input: the input of the first request.
    :param max_items: stop after this many records (``None``: all of them).
    :returns: an iterator over the records.
    :raises RemoteError: if a response holds something other than a list at ``items``.
    """
    if max_items is not None and max_items <= 0:
        return iter(())
    style = pagination["style"]
    pages = {"cursor": _cursor_pages, "page": _numbered_pages, "offset": _offset_pages}[style]
    # A smaller page keeps page numbers meaningful only if we start at page 1.
    shrink = style != "page" or pagination.get("page", "page") not in first_input
    request, limit = _first_request(pagination, first_input, max_items if shrink else None)
    return _records(pages(call, pagination, request, limit), max_items)


def _records(pages: Iterator[list[Any]], max_items: int | None) -> Iterator[Any]:
    count = 0
    for page in pages:
        for record in page:
            yield record
            count += 1
            if max_items is not None and count >= max_items:
                return


def _first_request(
    pagination: Mapping[str, Any], first_input: Mapping[str, Any], max_items: int | None
) -> tuple[dict[str, Any], int | None]:
    """The first input with its page size set; and that page size (``None`` if not declared)."""
    request = dict(first_input)
    spec = pagination.get("limit")
    if not spec:
        return request, None
    param = spec["param"]
    given = request.get(param)
    limit = int(given) if given is not None else spec.get("default")
    if limit is None:
        return request, None
    if "max" in spec:
        limit = min(limit, spec["max"])
    if max_items is not None and max_items < limit:
        limit = max_items  # one page is enough: ask for no more than needed
    request[param] = str(limit) if isinstance(given, str) else limit
    return request, limit


def _cursor_pages(
    call: Call, pagination: Mapping[str, Any], request: dict[str, Any], limit: int | None
) -> Iterator[list[Any]]:
    nexts: Mapping[str, str] = pagination.get("next", {})
    while True:
        data = call(dict(request))
        items = _items(data, pagination["items"])
        if not items:
            return
        yield items
        following = _next_values(data, items, nexts)
        if following is None or all(request.get(k) == v for k, v in following.items()):
            return
        request.update(following)


def _numbered_pages(
    call: Call, pagination: Mapping[str, Any], request: dict[str, Any], limit: int | None
) -> Iterator[list[Any]]:
    param = pagination.get("page", "page")
    as_str = isinstance(request.get(param), str)
    page = int(request.get(param, 1))
    request[param] = str(page) if as_str else page
    seen = (page - 1) * limit if limit else 0
    nexts: Mapping[str, str] = pagination.get("next", {})
    while True:
        data = call(dict(request))
        items = _items(data, pagination["items"])
        if not items:
            return
        yield items
        seen += len(items)
        if _last_page(data, pagination, items, limit, seen):
            return
        following = _next_values(data, items, nexts) if nexts else None
        if following is not None:
            if all(request.get(k) == v for k, v in following.items()):
                return
            request.pop(param, None)
            request.update(following)
        else:
            page += 1
            request[param] = str(page) if as_str else page


def _offset_pages(
    call: Call, pagination: Mapping[str, Any], request: dict[str, Any], limit: int | None
) -> Iterator[list[Any]]:
    param = pagination.get("offset", "offset")
    given = request.get(param)
    limit_spec: Mapping[str, Any] = pagination.get("limit") or {}
    sized_as_str = isinstance(request.get(limit_spec.get("param", "")), str)
    as_str = isinstance(given, str) or (given is None and sized_as_str)
    offset = int(given) if given is not None else 0
    request[param] = str(offset) if as_str else offset
    while True:
        data = call(dict(request))
        items = _items(data, pagination["items"])
        if not items:
            return
        yield items
        offset += len(items)
        if _last_page(data, pagination, items, limit, offset):
            return
        request[param] = str(offset) if as_str else offset


def _last_page(
    data: object, pagination: Mapping[str, Any], items: list[Any], limit: int | None, seen: int
) -> bool:
    """A short page, or ``seen`` records reach the response's total: nothing follows."""
    if limit is not None and len(items) < limit:
        return True
    total_path = pagination.get("total")
    total = _resolve(data, total_path) if total_path else _MISSING
    return isinstance(total, int | float) and not isinstance(total, bool) and seen >= total


def _items(data: object, path: str) -> list[Any]:
    found = _resolve(data, path)
    if found is _MISSING or found is None:
        return []
    if not isinstance(found, list):
        raise RemoteError(
            f"pagination: the response's {path!r} is a {type(found).__name__}, not a list "
            "[check the action's pagination.items]"
        )
    return found


def _next_values(
    data: object, items: list[Any], nexts: Mapping[str, str]
) -> dict[str, object] | None:
    """The next request's cursor inputs, or ``None`` if any is missing from the response."""
    values: dict[str, object] = {}
    for name, source in nexts.items():
        if source.startswith("$last."):
            value = _resolve(items[-1], source.removeprefix("$last."))
        else:
            value = _resolve(data, source)
        if value is _MISSING or value is None or value == "":
            return None
        values[name] = value
    return values or None


def _resolve(data: object, path: str) -> object:
    """Follow a dotted path (``meta.startAfterId``; digits index lists) or return ``_MISSING``."""
    current: object = data
    for part in (p for p in path.split(".") if p):
        if isinstance(current, Mapping) and part in current:
            current = current[part]
        elif (
            isinstance(current, list)
            and part.isascii()
            and part.isdigit()
            and int(part) < len(current)
        ):
            current = current[int(part)]
        else:
            return _MISSING
    return current
