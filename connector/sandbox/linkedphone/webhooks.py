"""The LinkedPhone sandbox's webhooks: event envelopes, their HMAC-SHA256 signature, and delivery.

Each change is posted as ``{"id", "type", "timestamp", "data"}`` (compact JSON) to every
configured URL, with ``X-LinkedPhone-Signature: sha256=<hex>``: the HMAC-SHA256 of the exact
body bytes under the account's webhook secret. The event ``id`` is unique and stays the same on
every attempt, so a receiver can drop duplicates. A delivery is retried on 429 and 5xx (up to
``max_retries`` more attempts, backoff doubling) and dropped on any other status or a connection
error. :meth:`WebhookSender.emit` returns at once and never raises: the request that caused the
event neither waits for nor fails because of its delivery.

(The GHL sandbox's sender signs with Ed25519/RSA keys; this one signs with a shared secret.)
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Sequence
from typing import Any

from connector.sandbox.delivery import Delivery

__all__ = ["SIGNATURE_HEADER", "WebhookSender", "envelope", "sign", "verify"]

SIGNATURE_HEADER = "X-LinkedPhone-Signature"
_RETRY = frozenset({429, 500, 502, 503, 504})


def sign(secret: str, body: bytes) -> str:
    """The signature header value for ``body``: ``sha256=<hex HMAC-SHA256>``."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(secret: str, body: bytes, header: str | None) -> bool:
    """Whether ``header`` is the signature of ``body`` under ``secret`` (constant-time)."""
    return header is not None and hmac.compare_digest(sign(secret, body), header.strip())


def envelope(event_type: str, record: dict[str, Any], timestamp: str) -> dict[str, Any]:
    """One event: a fresh ``evt_`` id, the type, when it happened, and a copy of the record."""
    return {"id": f"evt_{secrets.token_hex(8)}", "type": event_type, "timestamp": timestamp,
            "data": json.loads(json.dumps(record))}


class WebhookSender(Delivery):
    """Delivers signed events to the configured URLs from the server's event loop.

    :param secret: the shared signing secret.
    :param max_retries: further attempts after a 429 or 5xx answer.

    ``deliveries`` records ``{"id", "type", "url", "status", "attempts", "outcome"}``;
    :attr:`sent` every event body sent, in order.
    """

    def __init__(self, secret: str, urls: Sequence[str] = (), *, max_retries: int = 3,
                 backoff: float = 0.2, timeout: float = 5.0) -> None:
        self._secret = secret
        super().__init__(urls, max_retries=max_retries, backoff=backoff, timeout=timeout)

    def __repr__(self) -> str:
        return f"WebhookSender(urls={len(self.urls)}, secret=****)"

    @property
    def sent(self) -> list[bytes]:
        """Every event body sent (the most recent last)."""
        return self.sent_bodies

    def clear(self) -> None:
        """Forget the delivery records and sent bodies."""
        self.deliveries.clear()
        self.sent_bodies.clear()

    def sign(self, body: bytes) -> dict[str, str]:
        """``X-LinkedPhone-Signature: sha256=<hex HMAC-SHA256>``."""
        return {SIGNATURE_HEADER: sign(self._secret, body)}

    def retry(self, status: int | None) -> bool:
        """Retried on 429 and 5xx; a connection error drops the delivery."""
        return status in _RETRY

    def emit(self, event: dict[str, Any]) -> None:
        """Send one event to every URL in the background (needs the running loop)."""
        if not self.urls:
            return
        body = json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode()
        self.dispatch(body, {"id": event["id"], "type": event["type"]}, {})
