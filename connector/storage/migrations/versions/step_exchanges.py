"""Step exchanges: the HTTP requests each recipe step sent (method, redacted URL, status per
attempt), as bounded JSON text in ``run_steps.exchanges`` (connector/recipes/history.py)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("run_steps", sa.Column("exchanges", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("run_steps") as batch:
        batch.drop_column("exchanges")
