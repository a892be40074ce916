"""Which actions an MCP server offers, and the tool name of each.

Tool names must match ``^[a-zA-Z0-9_-]{1,64}$`` (some clients refuse dots). The rule
(docs/platforms/mcp.md): an action id made of dot-separated words of letters, digits and
``_`` (every id the manifest schema allows) becomes its tool name with each dot turned into
``-`` (``ghl.contacts.get`` -> ``ghl-contacts-get``), when that fits in 64 characters. Such
names never hold ``--``, and the map is one to one because those ids hold no ``-``. Any
other id (a plugin's with other characters, or a longer one) becomes its characters outside
``[A-Za-z0-9_]`` turned into ``_``, cut to 54 characters, then ``--`` and the first 8 hex
digits of the SHA-256 of the id: never equal to a name of the first kind, and two ids that
still collided would be refused when the server starts.
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence

from connector.catalog import Catalog, did_you_mean
from connector.errors import ConnectorError
from connector.hookspecs import Action
from connector.recipes.footprints import is_read

__all__ = ["DEFAULT_ACTIONS", "TOOL_NAME", "select", "tool_name", "tool_names"]

TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
"""What MCP clients accept as a tool name."""

DEFAULT_ACTIONS = ("ghl.contacts.*",)
"""The actions offered when ``--actions`` is not given: HighLevel's Contacts actions."""

_PLAIN_ID = re.compile(r"^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$")


def tool_name(action_id: str) -> str:
    """The tool name of ``action_id``, by the rule of this module's docstring."""
    name = action_id.replace(".", "-")
    if _PLAIN_ID.match(action_id) and len(name) <= 64:
        return name
    base = re.sub(r"[^A-Za-z0-9_]", "_", action_id)[:54]
    return f"{base}--{hashlib.sha256(action_id.encode()).hexdigest()[:8]}"


def tool_names(action_ids: Iterable[str]) -> dict[str, str]:
    """Tool name -> action id for ``action_ids``.

    :raises ConnectorError: two ids get the same name (a SHA-256 prefix collision).
    """
    names: dict[str, str] = {}
    for action_id in action_ids:
        name = tool_name(action_id)
        other = names.setdefault(name, action_id)
        if other != action_id:
            raise ConnectorError(
                f"actions {other!r} and {action_id!r} would both be the MCP tool {name!r}"
                " [leave one out with --actions]"
            )
    return names


def select(
    catalog: Catalog, patterns: Sequence[str] | None, *, read_only: bool = False
) -> list[Action]:
    """The actions whose id matches one of ``patterns`` (shell globs; default
    :data:`DEFAULT_ACTIONS`), in id order; with ``read_only``, only those :func:`is_read`.

    :raises ConnectorError: a pattern matches no action (naming it, with a close id).
    """
    wanted = list(patterns or DEFAULT_ACTIONS)
    actions: Mapping[str, Action] = catalog.actions
    chosen: set[str] = set()
    for pattern in wanted:
        matched = [i for i in actions if fnmatch.fnmatchcase(i, pattern)]
        if not matched:
            hint = did_you_mean(pattern, actions)
            where = f" ({hint})" if hint else " [see `ghl-connector catalog`]"
            raise ConnectorError(f"--actions {pattern!r}: matches no action{where}")
        chosen.update(matched)
    picked = [actions[i] for i in sorted(chosen)]
    if read_only:
        picked = [a for a in picked if is_read(a)]
        if not picked:
            raise ConnectorError(
                f"--read-only: no action of {' '.join(wanted)!r} only reads"
                " [choose others with --actions]"
            )
    return picked
