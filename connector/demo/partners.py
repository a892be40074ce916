"""The partner apps as the demo uses them: their sandbox, their sync document, and what a user
of the app does (create and rename contacts, tag them, add tasks and notes, complete a task,
delete a contact) through the catalog's actions.

The two apps name the same things differently (``firstName`` / ``first_name``, ``id`` /
``contact_id``; SuperPhone answers the record itself, LinkedPhone wraps it in ``contact``):
:class:`PartnerApp` holds those names as data, so the scenario is written once.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from connector.errors import RemoteError
from connector.hookspecs import RateLimit
from connector.runtime import Runtime

__all__ = ["LINKEDPHONE", "PARTNERS", "SUPERPHONE", "PartnerApp", "PartnerSandbox"]

_GONE = (404, 410)


class PartnerSandbox(Protocol):
    """What the demo needs from a partner sandbox server."""

    @property
    def base_url(self) -> str:
        """Where it listens."""

    @property
    def api_key(self) -> str:
        """The account's API key."""

    @property
    def webhook_secret(self) -> str:
        """The secret signing its webhooks."""

    def set_webhook_urls(self, urls: list[str]) -> None:
        """Send every event to these URLs."""

    def drain_webhooks(self, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Wait for pending deliveries."""

    def stats(self) -> dict[str, Any]:
        """Counters, with ``traffic.throttled``."""


SandboxFactory = Callable[[int, RateLimit], AbstractContextManager[PartnerSandbox]]


@dataclass(frozen=True, slots=True)
class PartnerApp:
    """One partner app: its id, sync document, sandbox, and the names its actions use."""

    app: str
    title: str
    sync_file: str
    sandbox: SandboxFactory
    signature_header: str
    contact_input: str
    tags_input: str
    first: str
    last: str
    email: str
    phone: str
    extra: str
    task_parent: str
    task_due: str
    task_input: str
    nested: bool
    can_delete: bool

    def _unwrap(self, output: Any, key: str) -> dict[str, Any]:  # noqa: ANN401  # JSON output
        found = output.get(key) if self.nested else output
        return dict(found) if isinstance(found, dict) else {}

    def create_contact(self, rt: Runtime, values: dict[str, Any]) -> dict[str, Any]:
        """Create a contact from ``{first, last, email, phone, extra, tags}`` (our own keys)."""
        data = {getattr(self, k) if k != "tags" else "tags": v for k, v in values.items()}
        return self._unwrap(rt.call(f"{self.app}.contacts.create", data), "contact")

    def update_contact(self, rt: Runtime, contact_id: str, values: dict[str, Any]) -> None:
        """Change fields given with our own keys (``first``, ``last``, ``extra``...)."""
        data = {self.contact_input: contact_id, **{getattr(self, k): v for k, v in values.items()}}
        rt.call(f"{self.app}.contacts.update", data)

    def get_contact(self, rt: Runtime, contact_id: str) -> dict[str, Any] | None:
        """The contact, or None when it does not exist (any more)."""
        try:
            output = rt.call(f"{self.app}.contacts.get", {self.contact_input: contact_id})
        except RemoteError as exc:
            if exc.status in _GONE or "(NOT_FOUND)" in str(exc):
                return None
            raise
        return self._unwrap(output, "contact") or None

    def add_tags(self, rt: Runtime, contact_id: str, tags: list[str]) -> None:
        """Tag a contact."""
        rt.call(f"{self.app}.tags.add", {self.tags_input: contact_id, "tags": tags})

    def add_task(self, rt: Runtime, contact_id: str, title: str, due: str) -> dict[str, Any]:
        """Create an open task for a contact."""
        data = {self.task_parent: contact_id, "title": title, self.task_due: due}
        return self._unwrap(rt.call(f"{self.app}.tasks.create", data), "task")

    def complete_task(self, rt: Runtime, task_id: str) -> None:
        """Mark a task done."""
        rt.call(f"{self.app}.tasks.complete", {self.task_input: task_id})

    def get_task(self, rt: Runtime, task_id: str) -> dict[str, Any]:
        """A task."""
        return self._unwrap(rt.call(f"{self.app}.tasks.get", {self.task_input: task_id}), "task")

    def task_done(self, task: dict[str, Any]) -> bool:
        """Whether a task is completed (``completed`` or ``status``)."""
        return bool(task.get("completed")) or task.get("status") == "completed"

    def add_note(self, rt: Runtime, contact_id: str, body: str) -> dict[str, Any]:
        """Add a note to a contact."""
        data = {self.task_parent: contact_id, "body": body}
        return self._unwrap(rt.call(f"{self.app}.notes.create", data), "note")

    def delete_contact(self, rt: Runtime, contact_id: str) -> None:
        """Delete a contact (only apps that can)."""
        rt.call(f"{self.app}.contacts.delete", {self.contact_input: contact_id})


def _superphone(seed: int, limit: RateLimit) -> AbstractContextManager[PartnerSandbox]:
    from connector.sandbox.superphone.server import SuperPhoneSandboxServer

    return SuperPhoneSandboxServer(
        seed_contacts=seed, rate_limit_requests=limit.requests, rate_limit_seconds=limit.per_seconds
    )


def _linkedphone(seed: int, limit: RateLimit) -> AbstractContextManager[PartnerSandbox]:
    from connector.sandbox.linkedphone.server import LinkedPhoneSandboxServer

    return LinkedPhoneSandboxServer(
        seed_contacts=seed, rate_limit_requests=limit.requests, rate_limit_seconds=limit.per_seconds
    )


SUPERPHONE = PartnerApp(
    app="superphone", title="SuperPhone", sync_file="sync_superphone.yaml", sandbox=_superphone,
    signature_header="X-SuperPhone-Signature", contact_input="id", tags_input="contactId",
    first="firstName", last="lastName", email="email", phone="phone",
    extra="source", task_parent="contactId", task_due="dueAt", task_input="id", nested=False,
    can_delete=True,
)  # fmt: skip
LINKEDPHONE = PartnerApp(
    app="linkedphone", title="LinkedPhone", sync_file="sync_linkedphone.yaml",
    sandbox=_linkedphone, signature_header="X-LinkedPhone-Signature", contact_input="contact_id",
    tags_input="contact_id", first="first_name", last="last_name",
    email="email", phone="phone", extra="company", task_parent="contact_id", task_due="due_at",
    task_input="task_id", nested=True, can_delete=False,
)  # fmt: skip
PARTNERS = {p.app: p for p in (SUPERPHONE, LINKEDPHONE)}
"""Partner app id -> how the demo uses it."""
