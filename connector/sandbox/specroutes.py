"""Every GHL operation outside Contacts, answered from the spec like a mock server with memory.

The operations are the pack's generated GHL actions (``manifest.yaml``, made from GHL's
official specs): method, path, scopes, input schema (the request check) and output schema (the
answer's shape, with the spec's examples). Each operation gets a role from its shape alone:

- ``create``: a POST to a collection path (no ``{param}`` at the end, and not a verb after one:
  ``POST /invoices/{invoiceId}/send`` acts on the invoice) whose answer holds one
  record (the output's ``id``, or its one object member, such as ``{"opportunity": {...}}``, or
  names it: ``messageId`` for a POST to ``/conversations/messages``);
  the record is built from the answer schema, overlaid with the request's inputs of the same
  names, and stored under the collection's path with a fresh id.
- ``get`` / ``update`` / ``delete``: a GET, PUT/PATCH or DELETE of ``<collection>/{id}``: the
  stored record is answered, merged with the body, or removed. When the spec can create records
  in that collection (or in one just below it: ``/calendars/events/{eventId}`` finds
  appointments), an id it never made is a 404; otherwise the spec's example is answered.
- ``list``: a GET (or a search POST) whose answer holds a record list: the stored records of the
  collection it reads (its own path; the path less a last word such as ``search``;
  ``A/{p}/B`` reads ``A/B`` filtered by ``p``; or the collections just below it), filtered by
  the query inputs named like record fields (``contact_id`` matches ``contactId``; ``all`` and
  empty values do not filter), paged as the action's ``pagination`` declares.
- appointments the Contacts side holds (``GET /contacts/{id}/appointments``, webhooks) are
  read and edited through ``/calendars/events/appointments/{eventId}`` too;
- anything else is answered from the spec's example; a PUT/PATCH/POST below a stored record
  (``PUT /opportunities/{id}/status``) merges its body into that record.

Every answer is built to pass the action's output schema (:mod:`connector.sandbox.specvalues`).
Creates, changes and deletes send the resource's webhook events, when GHL has such events
(:mod:`connector.sandbox.specevents`: ``OpportunityCreate``, ``OpportunityStatusUpdate``, ...).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from connector.documents.lazyschema import plain
from connector.documents.schema import Validator
from connector.hookspecs import Action, Trigger
from connector.sandbox.call import Call, Reply
from connector.sandbox.responses import ApiError, error_body
from connector.sandbox.specevents import EventRule, event_rules, payload
from connector.sandbox.specinput import check_input, read_input
from connector.sandbox.specvalues import fit, instance, valid

__all__ = ["SpecOperation", "spec_handlers"]

Path = tuple[str, ...]
_ID_FIELDS = ("id", "_id")
_STAMPS = ("dateAdded", "dateUpdated", "createdAt", "updatedAt")
_UPDATE_STAMPS = ("dateUpdated", "updatedAt")
_NO_FILTER = frozenset({"", "all"})
_TOTALS = ("total", "totalCount", "total_count", "meta.total", "meta.totalCount")
"""Where a list answer keeps its record count when its pagination names none."""
_STATUS = re.compile(r"The (\d{3}) response")
_LOCATION_INPUTS = ("locationId", "location_id")
_CONTACTS_SIDE = "<contacts>"
_APPOINTMENTS = frozenset({("calendars", "events", "appointments"), ("calendars", "events")})
"""Collections whose ids may be appointments the Contacts side holds (seeded, or booked with
``/_sandbox/appointments``): the calendars API reads and edits them too."""


def _segments(path: str) -> list[str]:
    return path.strip("/").split("/")


def _is_param(segment: str) -> bool:
    return segment.startswith("{") and segment.endswith("}")


def _shape(segments: Sequence[str]) -> Path:
    """A path's collection key without its values: ``locations/{}/customFields``."""
    return tuple("{}" if _is_param(s) else s for s in segments)


@dataclass(frozen=True, slots=True)
class _Plan:
    """What the shape of one operation says it does (see the module docstring)."""

    role: str
    segments: tuple[str, ...]
    slot: Path | None
    items: Path | None
    status: int
    id_field: str = "id"
    """The answer's name for a created record's id: ``id``, or ``<noun>Id`` (``messageId``)."""


class SpecOperation:
    """The handler of one spec operation (a :class:`connector.sandbox.routes.Operation`'s)."""

    def __init__(self, action: Action, plan: _Plan, creatable: frozenset[Path],
                 events: EventRule | None = None) -> None:
        self.action = action
        self.plan = plan
        self._creatable = creatable
        self._events = events
        self._input: Validator | None = None
        self._output: dict[str, Any] | None = None
        self._example: Any = None

    def __repr__(self) -> str:
        return f"SpecOperation({self.action.id!r}, {self.plan.role})"

    @property
    def output(self) -> dict[str, Any]:
        """The action's output schema (read on first use)."""
        if self._output is None:
            self._output = plain(self.action.output_schema)
        return self._output

    def example(self) -> Any:  # noqa: ANN401 - any JSON
        """A fresh copy of the answer the spec's examples and schema give."""
        if self._example is None:
            self._example = instance(self.output)
        return copy.deepcopy(self._example)

    def __call__(self, call: Call) -> Reply:
        if self._input is None:
            self._input = Validator(self.action.input_schema, fast=False)
        data, body_names = read_input(self.action, call.params, call.query_pairs, call.body,
                                      call.raw_body, call.content_type)
        check_input(self._input, data)
        _check_location(call, data)
        role = self.plan.role
        if role == "create":
            return self._create(call, data)
        if role in ("get", "update", "delete"):
            return self._item(call, data, body_names)
        if role == "list":
            return self.plan.status, self._list(call, data)
        return self._other(call, data, body_names)

    # -- roles ------------------------------------------------------------------------------

    def _key(self, call: Call, segments: Sequence[str]) -> str:
        return "/".join(call.params.get(s[1:-1], s) if _is_param(s) else s for s in segments)

    def _slot_schema(self) -> Mapping[str, Any] | None:
        return _at_schema(self.output, self.plan.slot) if self.plan.slot is not None else None

    def _create(self, call: Call, data: Mapping[str, Any]) -> Reply:
        answer = self.example()
        schema = self._slot_schema()
        base = _at(answer, self.plan.slot or ())
        record: dict[str, Any] = dict(base) if isinstance(base, dict) else {}
        record.update(data)
        record_id = call.store.new_id()
        props = schema.get("properties", {}) if schema else {}
        record["id"] = record_id
        for name in {"_id", self.plan.id_field} & set(props):
            record[name] = record_id
        now = call.store.stamp()
        for name in _STAMPS:
            record[name] = now
        call.store.resources.put(self._key(call, self.plan.segments), record_id, record)
        self._emit(call, "created", record, ())
        return self.plan.status, self._with_record(answer, record)

    def _item(self, call: Call, data: Mapping[str, Any], body_names: set[str]) -> Reply:
        segments = self.plan.segments
        record_id = call.params.get(segments[-1][1:-1], "")
        collection = self._key(call, segments[:-1])
        found = call.store.resources.find(collection, record_id)
        if found is None and _shape(segments[:-1]) in _APPOINTMENTS:
            booked = call.store.find_appointment(record_id)  # booked on the Contacts side
            if booked is not None and self.plan.role == "delete":
                call.store.appointments.get(str(booked.get("contactId")), {}).pop(record_id, None)
            found = None if booked is None else (_CONTACTS_SIDE, booked)
        if found is None and self._known(_shape(segments[:-1])):
            raise ApiError(404, error_body(404, f"{segments[-2]} {record_id!r} not found"))
        answer = self.example()
        if found is None:
            return self.plan.status, self._with_record(answer, {"id": record_id})
        key, record = found
        if self.plan.role == "delete" and key != _CONTACTS_SIDE:
            call.store.resources.remove(key, record_id)
            self._emit(call, "deleted", record, ())
        elif self.plan.role == "update":
            _merge(record, {n: data[n] for n in body_names}, call.store.stamp())
            if key != _CONTACTS_SIDE:
                self._emit(call, "updated", record, body_names)
        return self.plan.status, self._with_record(answer, record)

    def _other(self, call: Call, data: Mapping[str, Any], body_names: set[str]) -> Reply:
        answer = self.example()
        segments = self.plan.segments
        last = max((i for i, s in enumerate(segments) if _is_param(s)), default=-1)
        if last < 0:
            return self.plan.status, answer
        record_id = call.params.get(segments[last][1:-1], "")
        found = call.store.resources.find(self._key(call, segments[:last]), record_id)
        if found is None:
            return self.plan.status, answer
        record = found[1]
        if self.action.method in ("PUT", "PATCH", "POST") and body_names:
            _merge(record, {n: data[n] for n in body_names}, call.store.stamp())
            self._emit(call, "updated", record, body_names)
        return self.plan.status, self._with_record(answer, record)

    def _emit(self, call: Call, kind: str, record: Mapping[str, Any],
              changed: Iterable[str]) -> None:
        """Queue the webhook events this write sends (:mod:`connector.sandbox.specevents`)."""
        if self._events is None:
            return
        for trigger in self._events.for_change(kind, changed):
            call.payloads.append(payload(trigger, record, call.location_id or ""))

    def _with_record(self, answer: Any, record: Mapping[str, Any]) -> Any:  # noqa: ANN401
        """``answer`` with its record slot holding ``record`` as the slot's schema wants it."""
        schema = self._slot_schema()
        if schema is None or self.plan.slot is None:
            return answer
        placed = fit(record, schema)
        if not self.plan.slot:
            return placed if isinstance(placed, dict) else answer
        _put(answer, self.plan.slot, placed)
        return answer

    def _known(self, shape: Path) -> bool:
        """Whether the spec creates records in ``shape`` or in a collection just below it."""
        return shape in self._creatable or any(
            len(c) == len(shape) + 1 and c[: len(shape)] == shape for c in self._creatable
        )

    def _list(self, call: Call, data: Mapping[str, Any]) -> Any:  # noqa: ANN401
        answer = self.example()
        items_path = self.plan.items
        assert items_path is not None
        records, filters = self._records(call)
        if records is None:
            return answer
        paging = self.action.pagination or {}
        used = _paging_inputs(paging)
        filters.update({k: v for k, v in data.items() if k not in used})
        chosen = _filtered(records, filters)
        page, cursor = _page(chosen, paging, data)
        item_schema = _at_schema(self.output, items_path)
        each = item_schema.get("items") if isinstance(item_schema, Mapping) else None
        shown = [fit(r, each) if isinstance(each, Mapping) else r for r in page]
        if isinstance(each, Mapping):  # a record no item shape takes is left out
            shown = [r for r in shown if valid(r, each)]
        if not items_path:  # the answer is the list itself
            return shown
        _put(answer, items_path, shown)
        self._paging_fields(answer, paging, chosen, cursor)
        return answer

    def _records(self, call: Call) -> tuple[list[dict[str, Any]] | None, dict[str, Any]]:
        """The stored records this list reads, and the filter its path implies (``A/{p}/B``)."""
        segments = list(self.plan.segments)
        resources = call.store.resources
        candidates: list[tuple[list[str], dict[str, Any]]] = [(segments, {})]
        if len(segments) > 1 and not _is_param(segments[-1]):
            candidates.append((segments[:-1], {}))
        for i, segment in enumerate(segments):
            if _is_param(segment) and i < len(segments) - 1:
                name = segment[1:-1]
                candidates.append(([*segments[:i], *segments[i + 1:]],
                                   {name: call.params.get(name, "")}))
        for candidate, implied in candidates:
            shape = _shape(candidate)
            key = self._key(call, candidate)
            if shape in self._creatable:
                return resources.records(key), implied
            children = [c for c in self._creatable
                        if len(c) == len(shape) + 1 and c[: len(shape)] == shape]
            if children:
                found: list[dict[str, Any]] = []
                for child in sorted(children):
                    found.extend(resources.records(f"{key}/{child[-1]}"))
                return found, implied
        return None, {}

    def _paging_fields(self, answer: Any, paging: Mapping[str, Any],  # noqa: ANN401
                       chosen: list[dict[str, Any]], cursor: tuple[str, int] | None) -> None:
        declared = paging.get("total")
        for total in (declared,) if isinstance(declared, str) else _TOTALS:
            path = tuple(total.split("."))
            schema = _at_schema(self.output, path)
            if schema is not None and valid(len(chosen), schema):
                _put(answer, path, len(chosen))
        for source in (paging.get("next") or {}).values():
            if not isinstance(source, str) or source.startswith("$last."):
                continue
            path = tuple(source.split("."))
            schema = _at_schema(self.output, path) or {}
            if cursor is None:
                _drop(answer, path, self.output)
                continue
            value: object = cursor[0] if _takes_text(schema) else cursor[1]
            if valid(value, schema):
                _put(answer, path, value)


def _check_location(call: Call, data: Mapping[str, Any]) -> None:
    """A location token acts on its own location only: another ``locationId`` in the query or
    body is GHL's 403 (a path's ``{locationId}`` names a record, checked as records are)."""
    for name in _LOCATION_INPUTS:
        named = data.get(name) if name not in call.params else None
        if isinstance(named, str) and call.location_id and named != call.location_id:
            raise ApiError(403, error_body(403, "The token does not have access to this location."))


def _takes_text(schema: Mapping[str, Any]) -> bool:
    kind = schema.get("type")
    return kind == "string" or (isinstance(kind, list) and "string" in kind) or kind is None


def _paging_inputs(paging: Mapping[str, Any]) -> set[str]:
    names = {paging.get("page"), paging.get("offset"), *(paging.get("next") or {})}
    limit = paging.get("limit")
    if isinstance(limit, Mapping):
        names.add(limit.get("param"))
    return {n for n in names if isinstance(n, str)}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


def _filtered(records: list[dict[str, Any]], filters: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The records matching every filter named like one of their fields."""
    chosen = records
    for name, wanted in filters.items():
        if isinstance(wanted, str | int | float | bool) and str(wanted) in _NO_FILTER:
            continue
        field = next((f for f in (name, _camel(name)) if any(f in r for r in chosen)), None)
        if field is None or isinstance(wanted, dict):
            continue
        values = {str(v) for v in wanted} if isinstance(wanted, list) else {str(wanted)}
        chosen = [r for r in chosen if _matches(r.get(field), values)]
    return chosen


def _matches(value: object, wanted: set[str]) -> bool:
    if isinstance(value, list):
        return any(str(v) in wanted for v in value)
    return value is not None and str(value) in wanted


def _number(value: object, default: int) -> int:
    try:
        return int(float(str(value)))
    except ValueError:
        return default


def _page(records: list[dict[str, Any]], paging: Mapping[str, Any],
          data: Mapping[str, Any]) -> tuple[list[dict[str, Any]], tuple[str, int] | None]:
    """One page of ``records`` as the pagination declares, and the cursor after it (the last
    record's id and the position after it) when records follow; None otherwise."""
    limit_spec = paging.get("limit") if isinstance(paging.get("limit"), Mapping) else {}
    assert isinstance(limit_spec, Mapping)
    size = _number(data.get(str(limit_spec.get("param", ""))), 0) or _number(
        limit_spec.get("default"), 0) or len(records) or 1
    style = paging.get("style")
    start = 0
    if style == "page":
        start = (max(_number(data.get(str(paging.get("page", "page"))), 1), 1) - 1) * size
    elif style == "offset":
        start = max(_number(data.get(str(paging.get("offset", "offset"))), 0), 0)
    elif style == "cursor":
        for name in paging.get("next") or {}:
            given = data.get(name)
            if given is None:
                continue
            ids = [str(r.get("id")) for r in records]
            if str(given) in ids:
                start = ids.index(str(given)) + 1
                break
            start = max(_number(given, 0), start)
    page = records[start:start + size]
    end = start + len(page)
    cursor = (str(page[-1].get("id", "")), end) if page and end < len(records) else None
    return page, cursor


def _merge(record: dict[str, Any], changes: Mapping[str, Any], now: str) -> None:
    record.update(changes)
    for name in _UPDATE_STAMPS:
        record[name] = now


def _at(data: Any, path: Path) -> Any:  # noqa: ANN401
    for name in path:
        if not isinstance(data, dict):
            return None
        data = data.get(name)
    return data


def _put(data: Any, path: Path, value: Any) -> None:  # noqa: ANN401
    for name in path[:-1]:
        if not isinstance(data, dict):
            return
        data = data.setdefault(name, {})
    if isinstance(data, dict):
        data[path[-1]] = value


def _drop(data: Any, path: Path, schema: Mapping[str, Any]) -> None:  # noqa: ANN401
    """Remove the value at ``path`` unless its object requires it (then it stays: the next
    request with it answers an empty page, which ends a walk)."""
    parent = _at_schema(schema, path[:-1]) if len(path) > 1 else schema
    holder = _at(data, path[:-1])
    if isinstance(holder, dict) and path[-1] not in (parent or {}).get("required", ()):
        holder.pop(path[-1], None)


def _at_schema(schema: Mapping[str, Any] | None, path: Path) -> Mapping[str, Any] | None:
    for name in path:
        if not isinstance(schema, Mapping):
            return None
        schema = (schema.get("properties") or {}).get(name)
    return schema


def _object_props(schema: Mapping[str, Any] | None) -> Mapping[str, Any]:
    props = schema.get("properties") if isinstance(schema, Mapping) else None
    return props if isinstance(props, Mapping) else {}


def _record_slot(output: Mapping[str, Any]) -> Path | None:
    """Where the answer's one record is: ``()`` for the whole answer, else its member."""
    props = _object_props(output)
    if any(name in props for name in _ID_FIELDS):
        return ()
    for prefix in ((), ("data",)):
        node = _at_schema(output, prefix)
        if prefix and any(name in _object_props(node) for name in _ID_FIELDS):
            return prefix
        objects = [n for n, sub in _object_props(node).items() if _object_props(sub)]
        with_id = [n for n in objects if any(f in _object_props(_object_props(node)[n])
                                             for f in _ID_FIELDS)]
        if len(with_id) == 1:
            return (*prefix, with_id[0])
        if len(objects) == 1 and not with_id:
            return (*prefix, objects[0])
    return None


def _items_path(action: Action, output: Mapping[str, Any]) -> Path | None:
    """Where the answer's record list is: the pagination's ``items``, else its one array of
    objects (at the top or under ``data``)."""
    paging = action.pagination
    if paging and isinstance(paging.get("items"), str):
        return tuple(p for p in str(paging["items"]).split(".") if p)  # "": the answer itself
    for prefix in ((), ("data",)):
        props = _object_props(_at_schema(output, prefix))
        arrays = [n for n, sub in props.items()
                  if isinstance(sub, Mapping) and sub.get("type") == "array"
                  and _object_props(sub.get("items"))]
        if len(arrays) == 1:
            return (*prefix, arrays[0])
    return None


def _own_id(segments: Sequence[str], output: Mapping[str, Any]) -> str | None:
    """``messageId`` for a POST to ``.../messages`` whose answer names the new record so."""
    last = segments[-1]
    noun = last[:-1] if last.endswith("s") else last
    name = f"{noun}Id"
    return name if name in _object_props(output) else None


def _verb_on_item(segments: Sequence[str]) -> bool:
    """``A/{id}/word`` where ``word`` is not a plural noun (``send``, ``void``, ``schedule``):
    an action on the record ``A/{id}``, not a collection below it (``locations/{id}/tags``)."""
    return (len(segments) >= 2 and _is_param(segments[-2])
            and not segments[-1].endswith("s"))


def _plan(action: Action) -> _Plan:
    output = plain(action.output_schema)
    segments = tuple(_segments(action.path))
    found = _STATUS.search(str(output.get("description", "")))
    status = int(found.group(1)) if found else 200
    tail = _is_param(segments[-1])
    slot = _record_slot(output)
    own_id = None if tail else _own_id(segments, output)
    if slot is None and own_id is not None and action.method == "POST":
        slot = ()
    items = _items_path(action, output)
    method = action.method
    if method == "GET":
        role = "get" if tail else ("list" if items else "other")
    elif method == "POST" and not tail and _verb_on_item(segments):
        role = "other"  # POST /invoices/{invoiceId}/send acts on the invoice
    elif method == "POST" and not tail:
        role = "list" if items and slot is None else ("create" if slot is not None else "other")
    elif method in ("PUT", "PATCH") and tail:
        role = "update"
    elif method == "DELETE" and tail:
        role = "delete"
    else:
        role = "other"
    return _Plan(role, segments, slot, items, status, own_id or "id")


def spec_handlers(actions: Iterable[Action],
                  triggers: Iterable[Trigger] = ()) -> list[SpecOperation]:
    """A handler for each of ``actions``, knowing which collections the others create in and
    which webhook events (of ``triggers``) each resource's writes send."""
    plans = [(action, _plan(action)) for action in actions]
    creatable = frozenset(_shape(p.segments) for _, p in plans if p.role == "create")
    rules = event_rules(triggers)
    return [SpecOperation(action, plan, creatable, rules.get(action.id.split(".")[1]))
            for action, plan in plans]
