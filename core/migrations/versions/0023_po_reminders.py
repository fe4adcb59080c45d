"""the awaiting-answer list's PO thread index: ix_whatsapp_messages_po_thread

Revision ID: 0023_po_reminders
Revises: 0026_analytics_speed
Create Date: 2026-12-05 00:55:00

The awaiting-answer list (core.followup.query) asks of each of a tenant's PO notices
whether the supplier wrote on the PO and whether a newer notice of the PO went to the
same number. A partial index of PO messages on (tenant, PO, number, created_at, id,
replied_at) answers both from the index alone in the common case (a newer notice is an
empty range after the row's own created_at and id), instead of reading every message of
the PO per row (seconds at 100,000 notices on SQLite).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023_po_reminders"
down_revision: str | Sequence[str] | None = "0026_analytics_speed"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = ["tenant_id", "po_number", "recipient_phone", "created_at", "id", "replied_at"]
_WHERE = sa.text("po_number IS NOT NULL")


def upgrade() -> None:
    op.create_index(
        "ix_whatsapp_messages_po_thread",
        "whatsapp_messages",
        _COLUMNS,
        sqlite_where=_WHERE,
        postgresql_where=_WHERE,
    )


def downgrade() -> None:
    op.drop_index("ix_whatsapp_messages_po_thread", table_name="whatsapp_messages")
