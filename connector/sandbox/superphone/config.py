"""The SuperPhone sandbox's settings: one frozen dataclass every part of it reads."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

__all__ = ["SuperPhoneConfig"]


@dataclass(frozen=True, slots=True)
class SuperPhoneConfig:
    """How a SuperPhone sandbox runs: address, credentials, limits and webhook targets.

    ``api_key`` and ``webhook_secret`` are generated at start when None; both stay out of the
    repr. The rate limit (10 requests a second per key) is the catalog's assumption, not a
    published number. Webhook deliveries are retried on 429, 5xx and connection failures up
    to ``webhook_max_retries`` more times, waiting ``webhook_backoff`` s, doubled each time.
    """

    host: str = "127.0.0.1"
    port: int = 0
    api_key: str | None = field(default=None, repr=False)
    webhook_secret: str | None = field(default=None, repr=False)
    webhook_urls: tuple[str, ...] = ()
    rate_limit_requests: int = 10
    rate_limit_seconds: float = 1.0
    daily_quota: int = 100_000
    seed: int = 0
    seed_contacts: int = 0
    max_page_size: int = 100
    max_body_bytes: int = 1_048_576
    webhook_max_retries: int = 3
    webhook_backoff: float = 0.1
    log_level: str = "warning"

    def __post_init__(self) -> None:
        if self.rate_limit_requests < 1 or self.rate_limit_seconds <= 0:
            raise ValueError(
                f"SuperPhoneConfig: rate limit {self.rate_limit_requests!r}/"
                f"{self.rate_limit_seconds!r}s must be positive"
            )
        if self.seed_contacts < 0:
            raise ValueError(f"SuperPhoneConfig: seed_contacts {self.seed_contacts!r} is negative")

    def with_secrets(self) -> SuperPhoneConfig:
        """A copy whose missing API key and webhook secret are freshly generated."""
        from dataclasses import replace

        return replace(
            self,
            api_key=self.api_key or f"sp_test_{secrets.token_hex(16)}",
            webhook_secret=self.webhook_secret or f"whsec_{secrets.token_hex(16)}",
        )
