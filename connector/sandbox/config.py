"""The sandbox's settings: one frozen dataclass that every part of the sandbox reads."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["DEFAULT_COMPANY_ID", "DEFAULT_LOCATION_ID", "SandboxConfig", "parse_rate_limit"]

DEFAULT_LOCATION_ID = "ve9EPM428h8vShlRW1KT"
DEFAULT_COMPANY_ID = "5DP4iH6HLkQsiKESj6rh"


@dataclass(frozen=True, slots=True)
class SandboxConfig:
    """How a sandbox runs: address, seed data, limits, OAuth test client and webhook targets.

    Rate limits follow GHL's documented defaults (100 requests per 10 s burst window and
    200,000 a day, per location). ``private_token`` is a Private Integration Token for the
    first location; when None a fresh one is generated at start. Secrets stay out of the repr.
    """

    host: str = "127.0.0.1"
    port: int = 0
    seed_contacts: int = 0
    webhook_urls: tuple[str, ...] = ()
    rate_limit_requests: int = 100
    rate_limit_seconds: float = 10.0
    daily_quota: int = 200_000
    access_token_lifetime: float = 86399.0
    seed: int = 0
    client_id: str = "sandbox-client-id"
    client_secret: str = field(default="sandbox-client-secret", repr=False)
    redirect_uris: tuple[str, ...] = ("http://127.0.0.1/callback",)
    private_token: str | None = field(default=None, repr=False)
    company_id: str = DEFAULT_COMPANY_ID
    location_ids: tuple[str, ...] = (DEFAULT_LOCATION_ID,)
    allow_duplicate_contact: bool = False
    max_body_bytes: int = 1_048_576
    webhook_max_retries: int = 6
    webhook_backoff: float = 0.5
    log_level: str = "warning"

    def __post_init__(self) -> None:
        if self.rate_limit_requests < 1 or self.rate_limit_seconds <= 0:
            raise ValueError(
                f"SandboxConfig: rate limit {self.rate_limit_requests!r}/"
                f"{self.rate_limit_seconds!r}s must be positive"
            )
        if not self.location_ids:
            raise ValueError("SandboxConfig: location_ids is empty [give at least one location]")
        if self.seed_contacts < 0:
            raise ValueError(f"SandboxConfig: seed_contacts {self.seed_contacts!r} is negative")

    @property
    def location_id(self) -> str:
        """The default location: the one the private token and seed contacts belong to."""
        return self.location_ids[0]


def parse_rate_limit(text: str) -> tuple[int, float]:
    """``"N/SECONDS"`` (``"100/10"``; a bare ``"N"`` means per 10 s) as ``(N, SECONDS)``.

    :raises ValueError: the text is not two positive numbers
    """
    requests, _, seconds = text.partition("/")
    try:
        pair = int(requests), float(seconds or "10")
    except ValueError as exc:
        raise ValueError(f"rate limit {text!r} is not N/SECONDS [e.g. '100/10']") from exc
    if pair[0] < 1 or pair[1] <= 0:
        raise ValueError(f"rate limit {text!r}: both numbers must be positive")
    return pair
