"""Recipe templates: values holding ``{{ ... }}`` expressions, parsed once, rendered over JSON.

```yaml
with:
  email: "{{ steps.contact.contact.email | lower }}"   # a lone expression keeps its type
  tags: "{{ steps.contact.contact.tags }}"             # ... so this stays a list
  title: "Call {{ trigger.firstName | default('there') }} back"   # text around: a string
```

:func:`parse_template` reads one string into a :class:`Template` at load time (syntax, filter
names and argument counts are checked then); :func:`compile_value` does the same for every
string inside a step's ``with``. Rendering walks the frozen tree over the context's plain
JSON data (keys ``trigger``, ``steps``, ``vars``, ``env``, ``item``): nothing is evaluated as
Python and no attribute of any object is ever read. The grammar is in
:mod:`connector.expressions.parser`, the
filters in :mod:`connector.expressions.filters`, the user documentation in ``docs/expressions.md``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from connector.documents.document import JsonPath, pointer
from connector.expressions.filters import BUILTIN_FILTERS
from connector.expressions.parser import Part, parse_parts
from connector.expressions.syntax import (
    JSON,
    MAX_STRING_LENGTH,
    BoolOp,
    Compare,
    Expr,
    ExpressionError,
    FilterCall,
    FilterSpec,
    ListExpr,
    Literal,
    Not,
    Path,
    Pipe,
    check_size,
    json_type,
    to_text,
)

__all__ = [
    "BUILTIN_FILTERS",
    "CompiledValue",
    "ExpressionError",
    "FilterCall",
    "FilterSpec",
    "Path",
    "Template",
    "compile_value",
    "parse_template",
    "truthy",
]

_MAX_COMPARE_DEPTH = 100
_JSON_TYPES = (bool, int, float, str, list, dict)


def truthy(value: JSON) -> bool:
    """Whether an ``if:`` holding ``value`` passes: null, false, 0, '', [] and {} do not."""
    return bool(value)


@dataclass(frozen=True, slots=True)
class Template:
    """One recipe string, cut into text pieces and parsed expressions."""

    text: str
    parts: tuple[Part, ...]

    @property
    def is_literal(self) -> bool:
        """True when the text holds no expression (it renders to itself)."""
        return all(isinstance(part, str) for part in self.parts)

    @property
    def is_lone(self) -> bool:
        """True when the text is exactly one ``{{ ... }}``, so rendering keeps the JSON type."""
        return len(self.parts) == 1 and not isinstance(self.parts[0], str)

    def render(self, context: Mapping[str, Any], *, strict: bool = False) -> JSON:
        """The value of the template over ``context``.

        :param context: plain JSON data under ``trigger``, ``steps``, ``vars``, ``env`` and
            (in a ``for_each`` step) ``item``.
        :param strict: a path that leads nowhere is an error instead of null.
        :returns: the lone expression's value, or a string when there is text around.
        :raises ExpressionError: a filter refused its input, a comparison mixed types, a
            result grew past the limits, or (strict) a path was missing.
        """
        lone = self.parts[0] if len(self.parts) == 1 else ""
        if not isinstance(lone, str):
            return _evaluate(lone, context, strict)
        pieces: list[str] = []
        total = 0
        for part in self.parts:
            if isinstance(part, str):
                piece = part
            else:
                value = _evaluate(part, context, strict)
                try:
                    piece = to_text(value)
                except ExpressionError as exc:
                    raise exc.placed(column=part.column) from exc
            total += len(piece)
            if total > MAX_STRING_LENGTH:
                column = None if isinstance(part, str) else part.column
                raise ExpressionError(
                    f"result longer than {MAX_STRING_LENGTH} characters", column=column
                )
            pieces.append(piece)
        return "".join(pieces)

    def paths(self) -> tuple[Path, ...]:
        """Every path the template reads (in filter arguments too), in column order."""
        found = [node for node in self._nodes() if isinstance(node, Path)]
        return tuple(sorted(found, key=lambda node: node.column))

    def filter_calls(self) -> tuple[FilterCall, ...]:
        """Every filter call (``.name``, ``len(.args)``, ``.column``), in column order."""
        found = [call for node in self._nodes() if isinstance(node, Pipe) for call in node.calls]
        return tuple(sorted(found, key=lambda call: call.column))

    def _nodes(self) -> Iterator[Expr]:
        for part in self.parts:
            if not isinstance(part, str):
                yield from _walk(part)


def parse_template(
    text: str,
    *,
    filters: Mapping[str, FilterSpec] = BUILTIN_FILTERS,
    env: Collection[str] | None = None,
) -> Template:
    """Parse one recipe string.

    :param text: the string, e.g. ``"Hi {{ trigger.firstName | default('there') }}"``.
    :param filters: the filter registry (built-ins plus plugins' filters).
    :param env: the environment variables ``env.NAME`` may name; None allows any name (the
        render context's ``env`` should then hold only allowed variables).
    :raises ExpressionError: with the 1-based column of the fault in ``text``.
    """
    return Template(text, parse_parts(text, filters, env))


@dataclass(frozen=True, slots=True)
class _Constant:
    value: JSON


@dataclass(frozen=True, slots=True)
class _Object:
    items: tuple[tuple[str, _Node], ...]


@dataclass(frozen=True, slots=True)
class _Array:
    items: tuple[_Node, ...]


_Node = Template | _Constant | _Object | _Array


@dataclass(frozen=True, slots=True)
class CompiledValue:
    """A nested value (a step's ``with``) whose strings were parsed as templates."""

    root: _Node

    def render(self, context: Mapping[str, Any], *, strict: bool = False) -> JSON:
        """The value with every template rendered; see :meth:`Template.render`."""
        return _render_node(self.root, context, strict, ())

    def templates(self) -> Iterator[tuple[JsonPath, Template]]:
        """Each template holding an expression, with its path inside the value."""
        yield from _templates(self.root, ())


def compile_value(
    value: object,
    *,
    filters: Mapping[str, FilterSpec] = BUILTIN_FILTERS,
    env: Collection[str] | None = None,
    path: JsonPath = (),
) -> CompiledValue:
    """Parse every string inside ``value`` (plain YAML/JSON data) as a template.

    :param value: the data, e.g. a step's ``with`` mapping.
    :param filters: the filter registry, as for :func:`parse_template`.
    :param env: the allowed environment variable names, as for :func:`parse_template`.
    :param path: where ``value`` stands in its document (``("steps", 2, "with")``), so that
        errors carry a full pointer such as ``steps[2].with.email``.
    :raises ExpressionError: the first string that does not parse; its ``pointer`` names it.
    """
    return CompiledValue(_compile(value, filters, env, path))


def _compile(
    value: object, filters: Mapping[str, FilterSpec], env: Collection[str] | None, path: JsonPath
) -> _Node:
    if isinstance(value, str):
        try:
            template = parse_template(value, filters=filters, env=env)
        except ExpressionError as exc:
            raise exc.placed(pointer=pointer(path)) from exc
        return _Constant(value) if template.is_literal else template
    if isinstance(value, Mapping):
        return _Object(
            tuple((str(k), _compile(v, filters, env, (*path, str(k)))) for k, v in value.items())
        )
    if isinstance(value, list | tuple):
        return _Array(tuple(_compile(v, filters, env, (*path, i)) for i, v in enumerate(value)))
    if value is None or isinstance(value, bool | int | float):
        return _Constant(value)
    raise ExpressionError(f"a {json_type(value)} is not JSON data", pointer=pointer(path))


def _render_node(node: _Node, context: Mapping[str, Any], strict: bool, path: JsonPath) -> JSON:
    if isinstance(node, _Constant):
        return node.value
    if isinstance(node, _Object):
        return {k: _render_node(v, context, strict, (*path, k)) for k, v in node.items}
    if isinstance(node, _Array):
        return [_render_node(v, context, strict, (*path, i)) for i, v in enumerate(node.items)]
    try:
        return node.render(context, strict=strict)
    except ExpressionError as exc:
        raise exc.placed(pointer=pointer(path)) from exc


def _templates(node: _Node, path: JsonPath) -> Iterator[tuple[JsonPath, Template]]:
    if isinstance(node, Template):
        yield path, node
    elif isinstance(node, _Object):
        for key, child in node.items:
            yield from _templates(child, (*path, key))
    elif isinstance(node, _Array):
        for index, child in enumerate(node.items):
            yield from _templates(child, (*path, index))


def _walk(node: Expr) -> Iterator[Expr]:
    """``node`` and every node under it, filter arguments included, depth first."""
    yield node
    match node:
        case ListExpr(items=items):
            for item in items:
                yield from _walk(item)
        case Pipe(head=head, calls=calls):
            yield from _walk(head)
            for call in calls:
                for arg in call.args:
                    yield from _walk(arg)
        case Not(operand=operand):
            yield from _walk(operand)
        case BoolOp(operands=operands):
            for operand in operands:
                yield from _walk(operand)
        case Compare(left=left, right=right):
            yield from _walk(left)
            yield from _walk(right)


def _evaluate(node: Expr, context: Mapping[str, Any], strict: bool) -> JSON:
    match node:
        case Literal(value=constant):
            return constant
        case ListExpr(items=items):
            return [_evaluate(item, context, strict) for item in items]
        case Path():
            return _lookup(node, context, strict)
        case Pipe(head=head, calls=calls):
            value = _evaluate(head, context, strict)
            for call in calls:
                args = [_evaluate(arg, context, strict) for arg in call.args]
                value = _apply(call, value, args)
            return value
        case Not(operand=operand):
            return not truthy(_evaluate(operand, context, strict))
        case BoolOp(op="and", operands=operands):
            return all(truthy(_evaluate(each, context, strict)) for each in operands)
        case BoolOp(operands=operands):
            return any(truthy(_evaluate(each, context, strict)) for each in operands)
        case Compare(op=op, left=left, right=right, column=column):
            a, b = _evaluate(left, context, strict), _evaluate(right, context, strict)
            try:
                return _compare(op, a, b)
            except ExpressionError as exc:
                raise exc.placed(column=column) from exc
    raise TypeError(f"not an expression node: {node!r}")


def _apply(call: FilterCall, value: JSON, args: list[JSON]) -> JSON:
    try:
        result = check_size(call.spec.func(value, *args))
    except ExpressionError as exc:
        if exc.column is not None:
            raise
        raise exc.placed(column=call.column) from exc
    if result is not None and not isinstance(result, _JSON_TYPES):
        raise ExpressionError(
            f"filter {call.name!r} returned a {json_type(result)}, not a JSON value",
            column=call.column,
        )
    return result


def _lookup(path: Path, context: Mapping[str, Any], strict: bool) -> JSON:
    if path.root not in context:
        if strict:
            raise ExpressionError(f"{path.root!r} is not available here", column=path.column)
        return None
    value = context[path.root]
    for depth, segment in enumerate(path.segments):
        if isinstance(segment, str) and isinstance(value, Mapping) and segment in value:
            value = value[segment]
        elif (
            isinstance(segment, int)
            and isinstance(value, list)
            and (-len(value) <= segment < len(value))
        ):
            value = value[segment]
        elif strict:
            where = Path(path.root, path.segments[:depth], path.column).text
            what = f"no key {segment!r}" if isinstance(segment, str) else f"no index {segment}"
            raise ExpressionError(
                f"{path.text!r} not found: {where!r} is a {json_type(value)} with {what}",
                column=path.column,
            )
        else:
            return None
    return value  # type: ignore[no-any-return]  # the context holds plain JSON data


def _compare(op: str, a: JSON, b: JSON) -> bool:
    if op == "==":
        return _equal(a, b, 0)
    if op == "!=":
        return not _equal(a, b, 0)
    if op in ("in", "not in"):
        return _contains(b, a) == (op == "in")
    numbers = all(isinstance(x, int | float) and not isinstance(x, bool) for x in (a, b))
    if not numbers and not (isinstance(a, str) and isinstance(b, str)):
        raise ExpressionError(f"cannot compare {json_type(a)} with {json_type(b)} using {op!r}")
    if op == "<":
        return a < b  # type: ignore[operator]  # both numbers or both strings, checked above
    if op == "<=":
        return a <= b  # type: ignore[operator]  # as above
    if op == ">":
        return a > b  # type: ignore[operator]  # as above
    return a >= b  # type: ignore[operator]  # as above


def _contains(container: JSON, item: JSON) -> bool:
    if container is None:
        return False
    if isinstance(container, list):
        return any(_equal(item, each, 0) for each in container)
    if isinstance(container, str | dict) and isinstance(item, str):
        return item in container
    raise ExpressionError(f"cannot look for a {json_type(item)} in a {json_type(container)}")


def _equal(a: JSON, b: JSON, depth: int) -> bool:
    """JSON equality: ``true`` is not ``1``, ``1`` is ``1.0``, lists and objects compare deeply."""
    if depth > _MAX_COMPARE_DEPTH:
        raise ExpressionError(f"values nested deeper than {_MAX_COMPARE_DEPTH} to compare")
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_equal(x, y, depth + 1) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k], depth + 1) for k in a)
    if isinstance(a, list | dict) or isinstance(b, list | dict):
        return False
    return a == b
