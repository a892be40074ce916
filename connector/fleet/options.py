"""What a fleet process (``serve --broker``, ``worker``) shares with its peers: FleetOptions."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from connector.errors import ConnectorError

__all__ = ["DEFAULT_QUEUE", "FleetOptions", "masked"]

DEFAULT_QUEUE = "ghl-connector"
"""The queue name, also the prefix of every Redis key the fleet writes (``--queue``)."""

_BROKERS = ("redis", "rediss", "amqp", "amqps")
_REDIS = ("redis", "rediss", "unix")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")


@dataclass(frozen=True, slots=True)
class FleetOptions:
    """How a process joins the fleet.

    :param broker: the Dramatiq broker's URL (``redis://`` or ``amqp://``).
    :param redis: the Redis the fleet shares lanes, limits and heartbeats through (the
        broker's URL when it is a Redis one).
    :param queue: the queue name and Redis key prefix (fleets sharing a broker differ by it).
    :param lane_ttl: seconds a contact lane stays locked by a worker that stopped renewing it
        (a killed one); renewed every third of it while the worker runs.
    :param sweep_after: seconds after which the feeder sends an unsettled event again (its
        message was lost, or its worker died).
    :param heartbeat: seconds between heartbeats; a peer silent for three is gone.
    :param redis_option: the option that gave ``redis``, for messages (``--broker`` when it
        is the broker's URL).
    """

    broker: str
    redis: str
    queue: str = DEFAULT_QUEUE
    lane_ttl: float = 30.0
    sweep_after: float = 60.0
    heartbeat: float = 2.0
    redis_option: str = "--redis"

    def __repr__(self) -> str:
        return (f"FleetOptions({masked(self.broker)!r}, redis={masked(self.redis)!r},"
                f" {self.queue!r})")

    @classmethod
    def parse(cls, broker: str, redis: str | None, queue: str = DEFAULT_QUEUE,
              **timings: float) -> FleetOptions:
        """Check the URLs and the queue name, and derive the Redis URL from a Redis broker.

        :raises ConnectorError: naming the option at fault.
        """
        scheme, netloc = _split(broker)
        if scheme not in _BROKERS or not netloc:
            raise ConnectorError(
                f"--broker {masked(broker)!r}: not a broker URL [give redis://HOST:6379/0 or"
                " amqp://USER:PASSWORD@HOST:5672/]"
            )
        if redis is None:
            if scheme not in _REDIS:
                raise ConnectorError(
                    f"--broker {masked(broker)!r} is RabbitMQ: the fleet also needs a Redis for"
                    " its rate limits, contact lanes and heartbeats [give --redis"
                    " redis://HOST:6379/0]"
                )
            redis = broker
        elif _split(redis)[0] not in _REDIS or (_split(redis)[0] != "unix"
                                                 and not _split(redis)[1]):
            raise ConnectorError(
                f"--redis {masked(redis)!r}: not a Redis URL [give redis://HOST:6379/0]"
            )
        for option, url in (("--broker", broker), ("--redis", redis)):
            _check_database(option, url)
        if not _NAME.fullmatch(queue):
            raise ConnectorError(
                f"--queue {queue[:120]!r}: use letters, digits, '_', '.', '-' (at most 100)"
            )
        for name, value in timings.items():
            if value <= 0:
                raise ConnectorError(f"fleet: {name} {value!r} must be positive")
        option = "--broker" if redis == broker else "--redis"
        return cls(broker, redis, queue, **timings, redis_option=option)

    @classmethod
    def limits_only(cls, redis: str, queue: str = DEFAULT_QUEUE) -> FleetOptions:
        """Only the rate limits shared through Redis (``serve --limits URL`` without a
        broker: several services sharing a location's quota); ``broker`` is empty.

        :raises ConnectorError: naming the option at fault.
        """
        scheme, netloc = _split(redis)
        if scheme not in _REDIS or (scheme != "unix" and not netloc):
            raise ConnectorError(
                f"--limits {masked(redis)!r}: not a Redis URL [give redis://HOST:6379/0]"
            )
        _check_database("--limits", redis)
        if not _NAME.fullmatch(queue):
            raise ConnectorError(
                f"--queue {queue[:120]!r}: use letters, digits, '_', '.', '-' (at most 100)"
            )
        return cls("", redis, queue, redis_option="--limits")

    def key(self, *parts: str) -> str:
        """A Redis key of this fleet: ``<queue>:<part>:<part>...``."""
        return ":".join((self.queue, *parts))


def _check_database(option: str, url: str) -> None:
    """A ``redis://`` URL's path is its database number (redis-py ignores any other and uses
    database 0, where another fleet's keys may be).

    :raises ConnectorError: naming the option.
    """
    scheme = _split(url)[0]
    if scheme not in ("redis", "rediss"):
        return
    path = urlsplit(url).path.strip("/")
    if path and not (path.isascii() and path.isdigit()):
        raise ConnectorError(
            f"{option} {masked(url)!r}: the database must be a number (redis://HOST:6379/0)"
        )


def _split(url: str) -> tuple[str, str]:
    """A URL's scheme (lower case) and network location; empty ones when it cannot be read."""
    try:
        split = urlsplit(url)
        split.port  # noqa: B018  # raises ValueError on a port that is not a number
    except ValueError:
        return "", ""
    return split.scheme.lower(), split.netloc


def masked(url: str) -> str:
    """``url`` with its password replaced by ``***`` (for logs and messages)."""
    try:
        split = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    if split.password is None:
        return url
    netloc = split.netloc.rpartition("@")
    user = netloc[0].partition(":")[0]
    return urlunsplit(split._replace(netloc=f"{user}:***@{netloc[2]}"))
