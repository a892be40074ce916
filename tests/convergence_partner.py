"""The convergence test's partner apps: how the world reads, edits and counts SuperPhone or
LinkedPhone (field and input names, what each app can do) and the sync spec it runs."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol


class PartnerServer(Protocol):
    """What the world uses of a partner's sandbox server."""

    @property
    def base_url(self) -> str:
        """Where the API is served."""
        ...

    @property
    def api_key(self) -> str:
        """The account's API key."""
        ...

    def set_limits(self, *, requests: int | None = None, seconds: float | None = None) -> object:
        """Change the rate limit."""
        ...

    def set_webhook_urls(self, urls: Sequence[str]) -> None:
        """Send every event to these URLs."""
        ...

    def drain_webhooks(self, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Wait for pending deliveries."""
        ...

    def stats(self) -> dict[str, Any]:
        """The server's counters."""
        ...

    def use_clock(self, clock: Callable[[], float] | None) -> None:
        """Stamp records by ``clock`` until the next reset (None: the wall clock)."""
        ...

    def writes(self, route: str) -> int:
        """How many writes to one operation or route changed state."""
        ...


@dataclass(frozen=True)
class Partner:
    """One partner app as the convergence world sees it.

    Field maps go from GHL names to the partner's; ``contact_id``, ``parent``, ``task_id`` and
    ``note_id`` name the inputs that take a contact (to update it), a parent contact (children,
    tags), a task and a note (None: notes cannot be updated there); ``page`` is the input of a
    full page of any listing. ``archive_tag`` is what a GHL delete leaves on a partner contact
    when the app cannot delete one (None: it deletes it).
    """

    app: str
    label: str
    spec: str
    contact_fields: Mapping[str, str]
    task_fields: Mapping[str, str]
    contact_id: str
    parent: str
    task_id: str
    note_id: str | None
    page: Mapping[str, int]
    phone_prefix: str
    archive_tag: str | None
    done: Callable[[Mapping[str, Any]], bool]
    """Whether a partner task is completed."""
    completions: tuple[tuple[str, Mapping[str, Any]], ...]
    """Ways a user completes a task: (action suffix, extra input)."""
    counted_writes: Callable[[PartnerServer], int]
    """Writes that took effect on the partner so far."""

    def action(self, name: str) -> str:
        """The catalog id of the partner's action ``name`` (``"contacts.list"``)."""
        return f"{self.app}.{name}"

    def contact_input(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Contact values under GHL names (plus ``tags``) as the partner's input names."""
        return {self.contact_fields.get(k, k): v for k, v in values.items()}


SUPERPHONE_SPEC = """\
name: convergence
sync:
  partner: superphone
  objects:
    contacts:
      fields: {firstName: firstName, lastName: lastName, email: email, phone: phone}
      match: [email, phone]
      delete: propagate
    tags: {}
    tasks:
      fields: {title: title, body: description, dueDate: dueAt, completed: completed}
      delete: ignore
    notes:
      fields: {body: body}
      delete: ignore
"""

LINKEDPHONE_SPEC = """\
name: convergence-linkedphone
sync:
  partner: linkedphone
  phone_region: US
  objects:
    contacts:
      match: [email, phone]
      fields:
        firstName: first_name
        lastName: last_name
        email: email
        phone: {partner: phone, to_ghl: "{{ item.phone | e164 }}"}
      delete: archive
      archive_tag: deleted-in-ghl
    tags: {}
    tasks:
      fields:
        title: title
        body: description
        dueDate: due_at
        completed:
          partner: status
          to_ghl: "{{ item.status == 'completed' }}"
          to_partner: "{{ item.completed | to_str | replace('true', 'completed') \
| replace('false', 'open') }}"
      delete: ignore
    notes:
      fields: {body: body}
      delete: ignore
"""
"""recipes/sync_linkedphone.yaml's mapping, without its custom field and sources of truth (a
location-specific field id, and fields that on purpose never converge)."""

_SAME_CONTACT = {n: n for n in ("firstName", "lastName", "email", "phone")}


def _superphone_writes(server: PartnerServer) -> int:
    return sum(int(v) for v in server.stats()["writes"].values())


def _linkedphone_writes(server: PartnerServer) -> int:
    routes = server.stats()["traffic"]["routes"]
    return sum(int(r.get("writes", 0)) for r in routes.values())


SUPERPHONE = Partner(
    app="superphone",
    label="SuperPhone",
    spec=SUPERPHONE_SPEC,
    contact_fields=_SAME_CONTACT,
    task_fields={"title": "title", "body": "description", "dueDate": "dueAt"},
    contact_id="id",
    parent="contactId",
    task_id="id",
    note_id="id",
    page={"first": 100},
    phone_prefix="+1415555",
    archive_tag=None,
    done=lambda task: task.get("completed") is True,
    completions=(("tasks.complete", {}),),
    counted_writes=_superphone_writes,
)

LINKEDPHONE = Partner(
    app="linkedphone",
    label="LinkedPhone",
    spec=LINKEDPHONE_SPEC,
    contact_fields={
        "firstName": "first_name",
        "lastName": "last_name",
        "email": "email",
        "phone": "phone",
    },
    task_fields={"title": "title", "body": "description", "dueDate": "due_at"},
    contact_id="contact_id",
    parent="contact_id",
    task_id="task_id",
    note_id=None,
    page={"limit": 100},
    phone_prefix="+1415556",  # the sandbox's seed contacts use +1415555....
    archive_tag="deleted-in-ghl",
    done=lambda task: task.get("status") == "completed",
    completions=(("tasks.complete", {}), ("tasks.update", {"status": "completed"})),
    counted_writes=_linkedphone_writes,
)
