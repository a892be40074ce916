"""Schema drift: answers that differ from their output schema, checked at full speed.

GHL's answers often differ from its spec (``null`` where the spec says number, a field the spec
does not list). Such an answer is reported once per action and field (a warning, see
:meth:`connector.runtime.Runtime.check_output`), and then the action's output schema is
*widened* to accept what was seen: the failing keyword is relaxed at the node the error names
(a ``type`` gains the type that came, any other keyword is dropped there) and the widened
schema is compiled again. Every later page with the same drift passes the fast compiled check,
so reading 20,000 records whose every page drifts costs what reading valid ones does
(``bench/bench_drift.py``), instead of re-validating each page with the slow validator.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from jsonschema.exceptions import ValidationError

from connector.documents.schema import Validator, compile_validator, leaves, to_problem
from connector.errors import Location, Problem

__all__ = ["Drift"]


class Drift:
    """One action's output check, widened by the drift seen so far; thread-safe."""

    def __init__(self, schema: Mapping[str, Any]) -> None:
        self._schema: dict[str, Any] = copy.deepcopy(dict(schema))
        self._validator: Validator = compile_validator(self._schema, check=False)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Drift({self._schema.get('title') or 'output schema'!r})"

    def check(
        self, data: Any, locate: Callable[[tuple[str | int, ...]], Location]
    ) -> list[Problem]:
        """The ways ``data`` differs from the schema as widened so far (then widened to
        accept them): empty when it matches, which is the fast path."""
        validator = self._validator
        if validator.is_valid(data):
            return []
        errors = list(leaves(validator.iter_errors(data)))
        if not errors:
            return []
        with self._lock:
            schema = copy.deepcopy(self._schema)
            for err in errors:
                _widen(schema, err)
            self._schema = schema
            self._validator = compile_validator(schema, check=False)
        return [to_problem(err, locate) for err in errors]


def _widen(schema: dict[str, Any], err: ValidationError) -> None:
    """Relax ``schema`` where ``err`` failed, so the same value passes next time."""
    *path, keyword = list(err.schema_path) or [""]
    node: Any = schema
    for key in path:
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            return  # a path through a keyword we do not walk: leave it (checked slowly)
    if not isinstance(node, dict) or keyword not in node:
        return
    if keyword == "type":
        node["type"] = sorted({*_listed(node["type"]), _schema_type(err.instance)})
    elif keyword == "additionalProperties":
        node["additionalProperties"] = True
    else:
        del node[keyword]


def _schema_type(value: object) -> str:
    """The JSON Schema type name of a JSON value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _listed(value: object) -> Iterable[str]:
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]
