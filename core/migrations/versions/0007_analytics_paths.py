"""analytics read paths: a per-supplier covering index (replacing tenant+supplier) and a cost index

Revision ID: 0007_analytics_paths
Revises: 0006_sender_budget
Create Date: 2026-12-01 21:40:00

The per-supplier table and the cost chart grouped every message of the range in a
temporary sort (over a second with a million messages on SQLite). With these indexes
each supplier, and each (pricing type, category, market) combination, is one index
range read in order. The (tenant_id, supplier_id) index is a prefix of the new
supplier index and is dropped.
"""
from collections.abc import Sequence

from alembic import op

revision: str = "0007_analytics_paths"
down_revision: str | Sequence[str] | None = "0006_sender_budget"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SUPPLIER_COLUMNS = [
    "tenant_id", "supplier_id", "created_at", "status", "template_name", "accepted_at",
    "sent_at", "delivered_at", "read_at", "replied_at",
]  # fmt: skip
COST_COLUMNS = [
    "tenant_id", "pricing_type", "pricing_category", "recipient_country", "created_at",
    "delivered_at", "status", "template_name", "supplier_id",
]  # fmt: skip


def upgrade() -> None:
    """Create the two read-path indexes, drop the one they make redundant."""
    with op.batch_alter_table("whatsapp_messages", schema=None) as batch_op:
        batch_op.create_index("ix_whatsapp_messages_supplier_analytics", SUPPLIER_COLUMNS)
        batch_op.create_index("ix_whatsapp_messages_cost", COST_COLUMNS)
        batch_op.drop_index("ix_whatsapp_messages_tenant_supplier")


def downgrade() -> None:
    """Back to the (tenant_id, supplier_id) index."""
    with op.batch_alter_table("whatsapp_messages", schema=None) as batch_op:
        batch_op.create_index(
            "ix_whatsapp_messages_tenant_supplier", ["tenant_id", "supplier_id"], unique=False
        )
        batch_op.drop_index("ix_whatsapp_messages_cost")
        batch_op.drop_index("ix_whatsapp_messages_supplier_analytics")
