"""The sandbox's webhook delivery: signs each event's exact bytes and POSTs them to every URL.

Like HighLevel, a delivery is retried only when the receiver answers 429 (up to ``max_retries``
more attempts, with exponential backoff) and is dropped on any other status and on connection
errors. :meth:`WebhookSender.emit` runs on the server's event loop, returns at once and never
raises: the request that caused the event does not wait for, or fail because of, its delivery.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Sequence
from typing import Any, TypeVar

from connector.sandbox.delivery import Delivery
from connector.sandbox.keys import WebhookKeys

__all__ = ["WebhookSender"]

_log = logging.getLogger(__name__)
_T = TypeVar("_T")


class WebhookSender(Delivery):
    """Delivers GHL-signed webhook payloads to the configured URLs.

    :param keys: the keys that sign every body (Ed25519 and RSA headers).
    :param urls: where each event goes (``http``/``https`` URLs).
    :param max_retries: further attempts after a 429 answer (GHL: 6; like GHL, nothing else is
        retried).
    :param backoff: seconds before the first retry; doubled before each next one.

    ``deliveries`` records ``{"webhookId", "type", "url", "status", "attempts", "outcome"}``.
    """

    def __init__(
        self,
        keys: WebhookKeys,
        urls: Sequence[str] = (),
        *,
        max_retries: int = 6,
        backoff: float = 0.5,
        timeout: float = 5.0,
        history: int = 1000,
    ) -> None:
        self._keys = keys
        super().__init__(
            urls, max_retries=max_retries, backoff=backoff, timeout=timeout, history=history
        )

    def sign(self, body: bytes) -> dict[str, str]:
        """``x-ghl-signature`` (Ed25519) and ``x-wh-signature`` (RSA-SHA256), base64."""
        return self._keys.sign(body)

    def retry(self, status: int | None) -> bool:
        """GHL retries a delivery only when it is answered 429."""
        return status == 429

    def emit(self, payload: dict[str, Any]) -> None:
        """Send one event to every URL, in the background; returns at once and never raises.

        The payload is serialised now (later changes to it are not sent), with a fresh
        ``webhookId`` unless it has one.
        """
        if not self.urls:
            return
        if "webhookId" not in payload:
            payload = {**payload, "webhookId": str(uuid.uuid4())}
        try:
            body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        except (TypeError, ValueError) as exc:
            _log.warning("webhooks: event %r dropped: %s", payload.get("type"), exc)
            return
        ids = {"webhookId": str(payload["webhookId"]), "type": str(payload.get("type"))}
        self.dispatch(body, ids, {})
