"""sender_budget_members: several sender workers share one throughput budget

Revision ID: 0006_sender_budget
Revises: 0005_analytics
Create Date: 2026-12-01 21:40:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import sqlmodel.sql.sqltypes  # noqa: F401
import core.models.types  # noqa: F401


# revision identifiers, used by Alembic.
revision: str = "0006_sender_budget"
down_revision: Union[str, Sequence[str], None] = "0005_analytics"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Create the table of live workers and their shares."""
    op.create_table(
        "sender_budget_members",
        sa.Column("worker_id", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("phone_number_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("share", sa.Integer(), nullable=False),
        sa.Column("previous_share", sa.Integer(), nullable=False),
        sa.Column("settled_at", core.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", core.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("joined_at", core.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("worker_id", name=op.f("pk_sender_budget_members")),
    )
    with op.batch_alter_table("sender_budget_members", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sender_budget_members_phone_number_id"),
            ["phone_number_id"],
            unique=False,
        )


def downgrade() -> None:
    """Drop it."""
    with op.batch_alter_table("sender_budget_members", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sender_budget_members_phone_number_id"))
    op.drop_table("sender_budget_members")
