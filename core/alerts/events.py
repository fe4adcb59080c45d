"""Recording what happened, at the place it happened, in that place's own transaction.

Each function here is one small call an event site makes with its open `Connection`:
it writes `alert_events` rows (facts and audience) and nothing else, so the event site
neither reads preferences nor talks to a mail server; the delivery loop
(`core.alerts.delivery`) does the rest. Facts are plain values: a supplier's reply or
Meta's reason is stored as it came and escaped only where it is shown.

The audience is `{"usernames": [...], "role": ..., "fallback_role": ...}`: the named
users of the event's tenant, else (none of them is a user, e.g. an ERP event or an API
call) the users with `fallback_role`; or everyone with `role` (in the tenant, or in every
tenant when the event has none).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, and_, case, func, insert, or_, select

from core.alerts.kinds import AlertKind
from core.models.alerts import AlertEvent
from core.models.batches import SendBatch
from core.models.messages import MessageStatus, WhatsAppMessage
from core.models.suppliers import Supplier
from core.models.templates import WhatsAppTemplate
from core.settings import get_settings

EVENTS: Table = AlertEvent.__table__  # type: ignore[attr-defined]
_M: Table = WhatsAppMessage.__table__  # type: ignore[attr-defined]
_S: Table = Supplier.__table__  # type: ignore[attr-defined]
_B: Table = SendBatch.__table__  # type: ignore[attr-defined]
_T: Table = WhatsAppTemplate.__table__  # type: ignore[attr-defined]

#: Template statuses from Meta that a person must hear about.
TEMPLATE_ALERT_STATUSES = frozenset({"PAUSED", "DISABLED", "REJECTED"})
#: Longest outside text kept in an event (a reply, a reason): the rest is cut.
MAX_TEXT = 500


def emit(
    conn: Connection,
    kind: AlertKind,
    *,
    tenant_id: str | None,
    facts: Mapping[str, Any],
    now: datetime,
    usernames: Sequence[str] = (),
    role: str | None = None,
    fallback_role: str | None = None,
) -> None:
    """Record one alert event in the caller's transaction (see the module docstring)."""
    emit_many(
        conn,
        kind,
        [(tenant_id, dict(facts), list(usernames))],
        now=now,
        role=role,
        fallback_role=fallback_role,
    )


def emit_many(
    conn: Connection,
    kind: AlertKind,
    items: Iterable[tuple[str | None, dict[str, Any], list[str]]],
    *,
    now: datetime,
    role: str | None = None,
    fallback_role: str | None = None,
) -> int:
    """Record several events of one kind ((tenant, facts, usernames) each) in one insert."""
    rows = [
        {
            "kind": kind.value,
            "tenant_id": tenant,
            "audience": {
                "usernames": [name.lower() for name in names if name],
                "role": role,
                "fallback_role": fallback_role,
            },
            "facts": facts,
            "fanned_out": False,
            "created_at": now,
        }
        for tenant, facts, names in items
    ]
    if rows:
        conn.execute(insert(EVENTS), rows)
    return len(rows)


def _cut(text: object) -> str | None:
    if text is None:
        return None
    value = str(text)
    return value if len(value) <= MAX_TEXT else value[: MAX_TEXT - 1] + "…"


def po_rejections(conn: Connection, acks: Iterable[Mapping[str, Any]], now: datetime) -> int:
    """A supplier pressed a "reject" button: tell the buyer who sent the notice (the
    message's `created_by`), else the tenant's buyers. `acks` are acknowledgement rows
    as `core.webhooks.inbound` writes them (only `action == "rejected"` ones count)."""
    rejected = [ack for ack in acks if ack.get("action") == "rejected"]
    if not rejected:
        return 0
    ids = [ack["message_id"] for ack in rejected if ack.get("message_id")]
    senders: dict[str, tuple[str | None, str | None, str | None]] = {}
    if ids:
        rows = conn.execute(
            select(_M.c.id, _M.c.created_by, _M.c.recipient_phone, _S.c.name)
            .select_from(_M.outerjoin(_S, _S.c.id == _M.c.supplier_id))
            .where(_M.c.id.in_(ids))
        )
        senders = {row.id: (row.created_by, row.recipient_phone, row.name) for row in rows}
    supplier_ids = [a["supplier_id"] for a in rejected if a.get("supplier_id")]
    names: dict[int, str] = {}
    if supplier_ids:
        names = dict(
            conn.execute(select(_S.c.id, _S.c.name).where(_S.c.id.in_(supplier_ids))).all()
        )
    items = []
    for ack in rejected:
        created_by, phone, supplier = senders.get(ack.get("message_id") or "", (None, None, None))
        supplier = supplier or names.get(ack.get("supplier_id") or -1)
        facts = {
            "po_number": _cut(ack.get("po_number")),
            "supplier": _cut(supplier),
            "phone": phone,
            "reply": _cut(ack.get("button_text") or ack.get("payload")),
            "at": _iso(ack.get("at")),
            "message_id": ack.get("message_id"),
        }
        items.append((str(ack["tenant_id"]), facts, [created_by] if created_by else []))
    return emit_many(conn, AlertKind.PO_REJECTED, items, now=now, fallback_role="buyer")


def sending_paused(
    conn: Connection, phone_number_id: str, reason: str, code: int | None, at: datetime
) -> None:
    """Sending from a number paused (a pause-class error, or a person): tell the admins
    of the number's tenant (pauses are per number; other tenants' sending goes on)."""
    emit(
        conn,
        AlertKind.SENDING_PAUSED,
        tenant_id=number_tenant(conn, phone_number_id),
        facts={
            "phone_number_id": phone_number_id,
            "reason": _cut(reason),
            "code": code,
            "at": _iso(at),
        },
        now=at,
        role="admin",
    )


def number_tenant(conn: Connection, phone_number_id: str) -> str:
    """The tenant whose admins hear of `phone_number_id`'s pause: the number's tenant
    (`core.webhooks.numbers.number_book`, the one rule), else the default tenant (the
    environment's number while every tenant shares it, or a number nobody registered:
    the installation's, whose operators are its admins). Read in the caller's
    transaction, so the pause and its alert commit together."""
    from core.webhooks.numbers import number_book  # the webhooks package imports alerts

    default = get_settings().default_tenant
    return number_book(conn, default).get(phone_number_id) or default


def batches_finished(conn: Connection, batch_ids: Sequence[str], now: datetime) -> int:
    """Batches just marked done: tell each one's owner (`created_by`, else the tenant's
    admins) when some of its messages failed or need attention."""
    if not batch_ids:
        return 0
    bad = (MessageStatus.FAILED, MessageStatus.NEEDS_ATTENTION)
    rows = conn.execute(
        select(
            _B.c.id,
            _B.c.tenant_id,
            _B.c.name,
            _B.c.created_by,
            func.count(_M.c.id).label("total"),
            func.sum(_case_in(_M.c.status, bad)).label("failed"),
        )
        .select_from(_B.join(_M, _M.c.batch_id == _B.c.id))
        .where(_B.c.id.in_(list(batch_ids)))
        .group_by(_B.c.id, _B.c.tenant_id, _B.c.name, _B.c.created_by)
    ).all()
    items = [
        (
            str(row.tenant_id),
            {
                "batch_id": row.id,
                "batch": _cut(row.name),
                "failed": int(row.failed or 0),
                "total": int(row.total or 0),
            },
            [row.created_by] if row.created_by else [],
        )
        for row in rows
        if int(row.failed or 0) > 0
    ]
    return emit_many(conn, AlertKind.BATCH_FAILURES, items, now=now, fallback_role="admin")


def _case_in(column: Any, values: Sequence[str]) -> Any:
    return case((column.in_(list(values)), 1), else_=0)


def template_changes(conn: Connection, changes: Iterable[Any], now: datetime) -> int:
    """Meta paused, disabled or rejected a template: tell the admins of every tenant whose
    row of it is not already in that status (a repeated webhook tells nobody twice).
    Call before the rows are updated; `changes` are `core.webhooks.parse.TemplateChange`."""
    items: list[tuple[str | None, dict[str, Any], list[str]]] = []
    for change in changes:
        if (
            getattr(change, "kind", None) == "quality"
            or change.value not in TEMPLATE_ALERT_STATUSES
        ):
            continue
        where = [
            _T.c.template_name == change.name,
            or_(_T.c.status.is_(None), _T.c.status != change.value),
        ]
        if change.language:
            where.append(_T.c.language == change.language)
        found = conn.execute(select(_T.c.tenant_id, _T.c.language).where(and_(*where))).all()
        reason = change.reason if change.reason and change.reason.upper() != "NONE" else None
        for tenant, language in found:
            facts = {
                "template": _cut(change.name),
                "language": language,
                "status": change.value,
                "reason": _cut(reason),
            }
            items.append((str(tenant), facts, []))
    return emit_many(conn, AlertKind.TEMPLATE_HELD, items, now=now, role="admin")


def signatures_refused(conn: Connection, reason: str, count: int, first_at: datetime) -> None:
    """A new run of webhook deliveries refused for a bad signature began: tell the admins
    once per run (a run ends when a valid delivery arrives), not once per refusal."""
    emit(
        conn,
        AlertKind.WEBHOOK_SIGNATURES,
        tenant_id=None,
        facts={"reason": reason, "count": count, "at": _iso(first_at)},
        now=first_at,
        role="admin",
    )


def _iso(value: object) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else None
