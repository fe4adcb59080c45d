"""a claimed message's request start is recorded: after a crash, unstarted rows resend

Revision ID: 0017_send_started
Revises: 0016_dashboard_sessions
Create Date: 2026-12-04 20:10:00

`whatsapp_messages.request_started_at` is written by the dispatcher, once per pacing
slice for the whole slice, just before the slice's requests go out
(core.sender.store.mark_started). Recovery returns a dead worker's `sending` rows
without it to `pending` (their request never started, so sending them is safe) and
keeps today's rule for rows with it (never resent on their own).

The upgrade dates every row already `sending` as started (its claim time): a worker
of the previous version may have sent it, so it keeps the safe rule. Stop the workers
before upgrading: a previous version's worker never writes the mark.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.models.types

revision: str = "0017_send_started"
down_revision: str | Sequence[str] | None = "0016_dashboard_sessions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("whatsapp_messages", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "request_started_at",
                core.models.types.UTCDateTime(timezone=True),
                nullable=True,
            )
        )
    op.execute(
        "UPDATE whatsapp_messages SET request_started_at = COALESCE(claimed_at, updated_at)"
        " WHERE status = 'sending'"
    )


def downgrade() -> None:
    # A plain DROP COLUMN (SQLite >= 3.35, as 0008 and 0014 do): batch mode would
    # recreate whatsapp_messages and lose the analytics triggers on it.
    op.execute("ALTER TABLE whatsapp_messages DROP COLUMN request_started_at")
