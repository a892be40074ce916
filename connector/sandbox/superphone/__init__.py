"""The SuperPhone sandbox: a local, stateful GraphQL server standing in for SuperPhone's API.

API-key auth (``X-Api-Key``), its own rate limit, contacts with tags, notes and tasks, HMAC-signed
webhooks for every change, fault injection and control endpoints under ``/_sandbox/``. Run it
with ``python -m connector.sandbox.superphone`` or, in tests, :class:`SuperPhoneSandboxServer`.
"""

from __future__ import annotations

from connector.sandbox.superphone.config import SuperPhoneConfig
from connector.sandbox.superphone.server import SuperPhoneSandboxServer

__all__ = ["SuperPhoneConfig", "SuperPhoneSandboxServer"]
