"""Indexes that serve the dashboard's analytics (declared here so migrations and models agree).

Every chart aggregates `whatsapp_messages` over a tenant and a creation-time range. One
covering index holds every column those aggregates read, so a chart scans the index
alone and never touches the wide table rows: with a million messages that is the
difference between seconds and a fraction of a second on SQLite. The price is one more
index write when a message is created or changes status.
"""

from __future__ import annotations

from sqlalchemy import Index, text

from core.models.messages import WhatsAppMessage

_messages = WhatsAppMessage.__table__.c  # type: ignore[attr-defined]

#: Leading (tenant_id, created_at) serves the range; the rest makes the index covering.
ANALYTICS_INDEX = Index(
    "ix_whatsapp_messages_analytics",
    _messages.tenant_id,
    _messages.created_at,
    _messages.status,
    _messages.template_name,
    _messages.supplier_id,
    _messages.accepted_at,
    _messages.sent_at,
    _messages.delivered_at,
    _messages.read_at,
    _messages.recipient_country,
    _messages.pricing_category,
    _messages.pricing_type,
    _messages.error_code,
    _messages.po_number,
    _messages.replied_at,
    _messages.ack_action,
)

#: The per-supplier table reads each supplier's messages as one range of this index
#: (it replaces the narrower (tenant_id, supplier_id) index, a prefix of it).
SUPPLIER_INDEX = Index(
    "ix_whatsapp_messages_supplier_analytics",
    _messages.tenant_id,
    _messages.supplier_id,
    _messages.created_at,
    _messages.status,
    _messages.template_name,
    _messages.accepted_at,
    _messages.sent_at,
    _messages.delivered_at,
    _messages.read_at,
    _messages.replied_at,
)

#: Cost counts delivered messages per pricing type, category and market: each
#: combination is one range of this index, and its distinct leading values are found by
#: a skip-scan that reads a few pages.
COST_INDEX = Index(
    "ix_whatsapp_messages_cost",
    _messages.tenant_id,
    _messages.pricing_type,
    _messages.pricing_category,
    _messages.recipient_country,
    _messages.created_at,
    _messages.delivered_at,
    _messages.status,
    _messages.template_name,
    _messages.supplier_id,
)

#: The time-to-deliver and time-to-read charts count messages per latency bin (columns
#: kept by the triggers of migration 0008): each (tenant, bin) is one range of these
#: partial indexes, read for the date range only, already grouped, so no sort.
DELIVER_LATENCY_INDEX = Index(
    "ix_whatsapp_messages_deliver_latency",
    _messages.tenant_id,
    _messages.deliver_bin,
    _messages.created_at,
    _messages.status,
    _messages.template_name,
    _messages.supplier_id,
    sqlite_where=text("deliver_bin IS NOT NULL"),
    postgresql_where=text("deliver_bin IS NOT NULL"),
)
READ_LATENCY_INDEX = Index(
    "ix_whatsapp_messages_read_latency",
    _messages.tenant_id,
    _messages.read_bin,
    _messages.created_at,
    _messages.status,
    _messages.template_name,
    _messages.supplier_id,
    sqlite_where=text("read_bin IS NOT NULL"),
    postgresql_where=text("read_bin IS NOT NULL"),
)

#: The funnel and daily rates count messages per combination of stage bits (kept by the
#: triggers of migration 0008): each combination is one range of the date range.
STAGE_INDEX = Index(
    "ix_whatsapp_messages_stages",
    _messages.tenant_id,
    _messages.stage_flags,
    _messages.created_at,
    _messages.template_name,
    _messages.supplier_id,
)

#: Failures by reason count failed messages per error code: a partial index of the
#: failures alone (5 % of messages), read by range, never the table rows (migration 0026).
FAILURES_INDEX = Index(
    "ix_whatsapp_messages_failures",
    _messages.tenant_id,
    _messages.created_at,
    _messages.error_code,
    _messages.template_name,
    _messages.supplier_id,
    _messages.status,
    sqlite_where=text("status = 'failed'"),
    postgresql_where=text("status = 'failed'"),
)
