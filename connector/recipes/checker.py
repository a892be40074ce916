"""Static checking of recipes against the catalog: everything that can be known before a run.

:func:`validate_file` reads a recipe (:mod:`connector.recipes.recipe`: safe YAML, the recipe schema,
expression syntax, filters and their argument counts, the env allow-list, duplicate step ids)
and then checks it against the catalog:

- trigger and action ids exist ("did you mean"); a deprecated action is a warning naming the
  action to use instead;
- each step's ``with``: no unknown inputs, no required input missing (the action's
  ``location_param`` is filled from the connection, so it may be left out), and every literal
  value fits the action's input schema (values holding an expression are checked at run time);
- every path an expression reads: ``trigger.x`` against the trigger's payload schema,
  ``steps.ID.x`` against the output schema of an *earlier* step (see
  :mod:`connector.documents.schemapath` for the rules), ``vars.x`` against ``vars``, ``item`` only
  inside a ``for_each`` step; trigger options may read only ``vars`` and ``env``.

Every problem is reported at once, each located at ``file:line:col``; the scopes the recipe
needs (trigger and steps) come with the report.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from connector.catalog import Catalog, did_you_mean
from connector.documents.document import JsonPath, load_yaml, load_yaml_file, pointer
from connector.documents.schema import Validator, compile_validator, input_problem, problems
from connector.documents.schemapath import Miss, follow, list_of
from connector.errors import DocumentError, Location, Problem
from connector.expressions.template import BUILTIN_FILTERS, FilterSpec, Template
from connector.expressions.template import Path as ExprPath
from connector.recipes.footprints import ORIGIN_SCHEMA
from connector.recipes.recipe import ITEM, Draft, Recipe, Step, read_recipe

__all__ = ["Report", "check_recipe", "validate_file", "validate_text"]

_PLACEHOLDER = "location-from-connection"


@dataclass(frozen=True, slots=True)
class Report:
    """The outcome of checking one recipe file."""

    file: str | None
    problems: tuple[Problem, ...]
    warnings: tuple[Problem, ...] = ()
    scopes: tuple[str, ...] = ()
    recipe: Recipe | None = field(default=None, repr=False, compare=False)
    sync: bool = False
    """A sync document whose checks against the catalog all ran (it has no recipe)."""

    @property
    def complete(self) -> bool:
        """False when the file could not be read as a recipe or sync document (unsafe YAML,
        wrong shape), so the checks against the catalog (ids, inputs, expression paths, a sync
        document's field names) did not run yet."""
        return self.recipe is not None or self.sync

    @property
    def ok(self) -> bool:
        """True when there is no problem (warnings do not count)."""
        return not self.problems

    def raise_for_problems(self) -> None:
        """Raise one DocumentError listing every problem, if there is any (for a runner that
        must refuse a recipe that does not check)."""
        if self.problems:
            raise DocumentError(self.problems)


def validate_file(
    path: Path, catalog: Catalog, *, filters: Mapping[str, FilterSpec] = BUILTIN_FILTERS
) -> Report:
    """Read the recipe at ``path`` and check it; never raises for a bad recipe.

    :param catalog: the actions and triggers ids are looked up in.
    :param filters: the filter registry (built-ins plus plugins' filters).
    """
    try:
        doc = load_yaml_file(path)
        source = path.read_text(encoding="utf-8")
    except DocumentError as exc:
        return Report(str(path), exc.problems)
    except (OSError, UnicodeDecodeError):
        source = ""
    if _is_sync_document(doc.data):
        return _sync_report(source, doc.file, catalog)
    return _report(read_recipe(doc, filters=filters, source=source), doc.file, catalog)


def _is_sync_document(data: object) -> bool:
    """A standalone sync document (the sync recipe kind): ``name`` and ``sync``, no trigger."""
    return isinstance(data, dict) and "sync" in data and "trigger" not in data


def _sync_report(text: str, file: str | None, catalog: Catalog) -> Report:
    """Check a sync document: its shape, every action its adapters name, and its field names
    against those actions' schemas (:mod:`connector.sync.fieldcheck`); list scopes."""
    from connector.sync.fieldcheck import field_problems
    from connector.sync.spec import parse_sync

    try:
        spec = parse_sync(text, file=file, apps=catalog.apps)
    except DocumentError as exc:
        return Report(file, exc.problems)
    found: list[Problem] = []
    warnings: list[Problem] = []
    scopes: set[str] = set()
    for obj in spec.objects.values():
        for adapter in obj.adapters.values():
            for action_id in _adapter_actions(adapter):
                action = catalog.actions.get(action_id)
                if action is None:
                    hint = did_you_mean(action_id, catalog.actions)
                    where = Location(file, None, None, f"sync.objects.{obj.name}")
                    found.append(Problem(where, f"unknown action {action_id!r}", hint))
                else:
                    scopes.update(action.scopes)
    if found:  # the adapters' actions are needed to check the field names
        return Report(file, tuple(found), (), tuple(sorted(scopes)))
    found, warnings = field_problems(spec, load_yaml(text, file=file), catalog)
    ordered = tuple(sorted(found, key=_order))
    return Report(file, ordered, tuple(warnings), tuple(sorted(scopes)), sync=True)


def _adapter_actions(adapter: Any) -> list[str]:
    names = ("create", "get", "update", "delete", "find", "tags_add", "tags_remove", "list")
    return [value for name in names if (value := getattr(adapter, name, None))]


def validate_text(
    text: str,
    catalog: Catalog,
    *,
    file: str | None = None,
    filters: Mapping[str, FilterSpec] = BUILTIN_FILTERS,
) -> Report:
    """Like :func:`validate_file`, for recipe text already in memory."""
    try:
        doc = load_yaml(text, file=file)
    except DocumentError as exc:
        return Report(file, exc.problems)
    return _report(read_recipe(doc, filters=filters, source=text), file, catalog)


def _report(draft: Draft, file: str | None, catalog: Catalog) -> Report:
    given = tuple(_placed(problem) for problem in draft.problems)
    if draft.recipe is None:
        return Report(file, given)
    checked = check_recipe(draft.recipe, catalog, skip=draft.broken)
    found = sorted([*given, *checked.problems], key=_order)
    return Report(file, tuple(found), checked.warnings, checked.scopes, draft.recipe)


_ON_ERROR_KEYS = ("retry", "backoff", "then")
"""Keys that belong under ``on_error:`` and are often written beside it."""


def _placed(problem: Problem) -> Problem:
    """An unknown ``retry:`` (``backoff:``, ``then:``) on a step or the recipe, with a hint
    saying where it goes."""
    name = problem.location.pointer.rpartition(".")[2]
    if problem.hint or name not in _ON_ERROR_KEYS or problem.message != f"unknown field {name!r}":
        return problem
    example = {"retry": "retry: 3", "backoff": "backoff: 2", "then": "then: dead_letter"}[name]
    hint = f"{name} goes under on_error, on the step or the recipe: on_error: {{{example}}}"
    return Problem(problem.location, problem.message, hint)


def _order(problem: Problem) -> tuple[int, int, str]:
    where = problem.location
    return (where.line or 0, where.column or 0, where.pointer)


def check_recipe(
    recipe: Recipe, catalog: Catalog, *, skip: frozenset[JsonPath] = frozenset()
) -> Report:
    """Check a loaded recipe against ``catalog``.

    :param skip: document paths whose values failed to load (their checks are left out).
    """
    checker = _Checker(recipe, catalog, skip)
    checker.run()
    return Report(
        recipe.file,
        tuple(sorted(checker.problems, key=_order)),
        tuple(sorted(checker.warnings, key=_order)),
        tuple(sorted(checker.scopes)),
        recipe,
    )


class _Checker:
    def __init__(self, recipe: Recipe, catalog: Catalog, skip: frozenset[JsonPath]) -> None:
        self.recipe = recipe
        self.catalog = catalog
        self.skip = skip
        self.problems: list[Problem] = []
        self.warnings: list[Problem] = []
        self.scopes: set[str] = set()
        self.validators: dict[str, Validator] = {}

    def add(self, where: Location, message: str, hint: str | None = None) -> None:
        self.problems.append(Problem(where, message, hint))

    def run(self) -> None:
        self.check_vars()
        self.check_trigger()
        for index, step in enumerate(self.recipe.steps):
            self.check_step(index, step)

    def check_vars(self) -> None:
        for inner, _ in _expressions(self.recipe.vars, ("vars",)):
            self.warnings.append(
                Problem(
                    self.recipe.locate(inner),
                    "vars are plain values: this {{ }} is kept as text",
                    "write the expression where the value is used",
                )
            )

    def check_trigger(self) -> None:
        use = self.recipe.trigger.use
        where = self.recipe.locate(("trigger", "use"))
        trigger = self.catalog.triggers.get(use)
        options: Mapping[str, Any] = self.recipe.document.data["trigger"].get("with", {})
        if trigger is None:
            self.add(where, f"unknown trigger {use!r}", _hint(use, self.catalog.triggers))
        else:
            self.scopes.update(trigger.scopes)
            if trigger.options_schema:
                self.check_input(("trigger", "with"), options, trigger.options_schema, None)
            elif options:
                self.add(
                    self.recipe.locate(("trigger", "with")),
                    f"trigger {use!r} takes no options",
                    "remove 'with' from the trigger",
                )
        for inner, template in self.recipe.trigger.with_.templates():
            path = ("trigger", "with", *inner)
            for node in template.paths():
                if node.root not in ("vars", "env"):
                    self.add(
                        self.recipe.locate(path, template, node.column),
                        f"trigger options cannot read {node.text!r}",
                        "only vars and env exist before the trigger fires",
                    )
                else:
                    self.check_path(path, template, node, None)

    def check_step(self, index: int, step: Step) -> None:
        action = self.catalog.actions.get(step.use)
        where = self.recipe.locate((*step.path, "use"))
        if action is None:
            self.add(where, f"unknown action {step.use!r}", _hint(step.use, self.catalog.actions))
        else:
            self.scopes.update(action.scopes)
            if action.deprecated:
                hint = f"use {action.use_instead!r} instead" if action.use_instead else None
                self.warnings.append(Problem(where, f"action {step.use!r} is deprecated", hint))
            given = self.recipe.document.data["steps"][index].get("with", {})
            self.check_input((*step.path, "with"), given, action.input_schema, action.id)
        for path, template in step.templates():
            if path in self.skip:
                continue
            for node in template.paths():
                self.check_path(path, template, node, index)

    def check_input(
        self, path: JsonPath, given: Mapping[str, Any], schema: Mapping[str, Any], key: str | None
    ) -> None:
        """The literal parts of ``given`` against ``schema``; expressions are left to run time."""
        action = self.catalog.actions.get(key) if key else None
        instance = dict(given)
        if action is not None:
            instance.update(action.location_fill(instance, _PLACEHOLDER))
        validator = self._validator(key, schema)
        dynamic = {pointer((*path, *inner)) for inner, _ in _expressions(given)}
        dynamic.update(pointer(broken) for broken in self.skip)
        top = pointer(path)
        for found in problems(validator, instance, lambda p: self.recipe.locate((*path, *p))):
            if found.location.pointer not in dynamic:
                owner = key or f"trigger {self.recipe.trigger.use}"
                noun = "input" if key else "option"
                self.problems.append(input_problem(found, top, schema, owner, noun))

    def _validator(self, key: str | None, schema: Mapping[str, Any]) -> Validator:
        if key is None:
            return compile_validator(schema, check=False)
        if key not in self.validators:
            self.validators[key] = compile_validator(schema, check=False)
        return self.validators[key]

    def check_path(
        self, path: JsonPath, template: Template, node: ExprPath, index: int | None
    ) -> None:
        """One path an expression reads, in the template at document ``path``."""
        where = self.recipe.locate(path, template, node.column)
        found = self.resolve(node, index, path)
        if isinstance(found, Problem):
            self.problems.append(Problem(where, found.message, found.hint))

    def resolve(
        self, node: ExprPath, index: int | None, path: JsonPath
    ) -> Mapping[str, Any] | Problem | None:
        """The schema ``node`` reads (None: unknown or open), or the problem with it."""
        if node.root == "trigger":
            trigger = self.catalog.triggers.get(self.recipe.trigger.use)
            if trigger is None:
                return None
            what = f"payload of {trigger.id}"
            if node.segments[:1] == ("origin",):
                return _followed({"properties": {"origin": ORIGIN_SCHEMA}}, node, 0, what)
            return _followed(trigger.payload_schema, node, 0, what)
        if node.root == "steps":
            return self.resolve_step(node, index)
        if node.root == "vars":
            return _check_vars(self.recipe.vars, node)
        if node.root == ITEM:
            return self.resolve_item(node, index, path)
        return None

    def resolve_step(self, node: ExprPath, index: int | None) -> Mapping[str, Any] | Problem | None:
        if not node.segments or not isinstance(node.segments[0], str):
            return None
        name = node.segments[0]
        steps = self.recipe.steps
        position = next((i for i, s in enumerate(steps) if s.id == name), None)
        if position is None:
            earlier = [s.id for s in steps[: index or 0]]
            return _problem(f"unknown step {name!r}", did_you_mean(name, earlier))
        if index is not None and position == index:
            return _problem(f"step {name!r} cannot read its own output")
        if index is not None and position > index:
            return _problem(
                f"step {name!r} runs after this one", "a step can only read the steps before it"
            )
        step = steps[position]
        action = self.catalog.actions.get(step.use)
        if action is None:
            return None
        schema = list_of(action.output_schema) if step.for_each else action.output_schema
        return _followed(schema, node, 1, f"output of {action.id}")

    def resolve_item(
        self, node: ExprPath, index: int | None, path: JsonPath
    ) -> Mapping[str, Any] | Problem | None:
        step = None if index is None else self.recipe.steps[index]
        if step is not None and path[-1] == "for_each":
            return _problem(f"for_each cannot read {ITEM!r}: the list comes first")
        if step is None or step.for_each is None:
            return _problem(f"{ITEM!r} exists only inside a step with for_each")
        source = step.for_each.parts[0]
        if not isinstance(source, ExprPath):
            return None
        listed = self.resolve(source, index, (*step.path, "for_each"))
        if not isinstance(listed, Mapping):
            return None
        items = follow(listed, [0])
        if not isinstance(items, Mapping):
            return None
        return _followed(items, node, 0, f"items of {source.text}")


def _followed(
    schema: Mapping[str, Any], node: ExprPath, skip: int, what: str
) -> Mapping[str, Any] | Problem | None:
    found = follow(schema, node.segments[skip:])
    if not isinstance(found, Miss):
        return found
    before = ExprPath(node.root, node.segments[: skip + found.depth], node.column).text
    return _problem(f"{before} {found.message} ({what})", found.hint)


def _check_vars(values: Mapping[str, Any], node: ExprPath) -> Problem | None:
    data: Any = values
    for depth, segment in enumerate(node.segments):
        before = ExprPath(node.root, node.segments[:depth], node.column).text
        if isinstance(data, Mapping) and isinstance(segment, str):
            if segment not in data:
                hint = did_you_mean(segment, data) or _declared(data)
                return _problem(f"{before} has no field {segment!r}", hint)
            data = data[segment]
        elif isinstance(data, list) and isinstance(segment, int):
            if not -len(data) <= segment < len(data):
                return _problem(f"{before} has no index {segment} (it holds {len(data)})")
            data = data[segment]
        else:
            return _problem(
                f"{before} has no {'index' if isinstance(segment, int) else 'field'} {segment!r}"
            )
    return None


def _declared(data: Mapping[str, Any]) -> str:
    return f"declared: {', '.join(sorted(data))}" if data else "the recipe declares no vars"


def _problem(message: str, hint: str | None = None) -> Problem:
    return Problem(Location(), message, hint)


def _hint(name: str, known: Mapping[str, object]) -> str:
    return did_you_mean(name, known) or "see `ghl-connector catalog`"


def _expressions(value: Any, path: JsonPath = ()) -> Iterator[tuple[JsonPath, str]]:
    """Every string inside ``value`` that holds an expression, with its path."""
    if isinstance(value, str):
        if "{{" in value:
            yield path, value
    elif isinstance(value, Mapping):
        for key, child in value.items():
            yield from _expressions(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _expressions(child, (*path, index))
