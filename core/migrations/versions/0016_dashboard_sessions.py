"""dashboard sessions kept on the server (a reload or a second tab stays signed in)

Revision ID: 0016_dashboard_sessions
Revises: 0015_supplier_consent
Create Date: 2026-12-04 20:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import core.models.types

revision: str = "0016_dashboard_sessions"
down_revision: str | Sequence[str] | None = "0015_supplier_consent"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    when = core.models.types.UTCDateTime(timezone=True)
    op.create_table(
        "dashboard_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("claim_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("claim_expires_at", when, nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("user_stamp", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("method", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("created_at", when, nullable=False),
        sa.Column("last_seen_at", when, nullable=False),
        sa.Column("expires_at", when, nullable=False),
        sa.Column("revoked_at", when, nullable=True),
        sa.Column("revoked_reason", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_dashboard_sessions_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dashboard_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_dashboard_sessions_token_hash")),
        sa.UniqueConstraint("claim_hash", name=op.f("uq_dashboard_sessions_claim_hash")),
        sqlite_autoincrement=True,  # a tab holds its session by id: never reuse one
    )
    op.create_index(
        "ix_dashboard_sessions_user_id", "dashboard_sessions", ["user_id"], unique=False
    )
    op.create_index(
        "ix_dashboard_sessions_expires_at", "dashboard_sessions", ["expires_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_dashboard_sessions_expires_at", table_name="dashboard_sessions")
    op.drop_index("ix_dashboard_sessions_user_id", table_name="dashboard_sessions")
    op.drop_table("dashboard_sessions")
