"""each message names the number it goes out from: whatsapp_messages.phone_number_id

Revision ID: 0021_message_sender_number
Revises: 0024_alerts
Create Date: 2026-12-04 23:55:00

`whatsapp_messages.phone_number_id` is the business number a message is sent from, set
when it is queued (core.routing: the tenant's default number or an explicitly chosen
one of that tenant's). Each sending number has a dispatcher of its own that claims only
its messages, so one tenant's batch, cap or paused token never holds back another's.
The index (phone_number_id, status, created_at) serves that claim.

The upgrade names the environment's number (WHATSAPP_PHONE_NUMBER_ID, or the sandbox's
in sandbox mode) on every existing message: until now every message went out from it,
so pending ones keep going out from it, exactly as before.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0021_message_sender_number"
down_revision: str | Sequence[str] | None = "0024_alerts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INDEX = "ix_whatsapp_messages_number_dispatch"


def _environment_number() -> str:
    """The environment's phone number id (the sandbox's in sandbox mode)."""
    from core.settings import load_settings

    return load_settings().phone_number_id


def upgrade() -> None:
    # A plain ADD COLUMN, not batch mode: batch mode would recreate whatsapp_messages
    # and lose the analytics triggers on it (as 0017 explains).
    op.add_column(
        "whatsapp_messages",
        sa.Column("phone_number_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    )
    op.execute(
        sa.text(
            "UPDATE whatsapp_messages SET phone_number_id = :number WHERE phone_number_id IS NULL"
        ).bindparams(number=_environment_number())
    )
    op.create_index(
        _INDEX, "whatsapp_messages", ["phone_number_id", "status", "created_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(_INDEX, table_name="whatsapp_messages")
    op.execute("ALTER TABLE whatsapp_messages DROP COLUMN phone_number_id")
