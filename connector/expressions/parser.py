"""Reading template text into the expression tree: a hand-written tokenizer and parser.

Grammar of what stands between ``{{`` and ``}}`` (lowest precedence first)::

    expr     := and ("or" and)*
    and      := not ("and" not)*
    not      := "not" not | compare
    compare  := pipe [("==" | "!=" | "<" | "<=" | ">" | ">=" | "in" | "not" "in") pipe]
    pipe     := primary ("|" NAME ["(" [expr ("," expr)* [","]] ")"])*
    primary  := STRING | NUMBER | "true" | "false" | "null" | path | "(" expr ")"
              | "[" [expr ("," expr)* [","]] "]"
    path     := ROOT ("." NAME | "[" (STRING | INTEGER) "]")*

No Python is evaluated and no ``ast`` is used: the text is only ever cut into tokens and
matched against this grammar. Every error names the 1-based column in the template text.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import TypeAlias

from connector.expressions.syntax import (
    MAX_DEPTH,
    MAX_EXPRESSION_LENGTH,
    MAX_TEMPLATE_LENGTH,
    ROOTS,
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
)

__all__ = ["Part", "parse_parts"]

Part: TypeAlias = "str | Expr"

_OPERATORS = ("==", "!=", "<=", ">=", "}}", "<", ">", ".", "[", "]", "(", ")", ",", "|")
_COMPARISONS = frozenset({"==", "!=", "<", "<=", ">", ">="})
_CONSTANTS: dict[str, bool | None] = {"true": True, "false": False, "null": None}
_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"', "/": "/"}
_HEX4 = re.compile(r"[0-9a-fA-F]{4}")


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # "name", "number", "string", "op"; the closing "}}" is an "op"
    value: str | int | float
    column: int

    def describe(self) -> str:
        if self.kind == "string":
            text = str(self.value)
            return f"string {text[:30] + '...' if len(text) > 30 else text!r}"
        if self.kind == "number":
            return f"number {self.value}"
        return repr(self.value)

    def is_op(self, *ops: str) -> bool:
        return self.kind == "op" and self.value in ops

    def is_word(self, *words: str) -> bool:
        return self.kind == "name" and self.value in words


def _tokenize(text: str, start: int) -> list[_Token]:
    """The tokens from ``start`` (just after ``{{``) up to and including the closing ``}}``."""
    tokens: list[_Token] = []
    pos = start
    limit = min(len(text), start + MAX_EXPRESSION_LENGTH + 1)  # no token reaches past this
    while True:
        while pos < len(text) and text[pos] in " \t\r\n":
            pos += 1
        if pos - start > MAX_EXPRESSION_LENGTH:
            raise ExpressionError(
                f"expression longer than {MAX_EXPRESSION_LENGTH} characters", column=start - 1
            )
        if pos >= len(text):
            raise ExpressionError("'{{' is never closed by '}}'", column=start - 1)
        char = text[pos]
        if char in "'\"":
            value, end = _read_string(text, pos, start)
            tokens.append(_Token("string", value, pos + 1))
        elif (match := _NUMBER.match(text, pos, limit)) is not None:
            tokens.append(_Token("number", _number(match, pos + 1), pos + 1))
            end = match.end()
        elif (match := _NAME.match(text, pos, limit)) is not None:
            tokens.append(_Token("name", match.group(), pos + 1))
            end = match.end()
        else:
            op = next((op for op in _OPERATORS if text.startswith(op, pos)), None)
            if op is None and "}}" not in text[pos:]:
                raise ExpressionError("'{{' is never closed by '}}'", column=start - 1)
            if op is None:
                raise ExpressionError(f"unexpected character {char!r}", column=pos + 1)
            tokens.append(_Token("op", op, pos + 1))
            if op == "}}":
                return tokens
            end = pos + len(op)
        pos = end


def _number(match: re.Match[str], column: int) -> int | float:
    text = match.group()
    if match.group(1) is None and match.group(2) is None:
        return int(text)
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ExpressionError(f"number {text} is out of range", column=column)
    return value


def _read_string(text: str, pos: int, start: int) -> tuple[str, int]:
    """The string literal opening at ``pos`` and the position just after its closing quote.

    ``start`` is where the expression began (just after ``{{``), to bound its length.
    """
    quote, i = text[pos], pos + 1
    out: list[str] = []
    stop = min(len(text), start + MAX_EXPRESSION_LENGTH + 1)
    while i < stop:
        char = text[i]
        if char == quote:
            return "".join(out), i + 1
        if char != "\\":
            out.append(char)
            i += 1
            continue
        code = text[i + 1 : i + 2]
        if code in _ESCAPES:
            out.append(_ESCAPES[code])
            i += 2
        elif code == "u" and _HEX4.fullmatch(text, i + 2, i + 6):
            point = int(text[i + 2 : i + 6], 16)
            if 0xD800 <= point <= 0xDFFF:
                raise ExpressionError(f"surrogate escape \\u{point:04x}", column=i + 1)
            out.append(chr(point))
            i += 6
        else:
            raise ExpressionError(f"invalid escape {text[i : i + 2]!r} in string", column=i + 1)
    if stop < len(text):
        raise ExpressionError(
            f"expression longer than {MAX_EXPRESSION_LENGTH} characters", column=start - 1
        )
    raise ExpressionError("string is never closed", column=pos + 1)


class _Parser:
    """Recursive descent over one expression's tokens; see the module docstring for the grammar."""

    def __init__(
        self, tokens: list[_Token], filters: Mapping[str, FilterSpec], env: Collection[str] | None
    ) -> None:
        self.tokens = tokens
        self.index = 0
        self.depth = 0
        self.filters = filters
        self.env = env

    def peek(self, ahead: int = 0) -> _Token:
        return self.tokens[min(self.index + ahead, len(self.tokens) - 1)]

    def advance(self) -> _Token:
        token = self.peek()
        self.index = min(self.index + 1, len(self.tokens) - 1)
        return token

    def expect(self, op: str, context: str) -> _Token:
        token = self.peek()
        if not token.is_op(op):
            raise ExpressionError(
                f"expected {op!r} {context}, found {token.describe()}", column=token.column
            )
        return self.advance()

    def enter(self, column: int) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExpressionError(f"nested deeper than {MAX_DEPTH} levels", column=column)

    def parse(self) -> Expr:
        """The whole expression, which must end at the closing ``}}``."""
        if self.peek().is_op("}}"):
            raise ExpressionError("empty expression", column=self.peek().column)
        expr = self.parse_or()
        token = self.peek()
        if not token.is_op("}}"):
            chained = token.value in _COMPARISONS
            hint = " (comparisons cannot be chained; use 'and')" if chained else ""
            raise ExpressionError(
                f"unexpected {token.describe()}, expected '}}}}'{hint}", column=token.column
            )
        return expr

    def parse_or(self) -> Expr:
        return self._bool_chain("or", self.parse_and)

    def parse_and(self) -> Expr:
        return self._bool_chain("and", self.parse_not)

    def _bool_chain(self, word: str, operand: Callable[[], Expr]) -> Expr:
        first = self.peek()
        operands = [operand()]
        while self.peek().is_word(word):
            self.advance()
            operands.append(operand())
        if len(operands) == 1:
            return operands[0]
        return BoolOp(word, tuple(operands), first.column)

    def parse_not(self) -> Expr:
        token = self.peek()
        if token.is_word("not"):
            self.advance()
            self.enter(token.column)
            operand = self.parse_not()
            self.depth -= 1
            return Not(operand, token.column)
        return self.parse_compare()

    def parse_compare(self) -> Expr:
        left = self.parse_pipe()
        token = self.peek()
        if token.kind == "op" and token.value in _COMPARISONS:
            op = str(token.value)
        elif token.is_word("in"):
            op = "in"
        elif token.is_word("not") and self.peek(1).is_word("in"):
            self.advance()
            op = "not in"
        else:
            return left
        self.advance()
        return Compare(op, left, self.parse_pipe(), token.column)

    def parse_pipe(self) -> Expr:
        start = self.peek()
        head = self.parse_primary()
        calls: list[FilterCall] = []
        while self.peek().is_op("|"):
            self.advance()
            calls.append(self.parse_filter())
        return Pipe(head, tuple(calls), start.column) if calls else head

    def parse_filter(self) -> FilterCall:
        name = self.advance()
        if name.kind != "name":
            raise ExpressionError(
                f"expected a filter name after '|', found {name.describe()}", column=name.column
            )
        args: tuple[Expr, ...] = ()
        if self.peek().is_op("("):
            opening = self.advance()
            self.enter(opening.column)
            args = self._items(")", "to close the filter's arguments")
            self.depth -= 1
        return FilterCall(str(name.value), args, name.column, self._spec(name, len(args)))

    def _spec(self, name: _Token, count: int) -> FilterSpec:
        spec = self.filters.get(str(name.value))
        if spec is None:
            close = difflib.get_close_matches(str(name.value), list(self.filters), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ExpressionError(f"unknown filter {name.value!r}{hint}", column=name.column)
        if not spec.min_args <= count <= spec.max_args:
            wanted = (
                str(spec.min_args)
                if spec.min_args == spec.max_args
                else f"{spec.min_args} to {spec.max_args}"
            )
            raise ExpressionError(
                f"filter {name.value!r} takes {wanted} argument(s), got {count}",
                column=name.column,
            )
        return spec

    def _items(self, closing: str, context: str) -> tuple[Expr, ...]:
        """Comma-separated expressions up to ``closing`` (consumed); a trailing comma is fine."""
        items: list[Expr] = []
        while not self.peek().is_op(closing):
            items.append(self.parse_or())
            if not self.peek().is_op(","):
                break
            self.advance()
        self.expect(closing, context)
        return tuple(items)

    def parse_primary(self) -> Expr:
        token = self.advance()
        if token.kind in ("string", "number"):
            return Literal(token.value, token.column)
        if token.kind == "name":
            word = str(token.value)
            if word in _CONSTANTS:
                return Literal(_CONSTANTS[word], token.column)
            if word in ROOTS:
                return self.parse_path(token)
            close = difflib.get_close_matches(word, [*ROOTS, *_CONSTANTS], n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ExpressionError(
                f"unknown name {word!r} [{hint}paths start with {', '.join(ROOTS)}]",
                column=token.column,
            )
        if token.is_op("("):
            self.enter(token.column)
            expr = self.parse_or()
            self.expect(")", "to close '('")
            self.depth -= 1
            return expr
        if token.is_op("["):
            self.enter(token.column)
            items = self._items("]", "to close the list")
            self.depth -= 1
            return ListExpr(items, token.column)
        raise ExpressionError(f"unexpected {token.describe()}", column=token.column)

    def parse_path(self, root: _Token) -> Path:
        segments: list[str | int] = []
        while True:
            token = self.peek()
            if token.is_op("."):
                self.advance()
                name = self.advance()
                if name.kind != "name":
                    raise ExpressionError(
                        f"expected a name after '.', found {name.describe()}", column=name.column
                    )
                segments.append(str(name.value))
            elif token.is_op("["):
                self.advance()
                key = self.advance()
                if key.kind == "string" and isinstance(key.value, str):
                    segments.append(key.value)
                elif key.kind == "number" and isinstance(key.value, int):
                    segments.append(key.value)
                else:
                    raise ExpressionError(
                        f"expected a quoted key or an integer index, found {key.describe()}",
                        column=key.column,
                    )
                self.expect("]", "to close the index")
            else:
                break
        path = Path(str(root.value), tuple(segments), root.column)
        if path.root == "env":
            self._check_env(path)
        return path

    def _check_env(self, path: Path) -> None:
        name = path.segments[0] if path.segments else None
        if not isinstance(name, str):
            raise ExpressionError("'env' must be followed by a variable name", column=path.column)
        if self.env is not None and name not in self.env:
            allowed = ", ".join(sorted(self.env)) or "none"
            raise ExpressionError(
                f"environment variable {name!r} is not allowed [allowed: {allowed}]",
                column=path.column,
            )


def parse_parts(
    text: str, filters: Mapping[str, FilterSpec], env: Collection[str] | None = None
) -> tuple[Part, ...]:
    """Cut ``text`` into plain-text pieces and parsed expressions, in order.

    :param text: the template, e.g. ``"Hi {{ trigger.firstName }}"``.
    :param filters: the registry that every ``| name`` must be found in (with a fitting
        number of arguments).
    :param env: the environment variable names ``env.NAME`` may use; None allows any.
    :returns: the pieces; text pieces are never empty.
    :raises ExpressionError: on any syntax error, unknown filter or name, or a limit exceeded.
    """
    if len(text) > MAX_TEMPLATE_LENGTH:
        raise ExpressionError(f"template longer than {MAX_TEMPLATE_LENGTH} characters")
    parts: list[Part] = []
    pos = 0
    while (start := text.find("{{", pos)) != -1:
        if start > pos:
            parts.append(text[pos:start])
        tokens = _tokenize(text, start + 2)
        parts.append(_Parser(tokens, filters, env).parse())
        pos = tokens[-1].column + 1  # just after the closing "}}"
    if pos < len(text):
        parts.append(text[pos:])
    return tuple(parts)
