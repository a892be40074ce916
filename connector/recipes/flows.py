"""Flows: what each recipe and sync copies from where to where, and the pairs that go both ways.

A *flow* is "a change of ``OBJECT`` in app ``A`` makes ``WRITER`` write ``OBJECT'`` in app
``B``": a recipe has one per write step (from its trigger's app and object), a sync one per
synced object and direction. Two flows that run opposite ways over the same objects (a recipe
copying GHL tasks to a partner and a sync or recipe copying that partner's tasks to GHL), or one
that writes what it is triggered by, can feed each other. The pack skips its own echoes and
stops loops at run time (see :mod:`connector.recipes.footprints`); :func:`crossings` lets
``validate``
and ``serve`` say so before anything runs, naming both files.

Objects are compared by noun: a trigger or action id's second part (``ghl.tasks.created``:
``tasks``); tags are part of their contact.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from connector.catalog import Catalog
from connector.errors import ConnectorError
from connector.recipes.footprints import is_write
from connector.recipes.recipe import Recipe
from connector.sync.spec import SyncSpec

__all__ = ["Flow", "crossings", "recipe_flows", "sync_flows"]

_SAME = {"tags": "contacts"}


@dataclass(frozen=True, slots=True)
class Flow:
    """``writer`` (a file's name and what it is) copies ``source`` changes into ``target``
    (each an ``(app, object)`` pair)."""

    writer: str
    source: tuple[str, str]
    target: tuple[str, str]

    def describe(self) -> str:
        return f"{_name(self.source)} -> {_name(self.target)}"


def recipe_flows(label: str, recipe: Recipe, catalog: Catalog) -> list[Flow]:
    """The flows of a recipe: one per step whose action writes (unknown ids are skipped:
    validation reports them)."""
    source = _noun(recipe.trigger.use)
    found: list[Flow] = []
    for step in recipe.steps:
        try:
            action = catalog.action(step.use)
        except ConnectorError:
            continue
        flow = Flow(label, source, _noun(step.use))
        if is_write(action) and flow not in found:
            found.append(flow)
    return found


def sync_flows(label: str, spec: SyncSpec) -> list[Flow]:
    """The flows of a sync: each object, in each direction it allows."""
    found: list[Flow] = []
    for obj in spec.objects.values():
        name = _SAME.get(obj.name, obj.name)
        if obj.allows("ghl"):
            found.append(Flow(label, (spec.app("ghl"), name), (spec.partner, name)))
        if obj.allows("partner"):
            found.append(Flow(label, (spec.partner, name), (spec.app("ghl"), name)))
    found = list(dict.fromkeys(found))
    return found


def crossings(flows: Sequence[Flow]) -> list[str]:
    """Warnings for flows that can feed each other: a writer triggered by what it writes, and,
    once per object and pair of apps, writers that copy it in opposite directions (a two-way
    sync on its own is meant to: it tells its own echoes). Two kinds of record that write each
    other (an inbound message opens an opportunity, a won opportunity sends a message) are not
    a copy and are not warned about: the loop guard stops a real cycle."""
    warnings: list[str] = []
    for flow in flows:
        if flow.source == flow.target:
            warnings.append(
                f"{flow.writer} writes {_name(flow.target)}, which is what triggers it [the"
                " pack skips its own echoes; make sure its conditions leave alone what it wrote]"
            )
    ways: dict[tuple[tuple[str, str], tuple[str, str]], list[Flow]] = {}
    for flow in flows:
        if flow.source != flow.target:
            ways.setdefault((flow.source, flow.target), []).append(flow)
    for (source, target), forth in sorted(ways.items()):
        back = ways.get((target, source), [])
        writers = list(dict.fromkeys(f.writer for f in (*forth, *back)))
        if source > target or not back or len(writers) < 2 or source[1] != target[1]:
            continue  # one object copied between two apps; not one kind writing another
        there = ", ".join(dict.fromkeys(f.writer for f in forth))
        again = ", ".join(dict.fromkeys(f.writer for f in back))
        warnings.append(
            f"{_name(source)} and {_name(target)} are copied both ways by different files:"
            f" {_name(source)} -> {target[0]} by {there}; {_name(target)} -> {source[0]} by"
            f" {again} [the pack skips its own echoes and stops loops, but a change may be"
            " copied twice: to copy each change once, keep one file per direction]"
        )
    return warnings


def _noun(catalog_id: str) -> tuple[str, str]:
    app, _, rest = catalog_id.partition(".")
    noun = rest.partition(".")[0]
    return app, _SAME.get(noun, noun)


def _name(pair: tuple[str, str]) -> str:
    return f"{pair[0]} {pair[1]}"
