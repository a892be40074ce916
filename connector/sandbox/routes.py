"""The route table: the 32 Contacts operations of the spec (method, path template, operationId,
scopes, request DTO, handler), every other GHL operation of the pack's generated catalog
answered from its spec (:mod:`connector.sandbox.specroutes`), and how a request path finds its
operation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from connector.sandbox import contacts, memberships, notes, search, tasks
from connector.sandbox.call import Call, Reply

__all__ = ["OPERATIONS", "Operation", "Router", "all_operations", "spec_operations"]

_READ = ("contacts.readonly",)
_WRITE = ("contacts.write",)


@dataclass(frozen=True, slots=True)
class Operation:
    """One spec operation. ``route`` (``"PUT /contacts/{contactId}"``) names it in stats and faults.

    ``dto`` is the spec name of the request body schema (None: no body is read). ``error_status``
    is the status GHL's validation pipe answers with (400 where the spec declares no 422).
    """

    operation_id: str
    method: str
    template: str
    scopes: tuple[str, ...]
    handler: Callable[[Call], Reply]
    dto: str | None = None
    error_status: int = 422
    form: str | None = None
    """For a spec-answered operation, how its body comes (``json``, ``multipart``, ``form``;
    the handler reads and checks it); None for the Contacts operations (``dto`` says)."""

    @property
    def route(self) -> str:
        """``"METHOD /path/{template}"``."""
        return f"{self.method} {self.template}"

    @property
    def writes(self) -> bool:
        """Whether the operation changes state (search is a POST that only reads)."""
        return self.method != "GET" and self.operation_id != "search-contacts-advanced"


def _op(op_id: str, route: str, handler: Callable[[Call], Reply], dto: str | None = None,
        *, read: bool = False, error_status: int = 422) -> Operation:
    method, template = route.split(" ", 1)
    return Operation(op_id, method, template, _READ if read else _WRITE, handler, dto,
                     error_status)


_C = "/contacts/{contactId}"
OPERATIONS: tuple[Operation, ...] = (
    _op("search-contacts-advanced", "POST /contacts/search", search.search, "SearchBodyV2DTO",
        read=True, error_status=400),
    _op("get-duplicate-contact", "GET /contacts/search/duplicate", contacts.get_duplicate,
        read=True, error_status=400),
    _op("get-all-tasks", f"GET {_C}/tasks", tasks.list_tasks, read=True, error_status=400),
    _op("create-task", f"POST {_C}/tasks", tasks.create_task, "CreateTaskParams"),
    _op("get-task", f"GET {_C}/tasks/{{taskId}}", tasks.get_task, read=True, error_status=400),
    _op("update-task", f"PUT {_C}/tasks/{{taskId}}", tasks.update_task, "UpdateTaskBody"),
    _op("delete-task", f"DELETE {_C}/tasks/{{taskId}}", tasks.delete_task, error_status=400),
    _op("update-task-completed", f"PUT {_C}/tasks/{{taskId}}/completed", tasks.complete_task,
        "UpdateTaskStatusParams"),
    _op("get-appointments-for-contact", f"GET {_C}/appointments", contacts.get_appointments,
        read=True),
    _op("add-tags", f"POST {_C}/tags", memberships.add_tags, "TagsDTO"),
    _op("remove-tags", f"DELETE {_C}/tags", memberships.remove_tags, "TagsDTO"),
    _op("get-all-notes", f"GET {_C}/notes", notes.list_notes, read=True, error_status=400),
    _op("create-note", f"POST {_C}/notes", notes.create_note, "NotesDTO"),
    _op("get-note", f"GET {_C}/notes/{{id}}", notes.get_note, read=True),
    _op("update-note", f"PUT {_C}/notes/{{id}}", notes.update_note, "UpdateNoteDTO"),
    _op("delete-note", f"DELETE {_C}/notes/{{id}}", notes.delete_note),
    _op("create-association", "POST /contacts/bulk/tags/update/{type}", memberships.bulk_tags,
        "UpdateTagsDTO"),
    _op("add-remove-contact-from-business", "POST /contacts/bulk/business",
        memberships.bulk_business, "ContactsBusinessUpdate"),
    _op("get-contact", f"GET {_C}", contacts.get_contact, read=True),
    _op("update-contact", f"PUT {_C}", contacts.update_contact, "UpdateContactDto"),
    _op("delete-contact", f"DELETE {_C}", contacts.delete_contact),
    _op("upsert-contact", "POST /contacts/upsert", contacts.upsert_contact, "UpsertContactDto"),
    _op("get-contacts-by-businessId", "GET /contacts/business/{businessId}", search.by_business,
        read=True),
    _op("add-followers-contact", f"POST {_C}/followers", memberships.add_followers,
        "FollowersDTO"),
    _op("remove-followers-contact", f"DELETE {_C}/followers", memberships.remove_followers,
        "FollowersDTO"),
    _op("add-contact-to-campaign", f"POST {_C}/campaigns/{{campaignId}}",
        memberships.add_campaign, "AddContactToCampaignDto"),
    _op("remove-contact-from-campaign", f"DELETE {_C}/campaigns/{{campaignId}}",
        memberships.remove_campaign),
    _op("remove-contact-from-every-campaign", f"DELETE {_C}/campaigns/removeAll",
        memberships.remove_all_campaigns),
    _op("add-contact-to-workflow", f"POST {_C}/workflow/{{workflowId}}",
        memberships.add_workflow, "CreateWorkflowDto"),
    _op("delete-contact-from-workflow", f"DELETE {_C}/workflow/{{workflowId}}",
        memberships.remove_workflow, "CreateWorkflowDto"),
    _op("create-contact", "POST /contacts/", contacts.create_contact, "CreateContactDto"),
    _op("get-contacts", "GET /contacts/", search.legacy_list, read=True),
)

_OAUTH_PATHS = ("/oauth/token", "/oauth/locationToken")  # the sandbox's OAuth provider's


@cache
def spec_operations() -> tuple[Operation, ...]:
    """Every GHL action of the pack's manifest that no Contacts route above answers, as an
    operation answered from its spec (read once per process; the handlers keep no records)."""
    from connector.documents.manifest import pack_manifest
    from connector.sandbox.specroutes import spec_handlers

    taken = {(op.method, _shape(op.template)) for op in OPERATIONS}
    actions = [
        a for a in pack_manifest().actions.values()
        if a.app == "ghl" and a.kind == "http" and (a.method, _shape(a.path)) not in taken
        and a.path not in _OAUTH_PATHS
    ]
    actions.sort(key=lambda a: a.id)
    return tuple(
        Operation(h.action.operation or h.action.id, h.action.method, h.action.path,
                  tuple(h.action.scopes), h, form=str(h.action.options.get("body", "json")))
        for h in spec_handlers(actions, pack_manifest().triggers.values())
    )


def all_operations() -> tuple[Operation, ...]:
    """The Contacts operations, then every spec-answered one."""
    return OPERATIONS + spec_operations()


def _shape(template: str) -> tuple[str, ...]:
    return tuple("{}" if p.startswith("{") else p for p in _segments(template))


_Pattern = tuple[tuple[str | None, ...], tuple[str, ...], Operation]


def _segments(path: str) -> list[str]:
    return path.strip("/").split("/")


class Router:
    """Finds the operation for a method and path; literal segments beat ``{params}``."""

    def __init__(self, operations: tuple[Operation, ...] | None = None) -> None:
        if operations is None:
            operations = all_operations()
        self._table: dict[tuple[str, int], list[_Pattern]] = {}
        for op in operations:
            parts = _segments(op.template)
            literals = tuple(None if p.startswith("{") else p for p in parts)
            names = tuple(p[1:-1] for p in parts if p.startswith("{"))
            self._table.setdefault((op.method, len(parts)), []).append((literals, names, op))
        for patterns in self._table.values():
            patterns.sort(key=lambda p: -sum(lit is not None for lit in p[0]))

    def match(self, method: str, path: str) -> tuple[Operation, dict[str, str]] | None:
        """The operation and its path parameters, or None when no route fits."""
        parts = _segments(path)
        for literals, names, op in self._table.get((method, len(parts)), ()):
            values = []
            for literal, part in zip(literals, parts, strict=True):
                if literal is None:
                    if not part:
                        break
                    values.append(part)
                elif literal != part:
                    break
            else:
                return op, dict(zip(names, values, strict=True))
        return None

    def scopes(self) -> tuple[str, ...]:
        """Every scope some route needs, sorted."""
        return tuple(sorted({s for pats in self._table.values() for *_, op in pats
                             for s in op.scopes}))

    def allows(self, path: str) -> bool:
        """Whether some method has a route at ``path`` (for telling 404 from a wrong method)."""
        return any(self.match(m, path) for m in ("GET", "POST", "PUT", "DELETE"))
