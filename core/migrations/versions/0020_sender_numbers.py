"""sender numbers: each tenant's WhatsApp numbers, tokens encrypted, Meta's health

Revision ID: 0020_sender_numbers
Revises: 0019_user_sso
Create Date: 2026-12-04 23:40:00

A new table `sender_numbers` (core.models.sender_numbers): tenant, phone number id
(unique), WABA id, display number and name, the access token's ciphertext, throughput
cap, default flag (one per tenant among numbers not removed: a partial unique index),
what Meta last reported, and soft removal. Nothing existing changes: with no rows, the
environment's WHATSAPP_* number stays the default tenant's (core.numbers.registry), so
an install upgrades and sends exactly as before.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import core.models.types

revision: str = "0020_sender_numbers"
down_revision: str | Sequence[str] | None = "0019_user_sso"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ONE_DEFAULT = "is_default AND removed_at IS NULL"


def upgrade() -> None:
    utc = core.models.types.UTCDateTime(timezone=True)
    text = sqlmodel.sql.sqltypes.AutoString
    op.create_table(
        "sender_numbers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", text(length=64), nullable=False),
        sa.Column("phone_number_id", text(length=32), nullable=False),
        sa.Column("waba_id", text(length=32), nullable=True),
        sa.Column("display_number", text(length=32), nullable=True),
        sa.Column("display_name", text(length=120), nullable=True),
        sa.Column("token_ciphertext", sa.Text(), nullable=True),
        sa.Column("max_mps", sa.Integer(), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("quality_rating", text(length=20), nullable=True),
        sa.Column("messaging_tier", text(length=40), nullable=True),
        sa.Column("name_status", text(length=40), nullable=True),
        sa.Column("status", text(length=30), nullable=True),
        sa.Column("throughput_level", text(length=20), nullable=True),
        sa.Column("last_checked_at", utc, nullable=True),
        sa.Column("last_error", text(length=500), nullable=True),
        sa.Column("created_at", utc, nullable=False),
        sa.Column("updated_at", utc, nullable=False),
        sa.Column("removed_at", utc, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sender_numbers")),
        sa.UniqueConstraint("phone_number_id", name=op.f("uq_sender_numbers_phone_number_id")),
    )
    with op.batch_alter_table("sender_numbers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sender_numbers_tenant_id"), ["tenant_id"])
        batch_op.create_index(batch_op.f("ix_sender_numbers_waba_id"), ["waba_id"])
        batch_op.create_index(
            "ix_sender_numbers_one_default",
            ["tenant_id"],
            unique=True,
            sqlite_where=sa.text(_ONE_DEFAULT),
            postgresql_where=sa.text(_ONE_DEFAULT),
        )


def downgrade() -> None:
    with op.batch_alter_table("sender_numbers", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_sender_numbers_one_default",
            sqlite_where=sa.text(_ONE_DEFAULT),
            postgresql_where=sa.text(_ONE_DEFAULT),
        )
        batch_op.drop_index(batch_op.f("ix_sender_numbers_waba_id"))
        batch_op.drop_index(batch_op.f("ix_sender_numbers_tenant_id"))
    op.drop_table("sender_numbers")
