"""Schemas read on first use: an action's input and output, a trigger's payload and options.

The pack declares 576 GHL actions, one schema file each (6 MB of JSON). Reading them all
whenever the catalog is built cost every process a second, though a process calls a few
actions at most. A :class:`LazySchema` is a read-only mapping that stands for one part
(``properties.input``, ``properties.output``, ...) of a schema file and reads the file the
first time anything looks inside it; the parts of one file share one read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

__all__ = ["LazySchema", "SchemaFile", "plain"]


class SchemaFile:
    """One schema file, read (by ``load``) the first time a part of it is asked for."""

    __slots__ = ("_load", "_data")

    def __init__(self, load: Callable[[], Mapping[str, Any]]) -> None:
        self._load = load
        self._data: Mapping[str, Any] | None = None

    def part(self, name: str) -> LazySchema:
        """``properties.<name>`` of the file (``{}`` when the file has no such part)."""
        return LazySchema(self, name)

    def properties(self) -> Mapping[str, Any]:
        """The file's ``properties``, reading the file now if it has not been read."""
        if self._data is None:
            self._data = self._load()
        props: Mapping[str, Any] = self._data.get("properties", {})
        return props


class LazySchema(Mapping[str, Any]):
    """A read-only schema mapping whose file is read on first access."""

    __slots__ = ("_file", "_name", "_value")

    def __init__(self, file: SchemaFile, name: str) -> None:
        self._file = file
        self._name = name
        self._value: dict[str, Any] | None = None

    def resolve(self) -> dict[str, Any]:
        """The schema itself, as the plain dict the file holds."""
        if self._value is None:
            value = self._file.properties().get(self._name, {})
            self._value = value if isinstance(value, dict) else dict(value)
        return self._value

    @property
    def loaded(self) -> bool:
        """Whether the file has been read for this part."""
        return self._value is not None

    def __getitem__(self, key: str) -> Any:
        return self.resolve()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.resolve())

    def __len__(self) -> int:
        return len(self.resolve())

    def __eq__(self, other: object) -> bool:
        return self.resolve() == (other.resolve() if isinstance(other, LazySchema) else other)

    __hash__ = None  # type: ignore[assignment]  # a mapping, like dict

    def __repr__(self) -> str:
        return repr(self.resolve()) if self.loaded else f"LazySchema({self._name!r}, not read)"


def plain(schema: Mapping[str, Any]) -> dict[str, Any]:
    """``schema`` as a plain dict (what ``json.dumps``, jsonschema and fastjsonschema need)."""
    if isinstance(schema, LazySchema):
        return schema.resolve()
    return schema if isinstance(schema, dict) else dict(schema)
