"""Request-body checks as GHL's validation pipe does them: required fields, types of fields, and
rejection of properties the DTO does not declare ("property X should not exist").

The property tables are copied from the Contacts spec's request DTOs (``components.schemas``);
``SearchBodyV2DTO`` is empty in the spec, so its table follows GHL's documented search body.
``dateOfBirth`` is declared as an object in the spec but GHL takes date strings, so it is a string
here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["DTOS", "Dto", "problems"]

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True, slots=True)
class Dto:
    """One request DTO: its required properties and each property's kind."""

    required: tuple[str, ...]
    kinds: Mapping[str, str]


def _dto(required: list[str], kinds: dict[str, str]) -> Dto:
    return Dto(tuple(required), kinds)


_CONTACT = {
    "firstName": "str?", "lastName": "str?", "name": "str?", "email": "str?", "phone": "str?",
    "address1": "str?", "city": "str?", "state": "str?", "postalCode": "str", "website": "str?",
    "timezone": "str?", "dnd": "bool", "dndSettings": "obj", "inboundDndSettings": "obj",
    "tags": "list[str]", "customFields": "list[obj]", "dateOfBirth": "str?", "country": "str",
}
_NEW_CONTACT = {
    **_CONTACT, "locationId": "str", "gender": "str", "source": "str", "companyName": "str?",
    "assignedTo": "str",
}
_TASK = {"title": "str", "body": "str", "dueDate": "str", "completed": "bool", "assignedTo": "str"}
_NOTE = {"userId": "str", "body": "str", "title": "str", "color": "str", "pinned": "bool"}

DTOS: dict[str, Dto] = {
    "CreateContactDto": _dto(["locationId"], _NEW_CONTACT),
    "UpdateContactDto": _dto([], {**_CONTACT, "source": "str?", "assignedTo": "str?"}),
    "UpsertContactDto": _dto(
        ["locationId"], {**_NEW_CONTACT, "createNewIfDuplicateAllowed": "bool"}
    ),
    "CreateTaskParams": _dto(["title", "dueDate", "completed"], _TASK),
    "UpdateTaskBody": _dto([], _TASK),
    "UpdateTaskStatusParams": _dto(["completed"], {"completed": "bool"}),
    "NotesDTO": _dto(["body"], _NOTE),
    "UpdateNoteDTO": _dto([], _NOTE),
    "TagsDTO": _dto(["tags"], {"tags": "list[str]"}),
    "FollowersDTO": _dto(["followers"], {"followers": "list[str]"}),
    "UpdateTagsDTO": _dto(
        ["contacts", "tags", "locationId"],
        {"contacts": "list[str]", "tags": "list[str]", "locationId": "str",
         "removeAllTags": "bool"},
    ),
    "ContactsBusinessUpdate": _dto(
        ["locationId", "ids", "businessId"],
        {"locationId": "str", "ids": "list[str]", "businessId": "str?"},
    ),
    "AddContactToCampaignDto": _dto([], {}),
    "CreateWorkflowDto": _dto([], {"eventStartTime": "str"}),
    "SearchBodyV2DTO": _dto(
        ["locationId", "pageLimit"],
        {"locationId": "str", "pageLimit": "int", "page": "int", "searchAfter": "list[any]",
         "filters": "list[obj]", "sort": "list[obj]", "query": "str"},
    ),
}

_MESSAGES = {
    "str": "{} must be a string",
    "bool": "{} must be a boolean value",
    "int": "{} must be an integer number",
    "num": "{} must be a number conforming to the specified constraints",
    "obj": "{} must be an object",
    "list": "{} must be an array",
}


def _kind_ok(kind: str, value: object) -> bool:
    if kind == "str":
        return isinstance(value, str)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "num":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "obj":
        return isinstance(value, dict)
    return isinstance(value, list)


def _check(name: str, kind: str, value: object) -> list[str]:
    if kind.endswith("?"):
        if value is None:
            return []
        kind = kind[:-1]
    base, _, item = kind.partition("[")
    if not _kind_ok(base, value):
        return [_MESSAGES[base].format(name)]
    if isinstance(value, list) and item != "any]":
        item_kind = item.rstrip("]")
        if not all(_kind_ok(item_kind, one) for one in value):
            word = "a string" if item_kind == "str" else "an object"
            return [f"each value in {name} must be {word}"]
    if name == "email" and isinstance(value, str) and not _EMAIL.match(value):
        return ["email must be an email"]
    return []


def _empty(body: dict[str, Any], key: str, kind: str) -> bool:
    if key not in body:
        return True
    value = body[key]
    return value == "" or (value is None and not kind.endswith("?"))


def problems(dto_name: str, body: object) -> list[str]:
    """Every problem GHL's validation pipe would report for ``body`` as ``dto_name``; [] if valid.

    :param dto_name: a key of :data:`DTOS`, the spec's name of the request schema
    :param body: the decoded JSON request body
    """
    if not isinstance(body, dict):
        return ["request body must be a JSON object"]
    dto = DTOS[dto_name]
    found = [f"property {key} should not exist" for key in body if key not in dto.kinds]
    empty = {key for key in dto.required if _empty(body, key, dto.kinds[key])}
    found.extend(f"{key} should not be empty" for key in dto.required if key in empty)
    for key, value in body.items():
        kind = dto.kinds.get(key)
        if kind is not None and key not in empty:
            found.extend(_check(key, kind, value))
    return found
