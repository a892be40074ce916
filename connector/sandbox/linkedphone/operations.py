"""What each LinkedPhone operation does to the sandbox's state, by the catalog's action id.

A handler gets the store and the request's validated flat input (path, query and body inputs
under their catalog names, exactly as the action's input schema declares them) and returns an
:class:`Outcome`: the status and body to answer, the webhook events the change causes, and
whether state changed (which the write counters count).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from connector.sandbox.linkedphone.answers import ApiError
from connector.sandbox.linkedphone.store import Record, Store, page

__all__ = ["HANDLERS", "Handler", "Outcome"]

_CONTACT_FIELDS = ("first_name", "last_name", "email", "phone", "company")
_TASK_FIELDS = ("title", "description", "due_at")
_DEFAULT_LIMIT = 25


@dataclass(slots=True)
class Outcome:
    """One operation's result: ``events`` are ``(type, record)`` pairs to send as webhooks."""

    status: int
    body: dict[str, Any]
    events: list[tuple[str, Record]] = field(default_factory=list)
    wrote: bool = False


Handler = Callable[[Store, Mapping[str, Any]], Outcome]


def _listing(records: list[Record], data: Mapping[str, Any], key: str) -> Outcome:
    """A page of a few records (one contact's), sorted here."""
    items, following = page(records, limit=int(data.get("limit", _DEFAULT_LIMIT)),
                            cursor=data.get("cursor"), since=data.get("updated_since"))
    return Outcome(200, {key: items, "meta": {"next_cursor": following}})


def _logged(store: Store, data: Mapping[str, Any], kind: str,
            keep: Callable[[Record], bool] | None = None) -> Outcome:
    """A page of a whole table, read from its change log (no sort, at any size)."""
    items, following = store.changes[kind].page(
        limit=int(data.get("limit", _DEFAULT_LIMIT)), cursor=data.get("cursor"),
        since=data.get("updated_since"), keep=keep)
    return Outcome(200, {kind: items, "meta": {"next_cursor": following}})


def _unique(store: Store, data: Mapping[str, Any], own_id: str | None = None) -> None:
    for name in ("email", "phone"):
        value = data.get(name)
        if not value:
            continue
        other = store.find_contact(**{name: value})
        if other is not None and other["id"] != own_id:
            raise ApiError(409, "conflict", f"contact {other['id']!r} already has {name} {value!r}")


def get_contact(store: Store, data: Mapping[str, Any]) -> Outcome:
    """``GET /contacts/{contact_id}``."""
    return Outcome(200, {"contact": dict(store.contact(data["contact_id"]))})


def find_contact(store: Store, data: Mapping[str, Any]) -> Outcome:
    """``GET /contacts/lookup``: by email, else phone; ``{contact: null}`` when none matches."""
    found = store.find_contact(email=data.get("email"), phone=data.get("phone"))
    return Outcome(200, {"contact": dict(found) if found else None})


def list_contacts(store: Store, data: Mapping[str, Any]) -> Outcome:
    """``GET /contacts``."""
    return _logged(store, data, "contacts")


def create_contact(store: Store, data: Mapping[str, Any]) -> Outcome:
    """``POST /contacts``: 409 when the email or phone is taken."""
    _unique(store, data)
    contact: Record = {"id": store.new_id("ct_")}
    contact.update({name: data.get(name) for name in _CONTACT_FIELDS})
    contact["tags"] = list(dict.fromkeys(data.get("tags", [])))
    store.add_contact(store.stamp(contact, created=True))
    return Outcome(201, {"contact": dict(contact)}, [("contact.created", contact)], wrote=True)


def update_contact(store: Store, data: Mapping[str, Any]) -> Outcome:
    """``PATCH /contacts/{contact_id}``: the given fields only; null clears one."""
    contact = store.contact(data["contact_id"])
    _unique(store, data, own_id=contact["id"])
    fields = {name: data[name] for name in _CONTACT_FIELDS if name in data}
    merged = {**contact, **fields}
    if not (merged["email"] or merged["phone"]):
        raise ApiError(422, "invalid_request", "a contact needs an email or a phone")
    store.set_contact_fields(contact, fields)
    store.stamp(contact)
    return Outcome(200, {"contact": dict(contact)}, [("contact.updated", contact)], wrote=True)


def list_tasks(store: Store, data: Mapping[str, Any]) -> Outcome:
    """``GET /tasks``: of one contact (which must exist) or all; optionally by status."""
    contact_id, status = data.get("contact_id"), data.get("status")
    if contact_id is None:
        return _logged(store, data, "tasks",
                       None if status is None else lambda t: bool(t["status"] == status))
    store.contact(contact_id)
    chosen = [t for t in store.of_contact("tasks", contact_id)
              if status is None or t["status"] == status]
    return _listing(chosen, data, "tasks")


def get_task(store: Store, data: Mapping[str, Any]) -> Outcome:
    """``GET /tasks/{task_id}``."""
    return Outcome(200, {"task": dict(store.task(data["task_id"]))})


def create_task(store: Store, data: Mapping[str, Any]) -> Outcome:
    """``POST /tasks``: an open task of an existing contact (422 when it does not exist)."""
    contact_id = data["contact_id"]
    if contact_id not in store.contacts:
        raise ApiError(422, "invalid_request", f"contact_id {contact_id!r}: no such contact")
    task: Record = {"id": store.new_id("tk_"), "contact_id": contact_id, "title": data["title"],
                    "description": data.get("description"), "due_at": data.get("due_at"),
                    "status": "open", "completed_at": None}
    store.add_task(store.stamp(task, created=True))
    return Outcome(201, {"task": dict(task)}, [("task.created", task)], wrote=True)


def update_task(store: Store, data: Mapping[str, Any]) -> Outcome:
    """``PATCH /tasks/{task_id}``: status completed sets ``completed_at``, open clears it."""
    task = store.task(data["task_id"])
    was = task["status"]
    task.update({name: data[name] for name in _TASK_FIELDS if name in data})
    status = data.get("status", was)
    task["status"] = status
    store.stamp(task)
    events: list[tuple[str, Record]] = [("task.updated", task)]
    if status == "completed" and was != "completed":
        task["completed_at"] = task["updated_at"]
        events.append(("task.completed", task))
    elif status == "open":
        task["completed_at"] = None
    return Outcome(200, {"task": dict(task)}, events, wrote=True)


def complete_task(store: Store, data: Mapping[str, Any]) -> Outcome:
    """``POST /tasks/{task_id}/complete``: idempotent; a completed task is returned as is."""
    task = store.task(data["task_id"])
    if task["status"] == "completed":
        return Outcome(200, {"task": dict(task)})
    task["status"] = "completed"
    store.stamp(task)
    task["completed_at"] = task["updated_at"]
    return Outcome(200, {"task": dict(task)}, [("task.completed", task)], wrote=True)


def list_notes(store: Store, data: Mapping[str, Any]) -> Outcome:
    """``GET /contacts/{contact_id}/notes``."""
    contact_id = store.contact(data["contact_id"])["id"]
    return _listing(store.of_contact("notes", contact_id), data, "notes")


def create_note(store: Store, data: Mapping[str, Any]) -> Outcome:
    """``POST /contacts/{contact_id}/notes``."""
    contact_id = store.contact(data["contact_id"])["id"]
    note: Record = {"id": store.new_id("nt_"), "contact_id": contact_id, "body": data["body"]}
    store.add_note(store.stamp(note, created=True))
    return Outcome(201, {"note": dict(note)}, [("note.created", note)], wrote=True)


def add_tags(store: Store, data: Mapping[str, Any]) -> Outcome:
    """``POST /contacts/{contact_id}/tags``: a change only when a tag is new."""
    contact = store.contact(data["contact_id"])
    new = [t for t in dict.fromkeys(data["tags"]) if t not in contact["tags"]]
    return _retag(store, contact, contact["tags"] + new, changed=bool(new))


def remove_tags(store: Store, data: Mapping[str, Any]) -> Outcome:
    """``DELETE /contacts/{contact_id}/tags``: a change only when the contact had a tag."""
    contact = store.contact(data["contact_id"])
    kept = [t for t in contact["tags"] if t not in set(data["tags"])]
    return _retag(store, contact, kept, changed=len(kept) != len(contact["tags"]))


def _retag(store: Store, contact: Record, tags: list[str], *, changed: bool) -> Outcome:
    if not changed:
        return Outcome(200, {"tags": list(contact["tags"])})
    contact["tags"] = tags
    store.stamp(contact)
    return Outcome(200, {"tags": list(tags)}, [("contact.updated", contact)], wrote=True)


HANDLERS: Mapping[str, Handler] = {
    "linkedphone.contacts.get": get_contact,
    "linkedphone.contacts.find": find_contact,
    "linkedphone.contacts.list": list_contacts,
    "linkedphone.contacts.create": create_contact,
    "linkedphone.contacts.update": update_contact,
    "linkedphone.tasks.list": list_tasks,
    "linkedphone.tasks.get": get_task,
    "linkedphone.tasks.create": create_task,
    "linkedphone.tasks.update": update_task,
    "linkedphone.tasks.complete": complete_task,
    "linkedphone.notes.list": list_notes,
    "linkedphone.notes.create": create_note,
    "linkedphone.tags.add": add_tags,
    "linkedphone.tags.remove": remove_tags,
}
"""The handler of every action the catalog declares for LinkedPhone (checked at start-up)."""
