"""Action ids for spec operations: ``ghl.<resource>.<verb>``, readable and globally unique.

The rule (docs/catalog.md, "Action ids"):

1. ``resource`` is the operation's first tag in snake_case (``Calendar Groups`` ->
   ``calendar_groups``; text after ``:`` is dropped). A tag used by more than one spec
   (``Agents``, ``Search``, ``Template``, ...) is qualified by the spec's file name
   (``voice_ai_agents``). ``resources:`` in the overrides names a resource by hand
   (``users/Search: users``).
2. ``verb`` is the operationId in snake_case without the words of the resource (singular or
   plural) and without the words in ``drop_words`` (``fb`` in a ``facebook_*`` resource): so
   ``create-calendar-group`` under ``Calendar Groups`` is ``create``. When nothing is left the
   first word of the operationId is the verb.
3. Ids two operations of different specs would share are qualified by their spec's file name;
   within one spec the verb keeps all the operationId's words (``get_calendars`` beside
   ``get_calendar``). An id still shared after that stops the generator with both operations
   named, to be settled in ``actions:``.
4. An ``id`` in ``actions:`` (by ``METHOD path``) always wins.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping

from catalog_json import CatalogError, Json

_WORD = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")


def words(text: str) -> list[str]:
    """The lower-case words of ``text`` (camelCase, kebab-case, spaces and symbols split)."""
    return [w.lower() for w in _WORD.findall(text)]


def guess_description(name: str) -> str:
    """A description written from a property name: ``calendarId`` -> ``Calendar id.``."""
    text = " ".join(words(name)) or name
    return text[:1].upper() + text[1:] + "."


def snake(text: str) -> str:
    """``text`` as one snake_case name that starts with a letter."""
    name = "_".join(words(text))
    return name if name[:1].isalpha() else f"n{name}"


def _forms(word: str) -> set[str]:
    """A word with its plain singular and plural forms."""
    forms = {word, f"{word}s", f"{word}es"}
    if word.endswith("ies"):
        forms.add(word[:-3] + "y")
    elif word.endswith("es"):
        forms.update({word[:-2], word[:-1]})
    elif word.endswith("s"):
        forms.add(word[:-1])
    if word.endswith("y"):
        forms.add(word[:-1] + "ies")
    return forms


class IdRule:
    """Derives the ids of all operations of all specs at once (collisions need the whole set)."""

    def __init__(self, config: Mapping[str, Json], tag_specs: Mapping[str, set[str]]) -> None:
        """:param config: the overrides' ``ids`` block; :param tag_specs: specs using each tag."""
        self.resources: Mapping[str, str] = config.get("resources", {})
        self.drop: Mapping[str, list[str]] = config.get("drop_words", {})
        self.tag_specs = tag_specs
        self.notes: list[str] = []

    def resource(self, stem: str, tag: str) -> str:
        """The resource part of an id for an operation of spec ``stem`` tagged ``tag``."""
        if f"{stem}/{tag}" in self.resources:
            return str(self.resources[f"{stem}/{tag}"])
        base = snake(tag.split(":")[0].split("|")[-1] if tag else stem)
        if len(self.tag_specs.get(tag, ())) > 1 and not base.startswith(snake(stem)):
            return f"{snake(stem)}_{base}"
        return base

    def verb(self, resource: str, operation: str) -> str:
        """The verb part: the operationId's words without the resource's."""
        parts = words(operation)
        gone: set[str] = set()
        for word in resource.split("_"):
            gone |= _forms(word)
            for extra in self.drop.get(word, []):
                gone |= _forms(extra)
        kept = [w for w in parts if w not in gone]
        verb = "_".join(kept or parts[:1])
        return verb if verb[:1].isalpha() else f"n{verb}"

    def assign(
        self, operations: list[tuple[str, str, str, Json]], fixed: Mapping[str, str]
    ) -> dict[str, str]:
        """Return the id of every operation, keyed by ``METHOD path``.

        :param operations: ``(spec stem, METHOD, path, operation)`` of every spec.
        :param fixed: ids set by hand, by ``METHOD path``.
        :raises CatalogError: two operations still share an id after the rule.
        """
        proposed: dict[str, tuple[str, str, str]] = {}
        operations_by_key = {f"{m} {p}": op["operationId"] for _, m, p, op in operations}
        for stem, method, path, op in operations:
            key = f"{method} {path}"
            if key in fixed:
                continue
            tags = op.get("tags") or [""]
            resource = self.resource(stem, tags[0])
            proposed[key] = (stem, resource, self.verb(resource, op["operationId"]))
        ids = {key: f"ghl.{res}.{verb}" for key, (_, res, verb) in proposed.items()}
        counts = Counter([*ids.values(), *fixed.values()])
        stems: dict[str, set[str]] = {}
        for key, (stem, _, _) in proposed.items():
            stems.setdefault(ids[key], set()).add(stem)
        for key, (stem, res, verb) in sorted(proposed.items()):
            if counts[ids[key]] > 1:
                across = len(stems[ids[key]]) == counts[ids[key]]
                qualified = (
                    f"ghl.{snake(stem)}_{res}.{verb}"
                    if across
                    else (f"ghl.{res}.{snake(operations_by_key[key])}")
                )
                self.notes.append(f"{key}: {ids[key]} is shared; qualified as {qualified}")
                ids[key] = qualified
        ids.update(fixed)
        owners: dict[str, list[str]] = {}
        for key, aid in ids.items():
            owners.setdefault(aid, []).append(key)
        if clashes := {aid: keys for aid, keys in owners.items() if len(keys) > 1}:
            raise CatalogError(f"action ids shared after the id rule: {clashes} [set an id]")
        return ids
