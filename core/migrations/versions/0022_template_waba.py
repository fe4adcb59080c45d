"""templates belong to their WABA: whatsapp_templates.waba_id

Revision ID: 0022_template_waba
Revises: 0021_message_sender_number
Create Date: 2026-12-04 23:50:00

The template sync runs per WhatsApp Business Account (core.numbers.templates): each
row records the account it came from. Existing rows keep NULL (the environment's
account, the only one before numbers were data); the next sync fills it in.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022_template_waba"
down_revision: str | Sequence[str] | None = "0021_message_sender_number"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN (no batch copy): nothing references the table, but a copy is
    # needless work on a large registry.
    op.add_column(
        "whatsapp_templates",
        sa.Column("waba_id", sa.String(length=32), nullable=True),
    )


def downgrade() -> None:
    with op.batch_alter_table("whatsapp_templates", schema=None) as batch_op:
        batch_op.drop_column("waba_id")
