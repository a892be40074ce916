"""One side of a sync: reading and writing its records through catalog actions.

A :class:`SyncSide` turns the engine's field values into action inputs as an app's
:class:`~connector.sync.spec.Adapter` says: which action creates, reads, updates, finds and
deletes, which input names the record and its parent contact, GHL custom fields as the
``customFields`` list, and tag lists through tag actions when the update action takes none.
Whether an action takes an input is read from its input schema in the catalog.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from typing import Any

from connector.errors import ConnectorError, RemoteError
from connector.expressions.syntax import JSON
from connector.runtime import Runtime
from connector.sync.mapping import canonical, ghl_value, match_value, read_field, synced_names
from connector.sync.spec import CUSTOM_PREFIX, Adapter, ObjectSync, Side, other

__all__ = ["SyncSide", "gone"]

_GONE = (400, 404, 410)
"""Statuses a read by id answers for a record that does not exist (GHL says 400)."""
_NOT_FOUND = "(NOT_FOUND)"
"""How a GraphQL error for a missing record reads (its ``extensions.code``; status 200)."""


class SyncSide:
    """Reads and writes one app's records for the sync engine."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def call(
        self,
        action_id: str,
        data: Mapping[str, Any],
        *,
        adapter: Adapter | None = None,
        parent: str | None = None,
    ) -> Any:  # noqa: ANN401  # an action's JSON output
        """Call an action, adding the parent contact's id when the action takes it."""
        filled = dict(data)
        name = adapter.parent_input if adapter else None
        if parent and name and name in self.accepts(action_id):
            filled[name] = parent
        return self.runtime.call(action_id, filled)

    def accepts(self, action_id: str | None) -> frozenset[str]:
        """The input names an action takes."""
        if action_id is None:
            return frozenset()
        schema = self.runtime.catalog.action(action_id).input_schema
        return frozenset(schema.get("properties", {}))

    def get(self, adapter: Adapter, record_id: str, parent: str | None) -> Mapping[str, Any] | None:
        """The record (None: it does not exist; empty: the app cannot read it)."""
        if adapter.get is None:
            return {}
        data = {adapter.id_input: record_id}
        try:
            output = self.call(adapter.get, data, adapter=adapter, parent=parent)
        except RemoteError as exc:
            if gone(exc):
                return None
            raise
        return unwrap(output, adapter.record_key)

    def complete(
        self,
        obj: ObjectSync,
        side: Side,
        record_id: str,
        record: Mapping[str, Any],
        parent: str | None,
    ) -> Mapping[str, Any] | None:
        """``record`` (a change from this app) with the synced fields it lacks read from the
        app: webhook payloads leave out empty and non-text fields (a GHL task event has no
        ``completed``). None: the record is gone.

        :param parent: the record's parent contact here (tasks, notes), if known.
        """
        adapter = obj.adapters[side]
        names = synced_names(obj, side)
        if adapter.get is None or all(
            n is None or n.startswith(CUSTOM_PREFIX) or n.split(".")[0] in record for n in names
        ):
            return record
        own = parent or read_field(record, adapter.parent_input or "contactId")
        found = self.get(adapter, record_id, own if isinstance(own, str) else None)
        return None if found is None else {**found, **record}

    def match(
        self,
        obj: ObjectSync,
        source: Side,
        record: Mapping[str, Any],
        region: str,
        hidden: Collection[str] = (),
    ) -> tuple[Mapping[str, Any] | None, str]:
        """The record here with the same e-mail (then phone, in E.164) as ``source``'s
        ``record``, and how it matched: the key and the value looked up (``email
        gil@example.com``; the key alone for a key in ``hidden``, a sync's ``redact``), which
        the audit entry's reason keeps so the console finds a link that changed nothing."""
        adapter = obj.adapters[other(source)]
        for key in obj.match:
            value = match_value(key, ghl_value(obj, source, record, key), region)
            found = self.find(adapter, key, value) if value else None
            if found:
                return found, key if key in hidden else f"{key} {value}"
        return None, ""

    def find(self, adapter: Adapter, key: str, value: str) -> Mapping[str, Any] | None:
        """The record whose ``key`` (email, phone) is ``value``, if the app can look it up."""
        name = adapter.find_inputs.get(key)
        if adapter.find is None or name is None:
            return None
        return unwrap(self.call(adapter.find, {name: value}), adapter.find_key) or None

    def create(
        self, adapter: Adapter, values: Mapping[str, JSON], parent: str | None
    ) -> tuple[dict[str, Any], list[str]]:
        """Create a record; returns it as the app answered, and the names it could not take."""
        data, add, _, left = self.inputs(adapter, adapter.create, values, {})
        output = self.call(adapter.create, data, adapter=adapter, parent=parent)
        created = dict(unwrap(output, adapter.record_key) or {})
        record_id = str(created.get(adapter.id_field))
        left = [k for k in left if canonical(k, read_field(created, k)) != canonical(k, values[k])]
        later = {k: values[k] for k in left if k in self.accepts(adapter.update)}
        if later:  # e.g. a task created open, then completed: the create takes no `completed`
            body = {adapter.id_input: record_id, **later}
            done = self.call(str(adapter.update), body, adapter=adapter, parent=parent)
            created.update(unwrap(done, adapter.record_key) or later)
            left = [k for k in left if k not in later]
        if add and adapter.tags_add:
            self.tag(adapter, adapter.tags_add, record_id, parent, add)
            created[adapter.tags_field] = add
        return created, left

    def update(
        self,
        adapter: Adapter,
        record_id: str,
        parent: str | None,
        values: Mapping[str, JSON],
        current: Mapping[str, Any],
    ) -> tuple[dict[str, Any], list[str]]:
        """Write ``values`` over ``current``; returns the record as it now stands, and the
        names nothing could write."""
        data, add, remove, left = self.inputs(adapter, adapter.update, values, current)
        if adapter.update is None:
            left = sorted({*left, *data})
            data = {}
        plain = {
            k: v for k, v in values.items() if not k.startswith(CUSTOM_PREFIX) and k not in left
        }
        state: dict[str, Any] = {**current, **plain}
        if data:
            body = {adapter.id_input: record_id, **data}
            output = self.call(str(adapter.update), body, adapter=adapter, parent=parent)
            state.update(unwrap(output, adapter.record_key) or {})
        if add and adapter.tags_add:
            self.tag(adapter, adapter.tags_add, record_id, parent, add)
        if remove and adapter.tags_remove:
            self.tag(adapter, adapter.tags_remove, record_id, parent, remove)
        return state, left

    def check(self, adapter: Adapter) -> None:
        """Raise if an action the adapter names is not in the catalog.

        :raises ConnectorError: naming the action, with a did-you-mean hint.
        """
        for action_id in (
            adapter.create, adapter.get, adapter.update, adapter.delete, adapter.find,
            adapter.tags_add, adapter.tags_remove, adapter.list, adapter.parent_list,
        ):  # fmt: skip
            if action_id is not None:
                self.runtime.catalog.action(action_id)

    def listing(
        self, adapter: Adapter, since: str | None, max_items: int | None
    ) -> Iterator[dict[str, Any]]:
        """Every record the list action gives (changed since ``since``, when it can filter).

        :raises ConnectorError: the adapter names no list action.
        """
        if adapter.list is None:
            raise ConnectorError(f"{adapter.app}: no list action to read every record from")
        data = dict(adapter.list_input)
        if since is not None and adapter.since_input:
            data[adapter.since_input] = since
        for item in self.runtime.iterate(adapter.list, data, max_items=max_items):
            if isinstance(item, dict):
                yield item

    def delete(self, adapter: Adapter, record_id: str, parent: str | None) -> None:
        """Delete a record (the adapter must name a delete action)."""
        if adapter.delete:
            self.call(adapter.delete, {adapter.id_input: record_id}, adapter=adapter, parent=parent)

    def tag(
        self, adapter: Adapter, action_id: str, record_id: str, parent: str | None, tags: list[str]
    ) -> None:
        """Add or remove ``tags`` with a tag action."""
        data = {adapter.tag_target: record_id, "tags": tags}
        self.call(action_id, data, adapter=adapter, parent=parent)

    def inputs(
        self,
        adapter: Adapter,
        action_id: str | None,
        values: Mapping[str, JSON],
        current: Mapping[str, Any],
    ) -> tuple[dict[str, Any], list[str], list[str], list[str]]:
        """An action's input for ``values``; the tags to add and to remove with tag actions
        (when the action takes no tags); and the names nothing can write."""
        accepts = self.accepts(action_id)
        data: dict[str, Any] = {}
        add: list[str] = []
        remove: list[str] = []
        left: list[str] = []
        cut = len(CUSTOM_PREFIX)
        custom = {k[cut:]: v for k, v in values.items() if k.startswith(CUSTOM_PREFIX)}
        if custom and "customFields" in accepts:
            data["customFields"] = custom_fields(current, custom)
        elif custom:
            left.extend(CUSTOM_PREFIX + k for k in custom)
        for name, value in values.items():
            if name.startswith(CUSTOM_PREFIX):
                continue
            if name in accepts:
                data[name] = value
            elif name == adapter.tags_field and adapter.tags_add:
                add, remove = tag_delta(read_field(current, name), value)
            else:
                left.append(name)
        return data, add, remove, left


def gone(exc: RemoteError) -> bool:
    """Whether a call failed because the record it names (or its parent) does not exist."""
    return exc.status in _GONE or _NOT_FOUND in str(exc)


def unwrap(output: Any, key: str | None) -> dict[str, Any] | None:  # noqa: ANN401  # JSON
    """The record inside an action's output (under ``key``, or the output itself)."""
    found = output.get(key) if key and isinstance(output, dict) else output
    return found if isinstance(found, dict) else None


def custom_fields(current: Mapping[str, Any], values: Mapping[str, JSON]) -> list[dict[str, Any]]:
    """GHL's ``customFields`` input: the record's values with ``values`` (id -> value) set."""
    merged: dict[str, Any] = {}
    for item in current.get("customFields") or ():
        if isinstance(item, dict) and item.get("id"):
            merged[str(item["id"])] = item.get("value", item.get("field_value"))
    merged.update(values)
    return [{"id": k, "field_value": v} for k, v in merged.items() if v is not None]


def tag_delta(before: JSON, after: JSON) -> tuple[list[str], list[str]]:
    """Tags to add and to remove to go from ``before`` to ``after`` (case-insensitive)."""
    old = {str(t).lower(): str(t) for t in (before if isinstance(before, list) else [])}
    new = {str(t).lower(): str(t) for t in (after if isinstance(after, list) else [])}
    return [new[k] for k in new if k not in old], [old[k] for k in old if k not in new]
