"""Finding out whether an interrupted call took effect, from the action's ``verify`` declaration.

A call that is not safe to repeat (see :func:`connector.recipes.ledger.repeat_safe`) can be cut off
after the remote applied it and before we recorded it. An action may declare how to look::

    verify:
      action: ghl.tasks.list          # a read that lists (or finds) the records
      with: {contactId: contactId}    # its input: <its input name>: <field of the original input>
      items: tasks                    # where the records are in its output (a list or one object)
      match: {title: title, dueDate: dueDate}   # <record field>: <field of the original input>
      output: task                    # the original action's output is {task: <record>}

:func:`find_effect` runs that read and returns the output the original call would have given
if a matching record exists, ``None`` if it does not (the call can safely be made again).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from connector.hookspecs import Action

if TYPE_CHECKING:
    from connector.runtime import Runtime

__all__ = ["find_effect", "verifiable"]


def verifiable(action: Action) -> bool:
    """Whether ``action`` declares how to check that its effect happened."""
    return "verify" in action.options


def find_effect(action: Action, runtime: Runtime, data: Mapping[str, Any]) -> Any:
    """The output of an earlier call of ``action`` with input ``data`` if its record exists.

    :raises ConnectorError: the check itself failed (the caller should try again later).
    """
    spec: Mapping[str, Any] = action.options["verify"]
    given = {name: data[field] for name, field in spec.get("with", {}).items() if field in data}
    found = runtime.call(spec["action"], given)
    records = _at(found, spec.get("items", ""))
    candidates = records if isinstance(records, list) else [records]
    match: Mapping[str, str] = spec.get("match", {})
    for record in candidates:
        if isinstance(record, Mapping) and all(
            _same(record.get(field), data.get(source)) for field, source in match.items()
        ):
            key = spec.get("output")
            return {key: dict(record)} if key else dict(record)
    return None


def _at(value: Any, path: str) -> Any:
    for part in path.split(".") if path else ():
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def _same(found: Any, given: Any) -> bool:
    if isinstance(found, str) and isinstance(given, str):
        return found.strip().lower() == given.strip().lower()
    return bool(found == given)
