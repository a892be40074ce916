"""The start-up summary of ``ghl-connector serve``: what runs, where, and with which keys."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from connector.fleet.options import masked
from connector.service.receiver import HEALTH_PATH, WEBHOOK_PATH
from connector.store import display_url
from connector.sync.syncs import SyncRoute, describe

if TYPE_CHECKING:
    from connector.service.dispatcher import Route
    from connector.service.options import ServeOptions
    from connector.service.signatures import PublicKeys

__all__ = ["fingerprints", "summary"]


def fingerprints(keys: PublicKeys) -> list[str]:
    """``kind sha256:<first 16 hex>`` of each trusted key (of its DER public key info)."""
    import hashlib

    from cryptography.hazmat.primitives import serialization

    found: list[str] = []
    for kind, group in (("ed25519", keys.ed25519), ("rsa", keys.rsa)):
        for key in group:
            der = key.public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            found.append(f"{kind} sha256:{hashlib.sha256(der).hexdigest()[:16]}")
    return found


def summary(
    options: ServeOptions,
    routes: list[Route],
    syncs: list[SyncRoute],
    url: str,
    pollers: list[str],
    recovered: int,
) -> list[str]:
    """The lines ``serve`` prints once it listens (before ``ready``): where it listens, what
    it trusts, and every recipe, trigger, poller and sync it runs."""
    base = url.removesuffix(WEBHOOK_PATH)
    lines = [
        f"webhook URL: {url}",
        f"health: {base}{HEALTH_PATH}",
        f"state file: {options.db}" if isinstance(options.db, Path)
        else f"store: {display_url(options.db)}",
        f"GHL API: {options.base_url or 'default (connection base URL)'}",
        f"workers: {options.pool.workers}" if options.fleet is None else
        f"workers: none here; queue {options.fleet.queue!r} on {masked(options.fleet.broker)}"
        " (run `ghl-connector worker`)",
        f"public keys: {', '.join(fingerprints(options.keys))}",
        f"recipes: {len(routes)} loaded from {options.recipes}",
    ]
    lines += [f"  {r.key}: {r.recipe.name!r} on {r.trigger.id}" for r in routes]
    active = sorted({f"{r.trigger.id} ({r.trigger.event or r.trigger.kind})" for r in routes})
    lines.append(f"triggers active: {', '.join(active)}")
    lines.append(f"pollers: {', '.join(pollers) or 'none'}")
    lines += describe(syncs, base, options.sync_location)
    lines += options.banner
    if recovered:
        lines.append(f"recovered: {recovered} events left claimed by a stopped service")
    return lines
