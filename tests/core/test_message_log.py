"""core.message_log on a real SQLite file: search rules, paging, timeline, resend rules."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import select

from core.auth import PermissionDenied
from core.db import session_scope
from core.message_log import (
    MAX_PAGE_SIZE,
    MessageSearch,
    SearchError,
    message_detail,
    resend_message,
    search_messages,
)
from core.models.events import InboundMessage, MessageStatusEvent, PoAcknowledgement
from core.models.messages import WhatsAppMessage
from core.outbox import OutboxError
from tests.dashboard.pages import person
from tests.fixtures.consent import consenting_supplier

pytestmark = pytest.mark.clock  # decides by dates or ages: also run a year ahead

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def _message(engine: Engine, n: int, *, tenant: str = "default", **values: object) -> str:
    at = values.pop("at", T0 + timedelta(minutes=n))
    row = WhatsAppMessage(
        tenant_id=tenant, idempotency_key=f"k{n}", recipient_phone=f"+3461200{n:04d}",
        request_payload={}, status=str(values.pop("status", "sent")),
        po_number=str(values.pop("po", f"PO-{n}")), created_at=at, updated_at=at, **values,
    )  # fmt: skip
    with session_scope(engine) as session:
        session.add(row)
    return row.id


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ({"tenant_ids": ()}, "tenant"),
        ({"statuses": ("lost",)}, "Unknown status"),
        ({"start": date(2026, 2, 1), "end": date(2026, 1, 1)}, "before the start"),
        ({"phone": "abc"}, "needs some digits"),
        ({"po_number": "P" * 65}, "at most 64"),
        ({"page_size": MAX_PAGE_SIZE + 1}, "1 to 200"),
        ({"page": 0}, "numbered from 1"),
        ({"tz": "Nowhere/City"}, "Unknown time zone"),
    ],
)
def test_unusable_searches_are_refused(values: dict[str, object], problem: str) -> None:
    args: dict[str, object] = {"tenant_ids": ("default",), **values}
    with pytest.raises(SearchError, match=problem):
        MessageSearch(**args)  # type: ignore[arg-type]


def test_search_matches_like_metacharacters_literally(engine: Engine) -> None:
    _message(engine, 1, po="PO_1")
    _message(engine, 2, po="POX1")
    found = search_messages(engine, MessageSearch(("default",), po_number="po_1"))
    assert [r.po_number for r in found.rows] == ["PO_1"]
    assert search_messages(engine, MessageSearch(("default",), po_number="%")).total == 0


def test_dates_are_days_in_the_viewers_zone(engine: Engine) -> None:
    _message(engine, 1, at=datetime(2026, 11, 20, 23, 30, tzinfo=UTC))  # 21 Nov in Madrid
    madrid = MessageSearch(("default",), start=date(2026, 11, 21), end=date(2026, 11, 21),
                           tz="Europe/Madrid")  # fmt: skip
    utc = MessageSearch(("default",), start=date(2026, 11, 21), end=date(2026, 11, 21))
    assert search_messages(engine, madrid).total == 1
    assert search_messages(engine, utc).total == 0


def test_pages_are_newest_first_and_tenant_scoped(engine: Engine) -> None:
    for n in range(1, 8):
        _message(engine, n)
    _message(engine, 99, tenant="other")
    first = search_messages(engine, MessageSearch(("default",), page_size=3))
    third = search_messages(engine, MessageSearch(("default",), page_size=3, page=3))
    assert (first.total, first.pages) == (7, 3)
    assert [r.po_number for r in first.rows] == ["PO-7", "PO-6", "PO-5"]
    assert [r.po_number for r in third.rows] == ["PO-1"]


def test_timeline_keeps_a_messages_order_within_one_second(engine: Engine) -> None:
    """Meta's webhook times are whole seconds; ours have fractions (QA saw sent before accepted)."""
    mid = _message(engine, 1, status="delivered", accepted_at=T0 + timedelta(milliseconds=400),
                   at=T0)  # fmt: skip
    with session_scope(engine) as session:
        for i, status in enumerate(("delivered", "sent")):
            session.add(MessageStatusEvent(
                event_key=f"s{i}", tenant_id="default", message_id=mid, wamid="w1",
                status=status, at=T0, received_at=T0,
            ))  # fmt: skip
    detail = message_detail(engine, ("default",), mid)
    assert detail is not None
    assert [e.kind for e in detail.events] == ["queued", "accepted", "sent", "delivered"]


def test_timeline_merges_statuses_replies_and_acknowledgements(engine: Engine) -> None:
    mid = _message(engine, 1, status="read", po="PO-9", accepted_at=T0,
                   at=T0 - timedelta(seconds=1))  # fmt: skip
    with session_scope(engine) as session:
        for i, (status, secs) in enumerate((("read", 90), ("sent", 2), ("delivered", 5))):
            session.add(MessageStatusEvent(
                event_key=f"e{i}", tenant_id="default", message_id=mid, wamid="w1",
                status=status, at=T0 + timedelta(seconds=secs), received_at=T0,
                pricing_category="utility" if status != "sent" else None,
                pricing_type="regular" if status != "sent" else None,
            ))  # fmt: skip
        session.add(InboundMessage(
            tenant_id="default", wamid="in1", from_wa_id="34612000001", message_type="button",
            text="Confirmar pedido", context_message_id=mid, at=T0 + timedelta(minutes=5),
            received_at=T0,
        ))  # fmt: skip
        session.add(PoAcknowledgement(
            tenant_id="default", po_number="PO-9", message_id=mid, inbound_wamid="in1",
            action="confirmed", at=T0 + timedelta(minutes=5),
        ))  # fmt: skip
    detail = message_detail(engine, ("default",), mid)
    assert detail is not None
    kinds = [e.kind for e in detail.events]
    assert kinds[:6] == ["queued", "accepted", "sent", "delivered", "read", "reply"]
    assert "acknowledgement" in kinds
    assert [e.at for e in detail.events] == sorted(e.at for e in detail.events)
    assert detail.row.replied_at is not None  # kept by the database trigger
    assert message_detail(engine, ("other",), mid) is None
    assert message_detail(engine, ("default",), "no-such-id' OR 1=1 --") is None


def test_resend_rules(engine: Engine) -> None:
    failed = _message(engine, 1, status="failed")
    delivered = _message(engine, 2, status="delivered")
    consenting_supplier(engine, "+34612000001")
    foreign = _message(engine, 3, status="failed", tenant="branch")
    manager = person("manager", "default", "branch")
    with pytest.raises(PermissionDenied):
        resend_message(engine, person("buyer"), failed)
    with pytest.raises(OutboxError, match="only failed"):
        resend_message(engine, manager, delivered)
    with pytest.raises(PermissionDenied, match="another tenant"):
        resend_message(engine, manager, foreign)
    with pytest.raises(OutboxError):
        resend_message(engine, person("manager", "elsewhere"), failed)
    new_id = resend_message(engine, manager, failed)
    detail = message_detail(engine, ("default",), new_id)
    assert detail is not None and detail.resend_of == failed and detail.row.status == "pending"
    original = message_detail(engine, ("default",), failed)
    assert original is not None and original.resent_as == (new_id,)


@pytest.mark.parametrize(
    ("values", "attempts"),
    [
        ({"status": "pending"}, 0),  # queued, never handed to WhatsApp
        ({"status": "sent", "accepted_at": T0, "sent_at": T0}, 1),  # not "0 attempt(s)"
        ({"status": "delivered", "accepted_at": T0, "attempt_count": 2}, 3),  # 2 retries
        ({"status": "failed", "attempt_count": 1, "error_code": 131026}, 1),
        ({"status": "failed", "attempt_count": 0}, 0),  # held template: never sent
    ],
)
def test_attempts_count_every_time_it_was_handed_to_whatsapp(
    engine: Engine, values: dict[str, object], attempts: int
) -> None:
    found = message_detail(engine, ("default",), _message(engine, 1, **values))
    assert found is not None and found.attempts == attempts


def test_a_failure_a_resend_cannot_fix_is_not_resent(engine: Engine) -> None:
    params = _message(engine, 1, status="failed", error_code=132000)
    template = _message(engine, 2, status="failed", error_code=132001)
    undelivered = _message(engine, 3, status="failed", error_code=131026)
    unknown = _message(engine, 4, status="failed")
    manager = person("manager")
    for futile in (params, template):
        detail = message_detail(engine, ("default",), futile)
        assert detail is not None and detail.resend_futile
        with pytest.raises(OutboxError, match="would fail the same way"):
            resend_message(engine, manager, futile)
    for worth_trying in (undelivered, unknown):
        detail = message_detail(engine, ("default",), worth_trying)
        assert detail is not None and not detail.resend_futile
        try:  # other rules (consent) may still refuse it, but not for its error
            resend_message(engine, manager, worth_trying)
        except OutboxError as exc:
            assert "fail the same way" not in str(exc)
    with session_scope(engine) as session:
        sent_again = session.exec(
            select(WhatsAppMessage).where(
                WhatsAppMessage.meta.is_not(None)  # type: ignore[union-attr]
            )
        ).all()
        assert not [m for m in sent_again if (m.meta or {}).get("resend_of") in (params, template)]
