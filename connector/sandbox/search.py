"""Finding contacts: the search endpoint's filters, free-text query, sorting and paging (page or
``searchAfter``), the deprecated ``GET /contacts/`` cursor listing, and listing by business."""

from __future__ import annotations

import bisect
import functools
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from urllib.parse import urlencode

from connector.sandbox.call import Call, Reply
from connector.sandbox.contacts import normal_phone
from connector.sandbox.responses import bad_request, unprocessable
from connector.sandbox.state import Record

__all__ = ["by_business", "legacy_list", "search", "to_ms"]

_DATES = ("dateAdded", "dateUpdated", "dateOfBirth", "lastActivity")
_TEXT = ("name", "firstName", "lastName", "email", "phone", "companyName")
_MAX_PAGE_LIMIT = 500
_MAX_PAGED = 10_000
_MEMO_SIZE = 64
"""Orderings kept at once (all are dropped on any change, or when this many are kept)."""


def to_ms(value: object) -> int:
    """Epoch milliseconds from a number of ms, an ISO 8601 time or a ``YYYY-MM-DD`` date.

    :raises ValueError: for anything else
    """
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, str):
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return int(moment.timestamp() * 1000)
    raise ValueError(f"not a time: {value!r}")


def _field(contact: Record, name: str) -> object:
    if name in _DATES:
        return to_ms(contact[name]) if contact.get(name) else None
    if name == "email":
        return contact.get("emailLowerCase")
    return contact.get(name)


def _same(actual: object, wanted: object, name: str) -> bool:
    if isinstance(actual, list):
        wanted_all = wanted if isinstance(wanted, list) else [wanted]
        lowered = {str(w).lower() for w in wanted_all}
        return any(str(a).lower() in lowered for a in actual)
    if name == "phone" and isinstance(wanted, str) and actual is not None:
        return actual == normal_phone(wanted)
    if isinstance(actual, str) and isinstance(wanted, str):
        return actual.lower() == wanted.lower()
    return actual == wanted


def _contains(actual: object, wanted: object) -> bool:
    needle = str(wanted).lower()
    if isinstance(actual, list):
        return any(needle in str(a).lower() for a in actual)
    return actual is not None and needle in str(actual).lower()


_CHECKS = {"gte": float.__ge__, "gt": float.__gt__, "lte": float.__le__, "lt": float.__lt__}


def _in_range(actual: object, bounds: object, name: str) -> bool:
    """Whether a number (a date as epoch ms) lies within ``{gte, gt, lte, lt}`` bounds."""
    if not isinstance(bounds, dict):
        raise bad_request(f"filters: range value {bounds!r} for {name} must be an object")
    if not isinstance(actual, int | float):
        return False
    try:
        limits = {op: float(to_ms(v) if name in _DATES else float(v))
                  for op, v in bounds.items() if op in _CHECKS}
    except (ValueError, TypeError) as exc:
        raise bad_request(f"filters: invalid range {bounds!r} for {name}") from exc
    return all(_CHECKS[op](float(actual), limit) for op, limit in limits.items())


def _matches(rule: object, contact: Record) -> bool:
    if not isinstance(rule, dict):
        raise bad_request(f"filters: {rule!r} is not a filter object")
    if "group" in rule:
        parts = (_matches(sub, contact) for sub in rule.get("filters") or [])
        return any(parts) if str(rule["group"]).upper() == "OR" else all(parts)
    name, operator, wanted = rule.get("field"), rule.get("operator"), rule.get("value")
    if not isinstance(name, str):
        raise bad_request(f"filters: field {name!r} must be a string")
    actual = _field(contact, name)
    if operator == "eq":
        return _same(actual, wanted, name)
    if operator == "not_eq":
        return not _same(actual, wanted, name)
    if operator == "contains":
        return _contains(actual, wanted)
    if operator == "not_contains":
        return not _contains(actual, wanted)
    if operator in ("exists", "not_exists"):
        present = actual is not None and actual != "" and actual != []
        return present is (operator == "exists")
    if operator == "range":
        return _in_range(actual, wanted, name)
    raise bad_request(f"filters: unknown operator {operator!r} for field {name!r}")


def _query_hit(query: str, contact: Record) -> bool:
    needle = query.lower().strip()
    return not needle or any(needle in str(contact.get(k, "")).lower() for k in _TEXT)


def _cursor_value(contact: Record, name: str) -> int | float | str:
    """A contact's value for a sort field, as it appears in its ``searchAfter``."""
    value = _field(contact, name)
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float):
        return value
    return "" if value is None else str(value).lower()


_Rank = tuple[int, float, str]


def _rank(value: object) -> _Rank:
    """A sortable form of a cursor value: numbers before strings, each in natural order."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (0, float(value), "")
    return (1, 0.0, str(value))


def _compare(keys: Sequence[tuple[str, bool]], left: Sequence[_Rank],
             right: Sequence[_Rank]) -> int:
    for (_, descending), a, b in zip(keys, left, right, strict=False):
        if a != b:
            smaller = a < b
            return (1 if smaller else -1) if descending else (-1 if smaller else 1)
    a_id, b_id = left[-1], right[-1]
    return (a_id > b_id) - (a_id < b_id)


_Row = tuple[list[_Rank], list[int | float | str], Record]


def _compare_rows(keys: Sequence[tuple[str, bool]], left: _Row, right: _Row) -> int:
    return _compare(keys, left[0], right[0])


def _sort_keys(sort: object) -> list[tuple[str, bool]]:
    if not sort:
        return [("dateAdded", True)]
    if not isinstance(sort, list):
        raise bad_request(f"sort: {sort!r} must be an array")
    keys = []
    for item in sort:
        if not isinstance(item, dict) or not isinstance(item.get("field"), str):
            raise bad_request(f"sort: {item!r} needs a field and a direction")
        keys.append((item["field"], str(item.get("direction", "asc")).lower() == "desc"))
    return keys


def _found(call: Call, location_id: str, body: Record) -> list[Record]:
    query = body.get("query") or ""
    if len(query) > 75:
        raise bad_request("query must be shorter than or equal to 75 characters")
    filters = body.get("filters") or []
    return [c for c in call.store.in_location(location_id)
            if _query_hit(query, c) and all(_matches(f, c) for f in filters)]


def _sorted_rows(call: Call, location_id: str, body: Record,
                 keys: list[tuple[str, bool]]) -> list[_Row]:
    """Every matching contact as a row, in the sort order; kept in the store's memo until the
    records change, so paging through N contacts sorts them once rather than once a page."""
    memo_key = ("search", location_id, body.get("query") or "",
                json.dumps(body.get("filters") or [], sort_keys=True), tuple(keys))
    rows: list[_Row] | None = call.store.memo.get(memo_key)
    if rows is not None:
        return rows
    rows = []
    for contact in _found(call, location_id, body):
        cursor: list[int | float | str] = [_cursor_value(contact, k) for k, _ in keys]
        cursor.append(contact["id"])
        rows.append(([_rank(v) for v in cursor], cursor, contact))
    rows.sort(key=functools.cmp_to_key(functools.partial(_compare_rows, keys)))
    _remember(call, memo_key, rows)
    return rows


def _remember(call: Call, memo_key: tuple[object, ...], value: object) -> None:
    if len(call.store.memo) >= _MEMO_SIZE:
        call.store.memo.clear()
    call.store.memo[memo_key] = value


def search(call: Call) -> Reply:
    """POST /contacts/search: ``{contacts, total}``; each contact carries its ``searchAfter``."""
    body = call.body
    location_id = call.location(body["locationId"])
    limit, page, after = body["pageLimit"], body.get("page"), body.get("searchAfter")
    if not 1 <= limit <= _MAX_PAGE_LIMIT:
        raise bad_request(f"pageLimit must be between 1 and {_MAX_PAGE_LIMIT}")
    if page is not None and after is not None:
        raise bad_request("page and searchAfter cannot be used together")
    keys = _sort_keys(body.get("sort"))
    rows = _sorted_rows(call, location_id, body, keys)
    if after is not None:
        if len(after) != len(keys) + 1:
            raise bad_request(f"searchAfter {after!r} does not fit the sort order")
        order = functools.cmp_to_key(functools.partial(_compare, keys))
        mark = order([_rank(v) for v in after])
        start = bisect.bisect_right(rows, mark, key=lambda row: order(row[0]))
        chosen = rows[start:start + limit]
    else:
        start = ((page or 1) - 1) * limit
        if page is not None and (page < 1 or start + limit > _MAX_PAGED):
            raise bad_request(f"page {page!r} is out of range [use searchAfter past 10000]")
        chosen = rows[start:start + limit]
    contacts = [{**c, "searchAfter": cursor} for _, cursor, c in chosen]
    return 200, {"contacts": contacts, "total": len(rows)}


def _int_param(call: Call, name: str, default: int, most: int | None = None) -> int:
    raw = call.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(float(raw))
    except ValueError as exc:
        raise unprocessable([f"{name} must be a number conforming to the specified constraints"]) \
            from exc
    if value < 0 or (most is not None and value > most):
        raise unprocessable([f"{name} must not be greater than {most}"])
    return value


def _required_location(call: Call) -> str:
    requested = call.query.get("locationId")
    if not requested:
        raise unprocessable(["locationId should not be empty"])
    return call.location(requested)


_Dated = list[tuple[tuple[int, str], Record]]


def _oldest_first(call: Call, location_id: str, query: str, business: str | None) -> _Dated:
    """The location's contacts matching ``query`` (and ``business`` unless None), oldest first;
    kept in the store's memo until the records change."""
    memo_key = ("oldest", location_id, query, business)
    rows: _Dated | None = call.store.memo.get(memo_key)
    if rows is None:
        rows = sorted(((to_ms(c["dateAdded"]), c["id"]), c)
                      for c in call.store.in_location(location_id)
                      if (business is None or c.get("businessId") == business)
                      and _query_hit(query, c))
        _remember(call, memo_key, rows)
    return rows


def legacy_list(call: Call) -> Reply:
    """GET /contacts/ (deprecated): ``startAfter``/``startAfterId`` cursor, oldest first."""
    location_id = _required_location(call)
    limit = _int_param(call, "limit", 20, 100) or 20
    query = call.query.get("query", "")
    rows = _oldest_first(call, location_id, query, None)
    after_id, after_ms = call.query.get("startAfterId"), _int_param(call, "startAfter", -1)
    start = 0
    if after_id and after_id in call.store.contacts and after_ms < 0:
        after_ms = to_ms(call.store.contacts[after_id]["dateAdded"])
    if after_ms >= 0 or after_id:
        cursor = (after_ms, after_id or "")
        start = bisect.bisect_right(rows, cursor, key=lambda row: row[0])
    chosen = rows[start:start + limit]
    page = start // limit + 1
    more = start + limit < len(rows)
    last = chosen[-1][0] if chosen else (None, None)
    next_url = None
    if more and chosen:
        params = {"locationId": location_id, "startAfter": last[0], "startAfterId": last[1]}
        next_url = f"{call.base_url}/contacts/?{urlencode(params)}"
    meta = {"total": len(rows), "nextPageUrl": next_url, "startAfterId": last[1],
            "startAfter": last[0], "currentPage": page, "nextPage": page + 1 if more else None,
            "prevPage": page - 1 if page > 1 else None}
    return 200, {"contacts": [c for _, c in chosen], "count": len(rows), "meta": meta}


def by_business(call: Call) -> Reply:
    """GET /contacts/business/{businessId}: ``skip``/``limit`` paging, oldest first."""
    location_id = _required_location(call)
    skip, limit = _int_param(call, "skip", 0), _int_param(call, "limit", 25, 500)
    query, business = call.query.get("query", ""), call.params["businessId"]
    rows = _oldest_first(call, location_id, query, business)
    return 200, {"contacts": [c for _, c in rows[skip:skip + limit]], "count": len(rows)}
