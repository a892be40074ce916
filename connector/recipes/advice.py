"""Plain-words advice for recipe problems: schema wording rewritten for people, and hints.

jsonschema says ``'get-contact' does not match '^[A-Za-z_][A-Za-z0-9_]*$'``; a recipe author
should read ``'get-contact' is not a valid name [use letters, digits and _ only, ...]``. The
expression parser puts its suggestions inside its message; :func:`split_hint` moves them to
the hint, where every other problem keeps its own.
"""

from __future__ import annotations

import re

from connector.errors import Problem

__all__ = ["LONE_HINTS", "friendlier", "split_hint"]

LONE_HINTS = {
    "if": 'write it as "{{ trigger.email }}"; combine conditions inside one {{ }} with and/or',
    "for_each": 'write it as "{{ trigger.tags }}": one expression giving a list',
}
"""Hints for an ``if`` or ``for_each`` that is not exactly one expression."""

_PATTERNS = {
    "^[A-Za-z_][A-Za-z0-9_]*$": (
        "is not a valid name",
        "use letters, digits and _ only, not starting with a digit (e.g. get_contact)",
    ),
    "^[a-z][a-z0-9_]*(\\.[a-z][a-z0-9_]*)+$": (
        "is not a valid id",
        "ids are lower case words joined by dots, e.g. ghl.contacts.get",
    ),
    "^[A-Z_][A-Z0-9_]*$": (
        "is not a valid environment variable name",
        "use capital letters, digits and _ (e.g. RECIPE_SUPPORT_EMAIL)",
    ),
}

_SHAPE_HINTS = (
    (re.compile(r"trigger"), "write it as: trigger: {use: ghl.contacts.created}"),
    (re.compile(r"steps\[\d+\]"), "each step is a mapping with at least id and use"),
    (re.compile(r".*\.with"), "give inputs as name: value lines under with, or remove with"),
)

_HINTED = re.compile(r"^(?P<detail>.*?) (?:\((?P<a>did you mean [^()]*\?)\)|\[(?P<b>[^\[\]]*)\])$")


def friendlier(problem: Problem) -> Problem:
    """A recipe schema problem in plain words: name patterns explained, common shape mistakes
    (a trigger or step written as text, an empty ``with``) given a hint."""
    for pattern, (what, hint) in _PATTERNS.items():
        suffix = f" does not match {pattern!r}"
        if problem.message.endswith(suffix):
            return Problem(problem.location, problem.message[: -len(suffix)] + " " + what, hint)
    if problem.message.endswith("is not of type 'object'") and problem.hint is None:
        for where, hint in _SHAPE_HINTS:
            if where.fullmatch(problem.location.pointer):
                return Problem(problem.location, problem.message, hint)
    return problem


def split_hint(detail: str) -> tuple[str, str | None]:
    """An expression error's text cut into message and hint: ``unknown filter 'lowr' (did you
    mean 'lower'?)`` gives ``("unknown filter 'lowr'", "did you mean 'lower'?")``."""
    match = _HINTED.match(detail)
    if match is None:
        return detail, None
    return match["detail"], match["a"] or match["b"]
