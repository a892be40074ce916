"""Seed data for the LinkedPhone sandbox: contacts with one open task and one note each."""

from __future__ import annotations

from connector.sandbox.linkedphone.store import Record, Store

__all__ = ["seed_contacts"]

_FIRST = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken")
_LAST = ("Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson")


def seed_contacts(store: Store, count: int) -> list[Record]:
    """Add ``count`` contacts (each with one open task and one note); no webhooks are sent.

    :returns: the contacts, oldest first.
    """
    made = []
    for n in range(count):
        first, last = _FIRST[n % len(_FIRST)], _LAST[(n // len(_FIRST) + n) % len(_LAST)]
        contact: Record = {
            "id": store.new_id("ct_"), "first_name": first, "last_name": last,
            "email": f"{first.lower()}.{last.lower()}{n}@example.com",
            "phone": f"+1415555{n:04d}", "company": None, "tags": ["seed"],
        }
        store.add_contact(store.stamp(contact, created=True))
        task: Record = {
            "id": store.new_id("tk_"), "contact_id": contact["id"],
            "title": f"Call {first} back", "description": None, "due_at": None,
            "status": "open", "completed_at": None,
        }
        store.add_task(store.stamp(task, created=True))
        note: Record = {"id": store.new_id("nt_"), "contact_id": contact["id"],
                        "body": f"Seed note for {first} {last}."}
        store.add_note(store.stamp(note, created=True))
        made.append(contact)
    return made
