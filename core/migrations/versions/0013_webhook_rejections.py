"""refused webhook signatures, counted for health

Revision ID: 0013_webhook_rejections
Revises: 0012_api_keys
Create Date: 2026-12-04 16:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import core.models.types

revision: str = "0013_webhook_rejections"
down_revision: str | Sequence[str] | None = "0012_api_keys"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "webhook_rejections",
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("first_at", core.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_at", core.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("reason", name=op.f("pk_webhook_rejections")),
    )


def downgrade() -> None:
    op.drop_table("webhook_rejections")
