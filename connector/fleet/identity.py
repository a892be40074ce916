"""What must be the same on every process of a fleet: the store and the recipe folder.

``serve --broker`` reports its store's identity and its recipes' digests in its heartbeat
(:class:`~connector.fleet.peers.Peers`), and names its store in every message it queues. A
``worker`` compares them with its own at start (another store stops it with one line; other
recipes are a warning), on each message, and in ``/healthz``.

A store's identity is a digest of the random footprint salt the store keeps
(``footprint_salt``, made by the first ``serve`` or ``worker`` that opened it): two processes
on the same store share it, one on another store (an SQLite file it fell back to) does not.
The salt itself never leaves the store.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from connector.recipes.footprints import store_salt
from connector.service.dispatcher import RECIPE_SUFFIXES
from connector.store import Store

__all__ = ["StoreIdentity", "recipe_digests", "recipes_differ", "store_identity"]


class StoreIdentity:
    """A store's identity (``id``) and where it is, for messages (``where``, no password)."""

    __slots__ = ("id", "where")

    def __init__(self, id: str, where: str) -> None:  # noqa: A002  # the natural name
        self.id = id
        self.where = where

    def __repr__(self) -> str:
        return f"StoreIdentity({self.id!r}, {self.where!r})"


def store_identity(store: Store) -> StoreIdentity:
    """The identity of an open store (its salt is made if it has none yet).

    :raises StoreError: the store cannot be read or written.
    """
    digest = hashlib.blake2b(store_salt(store), digest_size=8, person=b"ghl-store-id").hexdigest()
    return StoreIdentity(digest, store.where)


def recipe_digests(folder: Path) -> dict[str, str]:
    """Each recipe or sync file of ``folder`` (``*.yaml``, ``*.yml``) -> the first 16 hex of
    its content's SHA-256; empty when the folder cannot be read."""
    try:
        files = sorted(p for p in folder.iterdir() if p.suffix in RECIPE_SUFFIXES)
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()[:16] for p in files}
    except OSError:
        return {}


def recipes_differ(mine: dict[str, str], theirs: Any) -> str | None:  # noqa: ANN401  # JSON
    """How ``theirs`` (a peer's :func:`recipe_digests`) differs from ``mine``, in a few words;
    None when they are the same (or ``theirs`` was not reported)."""
    if not isinstance(theirs, dict):
        return None
    only_theirs = sorted(set(theirs) - set(mine))
    only_mine = sorted(set(mine) - set(theirs))
    changed = sorted(n for n in set(mine) & set(theirs) if mine[n] != theirs[n])
    parts = []
    for label, names in (("only serve's", only_theirs), ("only here", only_mine),
                         ("different content", changed)):
        if names:
            shown = ", ".join(names[:5]) + (f" (+{len(names) - 5})" if len(names) > 5 else "")
            parts.append(f"{label}: {shown}")
    return "; ".join(parts) or None
