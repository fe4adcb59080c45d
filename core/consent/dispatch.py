"""The last check before a template leaves: suppliers who opted out after it was queued.

The dispatcher calls `refuse_opted_out` inside the transaction that claims messages.
A claimed template whose supplier (by id, else the tenant's supplier at its number)
has opted out since it was queued is marked failed with error class `consent` and a
plain reason, and is not sent. One indexed query per claim, only for claimed rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol, TypeVar

from sqlalchemy import Connection, and_, or_, select, update

from core.consent.policy import CONSENT_ERROR_CLASS
from core.models.messages import MessageStatus, WhatsAppMessage
from core.models.suppliers import Supplier

_M = WhatsAppMessage.__table__  # type: ignore[attr-defined]
_S = Supplier.__table__  # type: ignore[attr-defined]
_CHUNK = 400


class _Claimed(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def tenant_id(self) -> str: ...
    @property
    def recipient_phone(self) -> str: ...
    @property
    def message_type(self) -> str: ...
    @property
    def supplier_id(self) -> int | None: ...


C = TypeVar("C", bound=_Claimed)


def opted_out_reason(source: str | None, at: datetime | None) -> str:
    """The error text of a queued message not sent because its supplier opted out."""
    when = f" on {at:%Y-%m-%d %H:%M} UTC" if at is not None else ""
    how = " by replying with a stop word" if source == "reply" else ""
    return (
        f"Not sent: the supplier opted out of WhatsApp messages{how}{when}, after this "
        "message was queued"
    )


def refuse_opted_out(conn: Connection, claimed: Sequence[C], now: datetime) -> list[C]:
    """Fail the claimed templates whose supplier opted out; the others, to be sent."""
    templates = [m for m in claimed if m.message_type == "template"]
    if not templates:
        return list(claimed)
    ids = sorted({m.supplier_id for m in templates if m.supplier_id is not None})
    phones = sorted({m.recipient_phone for m in templates if m.supplier_id is None})
    by_id: dict[int, tuple[str | None, datetime | None]] = {}
    by_phone: dict[tuple[str, str], tuple[str | None, datetime | None]] = {}
    s = _S.c
    for start in range(0, max(len(ids), len(phones)), _CHUNK):
        id_part, phone_part = ids[start : start + _CHUNK], phones[start : start + _CHUNK]
        conditions = []
        if id_part:
            conditions.append(s.id.in_(id_part))
        if phone_part:
            conditions.append(s.phone_e164.in_(phone_part))
        rows = conn.execute(
            select(s.id, s.tenant_id, s.phone_e164, s.opt_out_source, s.opted_out_at).where(
                and_(s.opted_out_at.is_not(None), or_(*conditions))
            )
        )
        for row in rows:
            by_id[row.id] = (row.opt_out_source, row.opted_out_at)
            by_phone[(row.tenant_id, row.phone_e164)] = (row.opt_out_source, row.opted_out_at)
    if not by_id:
        return list(claimed)
    keep: list[C] = []
    for message in claimed:
        out = None
        if message.message_type == "template":
            out = (
                by_id.get(message.supplier_id)
                if message.supplier_id is not None
                else by_phone.get((message.tenant_id, message.recipient_phone))
            )
        if out is None:
            keep.append(message)
            continue
        conn.execute(
            update(_M)
            .where(_M.c.id == message.id, _M.c.status == MessageStatus.SENDING)
            .values(
                status=MessageStatus.FAILED,
                failed_at=now,
                claimed_by=None,
                error_class=CONSENT_ERROR_CLASS,
                error_title="Supplier opted out",
                error_message=opted_out_reason(*out),
                updated_at=now,
            )
        )
    return keep
