"""The SuperPhone sandbox's webhooks: each change event as signed JSON, POSTed to every URL.

The body is ``{"eventId", "type", "timestamp", "data"}`` (``data``: the record after the change).
It is signed with HMAC-SHA256 over its exact bytes and the shared secret, sent as
``X-SuperPhone-Signature: sha256=<hex>``; ``X-SuperPhone-Event`` repeats the type. A delivery
is retried on 429, on 5xx and when no answer comes, up to ``max_retries`` more times with
exponential backoff; any other answer ends it. :meth:`WebhookSender.emit` runs on the server's
loop, returns at once and never raises: the request that made the change never waits for it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from connector.sandbox.delivery import Delivery

__all__ = ["EVENT_HEADER", "SIGNATURE_HEADER", "WebhookSender", "signature"]

SIGNATURE_HEADER = "X-SuperPhone-Signature"
EVENT_HEADER = "X-SuperPhone-Event"


def signature(secret: str, body: bytes) -> str:
    """The signature header's value for ``body``: ``sha256=<hex HMAC-SHA256>``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookSender(Delivery):
    """Signs and delivers change events (retried on 429, 5xx and no answer).

    ``deliveries`` records ``{"eventId", "type", "url", "status", "attempts", "outcome"}``.
    """

    def __init__(self, secret: str, urls: Sequence[str] = (), *, max_retries: int = 3,
                 backoff: float = 0.1, timeout: float = 5.0, history: int = 1000) -> None:
        self._secret = secret
        super().__init__(
            urls, max_retries=max_retries, backoff=backoff, timeout=timeout, history=history
        )

    def __repr__(self) -> str:
        return f"WebhookSender(urls={len(self.urls)}, secret=****)"

    def sign(self, body: bytes) -> dict[str, str]:
        """``X-SuperPhone-Signature: sha256=<hex HMAC-SHA256>``."""
        return {SIGNATURE_HEADER: signature(self._secret, body)}

    def retry(self, status: int | None) -> bool:
        """Retried on 429, on 5xx and when no answer comes."""
        return status is None or status == 429 or status >= 500

    def emit(self, event_type: str, data: dict[str, Any]) -> None:
        """Send one event to every URL in the background (dropped without a running loop)."""
        if not self.urls:
            return
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        payload = {"eventId": f"evt_{uuid.uuid4().hex}", "type": event_type,
                   "timestamp": stamp, "data": data}
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        ids = {"eventId": payload["eventId"], "type": event_type}
        self.dispatch(body, ids, {EVENT_HEADER: event_type})
