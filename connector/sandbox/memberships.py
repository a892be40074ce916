"""What a contact belongs to: tags, followers, campaigns, workflows and businesses, one contact
at a time or in bulk."""

from __future__ import annotations

from connector.sandbox.call import Call, Reply
from connector.sandbox.contacts import normal_tags
from connector.sandbox.responses import unprocessable
from connector.sandbox.state import Record

__all__ = [
    "add_campaign",
    "add_followers",
    "add_tags",
    "add_workflow",
    "bulk_business",
    "bulk_tags",
    "remove_all_campaigns",
    "remove_campaign",
    "remove_followers",
    "remove_tags",
    "remove_workflow",
]


def _set_tags(call: Call, contact: Record, tags: list[str]) -> None:
    if tags != contact["tags"]:
        contact["tags"] = tags
        call.store.touch(contact)
        call.emit("ContactTagUpdate", contact)


def add_tags(call: Call) -> Reply:
    """POST /contacts/{contactId}/tags: 201 with the contact's tags afterwards."""
    contact = call.contact()
    _set_tags(call, contact, normal_tags(contact["tags"] + call.body["tags"]))
    return 201, {"tags": contact["tags"]}


def remove_tags(call: Call) -> Reply:
    """DELETE /contacts/{contactId}/tags: 200 with the tags left."""
    contact = call.contact()
    gone = set(normal_tags(call.body["tags"]))
    _set_tags(call, contact, [t for t in contact["tags"] if t not in gone])
    return 200, {"tags": contact["tags"]}


def add_followers(call: Call) -> Reply:
    """POST /contacts/{contactId}/followers: 201 with all followers and those added."""
    contact = call.contact()
    added = [f for f in dict.fromkeys(call.body["followers"]) if f not in contact["followers"]]
    contact["followers"] = contact["followers"] + added
    call.store.touch(contact)
    return 201, {"followers": contact["followers"], "followersAdded": added}


def remove_followers(call: Call) -> Reply:
    """DELETE /contacts/{contactId}/followers: 200 with the followers left and those removed."""
    contact = call.contact()
    gone = set(call.body["followers"])
    removed = [f for f in contact["followers"] if f in gone]
    contact["followers"] = [f for f in contact["followers"] if f not in gone]
    call.store.touch(contact)
    return 200, {"followers": contact["followers"], "followersRemoved": removed}


def add_campaign(call: Call) -> Reply:
    """POST /contacts/{contactId}/campaigns/{campaignId}: 201."""
    contact = call.contact()
    call.store.campaigns.setdefault(contact["id"], set()).add(call.params["campaignId"])
    call.store.touch(contact)
    return 201, {"succeded": True}


def remove_campaign(call: Call) -> Reply:
    """DELETE /contacts/{contactId}/campaigns/{campaignId}."""
    contact = call.contact()
    call.store.campaigns.get(contact["id"], set()).discard(call.params["campaignId"])
    call.store.touch(contact)
    return 200, {"succeded": True}


def remove_all_campaigns(call: Call) -> Reply:
    """DELETE /contacts/{contactId}/campaigns/removeAll."""
    contact = call.contact()
    call.store.campaigns.pop(contact["id"], None)
    call.store.touch(contact)
    return 200, {"succeded": True}


def add_workflow(call: Call) -> Reply:
    """POST /contacts/{contactId}/workflow/{workflowId}."""
    contact = call.contact()
    start = call.body.get("eventStartTime") or call.store.stamp()
    call.store.workflows.setdefault(contact["id"], {})[call.params["workflowId"]] = start
    call.store.touch(contact)
    return 200, {"succeded": True}


def remove_workflow(call: Call) -> Reply:
    """DELETE /contacts/{contactId}/workflow/{workflowId}."""
    contact = call.contact()
    call.store.workflows.get(contact["id"], {}).pop(call.params["workflowId"], None)
    call.store.touch(contact)
    return 200, {"succeded": True}


def bulk_tags(call: Call) -> Reply:
    """POST /contacts/bulk/tags/update/{type}: add or remove tags on many contacts at once.

    ``removeAllTags`` may only be used with ``remove``. Unknown contacts count as errors.
    """
    kind = call.params["type"]
    body = call.body
    if kind not in ("add", "remove"):
        raise unprocessable(["type must be one of the following values: add, remove"])
    if body.get("removeAllTags") and kind != "remove":
        raise unprocessable(["removeAllTags can only be used with remove type"])
    location_id = call.location(body["locationId"])
    tags = normal_tags(body["tags"])
    done: list[str] = []
    for contact_id in body["contacts"]:
        contact = call.store.contact(contact_id, location_id)
        if contact is None:
            continue
        if kind == "add":
            _set_tags(call, contact, normal_tags(contact["tags"] + tags))
        elif body.get("removeAllTags"):
            _set_tags(call, contact, [])
        else:
            _set_tags(call, contact, [t for t in contact["tags"] if t not in tags])
        done.append(contact_id)
    errors = len(body["contacts"]) - len(done)
    return 201, {"succeded": errors == 0, "errorCount": errors, "responses": done}


def bulk_business(call: Call) -> Reply:
    """POST /contacts/bulk/business: set (or, with null, clear) the business of many contacts."""
    body = call.body
    location_id = call.location(body["locationId"])
    business = body["businessId"]
    done: list[str] = []
    for contact_id in body["ids"]:
        contact = call.store.contact(contact_id, location_id)
        if contact is None:
            continue
        if business is None:
            contact.pop("businessId", None)
        else:
            contact["businessId"] = business
        call.store.touch(contact)
        call.emit("ContactUpdate", contact)
        done.append(contact_id)
    return 200, {"success": True, "ids": done}
