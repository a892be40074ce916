"""Hook owners: the API key that made each REST-hook subscription (``hook_subscriptions.owner``,
its key id; NULL for one made by ``ghl-connector hooks add``), so a key sees, repeats and
deletes only its own subscriptions (connector/api/hooks.py)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("hook_subscriptions", sa.Column("owner", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("hook_subscriptions") as batch:
        batch.drop_column("owner")
