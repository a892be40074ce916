"""The expression language's tree: its nodes, its error, its filter contract and its limits.

A recipe value such as ``"Call {{ trigger.firstName | default('there') }} back"`` is parsed
once (by :mod:`connector.expressions.parser`) into frozen nodes defined here, and evaluated (by
:mod:`connector.expressions.template`) over plain JSON data only. Nothing in the tree can name a
Python
object: a :class:`Path` is a root name plus keys and indexes into JSON data, and a
:class:`FilterCall` holds the :class:`FilterSpec` it was resolved to at parse time.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeAlias, TypeVar

from connector.errors import Location, RecipeError

__all__ = [
    "JSON",
    "MAX_DEPTH",
    "MAX_EXPRESSION_LENGTH",
    "MAX_ITEMS",
    "MAX_STRING_LENGTH",
    "MAX_TEMPLATE_LENGTH",
    "ROOTS",
    "BoolOp",
    "Compare",
    "Expr",
    "ExpressionError",
    "FilterCall",
    "FilterSpec",
    "ListExpr",
    "Literal",
    "Not",
    "Path",
    "Pipe",
    "check_size",
    "json_type",
    "to_text",
]

JSON: TypeAlias = "None | bool | int | float | str | list[JSON] | dict[str, JSON]"

#: Longest text between one ``{{`` and its ``}}``.
MAX_EXPRESSION_LENGTH = 2_000
#: Longest template (a whole recipe value, text and expressions together).
MAX_TEMPLATE_LENGTH = 100_000
#: Deepest nesting of brackets, parentheses, ``not`` and filter arguments in one expression.
MAX_DEPTH = 32
#: Longest string any expression, filter or template may produce.
MAX_STRING_LENGTH = 1_000_000
#: Most items a list (or keys an object) produced by a filter may hold.
MAX_ITEMS = 100_000

_T = TypeVar("_T")

#: The names a path may start with, i.e. the keys of a render context (``item`` is the
#: current item inside a ``for_each`` step).
ROOTS = ("trigger", "steps", "vars", "env", "item")


class ExpressionError(RecipeError):
    """An expression that cannot be parsed, or whose evaluation failed.

    ``column`` is the 1-based position in the template text of the part at fault (None when a
    filter raised it and the evaluator has not placed it yet); ``pointer`` names the value
    inside a step's ``with`` (``email``, ``tags[0]``) when
    :func:`connector.expressions.template.compile_value` found it; ``detail`` is the message
    without any
    "where" prefix.
    """

    def __init__(
        self,
        detail: str,
        *,
        column: int | None = None,
        pointer: str = "",
        location: Location | None = None,
    ) -> None:
        self.detail = detail
        self.column = column
        self.pointer = pointer
        where = [pointer] if pointer and location is None else []
        if column is not None and (location is None or location.column is None):
            where.append(f"column {column}")
        super().__init__(": ".join([*where, detail]), location=location)

    def placed(self, *, column: int | None = None, pointer: str | None = None) -> ExpressionError:
        """A copy of this error with its column (if unset) and pointer filled in."""
        return ExpressionError(
            self.detail,
            column=self.column if self.column is not None else column,
            pointer=self.pointer if pointer is None else pointer,
        )

    def at(self, location: Location) -> ExpressionError:
        """A copy of this error placed in a file: ``file:line: pointer: column N: detail``.

        :param location: where the template's value stands (file, line, pointer). If it has
            a column, that file column replaces the column in the template text; callers that
            can map one to the other (single-line scalars) should pass it.
        """
        return ExpressionError(self.detail, column=self.column, location=location)


@dataclass(frozen=True, slots=True)
class FilterSpec:
    """One filter of the registry: ``value | name(arg, ...)`` calls ``func(value, *args)``.

    ``func`` receives and returns plain JSON values; it signals bad input by raising
    :class:`ExpressionError` (without a column: the evaluator adds it). ``min_args`` and
    ``max_args`` count the arguments in parentheses, not the piped value.
    """

    func: Callable[..., JSON]
    min_args: int = 0
    max_args: int = 0
    description: str = ""

    def __post_init__(self) -> None:
        if not 0 <= self.min_args <= self.max_args:
            raise ValueError(f"FilterSpec: bad argument bounds {self.min_args}..{self.max_args}")


@dataclass(frozen=True, slots=True)
class Literal:
    """A string, number, ``true``, ``false`` or ``null`` written in the expression."""

    value: str | int | float | bool | None
    column: int


@dataclass(frozen=True, slots=True)
class ListExpr:
    """A list written as ``[a, b, ...]``; its items are expressions."""

    items: tuple[Expr, ...]
    column: int


@dataclass(frozen=True, slots=True)
class Path:
    """A reference into the render context: ``steps.contact.tags[0]``, ``trigger["first name"]``.

    ``root`` is one of :data:`ROOTS`; ``segments`` are object keys (str) and list indexes (int,
    negative counts from the end).
    """

    root: str
    segments: tuple[str | int, ...]
    column: int

    @property
    def text(self) -> str:
        """The path written back in its canonical form, e.g. ``steps.contact["a b"][0]``."""
        out = self.root
        for seg in self.segments:
            if isinstance(seg, int):
                out += f"[{seg}]"
            elif seg.isidentifier() and seg.isascii():
                out += f".{seg}"
            else:
                out += "[" + _quote(seg) + "]"
        return out


@dataclass(frozen=True, slots=True)
class FilterCall:
    """One ``| name(args)`` of a pipe; ``spec`` is what the registry held for ``name``."""

    name: str
    args: tuple[Expr, ...]
    column: int
    spec: FilterSpec = field(repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class Pipe:
    """A value passed through filters left to right: ``head | f | g(x)``."""

    head: Expr
    calls: tuple[FilterCall, ...]
    column: int


@dataclass(frozen=True, slots=True)
class Not:
    """``not operand``: true when the operand is falsy."""

    operand: Expr
    column: int


@dataclass(frozen=True, slots=True)
class BoolOp:
    """``a and b and ...`` or ``a or b or ...``; always yields ``true`` or ``false``."""

    op: str
    operands: tuple[Expr, ...]
    column: int


@dataclass(frozen=True, slots=True)
class Compare:
    """``left op right`` with op one of ``== != < <= > >= in`` or ``not in``."""

    op: str
    left: Expr
    right: Expr
    column: int


Expr: TypeAlias = "Literal | ListExpr | Path | Pipe | Not | BoolOp | Compare"


def _quote(text: str) -> str:
    """``text`` as a double-quoted expression string literal."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + escaped.replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r") + '"'


def json_type(value: object) -> str:
    """The JSON name of ``value``'s type, for error messages: ``string``, ``list``, ``null``..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "list"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def to_text(value: JSON) -> str:
    """``value`` as it appears inside text: strings as they are, numbers plain, ``true``,
    ``false`` and ``null`` for those, lists and objects as JSON text.

    :raises ExpressionError: the value is not JSON (or nested too deeply to write out).
    """
    if isinstance(value, str):
        return value
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise ExpressionError(f"cannot write a {json_type(value)} as text") from exc
    return check_size(text)


def check_size(value: _T) -> _T:
    """``value`` itself, if it is within :data:`MAX_STRING_LENGTH` and :data:`MAX_ITEMS`.

    :raises ExpressionError: the string or list (or object) is too large.
    """
    if isinstance(value, str) and len(value) > MAX_STRING_LENGTH:
        raise ExpressionError(f"result longer than {MAX_STRING_LENGTH} characters")
    if isinstance(value, list | dict) and len(value) > MAX_ITEMS:
        raise ExpressionError(f"result has more than {MAX_ITEMS} items")
    return value
