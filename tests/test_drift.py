"""Schema drift: an answer that differs from its output schema is reported once, then the
schema is widened to accept it, so later pages with the same drift take the fast path."""

from __future__ import annotations

from connector.documents.drift import Drift
from connector.errors import Location

SCHEMA = {
    "type": "object",
    "required": ["contacts"],
    "properties": {
        "contacts": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id"],
                "additionalProperties": False,
                "properties": {
                    "id": {"type": "string"},
                    "validEmail": {"type": "boolean"},
                    "type": {"type": "string", "enum": ["lead", "customer"]},
                    "score": {"type": "integer"},
                },
            },
        }
    },
}


def locate(path):
    return Location("<answer>", pointer="/".join(map(str, path)))


def test_a_drift_is_reported_once_then_accepted():
    drift = Drift(SCHEMA)
    page = {"contacts": [{"id": "a", "validEmail": None}, {"id": "b", "validEmail": True}]}
    found = drift.check(page, locate)
    assert [(p.location.pointer, "boolean" in p.message) for p in found] == [
        ("contacts/0/validEmail", True)
    ]
    assert drift.check(page, locate) == []
    assert drift.check({"contacts": [{"id": "c", "validEmail": None}]}, locate) == []


def test_other_drifts_are_still_reported_each_once():
    drift = Drift(SCHEMA)
    assert drift.check({"contacts": [{"id": "a", "validEmail": None}]}, locate)
    new = {"contacts": [{"id": "a", "score": "7", "type": "vip", "extra": 1}, {"validEmail": 1}]}
    found = {p.location.pointer for p in drift.check(new, locate)}
    assert {"contacts/0/score", "contacts/0/type", "contacts/1/validEmail"} <= found
    assert drift.check(new, locate) == []


def test_the_original_schema_is_left_alone():
    Drift(SCHEMA).check({"contacts": [{"id": "a", "validEmail": None}]}, locate)
    assert SCHEMA["properties"]["contacts"]["items"]["properties"]["validEmail"] == {
        "type": "boolean"
    }
