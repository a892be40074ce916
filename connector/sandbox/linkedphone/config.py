"""The LinkedPhone sandbox's settings: one frozen dataclass every part of it reads."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["LinkedPhoneConfig"]


@dataclass(frozen=True, slots=True)
class LinkedPhoneConfig:
    """How a LinkedPhone sandbox runs: address, credentials, limits, seed data, webhooks.

    The default rate limit is the one the catalog declares for the app (120 requests per 60 s,
    an assumption; a test pins the two together). ``api_key`` and ``webhook_secret`` are
    generated at start when None; secrets stay out of the repr. ``seed_contacts`` creates that
    many contacts, each with one open task and one note, without sending webhooks.
    """

    host: str = "127.0.0.1"
    port: int = 0
    api_key: str | None = field(default=None, repr=False)
    webhook_secret: str | None = field(default=None, repr=False)
    webhook_urls: tuple[str, ...] = ()
    rate_limit_requests: int = 120
    rate_limit_seconds: float = 60.0
    seed: int = 0
    seed_contacts: int = 0
    max_body_bytes: int = 1_048_576
    webhook_max_retries: int = 3
    webhook_backoff: float = 0.2
    log_level: str = "warning"

    def __post_init__(self) -> None:
        if self.rate_limit_requests < 1 or self.rate_limit_seconds <= 0:
            raise ValueError(
                f"LinkedPhoneConfig: rate limit {self.rate_limit_requests!r}/"
                f"{self.rate_limit_seconds!r}s must be positive"
            )
        if self.seed_contacts < 0:
            raise ValueError(f"LinkedPhoneConfig: seed_contacts {self.seed_contacts!r} < 0")
