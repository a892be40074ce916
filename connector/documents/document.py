"""Reading untrusted YAML documents safely, keeping the line and column of every value.

Stage 1 of the pipeline (read -> validate -> build): :func:`load_yaml` turns text into plain
JSON-like data plus a map from each value's path to where it stands in the file, so that
later stages can report ``file:line:col`` for any path.

It is deliberately stricter than ``yaml.safe_load``:

- anchors and aliases are refused (an alias bomb of a few hundred bytes is rejected while
  parsing, before anything is expanded);
- explicit tags (``!!python/object``, ``!custom``, even ``!!str``) are refused;
- duplicate keys are refused (YAML silently keeps the last one);
- documents over :data:`MAX_BYTES` or nested deeper than :data:`MAX_DEPTH` are refused, and so
  are integers of more than :data:`MAX_INT_DIGITS` characters (Python refuses to convert
  more than 4,300 digits with a ``ValueError``; nothing legitimate comes near this limit);
- timestamps stay strings, so the data is always plain JSON types.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.events import AliasEvent, CollectionStartEvent, ScalarEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from connector.errors import DocumentError, Location, Problem

__all__ = [
    "MAX_BYTES",
    "MAX_DEPTH",
    "MAX_INT_DIGITS",
    "Document",
    "JsonPath",
    "load_yaml",
    "load_trusted_yaml_file",
    "load_yaml_file",
    "pointer",
]

MAX_BYTES = 1024 * 1024
MAX_DEPTH = 64
MAX_INT_DIGITS = 100

JsonPath = tuple[str | int, ...]

_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_INT = "tag:yaml.org,2002:int"
_UNQUOTED_EXPRESSION = (
    "an unquoted '{{': YAML reads it as a mapping",
    'put an expression that is the whole value in quotes: "{{ trigger.id }}"',
)


def pointer(path: JsonPath) -> str:
    """Format a path the way error messages show it: ``steps[2].with.email``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


@dataclass(frozen=True, slots=True)
class Document:
    """Parsed data plus the 1-based (line, column) of every value, keyed by its path, and of
    every mapping key (``keys``, keyed by the path of its value)."""

    data: Any
    file: str | None = None
    positions: Mapping[JsonPath, tuple[int, int]] = field(default_factory=dict)
    keys: Mapping[JsonPath, tuple[int, int]] = field(default_factory=dict)

    def locate(self, path: JsonPath) -> Location:
        """Where ``path`` stands; falls back to its nearest ancestor that has a position."""
        probe = tuple(path)
        while probe not in self.positions and probe:
            probe = probe[:-1]
        line, column = self.positions.get(probe, (None, None))
        return Location(self.file, line, column, pointer(path))

    def locate_key(self, path: JsonPath) -> Location:
        """Where the mapping key naming ``path`` stands (its value's place if not known)."""
        found = self.keys.get(tuple(path))
        if found is None:
            return self.locate(path)
        return Location(self.file, found[0], found[1], pointer(path))


class _GuardedLoader(yaml.SafeLoader):
    """A SafeLoader whose composer refuses aliases, anchors, explicit tags and deep nesting."""

    def __init__(self, stream: str, max_depth: int) -> None:
        super().__init__(stream)
        self._depth = 0
        self._max_depth = max_depth

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]  # PyYAML is untyped here
        mark = event.start_mark
        if isinstance(event, AliasEvent):
            raise _Refused(mark, "YAML aliases (*name) are not allowed")
        if isinstance(event, ScalarEvent | CollectionStartEvent):
            if event.anchor is not None:
                raise _Refused(mark, f"YAML anchors (&{event.anchor}) are not allowed")
            if _explicit_tag(event):
                tag = str(event.tag).replace("tag:yaml.org,2002:", "!!")
                raise _Refused(mark, f"YAML tags ({tag}) are not allowed")
        if isinstance(event, CollectionStartEvent):
            self._depth += 1
            if self._depth > self._max_depth:
                raise _Refused(mark, f"nesting deeper than {self._max_depth} levels")
            try:
                return super().compose_node(parent, index)
            finally:
                self._depth -= 1
        return super().compose_node(parent, index)


def _explicit_tag(event: ScalarEvent | CollectionStartEvent) -> bool:
    if event.tag is None or event.tag == "!":
        return False
    if isinstance(event, ScalarEvent):
        return not any(event.implicit)
    return not event.implicit


class _Refused(Exception):
    def __init__(self, mark: Any, message: str, hint: str | None = None) -> None:
        self.mark = mark
        self.message = message
        self.hint = hint


def load_yaml(
    text: str | bytes,
    *,
    file: str | None = None,
    max_bytes: int = MAX_BYTES,
    max_depth: int = MAX_DEPTH,
) -> Document:
    """Parse one YAML document into plain data with positions.

    :param text: the document, as text or UTF-8 bytes.
    :param file: the name used in error locations.
    :raises DocumentError: unreadable, too big, too deep, or uses a refused YAML feature.
    """
    size = len(text.encode() if isinstance(text, str) else text)
    if size > max_bytes:
        raise DocumentError(
            [Problem(Location(file), f"file is {size} bytes; the limit is {max_bytes}")]
        )
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DocumentError(
                [Problem(Location(file), f"not UTF-8 text ({exc.reason})")]
            ) from exc
    try:
        # The reader checks the characters as it is built: inside the try.
        loader = _GuardedLoader(text, max_depth)
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - text.rfind("\n", 0, exc.position)
        message = f"invalid YAML: character #x{exc.character:04x}: {exc.reason}"
        raise DocumentError([Problem(Location(file, line, column), message)]) from None
    try:
        node = loader.get_single_node()
        if node is None:
            return Document(None, file, {(): (1, 1)})
        builder = _Builder(loader, file)
        data = builder.build(node, ())
        return Document(data, file, builder.positions, builder.keys)
    except _Refused as exc:
        raise DocumentError([_problem_at(file, exc.mark, exc.message, exc.hint)]) from None
    except yaml.MarkedYAMLError as exc:
        from connector.documents.yamlmessage import explain

        raise DocumentError([_problem_at(file, *explain(exc))]) from None
    except yaml.YAMLError as exc:
        raise DocumentError([Problem(Location(file), f"invalid YAML: {exc}")]) from None
    finally:
        loader.dispose()


def load_yaml_file(path: Path, **limits: int) -> Document:
    """Read and parse ``path`` (see :func:`load_yaml`); a missing file is a DocumentError."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DocumentError(
            [Problem(Location(str(path)), f"cannot read: {exc.strerror}")]
        ) from None
    return load_yaml(raw, file=str(path), **limits)


def load_trusted_yaml_file(path: Path) -> Document:
    """Read the pack's own YAML at ``path`` fast: libyaml, no positions, no guards.

    Only for files the pack ships and its tests check with :func:`load_yaml_file` (the
    guarded, positioned reader takes over a second on the 576-action manifest). Errors are
    located at the file only.
    """
    safe_loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        loader = safe_loader(path.read_bytes())
        try:
            data = loader.get_single_data()
        finally:
            loader.dispose()
    except OSError as exc:
        raise DocumentError(
            [Problem(Location(str(path)), f"cannot read: {exc.strerror}")]
        ) from None
    except yaml.YAMLError as exc:
        raise DocumentError([Problem(Location(str(path)), f"invalid YAML: {exc}")]) from None
    return Document(data, str(path))


def _problem_at(
    file: str | None, mark: yaml.Mark | None, message: str, hint: str | None = None
) -> Problem:
    if mark is None:
        return Problem(Location(file), message, hint)
    return Problem(Location(file, mark.line + 1, mark.column + 1), message, hint)


class _Builder:
    """Turns a composed node tree into plain data, recording positions and refusing duplicates."""

    def __init__(self, loader: _GuardedLoader, file: str | None) -> None:
        self.loader = loader
        self.file = file
        self.positions: dict[JsonPath, tuple[int, int]] = {}
        self.keys: dict[JsonPath, tuple[int, int]] = {}

    def build(self, node: Node, path: JsonPath) -> Any:
        self.positions[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
        if isinstance(node, MappingNode):
            return dict(self._pairs(node, path))
        if isinstance(node, SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        if node.tag == _TIMESTAMP:
            return str(node.value)
        if node.tag == _INT and len(node.value) > MAX_INT_DIGITS:
            raise _Refused(
                node.start_mark,
                f"an integer of {len(node.value)} characters; the limit is {MAX_INT_DIGITS}",
            )
        return self.loader.construct_object(node, deep=True)

    def _pairs(self, node: MappingNode, path: JsonPath) -> Iterator[tuple[str, Any]]:
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            if isinstance(key_node, MappingNode) and node.flow_style and key_node.flow_style:
                raise _Refused(node.start_mark, *_UNQUOTED_EXPRESSION)
            if not isinstance(key_node, ScalarNode):
                raise _Refused(key_node.start_mark, "mapping keys must be plain text")
            key = str(self.loader.construct_object(key_node))
            if key in seen:
                raise _Refused(
                    key_node.start_mark,
                    f"duplicate key {key!r} (first defined on line {seen[key]})",
                )
            seen[key] = key_node.start_mark.line + 1
            self.keys[(*path, key)] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            yield key, self.build(value_node, (*path, key))
