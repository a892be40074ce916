"""The numbered SQLite migrations the state file had before Alembic (versions 1-10).

A state file made by an older connector records them in ``schema_migrations``. When such a file
is opened, :mod:`connector.storage.upgrade` applies the numbers it lacks from here, then stamps
it with the Alembic baseline (revision ``0001``, the same tables) and continues with Alembic.
Never edit or append: new tables get an Alembic revision (docs/scale-out.md, "The store").
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

__all__ = ["MIGRATIONS", "Migration", "statements"]


@dataclass(frozen=True, slots=True)
class Migration:
    """One numbered schema change: ``version`` increases by one per migration."""

    version: int
    name: str
    sql: str


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "connections",
        """
        CREATE TABLE connections (
            name          TEXT PRIMARY KEY,
            kind          TEXT NOT NULL,
            user_type     TEXT NOT NULL,
            company_id    TEXT,
            location_id   TEXT,
            scopes        TEXT,
            expires_at    REAL,
            client_id     TEXT,
            base_url      TEXT NOT NULL,
            parent        TEXT,
            access_token  BLOB NOT NULL,
            refresh_token BLOB,
            client_secret BLOB,
            needs_login   INTEGER NOT NULL DEFAULT 0,
            generation    INTEGER NOT NULL DEFAULT 1,
            updated_at    REAL NOT NULL
        );
        """,
    ),
    Migration(
        2,
        "inbox",
        # Webhook events, stored before they are acknowledged (connector/service/inbox.py).
        """
        CREATE TABLE inbox (
            id           INTEGER PRIMARY KEY,
            webhook_id   TEXT NOT NULL UNIQUE,
            type         TEXT,
            location_id  TEXT,
            received_at  REAL NOT NULL,
            body         BLOB NOT NULL,
            status       TEXT NOT NULL DEFAULT 'pending'
                         CHECK (status IN ('pending', 'processing', 'done', 'dead')),
            attempts     INTEGER NOT NULL DEFAULT 0,
            available_at REAL NOT NULL,
            claimed_by   TEXT,
            claimed_at   REAL,
            last_error   TEXT,
            finished_at  REAL
        );
        CREATE INDEX inbox_ready ON inbox (status, available_at, id);
        """,
    ),
    Migration(
        3,
        "runs",
        # Recipe runs, their steps (connector/recipes/history.py) and the step ledger
        # (connector/recipes/ledger.py).
        """
        CREATE TABLE runs (
            id           TEXT PRIMARY KEY,
            recipe       TEXT NOT NULL,
            recipe_file  TEXT,
            trigger      TEXT NOT NULL,
            event        TEXT NOT NULL,
            status       TEXT NOT NULL CHECK (status IN
                         ('running', 'succeeded', 'failed', 'skipped', 'dead_letter')),
            error        TEXT,
            executions   INTEGER NOT NULL DEFAULT 1,
            started_at   REAL NOT NULL,
            finished_at  REAL
        );
        CREATE INDEX runs_by_start ON runs (started_at);
        CREATE INDEX runs_by_recipe ON runs (recipe, started_at);
        CREATE TABLE run_steps (
            run_id       TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
            step_id      TEXT NOT NULL,
            item         INTEGER NOT NULL,
            position     INTEGER NOT NULL,
            action       TEXT NOT NULL,
            status       TEXT NOT NULL,
            attempts     INTEGER NOT NULL,
            input        TEXT,
            output       TEXT,
            truncated    INTEGER NOT NULL DEFAULT 0,
            error        TEXT,
            started_at   REAL NOT NULL,
            duration_ms  REAL NOT NULL,
            PRIMARY KEY (run_id, step_id, item)
        );
        CREATE TABLE run_ledger (
            run_id       TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
            step_id      TEXT NOT NULL,
            item         INTEGER NOT NULL,
            output       TEXT NOT NULL,
            recorded_at  REAL NOT NULL,
            PRIMARY KEY (run_id, step_id, item)
        );
        """,
    ),
    Migration(
        4,
        "sync",
        # Two-way sync: the id map with echo hashes and times (connector/sync/idmap.py) and the
        # audit trail of every change made or skipped (connector/sync/audit.py).
        """
        CREATE TABLE sync_links (
            sync            TEXT NOT NULL,
            object          TEXT NOT NULL,
            ghl_id          TEXT NOT NULL,
            partner_id      TEXT NOT NULL,
            ghl_hash        TEXT,
            partner_hash    TEXT,
            ghl_written     REAL,
            partner_written REAL,
            ghl_applied     REAL,
            partner_applied REAL,
            ghl_seen        REAL,
            partner_seen    REAL,
            deleted         TEXT,
            updated_at      REAL NOT NULL,
            PRIMARY KEY (sync, object, ghl_id),
            UNIQUE (sync, object, partner_id)
        );
        CREATE TABLE sync_audit (
            id          INTEGER PRIMARY KEY,
            at          REAL NOT NULL,
            sync        TEXT NOT NULL,
            event_id    TEXT,
            object      TEXT NOT NULL,
            direction   TEXT NOT NULL,
            action      TEXT NOT NULL,
            reason      TEXT NOT NULL,
            ghl_id      TEXT,
            partner_id  TEXT,
            changes     TEXT NOT NULL
        );
        CREATE INDEX sync_audit_by_time ON sync_audit (at, id);
        """,
    ),
    Migration(
        5,
        "polling",
        # Polling triggers (connector/service/cursor.py): each poller's cursor, and the version of
        # each
        # record it last turned into an event (``position`` is the record's cursor value in ms,
        # NULL for records listed per changed contact, which are kept).
        """
        CREATE TABLE poll_cursors (
            trigger_id  TEXT NOT NULL,
            scope       TEXT NOT NULL,
            value       INTEGER NOT NULL,
            started     INTEGER NOT NULL,
            polled_at   REAL NOT NULL,
            PRIMARY KEY (trigger_id, scope)
        );
        CREATE TABLE poll_seen (
            trigger_id  TEXT NOT NULL,
            scope       TEXT NOT NULL,
            record_id   TEXT NOT NULL,
            version     TEXT NOT NULL,
            position    INTEGER,
            seen_at     REAL NOT NULL,
            PRIMARY KEY (trigger_id, scope, record_id)
        );
        CREATE INDEX poll_seen_by_position ON poll_seen (trigger_id, scope, position);
        """,
    ),
    Migration(
        6,
        "intents",
        # A step about to make a call that is not safe to repeat (connector/recipes/ledger.py): if
        # the
        # process dies before the ledger records the outcome, a resumed run knows not to guess.
        """
        CREATE TABLE run_intents (
            run_id      TEXT NOT NULL,
            step_id     TEXT NOT NULL,
            item        INTEGER NOT NULL,
            action      TEXT NOT NULL,
            started_at  REAL NOT NULL,
            PRIMARY KEY (run_id, step_id, item)
        );
        """,
    ),
    Migration(
        7,
        "sync_audit_by_event",
        # The service applies an inbox event to a sync once: it looks the event up in the
        # sync's audit trail before applying it again (connector/sync/syncs.py).
        """
        CREATE INDEX sync_audit_by_event ON sync_audit (sync, event_id);
        """,
    ),
    Migration(
        8,
        "footprints",
        # Every write a recipe or a sync makes, so its echo is recognised and loops are
        # stopped (connector/recipes/footprints.py). Field values are kept as keyed digests only.
        """
        CREATE TABLE footprints (
            id      INTEGER PRIMARY KEY,
            at      REAL NOT NULL,
            app     TEXT NOT NULL,
            record  TEXT,
            writer  TEXT NOT NULL,
            run     TEXT,
            chain   TEXT NOT NULL,
            fields  TEXT NOT NULL
        );
        CREATE INDEX footprints_by_record ON footprints (app, record, at);
        CREATE INDEX footprints_by_writer ON footprints (writer, app, record, at);
        CREATE TABLE footprint_salt (
            id     INTEGER PRIMARY KEY CHECK (id = 1),
            value  BLOB NOT NULL
        );
        """,
    ),
    Migration(
        9,
        "rest_hooks",
        # REST-hook subscriptions (connector/api/subscriptions.py; the secret sealed by the
        # vault) and their deliveries, each a signed POST retried until delivered or dead
        # (connector/api/delivery.py). Portable types only (TEXT, INTEGER, REAL, BLOB).
        """
        CREATE TABLE hook_subscriptions (
            id          TEXT PRIMARY KEY,
            trigger_id  TEXT NOT NULL,
            event_type  TEXT NOT NULL,
            target_url  TEXT NOT NULL,
            filter      TEXT,
            secret      BLOB NOT NULL,
            created_at  REAL NOT NULL
        );
        CREATE INDEX hook_subscriptions_by_type ON hook_subscriptions (event_type);
        CREATE TABLE hook_deliveries (
            id              TEXT PRIMARY KEY,
            subscription_id TEXT NOT NULL,
            event_id        TEXT NOT NULL,
            body            BLOB NOT NULL,
            status          TEXT NOT NULL DEFAULT 'pending' CHECK (status IN
                            ('pending', 'sending', 'delivered', 'dead', 'cancelled')),
            attempts        INTEGER NOT NULL DEFAULT 0,
            available_at    REAL NOT NULL,
            claimed_by      TEXT,
            claimed_at      REAL,
            last_status     INTEGER,
            last_error      TEXT,
            created_at      REAL NOT NULL,
            finished_at     REAL
        );
        CREATE INDEX hook_deliveries_ready ON hook_deliveries (status, available_at);
        CREATE INDEX hook_deliveries_by_subscription ON hook_deliveries (subscription_id, status);
        """,
    ),
    Migration(
        10,
        "console_tokens",
        # Login tokens of the web console (connector/console/access.py): their SHA-256 only.
        """
        CREATE TABLE console_tokens (
            digest      TEXT PRIMARY KEY,
            label       TEXT NOT NULL,
            created_at  REAL NOT NULL
        );
        """,
    ),
)



def statements(sql: str) -> list[str]:
    """Split a migration's SQL into statements (``executescript`` would commit our transaction)."""
    out: list[str] = []
    current = ""
    for line in sql.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            out.append(current.strip())
            current = ""
    if current.strip():
        out.append(current.strip())
    return out
