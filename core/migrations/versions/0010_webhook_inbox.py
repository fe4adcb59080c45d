"""webhook inbox progress (the SQLite webhook app's own inbox file)

Revision ID: 0010_webhook_inbox
Revises: 0009_analytics_rollup
Create Date: 2026-12-02 04:30:00

On SQLite the webhook app now commits each signed body to an inbox file beside the
database (`<database>-webhook-inbox`), so acknowledging never waits for the applier's
write lock on the main file; an applier process moves the bodies into
`webhook_receipts`. This table records, per inbox file, the last inbox row taken, in
the same transaction as the move, so every body is taken exactly once.
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import core.models.types

revision: str = "0010_webhook_inbox"
down_revision: str | Sequence[str] | None = "0009_analytics_rollup"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "webhook_inbox_progress",
        sa.Column("inbox_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("last_id", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", core.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("inbox_id", name=op.f("pk_webhook_inbox_progress")),
    )


def downgrade() -> None:
    op.drop_table("webhook_inbox_progress")
