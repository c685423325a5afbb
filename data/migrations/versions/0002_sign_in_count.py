"""sign-in count: a success resets the throttle without a write of its own

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("sign_in_count", sa.Integer(), server_default=sa.text("0"), nullable=False)
        )
    with op.batch_alter_table("throttle_counters", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sign_in_count", sa.Integer(), nullable=True))
    # Counters of existing accounts stay current (their locks hold across the upgrade).
    op.execute(
        "UPDATE throttle_counters SET sign_in_count = 0"
        " WHERE key IN (SELECT 'user:' || username_key FROM users)"
    )


def downgrade() -> None:
    with op.batch_alter_table("throttle_counters", schema=None) as batch_op:
        batch_op.drop_column("sign_in_count")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("sign_in_count")
