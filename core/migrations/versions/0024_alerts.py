"""alerts to people: events, each user's choices, and an outbox of their own

Revision ID: 0024_alerts
Revises: 0020_sender_numbers
Create Date: 2026-12-04 23:40:00

`alert_events` records what happened where it happened; `alert_outbox` holds one row per
event, recipient and channel until a delivery carrying it works (core.alerts);
`alert_preferences` keeps each user's choice per kind of alert.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import core.models.types

revision: str = "0024_alerts"
down_revision: str | Sequence[str] | None = "0020_sender_numbers"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    when = core.models.types.UTCDateTime(timezone=True)
    json = sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), "postgresql")
    text = sqlmodel.sql.sqltypes.AutoString
    op.create_table(
        "alert_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", text(length=40), nullable=False),
        sa.Column("tenant_id", text(length=64), nullable=True),
        sa.Column("audience", json, nullable=False),
        sa.Column("facts", json, nullable=False),
        sa.Column("fanned_out", sa.Boolean(), nullable=False),
        sa.Column("created_at", when, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_events")),
    )
    op.create_index(
        "ix_alert_events_fanned_out_created", "alert_events", ["fanned_out", "created_at"]
    )
    op.create_table(
        "alert_outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("kind", text(length=40), nullable=False),
        sa.Column("tenant_id", text(length=64), nullable=True),
        sa.Column("channel", text(length=10), nullable=False),
        sa.Column("recipient", text(length=254), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("locale", text(length=16), nullable=True),
        sa.Column("status", text(length=12), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", when, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("claim_token", text(length=36), nullable=True),
        sa.Column("claimed_until", when, nullable=True),
        sa.Column("delivery_id", text(length=36), nullable=True),
        sa.Column("sent_at", when, nullable=True),
        sa.Column("created_at", when, nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"], ["alert_events.id"], name=op.f("fk_alert_outbox_event_id_alert_events")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_outbox")),
    )
    op.create_index("ix_alert_outbox_event_id", "alert_outbox", ["event_id"])
    op.create_index("ix_alert_outbox_status_next", "alert_outbox", ["status", "next_attempt_at"])
    op.create_index(
        "ix_alert_outbox_recipient_kind_sent",
        "alert_outbox",
        ["channel", "recipient", "kind", "sent_at"],
    )
    op.create_table(
        "alert_preferences",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("kind", text(length=40), nullable=False),
        sa.Column("email", sa.Boolean(), nullable=False),
        sa.Column("chat", sa.Boolean(), nullable=False),
        sa.Column("updated_at", when, nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_alert_preferences_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "kind", name=op.f("pk_alert_preferences")),
    )


def downgrade() -> None:
    op.drop_table("alert_preferences")
    op.drop_index("ix_alert_outbox_recipient_kind_sent", table_name="alert_outbox")
    op.drop_index("ix_alert_outbox_status_next", table_name="alert_outbox")
    op.drop_index("ix_alert_outbox_event_id", table_name="alert_outbox")
    op.drop_table("alert_outbox")
    op.drop_index("ix_alert_events_fanned_out_created", table_name="alert_events")
    op.drop_table("alert_events")
