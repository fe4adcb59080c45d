"""login throttling (failed-login counters per account and per client)

Revision ID: 0011_login_guard
Revises: 0010_webhook_inbox
Create Date: 2026-12-04 16:30:00

Failed logins are counted in `login_throttle`, one row per username (existing or not,
so unknown names answer like real ones) and one per client address, each with one
atomic statement per attempt. The per-user `failed_logins`/`locked_until` columns (a
read-then-write counter and a hard lock) go; `last_login_client` records where the
user last signed in, from where a correct password passes a per-account delay.
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import core.models.types

revision: str = "0011_login_guard"
down_revision: str | Sequence[str] | None = "0010_webhook_inbox"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "login_throttle",
        sa.Column("scope", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failed_at", core.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("blocked_until", core.models.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("scope", "key", name=op.f("pk_login_throttle")),
    )
    with op.batch_alter_table("login_throttle", schema=None) as batch_op:
        batch_op.create_index(
            "ix_login_throttle_last_failed_at", ["last_failed_at"], unique=False
        )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "last_login_client", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True
            )
        )
        batch_op.drop_column("locked_until")
        batch_op.drop_column("failed_logins")


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("failed_logins", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column(
                "locked_until", core.models.types.UTCDateTime(timezone=True), nullable=True
            )
        )
        batch_op.drop_column("last_login_client")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.alter_column("failed_logins", server_default=None)
    with op.batch_alter_table("login_throttle", schema=None) as batch_op:
        batch_op.drop_index("ix_login_throttle_last_failed_at")
    op.drop_table("login_throttle")
