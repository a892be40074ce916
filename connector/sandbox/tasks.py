"""Task handlers: a contact's tasks (``TaskSchema``), created, updated, completed and deleted."""

from __future__ import annotations

from connector.sandbox.call import Call, Reply
from connector.sandbox.responses import bad_request
from connector.sandbox.state import Record

__all__ = [
    "complete_task",
    "create_task",
    "delete_task",
    "get_task",
    "list_tasks",
    "update_task",
]

_FIELDS = ("title", "body", "dueDate", "completed", "assignedTo")


def _task(call: Call) -> tuple[Record, dict[str, Record]]:
    contact = call.contact()
    tasks = call.store.tasks.get(contact["id"], {})
    task = tasks.get(call.params["taskId"])
    if task is None:
        raise bad_request("Task not found")
    return task, tasks


def _write(call: Call, task: Record, fields: dict[str, object]) -> None:
    was_done = bool(task.get("completed"))
    task.update({k: v for k, v in fields.items() if k in _FIELDS})
    call.store.touch(task)
    if task.get("completed") and not was_done:
        call.emit("TaskComplete", task)


def list_tasks(call: Call) -> Reply:
    """GET /contacts/{contactId}/tasks."""
    contact = call.contact()
    return 200, {"tasks": list(call.store.tasks.get(contact["id"], {}).values())}


def create_task(call: Call) -> Reply:
    """POST /contacts/{contactId}/tasks: 201 ``{task}``."""
    contact = call.contact()
    stamp = call.store.stamp()
    task: Record = {"id": call.store.new_id(), "contactId": contact["id"],
                    "dateAdded": stamp, "dateUpdated": stamp}
    task.update({k: v for k, v in call.body.items() if k in _FIELDS})
    call.store.tasks.setdefault(contact["id"], {})[task["id"]] = task
    call.emit("TaskCreate", task)
    return 201, {"task": task}


def get_task(call: Call) -> Reply:
    """GET /contacts/{contactId}/tasks/{taskId}."""
    return 200, {"task": _task(call)[0]}


def update_task(call: Call) -> Reply:
    """PUT /contacts/{contactId}/tasks/{taskId}."""
    task = _task(call)[0]
    _write(call, task, call.body)
    return 200, {"task": task}


def complete_task(call: Call) -> Reply:
    """PUT /contacts/{contactId}/tasks/{taskId}/completed."""
    task = _task(call)[0]
    _write(call, task, {"completed": call.body["completed"]})
    return 200, {"task": task}


def delete_task(call: Call) -> Reply:
    """DELETE /contacts/{contactId}/tasks/{taskId}."""
    task, tasks = _task(call)
    del tasks[task["id"]]
    call.emit("TaskDelete", task)
    return 200, {"succeded": True}
