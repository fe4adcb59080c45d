"""Follow-up test data: PO notices delivered at chosen times, answers through the real
webhook applier (so they land where Meta's do), tenants with the sandbox's templates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import count
from typing import Any

from sqlalchemy import Engine, update

from core.db import session_scope
from core.followup.settings import AFTER_HOURS, AUTO, AUTO_EVERY_HOURS, MAX_REMINDERS
from core.models.consent import TenantSetting
from core.models.messages import WhatsAppMessage
from core.models.users import Role
from core.notify import PoNotice, send_po_notice
from core.sandbox.catalog import DEFAULT_TEMPLATE_FIELDS, default_templates
from core.templates import upsert_templates
from core.users import UserInfo
from tests.core.webhooks.helpers import apply_all, inbound_body, inbound_message, journal
from tests.fixtures.consent import allow_unrecorded

#: A fixed "now" for every follow-up test (the clock is injected, never the wall's).
T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
_M = WhatsAppMessage.__table__  # type: ignore[attr-defined]
_seq = count(1)
HOSTILE = "[click me](https://evil.example) <img src=x onerror=alert(1)> **bold** [red]x[/]\n# H"


def person(role: str = "buyer", tenant: str = "default") -> UserInfo:
    """A logged-in user of `tenant`."""
    return UserInfo(1, f"{role}-1", role.title(), Role(role), tenant, (tenant,), True, False, None)


def ready(engine: Engine, *tenants: str) -> Engine:
    """The tenants have the sandbox's templates and send without recorded consent."""
    for tenant in tenants or ("default",):
        upsert_templates(
            engine, tenant, [t.as_graph(DEFAULT_TEMPLATE_FIELDS) for t in default_templates()]
        )
    allow_unrecorded(engine, *(tenants or ("default",)))
    return engine


def setting(engine: Engine, tenant: str = "default", **values: Any) -> None:
    """Write follow-up settings directly (after_hours, max_reminders, auto, every)."""
    keys = {"after_hours": AFTER_HOURS, "max_reminders": MAX_REMINDERS, "auto": AUTO,
            "every": AUTO_EVERY_HOURS}  # fmt: skip
    with session_scope(engine) as session:
        for name, value in values.items():
            text = ("true" if value else "false") if isinstance(value, bool) else str(value)
            session.merge(TenantSetting(tenant_id=tenant, key=keys[name], value=text))


def phone(n: int) -> str:
    """A distinct Spanish mobile number."""
    return f"+3461{n:07d}"


def notice(
    engine: Engine,
    po: str,
    delivered: datetime | None,
    *,
    tenant: str = "default",
    number: str | None = None,
    name: str = "Harinas Martín",
    language: str = "es",
) -> tuple[str, str]:
    """A PO notice queued through `core.notify` and marked delivered at `delivered`
    (None: only sent); returns (message id, wamid)."""
    n = next(_seq)
    number = number or phone(n)
    queued = send_po_notice(
        PoNotice(tenant_id=tenant, supplier_name=name, phone=number, po_number=po,
                 amount=Decimal("120.50"), currency="EUR", language=language),
        engine=engine,
    )  # fmt: skip
    wamid = f"wamid.followup.{n}.{po}"
    values: dict[str, Any] = {"whatsapp_message_id": wamid, "status": "sent",
                              "sent_at": (delivered or T0) - timedelta(minutes=1)}  # fmt: skip
    if delivered is not None:
        values.update(status="delivered", delivered_at=delivered)
    with engine.begin() as conn:
        conn.execute(update(_M).where(_M.c.id == queued.message.id).values(**values))
    return queued.message.id, wamid


def answer(
    engine: Engine,
    context_wamid: str,
    sender: str,
    at: datetime,
    *,
    button: str | None = None,
    text: str | None = None,
) -> None:
    """The supplier answers the message `context_wamid` (a button label or a text), through
    the journal and the applier, as a webhook would."""
    ts = int(at.timestamp())
    wamid = f"wamid.in.{next(_seq)}"
    if button is not None:
        item = inbound_message(wamid, sender.lstrip("+"), "button", ts, context=context_wamid,
                               button={"payload": button, "text": button})  # fmt: skip
    else:
        item = inbound_message(wamid, sender.lstrip("+"), "text", ts, context=context_wamid,
                               text={"body": text or ""})  # fmt: skip
    journal(engine, inbound_body(item), at=at)
    apply_all(engine, now=at)


def deliver(engine: Engine, message_id: str, at: datetime, wamid: str) -> None:
    """Mark a message (a reminder) delivered with this wamid."""
    with engine.begin() as conn:
        conn.execute(
            update(_M)
            .where(_M.c.id == message_id)
            .values(whatsapp_message_id=wamid, status="delivered", sent_at=at, delivered_at=at)
        )
