"""Note handlers: a contact's notes (``GetNoteSchema``), created, read, updated and deleted."""

from __future__ import annotations

from connector.sandbox.call import Call, Reply
from connector.sandbox.responses import bad_request
from connector.sandbox.state import Record

__all__ = ["create_note", "delete_note", "get_note", "list_notes", "update_note"]

_FIELDS = ("body", "userId", "title", "color", "pinned")


def _note(call: Call) -> tuple[Record, dict[str, Record]]:
    contact = call.contact()
    notes = call.store.notes.get(contact["id"], {})
    note = notes.get(call.params["id"])
    if note is None:
        raise bad_request("Note not found")
    return note, notes


def list_notes(call: Call) -> Reply:
    """GET /contacts/{contactId}/notes."""
    contact = call.contact()
    return 200, {"notes": list(call.store.notes.get(contact["id"], {}).values())}


def create_note(call: Call) -> Reply:
    """POST /contacts/{contactId}/notes: 201 ``{note}``."""
    contact = call.contact()
    stamp = call.store.stamp()
    note: Record = {"id": call.store.new_id(), "contactId": contact["id"],
                    "dateAdded": stamp, "dateUpdated": stamp}
    note.update({k: v for k, v in call.body.items() if k in _FIELDS})
    call.store.notes.setdefault(contact["id"], {})[note["id"]] = note
    call.emit("NoteCreate", note)
    return 201, {"note": note}


def get_note(call: Call) -> Reply:
    """GET /contacts/{contactId}/notes/{id}."""
    return 200, {"note": _note(call)[0]}


def update_note(call: Call) -> Reply:
    """PUT /contacts/{contactId}/notes/{id}."""
    note = _note(call)[0]
    note.update({k: v for k, v in call.body.items() if k in _FIELDS})
    call.store.touch(note)
    call.emit("NoteUpdate", note)
    return 200, {"note": note}


def delete_note(call: Call) -> Reply:
    """DELETE /contacts/{contactId}/notes/{id}."""
    note, notes = _note(call)
    del notes[note["id"]]
    call.emit("NoteDelete", note)
    return 200, {"succeded": True}
