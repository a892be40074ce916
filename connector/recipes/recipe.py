"""Recipes: reading recipe YAML safely into frozen :class:`Recipe` and :class:`Step` objects.

The staged pipeline of ``docs/recipes.md``: read the YAML with positions
(:mod:`connector.documents.document`: no aliases, tags or duplicate keys; size and depth bounded),
validate it against ``schemas/recipe.schema.json`` (every problem at its file:line:col), then
build frozen objects whose expressions are parsed once, here, with
:func:`~connector.expressions.template.compile_value` and
:func:`~connector.expressions.template.parse_template`.
An expression that does not parse is reported at the column of the fault inside the file
whenever the value is written on one line; otherwise at the value, naming the column.

Checks that need the catalog (unknown actions, inputs, paths into payloads and outputs) are
:mod:`connector.recipes.checker`'s.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

from connector.documents.document import Document, JsonPath, load_yaml, load_yaml_file
from connector.documents.position import locate_column
from connector.documents.schema import Validator, compile_validator, document_problems, load_schema
from connector.errors import DocumentError, Location, Problem
from connector.expressions.syntax import JSON, ExpressionError, json_type
from connector.expressions.template import (
    BUILTIN_FILTERS,
    CompiledValue,
    FilterSpec,
    Template,
    compile_value,
    parse_template,
)
from connector.recipes.advice import LONE_HINTS, friendlier, split_hint
from connector.sync.spec import SyncSpec, build_sync

__all__ = [
    "ITEM",
    "RECIPE_ENV_ALLOW",
    "RECIPE_ENV_PREFIX",
    "RESERVED_ENV_PREFIX",
    "Draft",
    "OnError",
    "Recipe",
    "Step",
    "TriggerUse",
    "load_recipe",
    "parse_recipe",
    "read_recipe",
]

ITEM = "item"
"""The name under which a ``for_each`` step sees its current item: ``{{ item }}``."""

RESERVED_ENV_PREFIX = "CONNECTOR_"
"""Environment variables a recipe's ``env`` list may not name (the connector's own settings)."""

RECIPE_ENV_PREFIX = "RECIPE_"
"""Environment variables a recipe's ``env`` list may name: ``RECIPE_*`` (and the allow-list)."""

RECIPE_ENV_ALLOW = "CONNECTOR_RECIPE_ENV"
"""The operator's allow-list: more variable names (comma-separated) recipes may read."""

_RECIPE_DEFAULTS = {"retry": 3, "backoff": 2.0, "then": "dead_letter"}


@dataclass(frozen=True, slots=True)
class OnError:
    """What to do when a step fails: retry ``retry`` times, waiting ``backoff`` seconds (doubled
    after each retry), then ``then``: ``fail``, ``continue`` or ``dead_letter`` for a step,
    ``dead_letter`` or ``stop`` for the recipe as a whole."""

    retry: int
    backoff: float
    then: str


@dataclass(frozen=True, slots=True)
class TriggerUse:
    """The recipe's trigger: its id and its options (expressions may use vars and env only)."""

    use: str
    with_: CompiledValue
    location: Location
    echoes: str = "skip"
    """``skip``: an event that echoes the pack's own write is skipped; ``run``: run it."""


@dataclass(frozen=True, slots=True)
class Step:
    """One step, ready to run: every expression is already parsed.

    ``on_error`` is the effective policy (the step's own values, the recipe's for the rest);
    ``connection`` is the step's or the recipe's default (None: the app's default connection);
    ``path`` is where the step stands in the document, e.g. ``("steps", 2)``.
    """

    id: str
    use: str
    with_: CompiledValue
    if_: Template | None
    for_each: Template | None
    on_error: OnError
    connection: str | None
    location: Location
    path: JsonPath

    def templates(self) -> Iterator[tuple[JsonPath, Template]]:
        """Each template of the step (``for_each``, ``if``, ``with``) with its document path."""
        if self.for_each is not None:
            yield (*self.path, "for_each"), self.for_each
        if self.if_ is not None:
            yield (*self.path, "if"), self.if_
        for inner, template in self.with_.templates():
            yield (*self.path, "with", *inner), template


@dataclass(frozen=True, slots=True)
class Recipe:
    """A loaded recipe. ``document`` keeps the parsed YAML and its positions for error reports."""

    name: str
    description: str
    trigger: TriggerUse
    steps: tuple[Step, ...]
    on_error: OnError
    connection: str | None
    vars: Mapping[str, JSON]
    env: tuple[str, ...]
    document: Document = field(repr=False, compare=False)
    source: str = field(default="", repr=False, compare=False)
    sync: SyncSpec | None = None

    @property
    def file(self) -> str | None:
        """The file the recipe was read from (None for text given directly)."""
        return self.document.file

    def step(self, step_id: str) -> Step | None:
        """The first step named ``step_id``, or None."""
        return next((s for s in self.steps if s.id == step_id), None)

    def locate(self, path: JsonPath, template: Template | None = None, column: int = 0) -> Location:
        """Where ``path`` stands in the file; with a ``template`` and a 1-based ``column`` in its
        text, the exact column inside the file when the value is written on one line."""
        text = None if template is None else template.text
        return locate_column(self.document, self.source, path, text, column)


@dataclass(frozen=True, slots=True)
class Draft:
    """What :func:`read_recipe` made of a document: the recipe (None when the document does not
    fit the schema), every problem found, and the document paths whose expressions failed
    (their values are left out of the recipe, so later checks must skip them)."""

    recipe: Recipe | None
    problems: tuple[Problem, ...]
    broken: frozenset[JsonPath]


def load_recipe(path: Path, *, filters: Mapping[str, FilterSpec] = BUILTIN_FILTERS) -> Recipe:
    """Read, validate and build the recipe at ``path``.

    :param filters: the filter registry expressions are checked against.
    :raises DocumentError: listing every problem, each at its file:line:col.
    """
    doc = load_yaml_file(path)
    return _finish(read_recipe(doc, filters=filters, source=_text_of(path)))


def parse_recipe(
    text: str, *, file: str | None = None, filters: Mapping[str, FilterSpec] = BUILTIN_FILTERS
) -> Recipe:
    """Like :func:`load_recipe`, for recipe text already in memory."""
    return _finish(read_recipe(load_yaml(text, file=file), filters=filters, source=text))


def _finish(draft: Draft) -> Recipe:
    if draft.problems or draft.recipe is None:
        raise DocumentError(draft.problems)
    return draft.recipe


def _text_of(path: Path) -> str:
    # load_yaml_file has read and decoded the file already; this second read only serves
    # column placement, so a failure just means coarser locations.
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return ""


def read_recipe(
    doc: Document, *, filters: Mapping[str, FilterSpec] = BUILTIN_FILTERS, source: str = ""
) -> Draft:
    """Validate ``doc`` against the recipe schema and build what can be built, collecting every
    problem instead of stopping at the first.

    :param source: the document's text, to place expression errors at their exact column.
    """
    validator = _recipe_validator()
    if not isinstance(doc.data, dict):
        got = "an empty file" if doc.data is None else f"a {json_type(doc.data)}"
        message = f"a recipe must be a mapping with name, trigger and steps; got {got}"
        return Draft(None, (Problem(doc.locate(()), message, "see docs/recipes.md"),), frozenset())
    found = [friendlier(problem) for problem in document_problems(validator, doc)]
    if found:
        return Draft(None, tuple(found), frozenset())
    builder = _Builder(doc, filters, source)
    recipe = builder.build()
    found = sorted(builder.problems, key=_order)
    return Draft(recipe, tuple(found), frozenset(builder.broken))


@cache
def _recipe_validator() -> Validator:
    # The pack's own schema is checked against the meta-schema by the test suite.
    schema = load_schema("recipe.schema.json")
    return compile_validator(schema, source="recipe.schema.json", check=False)


def _order(problem: Problem) -> tuple[int, int, str]:
    where = problem.location
    return (where.line or 0, where.column or 0, where.pointer)


class _Builder:
    """Builds the frozen recipe from schema-valid data; expression errors are collected."""

    def __init__(self, doc: Document, filters: Mapping[str, FilterSpec], source: str) -> None:
        self.doc = doc
        self.data = doc.data
        self.filters = filters
        self.env: tuple[str, ...] = tuple(self.data.get("env", ()))
        self.problems: list[Problem] = []
        self.broken: set[JsonPath] = set()
        self.source = source

    def build(self) -> Recipe:
        data = self.data
        policy = _default_policy(data.get("on_error", {}))
        trigger = TriggerUse(
            data["trigger"]["use"],
            self.compiled(data["trigger"].get("with", {}), ("trigger", "with")),
            self.doc.locate(("trigger",)),
            str(data["trigger"].get("echoes", "skip")),
        )
        steps = tuple(self.step(index, spec, policy) for index, spec in enumerate(data["steps"]))
        self.check_unique_ids(steps)
        self.check_env()
        sync = self.sync_section()
        return Recipe(
            name=data["name"],
            description=data.get("description", ""),
            trigger=trigger,
            steps=steps,
            on_error=policy,
            connection=data.get("connection"),
            vars=MappingProxyType(dict(data.get("vars", {}))),
            env=self.env,
            document=self.doc,
            source=self.source,
            sync=sync,
        )

    def sync_section(self) -> SyncSpec | None:
        """The recipe's ``sync:`` section, if any (see :mod:`connector.sync.spec`)."""
        if "sync" not in self.data:
            return None
        try:
            return build_sync(self.data["sync"], name=str(self.data["name"]), doc=self.doc)
        except DocumentError as exc:
            self.problems.extend(exc.problems)
            self.broken.add(("sync",))
            return None

    def step(self, index: int, spec: Mapping[str, Any], policy: OnError) -> Step:
        path: JsonPath = ("steps", index)
        own = spec.get("on_error", {})
        connection = spec.get("connection", self.data.get("connection"))
        return Step(
            id=str(spec["id"]),
            use=str(spec["use"]),
            with_=self.compiled(spec.get("with", {}), (*path, "with")),
            if_=self.lone(spec.get("if"), (*path, "if")),
            for_each=self.lone(spec.get("for_each"), (*path, "for_each")),
            on_error=OnError(
                retry=int(own.get("retry", policy.retry)),
                backoff=float(own.get("backoff", policy.backoff)),
                then=str(own.get("then", "fail")),
            ),
            connection=None if connection is None else str(connection),
            location=self.doc.locate(path),
            path=path,
        )

    def compiled(self, value: Any, path: JsonPath) -> CompiledValue:
        """``value`` compiled; strings that fail are reported and left out (as null)."""
        try:
            return compile_value(value, filters=self.filters, env=self.env, path=path)
        except ExpressionError:
            pass
        failed: set[JsonPath] = set()
        for inner, text in _strings(value, path):
            try:
                parse_template(text, filters=self.filters, env=self.env)
            except ExpressionError as exc:
                self.fail(inner, text, exc)
                failed.add(inner)
        kept = _without(value, path, failed)
        return compile_value(kept, filters=self.filters, env=self.env, path=path)

    def lone(self, text: str | None, path: JsonPath) -> Template | None:
        """An ``if`` or ``for_each``: exactly one ``{{ expression }}``."""
        if text is None:
            return None
        try:
            template = parse_template(text, filters=self.filters, env=self.env)
        except ExpressionError as exc:
            self.fail(path, text, exc)
            return None
        if not template.is_lone:
            key = path[-1]
            self.problems.append(
                Problem(
                    self.doc.locate(path),
                    f"{key} must be exactly one expression, got {text!r}",
                    LONE_HINTS[str(key)],
                )
            )
            self.broken.add(path)
            return None
        return template

    def fail(self, path: JsonPath, text: str, exc: ExpressionError) -> None:
        self.broken.add(path)
        where = locate_column(self.doc, self.source, path, text, exc.column or 0)
        detail, hint = split_hint(exc.detail)
        if exc.column is not None and where == self.doc.locate(path):
            detail = f"{detail} (column {exc.column} of the value)"
        self.problems.append(Problem(where, detail, hint))

    def check_env(self) -> None:
        """Recipes read ``RECIPE_*`` variables and those the operator allows, never the
        connector's own (``CONNECTOR_*``) nor anything else of the process (a client secret)."""
        allowed = {n.strip() for n in os.environ.get(RECIPE_ENV_ALLOW, "").split(",")} - {""}
        for index, name in enumerate(self.env):
            where = self.doc.locate(("env", index))
            if name.startswith(RESERVED_ENV_PREFIX):
                self.problems.append(
                    Problem(
                        where,
                        f"environment variable {name!r} is reserved for the connector itself",
                        f"{RESERVED_ENV_PREFIX}* variables may hold tokens and keys; "
                        "recipes cannot read them",
                    )
                )
            elif not name.startswith(RECIPE_ENV_PREFIX) and name not in allowed:
                self.problems.append(
                    Problem(
                        where,
                        f"environment variable {name!r} is not allowed: recipes read only"
                        f" {RECIPE_ENV_PREFIX}* variables and those ${RECIPE_ENV_ALLOW} lists",
                        f"rename it {RECIPE_ENV_PREFIX}{name}, or allow it with"
                        f" {RECIPE_ENV_ALLOW}={name}",
                    )
                )

    def check_unique_ids(self, steps: tuple[Step, ...]) -> None:
        first: dict[str, Step] = {}
        for step in steps:
            if step.id in first:
                where = self.doc.locate((*step.path, "id"))
                line = first[step.id].location.line
                self.problems.append(
                    Problem(
                        where,
                        f"duplicate step id {step.id!r} (first used on line {line})",
                        "give every step its own id",
                    )
                )
            else:
                first[step.id] = step


def _default_policy(spec: Mapping[str, Any]) -> OnError:
    merged = {**_RECIPE_DEFAULTS, **spec}
    return OnError(int(merged["retry"]), float(merged["backoff"]), str(merged["then"]))


def _without(value: Any, path: JsonPath, drop: set[JsonPath]) -> Any:
    """A copy of ``value`` with the values at the document paths in ``drop`` set to null."""
    if path in drop:
        return None
    if isinstance(value, dict):
        return {key: _without(child, (*path, key), drop) for key, child in value.items()}
    if isinstance(value, list):
        return [_without(child, (*path, i), drop) for i, child in enumerate(value)]
    return value


def _strings(value: Any, path: JsonPath) -> Iterator[tuple[JsonPath, str]]:
    """Every string inside ``value`` with its document path."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, child in value.items():
            yield from _strings(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _strings(child, (*path, index))
