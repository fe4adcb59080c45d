"""replies and PO acknowledgements on the message row, kept by triggers; wider analytics index

Revision ID: 0005_analytics
Revises: 0004_merge
Create Date: 2026-12-01 21:20:00

With a million messages, counting replies by joining inbound_messages and
po_acknowledgements back to whatsapp_messages took seconds on SQLite (one random table
read per reply). Each message now carries `replied_at` (first reply or button press),
`acknowledged_at` and `ack_action` (its latest PO button answer), written by database
triggers whenever a reply or acknowledgement is stored, whichever code stores it. The
covering analytics index gains these and `error_code`, `po_number`, so every chart
reads the index alone. Existing rows are backfilled here.
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import core.models.types

# revision identifiers, used by Alembic.
revision: str = "0005_analytics"
down_revision: str | Sequence[str] | None = "0004_merge"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_INDEX_COLUMNS = [
    "tenant_id", "created_at", "status", "template_name", "supplier_id", "accepted_at",
    "sent_at", "delivered_at", "read_at", "recipient_country", "pricing_category",
    "pricing_type",
]  # fmt: skip
NEW_INDEX_COLUMNS = [*OLD_INDEX_COLUMNS, "error_code", "po_number", "replied_at", "ack_action"]

# The statements a trigger runs, shared by both dialects (NEW.* is the stored row).
_REPLY_UPDATE = """
    UPDATE whatsapp_messages
    SET replied_at = NEW.at
    WHERE id = NEW.context_message_id AND (replied_at IS NULL OR replied_at > NEW.at)
"""
_ACK_UPDATE = """
    UPDATE whatsapp_messages
    SET replied_at = CASE WHEN replied_at IS NULL OR replied_at > NEW.at
                          THEN NEW.at ELSE replied_at END,
        ack_action = CASE WHEN acknowledged_at IS NULL OR NEW.at >= acknowledged_at
                          THEN NEW.action ELSE ack_action END,
        acknowledged_at = CASE WHEN acknowledged_at IS NULL OR NEW.at >= acknowledged_at
                               THEN NEW.at ELSE acknowledged_at END
    WHERE id = NEW.message_id
"""
_BACKFILL = [
    """
    UPDATE whatsapp_messages SET replied_at = (
        SELECT MIN(x.at) FROM (
            SELECT i.at AS at FROM inbound_messages i
            WHERE i.context_message_id = whatsapp_messages.id
            UNION ALL
            SELECT a.at FROM po_acknowledgements a WHERE a.message_id = whatsapp_messages.id
        ) x
    )
    WHERE id IN (
        SELECT context_message_id FROM inbound_messages WHERE context_message_id IS NOT NULL
        UNION SELECT message_id FROM po_acknowledgements WHERE message_id IS NOT NULL
    )
    """,
    """
    UPDATE whatsapp_messages SET
        acknowledged_at = (SELECT MAX(a.at) FROM po_acknowledgements a
                           WHERE a.message_id = whatsapp_messages.id),
        ack_action = (SELECT a.action FROM po_acknowledgements a
                      WHERE a.message_id = whatsapp_messages.id
                      ORDER BY a.at DESC, a.id DESC LIMIT 1)
    WHERE id IN (SELECT message_id FROM po_acknowledgements WHERE message_id IS NOT NULL)
    """,
]
_SQLITE_TRIGGERS = {
    "trg_inbound_replied_insert": (
        "AFTER INSERT ON inbound_messages WHEN NEW.context_message_id IS NOT NULL",
        _REPLY_UPDATE,
    ),
    "trg_inbound_replied_update": (
        "AFTER UPDATE OF context_message_id ON inbound_messages "
        "WHEN NEW.context_message_id IS NOT NULL",
        _REPLY_UPDATE,
    ),
    "trg_ack_recorded_insert": (
        "AFTER INSERT ON po_acknowledgements WHEN NEW.message_id IS NOT NULL",
        _ACK_UPDATE,
    ),
    "trg_ack_recorded_update": (
        "AFTER UPDATE OF message_id ON po_acknowledgements WHEN NEW.message_id IS NOT NULL",
        _ACK_UPDATE,
    ),
}
#: PostgreSQL: (function, trigger, table, columns watched on update, statement, condition)
_PG_TRIGGERS = (
    ("wanotify_reply_to_message", "trg_inbound_replied", "inbound_messages",
     "context_message_id", _REPLY_UPDATE, "NEW.context_message_id IS NOT NULL"),
    ("wanotify_ack_to_message", "trg_ack_recorded", "po_acknowledgements",
     "message_id", _ACK_UPDATE, "NEW.message_id IS NOT NULL"),
)  # fmt: skip


def upgrade() -> None:
    """Add the columns, backfill them, install the triggers, widen the covering index."""
    with op.batch_alter_table("whatsapp_messages", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("replied_at", core.models.types.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column(
                "acknowledged_at", core.models.types.UTCDateTime(timezone=True), nullable=True
            )
        )
        batch_op.add_column(
            sa.Column("ack_action", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True)
        )
    # A temporary index keeps the backfill linear (acknowledgements have none by message).
    op.create_index("tmp_po_acknowledgements_message", "po_acknowledgements", ["message_id"])
    for statement in _BACKFILL:
        op.execute(statement)
    op.drop_index("tmp_po_acknowledgements_message", table_name="po_acknowledgements")
    if op.get_bind().dialect.name == "sqlite":
        for name, (when, statement) in _SQLITE_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {name} {when} BEGIN {statement.strip()}; END")
    else:
        for function, trigger, table, column, statement, condition in _PG_TRIGGERS:
            op.execute(
                f"""
                CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    IF {condition} THEN {statement.strip()}; END IF;
                    RETURN NULL;
                END $$
                """
            )
            op.execute(
                f"CREATE TRIGGER {trigger} AFTER INSERT OR UPDATE OF {column} ON {table} "
                f"FOR EACH ROW EXECUTE FUNCTION {function}()"
            )
    with op.batch_alter_table("whatsapp_messages", schema=None) as batch_op:
        batch_op.drop_index("ix_whatsapp_messages_analytics")
        batch_op.create_index("ix_whatsapp_messages_analytics", NEW_INDEX_COLUMNS, unique=False)


def downgrade() -> None:
    """Back to the 0004 schema: narrow index, no triggers, no reply columns."""
    with op.batch_alter_table("whatsapp_messages", schema=None) as batch_op:
        batch_op.drop_index("ix_whatsapp_messages_analytics")
        batch_op.create_index("ix_whatsapp_messages_analytics", OLD_INDEX_COLUMNS, unique=False)
    if op.get_bind().dialect.name == "sqlite":
        for name in _SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    else:
        for function, trigger, table, *_ in _PG_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {trigger} ON {table}")
            op.execute(f"DROP FUNCTION IF EXISTS {function}()")
    with op.batch_alter_table("whatsapp_messages", schema=None) as batch_op:
        batch_op.drop_column("ack_action")
        batch_op.drop_column("acknowledged_at")
        batch_op.drop_column("replied_at")
