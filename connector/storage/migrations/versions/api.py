"""The HTTP action API: its keys (SHA-256 digests only, connector/api/apikeys.py), the answers
kept for Idempotency-Key replays (connector/api/idempotency.py), and the inbox by type, newest
first, for its trigger event lists (connector/api/triggers.py)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("digest", sa.Text(), nullable=False),
        sa.Column("actions", sa.Text(), nullable=False),
        sa.Column("read_only", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("revoked_at", sa.Double()),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "api_idempotency",
        sa.Column("api_key", sa.Text(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("request", sa.Text(), nullable=False),
        sa.Column("status", sa.BigInteger()),
        sa.Column("body", sa.LargeBinary()),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("api_key", "key"),
    )
    op.create_index("api_idempotency_by_age", "api_idempotency", ["created_at"])
    op.create_index("inbox_by_type", "inbox", ["type", "id"])


def downgrade() -> None:
    op.drop_index("inbox_by_type", table_name="inbox")
    op.drop_table("api_idempotency")
    op.drop_table("api_keys")
