"""JSON Schemas: loading them from ``schemas/`` by ``$id``, checking documents, locating errors.

Every schema is draft 2020-12 and jsonschema is the authority on what is valid. Because the
runtime checks every action input and output, a :class:`Validator` first asks a compiled
fastjsonschema check (about 30 times faster) whether the instance is valid, and runs
jsonschema only when that says no or when the schema uses keywords fastjsonschema does not
know. jsonschema's exceptions never leave this module: errors come back as
:class:`~connector.errors.Problem` lists sorted by path.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import fastjsonschema
from fastjsonschema import JsonSchemaDefinitionException, JsonSchemaException
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, ValidationError

from connector.documents.document import Document, JsonPath, pointer
from connector.documents.lazyschema import plain
from connector.errors import DocumentError, Location, Problem
from connector.pack import pack_root

__all__ = [
    "Validator",
    "compile_validator",
    "document_problems",
    "leaves",
    "input_problem",
    "load_schema",
    "problems",
    "raise_for_document",
    "to_problem",
    "schemas_read",
]


def load_schema(schema_id: str, root: Path | None = None) -> dict[str, Any]:
    """Load ``schemas/<schema_id>`` (its ``$id``) from the pack, or from ``root``."""
    return _load(schema_id, root or pack_root() / "schemas")


_READ: list[str] = []


def schemas_read() -> tuple[str, ...]:
    """The schema files this process has read so far, by ``$id`` (each is read once)."""
    return tuple(_READ)


@cache
def _load(schema_id: str, root: Path) -> dict[str, Any]:
    path = root / schema_id
    _READ.append(schema_id)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DocumentError(
            [Problem(Location(str(path)), f"cannot read schema: {exc.strerror}")]
        ) from None
    except json.JSONDecodeError as exc:
        where = Location(str(path), exc.lineno, exc.colno)
        raise DocumentError([Problem(where, f"invalid JSON: {exc.msg}")]) from None
    if not isinstance(data, dict):
        raise DocumentError([Problem(Location(str(path)), "a schema must be a JSON object")])
    return data


# Draft 2019-09/2020-12 keywords that fastjsonschema (draft 4/6/7) would silently ignore.
_NEWER_KEYWORDS = frozenset(
    {
        "prefixItems", "unevaluatedItems", "unevaluatedProperties", "dependentRequired",
        "dependentSchemas", "$dynamicRef", "$dynamicAnchor", "$recursiveRef", "minContains",
        "maxContains", "$anchor",
    }
)  # fmt: skip


_COMPILE_AFTER = 64
"""Checks a validator makes with jsonschema alone before it compiles its fast check: compiling
costs up to a tenth of a second (the recipe schema) and pays back only over many documents, so
a command that checks a few recipes never pays it, and a service soon has it."""


class Validator:
    """A compiled schema: a fast validity check (once it has been used a while), and
    jsonschema for the errors themselves."""

    __slots__ = ("_checks", "_fast", "_full", "_pending")

    def __init__(self, schema: Mapping[str, Any], *, fast: bool = True) -> None:
        schema = plain(schema)
        self._full = Draft202012Validator(
            schema, format_checker=Draft202012Validator.FORMAT_CHECKER
        )
        self._fast: Callable[[Any], Any] | None = None
        self._pending: Mapping[str, Any] | None = schema if fast else None
        self._checks = 0

    def is_valid(self, instance: Any) -> bool:
        """Whether ``instance`` is valid (jsonschema decides whenever the fast check says no)."""
        fast = self._fast
        if fast is None and self._pending is not None:
            self._checks += 1
            if self._checks >= _COMPILE_AFTER:  # two threads may both compile: the same result
                fast = self._fast = _fast_check(self._pending)
                self._pending = None
        if fast is not None:
            try:
                fast(instance)
                return True
            except JsonSchemaException:
                pass
        return bool(self._full.is_valid(instance))

    def iter_errors(self, instance: Any) -> Iterable[ValidationError]:
        """Every error jsonschema finds in ``instance``."""
        return self._full.iter_errors(instance)


def _fast_check(schema: Mapping[str, Any]) -> Callable[[Any], Any] | None:
    if _uses(schema, _NEWER_KEYWORDS):
        return None
    # A deep copy: fastjsonschema rewrites "$ref"s in place, which would corrupt a cached schema.
    draft7 = {k: copy.deepcopy(v) for k, v in schema.items() if k != "$schema"}
    try:
        return fastjsonschema.compile(draft7, use_default=False)
    except (JsonSchemaDefinitionException, ValueError, TypeError, re.error):
        return None  # a schema fastjsonschema cannot compile is checked by jsonschema alone


def _uses(node: Any, keywords: frozenset[str]) -> bool:
    if isinstance(node, dict):
        return any(k in keywords or _uses(v, keywords) for k, v in node.items())
    if isinstance(node, list):
        return any(_uses(item, keywords) for item in node)
    return False


def compile_validator(
    schema: Mapping[str, Any], *, source: str = "<schema>", check: bool = True, fast: bool = True
) -> Validator:
    """A validator for ``schema``, checked against the draft 2020-12 meta-schema first.

    :param check: skip the meta-schema check for schemas already checked (the pack's own).
    :param fast: compile the fastjsonschema pre-check; a schema that checks a few documents
        once each (manifests) gains nothing from it and pays its compile time and memory.
    """
    schema = plain(schema)
    if check:
        try:
            Draft202012Validator.check_schema(schema)
        except SchemaError as exc:
            where = Location(source, pointer=pointer(tuple(exc.absolute_path)))
            raise DocumentError([Problem(where, f"invalid JSON Schema: {exc.message}")]) from None
    return Validator(schema, fast=fast)


def problems(
    validator: Validator, instance: Any, locate: Callable[[JsonPath], Location]
) -> list[Problem]:
    """Every way ``instance`` fails ``validator``, sorted by path, each with its location."""
    if validator.is_valid(instance):
        return []
    found = [_to_problem(err, locate) for err in _leaves(validator.iter_errors(instance))]
    found.sort(key=lambda p: (p.location.line or 0, p.location.column or 0, p.location.pointer))
    return found


def document_problems(validator: Validator, doc: Document) -> list[Problem]:
    """Every way a YAML document fails ``validator``, located at file:line:col."""
    return problems(validator, doc.data, doc.locate)


def raise_for_document(validator: Validator, doc: Document) -> None:
    """Raise one DocumentError listing every problem of ``doc``, if it has any."""
    found = document_problems(validator, doc)
    if found:
        raise DocumentError(found)


def _leaves(errors: Iterable[ValidationError]) -> Iterable[ValidationError]:
    """The most specific errors: for oneOf/anyOf, the branch that got furthest."""
    for err in errors:
        if err.context:
            best = max(err.context, key=lambda e: (len(e.absolute_path), -len(e.schema_path)))
            if len(best.absolute_path) > len(err.absolute_path):
                yield from _leaves([best])
                continue
        yield err


def _to_problem(err: ValidationError, locate: Callable[[JsonPath], Location]) -> Problem:
    path: JsonPath = tuple(err.absolute_path)
    message = _message(err)
    if err.validator == "additionalProperties" and isinstance(err.instance, dict):
        extras = _extra_keys(err)
        if len(extras) == 1:
            path = (*path, extras[0])
            message = f"unknown field {extras[0]!r}"
            schema = err.schema if isinstance(err.schema, Mapping) else {}
            hint = _did_you_mean(extras[0], schema.get("properties", {}))
            return Problem(locate(path), message, hint)
    if err.validator == "required" and isinstance(err.instance, dict):
        missing = [str(n) for n in _listed(err.validator_value) if n not in err.instance]
        if len(missing) == 1:
            return Problem(locate((*path, missing[0])), "required field is missing")
    return Problem(locate(path), message)


def input_problem(
    found: Problem, top: str, schema: Mapping[str, Any], owner: str, noun: str = "input"
) -> Problem:
    """Schema wording turned into input wording for a field right under ``top`` (the pointer
    of the input object: ``steps[0].with`` in a recipe, ``""`` for ``call``'s input), so
    ``validate`` and ``call`` word an input's problems alike.

    :param owner: what takes the input (an action id, ``trigger ghl.contacts.created``).
    :param noun: ``input`` (an action's) or ``option`` (a trigger's).
    """
    where = found.location
    prefix = f"{top}." if top else ""
    name = where.pointer[len(prefix) :]
    if not where.pointer.startswith(prefix) or not name.isidentifier():
        return found
    known = sorted(schema.get("properties") or {})
    if found.message == "required field is missing":
        return Problem(where, f"missing required {noun} {name!r} for {owner}", found.hint)
    if found.message == f"unknown field {name!r}":
        listed = f"{noun}s: {', '.join(known)}" if known else f"it takes no {noun}s"
        return Problem(where, f"unknown {noun} {name!r} for {owner}", found.hint or listed)
    return found


def _extra_keys(err: ValidationError) -> list[str]:
    schema = err.schema if isinstance(err.schema, Mapping) else {}
    known = schema.get("properties", {})
    patterns = schema.get("patternProperties", {})
    return [str(k) for k in _listed(err.instance) if k not in known and not patterns]


def _listed(value: object) -> list[Any]:
    return list(value) if isinstance(value, list | dict | tuple) else []


def _did_you_mean(name: str, known: Iterable[str]) -> str | None:
    import difflib

    close = difflib.get_close_matches(name, list(known), n=1)
    return f"did you mean {close[0]!r}?" if close else None


def _message(err: ValidationError) -> str:
    if err.validator in ("anyOf", "oneOf") and isinstance(err.validator_value, list):
        alternatives = [_only_required(branch) for branch in err.validator_value]
        if alternatives and all(alternatives):
            names = " or ".join("+".join(fields) for fields in alternatives if fields)
            return f"needs {names}"
    if err.validator == "required":
        return str(err.message).replace(" is a required property", " is required")
    if err.validator == "type":
        kinds = err.validator_value
        kinds = [kinds] if isinstance(kinds, str) else kinds
        wanted = " or ".join(repr(str(kind)) for kind in _listed(kinds))
        return f"{_short(err.instance)} is not of type {wanted}"
    text = str(err.message)
    return text if len(text) <= 200 else text[:197] + "..."


def _only_required(branch: Any) -> list[str] | None:
    """The fields of a ``{"required": [...]}`` branch (an "at least one of" rule), else None."""
    if isinstance(branch, dict) and set(branch) == {"required"}:
        return [str(name) for name in branch["required"]]
    return None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


leaves = _leaves
"""The most specific errors of a validation (public name, for :mod:`connector.documents.drift`)."""
to_problem = _to_problem
"""A jsonschema error as a located :class:`~connector.errors.Problem`."""
