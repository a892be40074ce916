"""Every table the connector keeps, as SQLAlchemy Core ``Table`` objects on one ``MetaData``.

This is the schema's single description, for SQLite and PostgreSQL alike: the Alembic
revisions in ``connector/storage/migrations/versions/`` create it, and a test compares the
migrated database with it (so a table added here without a revision, or the other way round,
fails). To add a table: define it here, then add a revision (see docs/scale-out.md, "The store").

Column types are the portable ones: times are ``Double`` (epoch seconds; PostgreSQL's ``REAL``
would be 4 bytes), counters and epoch milliseconds ``BigInteger``, blobs ``LargeBinary``. An
autoincrementing id is :data:`ROWID` (SQLite's ``INTEGER PRIMARY KEY``, PostgreSQL's
``BIGSERIAL``).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
)

__all__ = ["ROWID", "metadata"]

metadata = MetaData()

ROWID = BigInteger().with_variant(Integer(), "sqlite")
"""An autoincrementing id: an alias of SQLite's rowid (which must be spelled ``INTEGER``)."""

Table(
    "connections", metadata,
    Column("name", Text, primary_key=True),
    Column("kind", Text, nullable=False),
    Column("user_type", Text, nullable=False),
    Column("company_id", Text),
    Column("location_id", Text),
    Column("scopes", Text),
    Column("expires_at", Double),
    Column("client_id", Text),
    Column("base_url", Text, nullable=False),
    Column("parent", Text),
    Column("access_token", LargeBinary, nullable=False),
    Column("refresh_token", LargeBinary),
    Column("client_secret", LargeBinary),
    Column("needs_login", BigInteger, nullable=False, server_default="0"),
    Column("generation", BigInteger, nullable=False, server_default="1"),
    Column("updated_at", Double, nullable=False),
)

# Webhook events, stored before they are acknowledged (connector/service/inbox.py).
Table(
    "inbox", metadata,
    Column("id", ROWID, primary_key=True),
    Column("webhook_id", Text, nullable=False, unique=True),
    Column("type", Text),
    Column("location_id", Text),
    Column("received_at", Double, nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("status", Text, nullable=False, server_default="pending"),
    Column("attempts", BigInteger, nullable=False, server_default="0"),
    Column("available_at", Double, nullable=False),
    Column("claimed_by", Text),
    Column("claimed_at", Double),
    Column("last_error", Text),
    Column("finished_at", Double),
    CheckConstraint(
        "status IN ('pending', 'processing', 'done', 'dead')", name="inbox_status"
    ),
    Index("inbox_ready", "status", "available_at", "id"),
    Index("inbox_by_type", "type", "id"),
)

# Recipe runs and their steps (connector/recipes/history.py), the step ledger and the intents
# (connector/recipes/ledger.py).
Table(
    "runs", metadata,
    Column("id", Text, primary_key=True),
    Column("recipe", Text, nullable=False),
    Column("recipe_file", Text),
    Column("trigger", Text, nullable=False),
    Column("event", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("error", Text),
    Column("executions", BigInteger, nullable=False, server_default="1"),
    Column("started_at", Double, nullable=False),
    Column("finished_at", Double),
    CheckConstraint(
        "status IN ('running', 'succeeded', 'failed', 'skipped', 'dead_letter')",
        name="runs_status",
    ),
    Index("runs_by_start", "started_at"),
    Index("runs_by_recipe", "recipe", "started_at"),
)
Table(
    "run_steps", metadata,
    Column("run_id", Text, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("step_id", Text, nullable=False),
    Column("item", BigInteger, nullable=False),
    Column("position", BigInteger, nullable=False),
    Column("action", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("attempts", BigInteger, nullable=False),
    Column("input", Text),
    Column("output", Text),
    Column("truncated", BigInteger, nullable=False, server_default="0"),
    Column("error", Text),
    Column("started_at", Double, nullable=False),
    Column("duration_ms", Double, nullable=False),
    Column("exchanges", Text),  # the step's HTTP requests, JSON (recipes/history.py)
    PrimaryKeyConstraint("run_id", "step_id", "item"),
)
Table(
    "run_ledger", metadata,
    Column("run_id", Text, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("step_id", Text, nullable=False),
    Column("item", BigInteger, nullable=False),
    Column("output", Text, nullable=False),
    Column("recorded_at", Double, nullable=False),
    PrimaryKeyConstraint("run_id", "step_id", "item"),
)
# A step about to make a call that is not safe to repeat: if the process dies before the
# ledger records the outcome, a resumed run knows not to guess.
Table(
    "run_intents", metadata,
    Column("run_id", Text, nullable=False),
    Column("step_id", Text, nullable=False),
    Column("item", BigInteger, nullable=False),
    Column("action", Text, nullable=False),
    Column("started_at", Double, nullable=False),
    PrimaryKeyConstraint("run_id", "step_id", "item"),
)

# Two-way sync: the id map with echo hashes and times (connector/sync/idmap.py) and the audit
# trail of every change made or skipped (connector/sync/audit.py).
Table(
    "sync_links", metadata,
    Column("sync", Text, nullable=False),
    Column("object", Text, nullable=False),
    Column("ghl_id", Text, nullable=False),
    Column("partner_id", Text, nullable=False),
    Column("ghl_hash", Text),
    Column("partner_hash", Text),
    Column("ghl_written", Double),
    Column("partner_written", Double),
    Column("ghl_applied", Double),
    Column("partner_applied", Double),
    Column("ghl_seen", Double),
    Column("partner_seen", Double),
    Column("deleted", Text),
    Column("updated_at", Double, nullable=False),
    PrimaryKeyConstraint("sync", "object", "ghl_id"),
    UniqueConstraint("sync", "object", "partner_id"),
)
Table(
    "sync_audit", metadata,
    Column("id", ROWID, primary_key=True),
    Column("at", Double, nullable=False),
    Column("sync", Text, nullable=False),
    Column("event_id", Text),
    Column("object", Text, nullable=False),
    Column("direction", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("ghl_id", Text),
    Column("partner_id", Text),
    Column("changes", Text, nullable=False),
    Index("sync_audit_by_time", "at", "id"),
    Index("sync_audit_by_event", "sync", "event_id"),
)

# Polling triggers (connector/service/cursor.py): each poller's cursor, and the version of each
# record it last turned into an event (``position``: the record's cursor value in ms, NULL for
# records listed per changed contact, which are kept).
Table(
    "poll_cursors", metadata,
    Column("trigger_id", Text, nullable=False),
    Column("scope", Text, nullable=False),
    Column("value", BigInteger, nullable=False),
    Column("started", BigInteger, nullable=False),
    Column("polled_at", Double, nullable=False),
    PrimaryKeyConstraint("trigger_id", "scope"),
)
Table(
    "poll_seen", metadata,
    Column("trigger_id", Text, nullable=False),
    Column("scope", Text, nullable=False),
    Column("record_id", Text, nullable=False),
    Column("version", Text, nullable=False),
    Column("position", BigInteger),
    Column("seen_at", Double, nullable=False),
    PrimaryKeyConstraint("trigger_id", "scope", "record_id"),
    Index("poll_seen_by_position", "trigger_id", "scope", "position"),
)

# Every write a recipe or a sync makes, so its echo is recognised and loops are stopped
# (connector/recipes/footprints.py). Field values are kept as keyed digests only.
Table(
    "footprints", metadata,
    Column("id", ROWID, primary_key=True),
    Column("at", Double, nullable=False),
    Column("app", Text, nullable=False),
    Column("record", Text),
    Column("writer", Text, nullable=False),
    Column("run", Text),
    Column("chain", Text, nullable=False),
    Column("fields", Text, nullable=False),
    Index("footprints_by_record", "app", "record", "at"),
    Index("footprints_by_writer", "writer", "app", "record", "at"),
)
Table(
    "footprint_salt", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("value", LargeBinary, nullable=False),
    CheckConstraint("id = 1", name="footprint_salt_one"),
)

# REST-hook subscriptions (connector/api/subscriptions.py; the secret sealed by the vault) and
# their deliveries, each a signed POST retried until delivered or dead (connector/api/delivery.py).
Table(
    "hook_subscriptions", metadata,
    Column("id", Text, primary_key=True),
    Column("trigger_id", Text, nullable=False),
    Column("event_type", Text, nullable=False),
    Column("target_url", Text, nullable=False),
    Column("filter", Text),
    Column("secret", LargeBinary, nullable=False),
    Column("created_at", Double, nullable=False),
    Column("owner", Text),  # the API key's id that subscribed; NULL: the CLI
    Index("hook_subscriptions_by_type", "event_type"),
)
Table(
    "hook_deliveries", metadata,
    Column("id", Text, primary_key=True),
    Column("subscription_id", Text, nullable=False),
    Column("event_id", Text, nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("status", Text, nullable=False, server_default="pending"),
    Column("attempts", BigInteger, nullable=False, server_default="0"),
    Column("available_at", Double, nullable=False),
    Column("claimed_by", Text),
    Column("claimed_at", Double),
    Column("last_status", BigInteger),
    Column("last_error", Text),
    Column("created_at", Double, nullable=False),
    Column("finished_at", Double),
    CheckConstraint(
        "status IN ('pending', 'sending', 'delivered', 'dead', 'cancelled')",
        name="hook_deliveries_status",
    ),
    Index("hook_deliveries_ready", "status", "available_at"),
    Index("hook_deliveries_by_subscription", "subscription_id", "status"),
)

# Login tokens of the web console (connector/console/access.py): their SHA-256 only.
Table(
    "console_tokens", metadata,
    Column("digest", Text, primary_key=True),
    Column("label", Text, nullable=False),
    Column("created_at", Double, nullable=False),
)

# Who runs each poller (connector/storage/leases.py): one holder at a time, until ``expires``.
Table(
    "leases", metadata,
    Column("name", Text, primary_key=True),
    Column("holder", Text, nullable=False),
    Column("expires", Double, nullable=False),
    Column("taken_at", Double, nullable=False),
)

# The HTTP action API's keys, SHA-256 digests only (connector/api/apikeys.py), and the answers
# kept for Idempotency-Key replays (connector/api/idempotency.py).
Table(
    "api_keys", metadata,
    Column("id", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("digest", Text, nullable=False),
    Column("actions", Text, nullable=False),
    Column("read_only", BigInteger, nullable=False),
    Column("created_at", Double, nullable=False),
    Column("revoked_at", Double),
    UniqueConstraint("name"),
)
Table(
    "api_idempotency", metadata,
    Column("api_key", Text, nullable=False),
    Column("key", Text, nullable=False),
    Column("request", Text, nullable=False),
    Column("status", BigInteger),
    Column("body", LargeBinary),
    Column("created_at", Double, nullable=False),
    PrimaryKeyConstraint("api_key", "key"),
    Index("api_idempotency_by_age", "created_at"),
)
