"""Plain words for PyYAML's syntax errors: what is wrong, where it started, and how to fix it.

PyYAML reports where the parser gave up (``expected ',' or '}', but got ':'`` on the line
after an unclosed ``{``); a user needs the place the problem started and a hint. Errors not
listed here keep PyYAML's own text.
"""

from __future__ import annotations

import re

import yaml

__all__ = ["explain"]

_QUOTE = "quote a value that starts with a character YAML reserves ({ [ * & ! % @ `)"


def explain(exc: yaml.MarkedYAMLError) -> tuple[yaml.Mark | None, str, str | None]:
    """Where to report ``exc``, what to say (``invalid YAML: ...``) and a hint (or None)."""
    problem = str(exc.problem or "")
    context = str(exc.context or "")
    started = exc.context_mark
    where = exc.problem_mark or started
    for kind, left, right in (("mapping", "{", "}"), ("sequence", "[", "]")):
        if context == f"while parsing a flow {kind}" and started is not None:
            return started, f"invalid YAML: this {left!r} is never closed by {right!r}", (
                f"close it, or {_QUOTE}; an expression goes in quotes: \"{{{{ ... }}}}\""
            )
    if context == "while scanning a quoted scalar" and started is not None:
        return started, "invalid YAML: this quoted value is never closed", "add the closing quote"
    if problem == "mapping values are not allowed here":
        return where, "invalid YAML: a ':' where no key can start", (
            "indent this line like the keys above it, or quote a value that contains ': '"
        )
    if context == "while scanning a simple key" and started is not None:
        return started, "invalid YAML: this line is neither 'key: value' nor a list item", (
            "add the ':' after the key, or '- ' before a list item"
        )
    if problem.startswith("expected <block end>"):
        return where, "invalid YAML: this line's indentation does not match the lines above", (
            "indent the keys of one mapping alike; list items start with '- '"
        )
    found = re.fullmatch(r"found character '(.+)' that cannot start any token", problem)
    if found and found.group(1) == "\\t":
        return where, "invalid YAML: a tab character", "YAML indents with spaces only"
    if found:
        return where, f"invalid YAML: a value cannot start with {found.group(1)!r}", _QUOTE
    return where, f"invalid YAML: {problem or context}", None
