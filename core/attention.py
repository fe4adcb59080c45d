"""Messages that wait for a person: sends whose outcome a crash (or a lost answer) hid.

A `needs_attention` message had its request started, but no answer and no status
webhook ever said whether Meta took it (core.sender.recovery). It is never sent again on
its own: a person checks WhatsApp and resends it deliberately, one at a time
(`wanotify resend ID`, the Messages page's Resend) or all at once (`wanotify
resend-attention`, the Messages page's "Resend all"). A message already resent is
settled: it is neither listed as open nor resent again by "all".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from core.auth import Action, require, write_tenant
from core.i18n import N_
from core.models.messages import MessageStatus, WhatsAppMessage
from core.outbox import OutboxError, resend
from core.users import UserInfo

#: Most messages one listing or one "resend all" handles (a crash leaves about cap ×
#: latency of them; more means something else is wrong, and is said so).
MAX_ITEMS = 500


@dataclass(frozen=True)
class AttentionItem:
    """One message a person must decide about."""

    id: str
    tenant_id: str
    recipient_phone: str
    po_number: str | None
    reason: str
    since: datetime


@dataclass(frozen=True)
class ResendAllReport:
    """What "resend all needing attention" did: new message per original, refusals."""

    resent: list[tuple[str, str]]  # (original id, new message id)
    refused: list[tuple[str, str]]  # (original id, why not: opted out, ...)


def open_items(
    engine: Engine, tenant_ids: Sequence[str] | None = None, limit: int = MAX_ITEMS
) -> list[AttentionItem]:
    """Needs-attention messages not yet resent, oldest first (all tenants if None)."""
    query = select(WhatsAppMessage).where(
        col(WhatsAppMessage.status) == MessageStatus.NEEDS_ATTENTION
    )
    if tenant_ids is not None:
        query = query.where(col(WhatsAppMessage.tenant_id).in_(list(tenant_ids)))
    query = query.order_by(col(WhatsAppMessage.updated_at), col(WhatsAppMessage.id))
    with Session(engine) as session:
        found = session.exec(query.limit(MAX_ITEMS * 2)).all()
    items = [
        AttentionItem(
            id=m.id,
            tenant_id=m.tenant_id,
            recipient_phone=m.recipient_phone,
            po_number=m.po_number,
            reason=m.error_message or N_("The outcome of this send is unknown."),
            since=m.updated_at,
        )
        for m in found
        if not (m.meta or {}).get("resent_as")
    ]
    return items[:limit]


def resend_all(engine: Engine, by: str, tenant_id: str | None = None) -> ResendAllReport:
    """Resend every open needs-attention message (of one tenant, or all): a person's
    deliberate decision, one new linked message each (core.outbox.resend). A message
    that may not be resent (its supplier opted out since, ...) is skipped with the reason."""
    tenants = None if tenant_id is None else [tenant_id]
    report = ResendAllReport([], [])
    for item in open_items(engine, tenants):
        try:
            copy = resend(item.id, by, engine=engine, tenant_id=item.tenant_id)
        except OutboxError as exc:
            report.refused.append((item.id, str(exc)))
            continue
        report.resent.append((item.id, copy.id))
    return report


def resend_all_for(engine: Engine, user: UserInfo) -> ResendAllReport:
    """The dashboard's "Resend all": the role is checked here, and only the user's own
    tenant's messages are resent (sending always happens for the home tenant)."""
    require(user, Action.RESEND)
    return resend_all(engine, user.username, write_tenant(user))


def status_lines(engine: Engine, shown: int = 10) -> list[str]:
    """What `wanotify status` says about messages waiting for a person (none: nothing)."""
    items = open_items(engine)
    if not items:
        return []
    more = "+" if len(items) >= MAX_ITEMS else ""
    lines = [
        f"Need attention: {len(items)}{more} message(s) may or may not have reached WhatsApp "
        "(check WhatsApp, then resend deliberately):"
    ]
    for item in items[:shown]:
        po = f" {item.po_number}" if item.po_number else ""
        lines.append(
            f"  - {item.id} to {item.recipient_phone}{po} ({item.tenant_id}): {item.reason}"
            f" -> wanotify resend {item.id}"
        )
    if len(items) > shown:
        lines.append(f"  ... and {len(items) - shown} more")
    lines.append("  Resend them all: wanotify resend-attention")
    return lines
