"""The fleet's queue on Dramatiq: the broker a URL names, and the one actor that carries work.

A message is ``(event_id, lane)``: an inbox event and its contact lane (see
:mod:`connector.fleet.lanes`); its option ``ghl_store`` names the store the event is in
(:mod:`connector.fleet.identity`), so a worker on another store never takes it for one of its
own (an option, not an argument: a worker of an older version ignores it). The body stays in
the inbox. Dramatiq acknowledges a message
after its actor returned, so a message whose worker died is delivered again (RabbitMQ at once,
Redis after the broker's heartbeat timeout); the feeder's sweeper finds any other loss.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import dramatiq
from dramatiq.middleware import (
    AgeLimit,
    Callbacks,
    CurrentMessage,
    Pipelines,
    Retries,
    ShutdownNotifications,
)

from connector.errors import ConnectorError
from connector.fleet.options import FleetOptions, masked

__all__ = ["ACTOR", "STORE_OPTION", "WorkQueue", "message_store"]

ACTOR = "ghl_connector_lane"
"""The actor's name in every message."""
STORE_OPTION = "ghl_store"
"""The message option naming the sender's store identity."""

_log = logging.getLogger(__name__)
# A message whose actor raised (Redis unreachable mid-run) is retried by Dramatiq with backoff;
# the sweeper covers what these retries do not.
_RETRIES = 20
_REDIS_HEARTBEAT_MS = 15_000


def _broker(options: FleetOptions) -> dramatiq.Broker:
    # TimeLimit is left out: a recipe's run is bounded by its own timeouts, and a lane may
    # hold many events.
    middleware = [AgeLimit(), ShutdownNotifications(), Callbacks(), Pipelines(), CurrentMessage(),
                  Retries(max_retries=_RETRIES, min_backoff=200, max_backoff=30_000)]
    scheme = urlsplit(options.broker).scheme.lower()
    try:
        if scheme.startswith("redis"):
            from dramatiq.brokers.redis import RedisBroker

            return RedisBroker(  # type: ignore[no-untyped-call]  # dramatiq leaves it untyped
                url=options.broker, namespace=options.key("dramatiq"),
                               middleware=middleware, heartbeat_timeout=_REDIS_HEARTBEAT_MS,
                               maintenance_chance=100)
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        return RabbitmqBroker(url=options.broker, middleware=middleware, confirm_delivery=True)
    except (ValueError, TypeError) as exc:
        raise ConnectorError(f"--broker {masked(options.broker)!r}: {exc}") from None


class WorkQueue:
    """The broker and the actor, for sending (``serve``) and for running (``worker``).

    :param run: what the actor does with ``(event_id, lane)``; ``serve`` only sends.
    :param store_id: the identity of this process's store, named in every message it sends.
    """

    def __init__(self, options: FleetOptions, run: Callable[[int, str], None] | None = None, *,
                 store_id: str | None = None) -> None:
        self.options = options
        self.store_id = store_id
        self.broker = _broker(options)
        self.actor: dramatiq.Actor[[int, str], None] = dramatiq.actor(
            broker=self.broker, actor_name=ACTOR, queue_name=options.queue,
            max_retries=_RETRIES,
        )(run or _not_here)
        self._check()

    def _check(self) -> None:
        """Connect once now, so a broker that refuses the password or is not there stops the
        start with one line (Dramatiq would otherwise retry, and log, forever).

        :raises ConnectorError: the broker cannot be reached.
        """
        quiet = logging.getLogger("pika")
        level, quiet.level = quiet.level, logging.CRITICAL  # its tracebacks, per attempt
        try:
            client = getattr(self.broker, "client", None)
            if client is not None:  # Redis
                client.ping()
            else:  # RabbitMQ: a connection of this thread (the broker reuses it)
                self.broker.connection  # type: ignore[attr-defined]  # noqa: B018
        except Exception as exc:  # noqa: BLE001  # redis-py's and pika's errors, each its own
            self.close()
            text = (" ".join(str(exc).split())[:300]
                    or f"{type(exc).__name__} (is the broker running at that address?)")
            raise ConnectorError(
                f"--broker {masked(self.options.broker)!r}: cannot reach the broker: {text}"
            ) from None
        finally:
            quiet.setLevel(level)

    def unreachable(self) -> str | None:
        """Why the broker cannot be reached now (a fresh connection is tried); None when it
        answers. For ``/healthz``: Dramatiq's consumer only logs its connection errors."""
        quiet = logging.getLogger("pika")
        level, quiet.level = quiet.level, logging.CRITICAL
        try:
            client = getattr(self.broker, "client", None)
            if client is not None:  # Redis
                client.ping()
            else:
                import pika  # type: ignore[import-untyped]

                parameters = pika.URLParameters(self.options.broker)
                parameters.socket_timeout = 3
                parameters.connection_attempts = 1
                parameters.blocked_connection_timeout = 3
                pika.BlockingConnection(parameters).close()
        except Exception as exc:  # noqa: BLE001  # redis-py's and pika's errors, each its own
            text = " ".join(str(exc).split())[:300] or type(exc).__name__
            return f"broker {masked(self.options.broker)}: {text}"
        finally:
            quiet.setLevel(level)
        return None

    def __repr__(self) -> str:
        return f"WorkQueue({masked(self.options.broker)!r}, {self.options.queue!r})"

    def send(self, event_id: int, lane: str, *, delay: float | None = None) -> None:
        """Queue one event of a lane (after ``delay`` seconds).

        :raises ConnectorError: the broker cannot be reached.
        """
        options: dict[str, Any] = {} if delay is None else {"delay": int(delay * 1000)}
        if self.store_id is not None:
            options[STORE_OPTION] = self.store_id
        try:
            self.actor.send_with_options(args=(event_id, lane), **options)
        except dramatiq.errors.BrokerError as exc:
            raise ConnectorError(
                f"broker {masked(self.options.broker)}: cannot queue event {event_id}: {exc}"
            ) from None

    def close(self) -> None:
        """Close the broker's connections (Dramatiq's Redis broker leaves its client open)."""
        try:
            self.broker.close()
            client = getattr(self.broker, "client", None)
            if client is not None:
                client.close()
        except Exception as exc:  # noqa: BLE001  # closing a dead connection is not an error
            _log.debug("closing the broker: %r", exc)


def message_store() -> str | None:
    """The store the message being processed (in this thread) names, if any."""
    message = CurrentMessage.get_current_message()
    found = message.options.get(STORE_OPTION) if message is not None else None
    return found if isinstance(found, str) else None


def _not_here(event_id: int, lane: str) -> None:
    raise ConnectorError(f"event {event_id} ({lane}): this process only sends work")
