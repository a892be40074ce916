"""The sandbox's routes, built FROM the catalog: each LinkedPhone action's method and path
template, its handler, and how a request turns back into the action's flat input.

Because the routes are read from the same manifest section the connector calls through, the
server and the catalog cannot drift: an action without a handler (or a handler without an
action) stops the sandbox at start, and every request is checked against the action's own
input schema, so the sandbox accepts exactly what the catalog declares.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from connector.documents.schema import Validator, compile_validator, problems
from connector.errors import Location
from connector.hookspecs import Action
from connector.sandbox.linkedphone.answers import ApiError
from connector.sandbox.linkedphone.operations import Handler

__all__ = ["Route", "Router", "build_routes"]


@dataclass(frozen=True, slots=True)
class Route:
    """One action served: ``name`` (``"POST /tasks/{task_id}/complete"``) names it in stats."""

    action: Action
    handler: Handler
    validator: Validator
    name: str = field(init=False)
    """``"METHOD /path/{template}"``."""
    placeholders: tuple[str, ...] = field(init=False)
    """The path's ``{placeholder}`` names, in order."""

    def __post_init__(self) -> None:
        # Worked out once: every request needs both.
        object.__setattr__(self, "name", f"{self.action.method} {self.action.path}")
        names = tuple(p[1:-1] for p in _segments(self.action.path) if p.startswith("{"))
        object.__setattr__(self, "placeholders", names)

    @property
    def reads_body(self) -> bool:
        """Whether the request carries a JSON body."""
        return self.action.body

    def flat_input(
        self, path_values: Mapping[str, str], query: Mapping[str, str], body: object
    ) -> dict[str, Any]:
        """The action's flat input from the request, validated against its input schema.

        Query values arrive as text; those the schema types as integers are converted.

        :raises ApiError: 400 for a body that is not an object, 422 listing every problem.
        """
        if self.reads_body and not isinstance(body, dict):
            raise ApiError(400, "invalid_request", "the body must be a JSON object")
        data: dict[str, Any] = dict(body) if isinstance(body, dict) else {}
        properties = self.action.input_schema.get("properties", {})
        for param in self.action.params:
            if param.location == "path":
                data[param.name] = path_values[param.wire_name]
            elif param.location == "query" and param.wire_name in query:
                data[param.name] = _typed(query[param.wire_name], properties.get(param.name, {}))
            elif param.location == "body" and param.wire_name in data:
                data[param.name] = data.pop(param.wire_name)
        found = problems(self.validator, data, _where)
        if found:
            detail = "; ".join(f"{p.location.pointer or '(input)'}: {p.message}" for p in found)
            raise ApiError(422, "invalid_request", detail)
        return data


def build_routes(actions: Iterable[Action], handlers: Mapping[str, Handler]) -> tuple[Route, ...]:
    """One route per action, with its handler.

    :raises ValueError: an action has no handler, or a handler no action (the catalog and
        the sandbox disagree).
    """
    chosen = {a.id: a for a in actions}
    missing = sorted(set(chosen) - set(handlers))
    extra = sorted(set(handlers) - set(chosen))
    if missing or extra:
        raise ValueError(
            f"linkedphone sandbox: catalog and handlers differ: no handler for {missing!r}, "
            f"no action for {extra!r} [edit tools/apps/linkedphone.yaml or operations.py]"
        )
    return tuple(
        Route(action, handlers[aid], compile_validator(
            action.input_schema, source=f"{aid} input schema", check=False))
        for aid, action in sorted(chosen.items())
    )


class Router:
    """Finds the route of a method and path; literal segments beat ``{placeholders}``."""

    def __init__(self, routes: Iterable[Route]) -> None:
        self.routes = tuple(routes)
        self._table: dict[tuple[str, int], list[tuple[tuple[str | None, ...], Route]]] = {}
        for route in self.routes:
            parts = _segments(route.action.path)
            pattern = tuple(None if p.startswith("{") else p for p in parts)
            self._table.setdefault((route.action.method, len(parts)), []).append((pattern, route))
        for entries in self._table.values():
            entries.sort(key=lambda e: -sum(p is not None for p in e[0]))

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        """The route and its path values (by placeholder name), or None."""
        parts = _segments(path)
        for pattern, route in self._table.get((method, len(parts)), ()):
            values: list[str] = []
            for literal, part in zip(pattern, parts, strict=True):
                if literal is None and part:
                    values.append(part)
                elif literal != part:
                    break
            else:
                return route, dict(zip(route.placeholders, values, strict=True))
        return None

    def allows(self, path: str) -> bool:
        """Whether any method has a route at ``path`` (405 rather than 404)."""
        return any(self.match(m, path) for m in ("GET", "POST", "PUT", "PATCH", "DELETE"))


def _segments(path: str) -> list[str]:
    return path.strip("/").split("/")


def _typed(text: str, schema: Mapping[str, Any]) -> object:
    """A query value as the schema's type: integers are converted when they parse."""
    if schema.get("type") == "integer":
        try:
            return int(text)
        except ValueError:
            return text
    return text


def _where(path: tuple[str | int, ...]) -> Location:
    from connector.documents.document import pointer

    return Location(None, pointer=pointer(path))
