"""The partner sandboxes ``serve --sandbox`` starts for the syncs of its recipe folder.

Each partner a sync document names gets its sandbox (:mod:`connector.sandbox.partners`) in this
process, seeded with a few contacts; the service then calls it with its API key, verifies its
webhooks with its secret, and the start-up summary prints its URL, key and secret so a user can
make changes there by hand. Nothing needs credentials and nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from contextlib import ExitStack
from pathlib import Path

from connector.errors import DocumentError
from connector.sandbox.partners import PARTNER_SANDBOXES, PartnerSandbox
from connector.service.options import ServeOptions
from connector.sync.syncs import load_syncs

__all__ = ["start_partners", "with_partners"]

def start_partners(recipes: Path, stack: ExitStack, seed: int = 0) -> dict[str, PartnerSandbox]:
    """Start the sandbox of every partner the folder's sync documents name (stopped with
    ``stack``), their ids drawn from ``seed``. A folder that does not load starts none:
    ``serve`` then reports its problems."""
    try:
        syncs = load_syncs(recipes)
    except DocumentError:
        return {}
    started: dict[str, PartnerSandbox] = {}
    for app in sorted({route.spec.partner for route in syncs}):
        factory = PARTNER_SANDBOXES.get(app)
        if factory is not None:
            started[app] = factory(stack, seed)
    return started


def with_partners(options: ServeOptions, partners: Mapping[str, PartnerSandbox]) -> ServeOptions:
    """The options pointing the service at the partner sandboxes, with banner lines for them."""
    banner = [
        f"{app} sandbox: {box.base_url} (api key {box.api_key}, webhook secret"
        f" {box.webhook_secret})"
        for app, box in partners.items()
    ]
    return dataclasses.replace(
        options,
        app_urls={**options.app_urls, **{app: b.base_url for app, b in partners.items()}},
        app_limits={**options.app_limits, **{app: b.limit for app, b in partners.items()}},
        webhook_secrets={app: b.webhook_secret for app, b in partners.items()},
        api_keys={app: b.api_key for app, b in partners.items()},
        banner=(*options.banner, *banner),
    )
