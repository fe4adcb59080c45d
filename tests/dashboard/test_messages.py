"""The messages page (AppTest) on a real SQLite file: search, paging, hostile input, the
timeline and the deliberate, confirmed resend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from core import clock
from core.db import session_scope
from core.models.messages import WhatsAppMessage
from tests.dashboard.pages import dashboard_env, page, person, texts
from tests.fixtures.consent import consenting_supplier

pytestmark = pytest.mark.clock  # decides by dates or ages: also run a year ahead

__all__ = ["dashboard_env"]

MODULE = "dashboard.views.messages"
NOW = datetime.now(UTC)


def _message(engine: Engine, n: int, *, tenant: str = "default", **values: object) -> str:
    at = values.pop("at", NOW - timedelta(minutes=n))
    row = WhatsAppMessage(
        tenant_id=tenant,
        idempotency_key=f"t:{tenant}:{n}",
        recipient_phone=str(values.pop("phone", f"+3461200{n:04d}")),
        request_payload={"type": "template", "template": {"name": "po_notification"}},
        template_name="po_notification",
        status=str(values.pop("status", "delivered")),
        po_number=str(values.pop("po", f"PO-2026-{n:04d}")),
        body_text="Hola, le enviamos el pedido",
        created_at=at,
        updated_at=at,
        **values,
    )
    with session_scope(engine) as session:
        session.add(row)
    return row.id


def _table_pos(at: object) -> list[str]:
    return list(at.dataframe[0].value["po"])  # type: ignore[attr-defined]


def test_search_by_po_phone_and_status(dashboard_env: str, engine: Engine) -> None:
    _message(engine, 1)
    _message(engine, 2, status="failed", error_code=131026)
    _message(engine, 3, phone="+34699111222")
    at = page(MODULE, person("manager")).run()
    assert not at.exception
    assert len(_table_pos(at)) == 3
    at.text_input(key="messages_po").set_value("po-2026-0002").run()
    assert _table_pos(at) == ["PO-2026-0002"]
    assert "Undeliverable" in str(at.dataframe[0].value["problem"].iloc[0])
    at.text_input(key="messages_po").set_value("").run()
    at.text_input(key="messages_phone").set_value("699 111 222").run()
    assert _table_pos(at) == ["PO-2026-0003"]
    at.text_input(key="messages_phone").set_value("").run()
    at.multiselect(key="messages_status").set_value(["failed"]).run()
    assert _table_pos(at) == ["PO-2026-0002"]


def test_hostile_search_text_is_plain_text(dashboard_env: str, engine: Engine) -> None:
    _message(engine, 1)
    at = page(MODULE, person("manager")).run()
    at.text_input(key="messages_po").set_value("%").run()
    assert "No messages found" in texts(at)
    at.text_input(key="messages_po").set_value("'; DROP TABLE whatsapp_messages; --").run()
    assert "No messages found" in texts(at)
    at.text_input(key="messages_po").set_value("").run()
    at.text_input(key="messages_phone").set_value("robert'); --").run()
    assert "needs some digits" in texts(at)
    at.text_input(key="messages_phone").set_value("x" * 500).run()
    assert "at most 64 characters" in texts(at)
    with Session(engine) as session:
        assert len(session.exec(select(WhatsAppMessage)).all()) == 1


def test_results_are_paged(dashboard_env: str, engine: Engine) -> None:
    for n in range(1, 121):
        _message(engine, n)
    at = page(MODULE, person("manager")).run()
    assert len(_table_pos(at)) == 50
    assert "1–50 of 120" in texts(at)
    assert "page 1 of 3" in texts(at)
    at.button(key="messages_next").click().run()
    assert "51–100 of 120" in texts(at)
    assert _table_pos(at)[0] == "PO-2026-0051"
    at.button(key="messages_last").click().run()
    assert "101–120 of 120" in texts(at)
    assert _table_pos(at)[-1] == "PO-2026-0120"  # the last row of the list
    assert at.button(key="messages_next").disabled
    at.text_input(key="messages_po").set_value("PO-2026-01").run()  # new filter: page 1
    assert "1–21 of 21" in texts(at)


def test_the_timeline_and_a_confirmed_resend(dashboard_env: str, engine: Engine) -> None:
    consenting_supplier(engine, "+34612000001")  # a resend checks consent again
    failed = _message(engine, 1, status="failed", error_code=131053,
                      accepted_at=NOW - timedelta(minutes=1),
                      failed_at=NOW - timedelta(seconds=30))  # fmt: skip
    at = page(MODULE, person("manager"))
    at.session_state["messages_selected"] = failed
    at.run()
    assert "Accepted by WhatsApp" in texts(at)
    assert "Status: failed" in texts(at)
    assert "PDF/image" in texts(at)
    at.button(key=f"resend_{failed}").click().run()
    assert "Send this message again" in texts(at)
    with Session(engine) as session:
        assert len(session.exec(select(WhatsAppMessage)).all()) == 1  # nothing yet
    at.button(key=f"resend_yes_{failed}").click().run()
    assert not at.exception
    with Session(engine) as session:
        copies = session.exec(
            select(WhatsAppMessage).where(col(WhatsAppMessage.id) != failed)
        ).all()
    assert len(copies) == 1
    assert copies[0].status == "pending" and (copies[0].meta or {})["resend_of"] == failed
    assert copies[0].created_by == "manager-user"


def test_resend_is_not_offered_for_delivered_or_foreign_messages(
    dashboard_env: str, engine: Engine
) -> None:
    delivered = _message(engine, 1)
    foreign = _message(engine, 2, tenant="branch", status="failed")
    at = page(MODULE, person("manager", "default", "branch"))
    at.session_state["messages_selected"] = delivered
    at.run()
    assert not [b for b in at.button if b.key == f"resend_{delivered}"]
    at.session_state["messages_selected"] = foreign
    at.run()
    assert not [b for b in at.button if b.key == f"resend_{foreign}"]
    assert "Resend from an account of that tenant" in texts(at)


def test_buyers_are_refused(dashboard_env: str, engine: Engine) -> None:
    _message(engine, 1)
    at = page(MODULE, person("buyer")).run()
    assert "may not view messages" in texts(at)
    assert not at.dataframe


def test_the_default_date_range_ends_today_on_the_injected_clock(
    dashboard_env: str, engine: Engine
) -> None:
    """The page's default window is read from core.clock, not the machine's calendar."""
    later = datetime(2031, 6, 15, 12, 0, tzinfo=UTC)
    _message(engine, 1, at=later - timedelta(hours=2))  # inside the window of that day
    _message(engine, 2)  # written on today's wall clock: years before that window
    with clock.frozen(later):
        at = page(MODULE, person("manager")).run()
        assert not at.exception
        assert _table_pos(at) == ["PO-2026-0001"]
        assert at.date_input[0].value[-1] == later.date()


def test_the_detail_counts_attempts_and_says_what_reached_the_supplier(
    dashboard_env: str, engine: Engine
) -> None:
    sent = _message(engine, 1, status="sent", accepted_at=NOW, sent_at=NOW)
    failed = _message(engine, 2, status="failed", error_code=131026, attempt_count=1,
                      failed_at=NOW)  # fmt: skip
    delivered = _message(engine, 3, accepted_at=NOW, delivered_at=NOW)
    at = page(MODULE, person("manager"))
    at.session_state["messages_selected"] = sent
    at.run()
    assert "1 attempt" in texts(at) and "attempt(s)" not in texts(at)
    assert "0 attempt" not in texts(at)
    assert "What the supplier received" not in texts(at)  # sent, not delivered yet
    at.session_state["messages_selected"] = failed
    at.run()
    assert "The message (not delivered)" in texts(at)
    assert "What the supplier received" not in texts(at)
    at.session_state["messages_selected"] = delivered
    at.run()
    assert "What the supplier received" in texts(at)


def test_a_failure_a_resend_cannot_fix_says_so_instead_of_offering_it(
    dashboard_env: str, engine: Engine
) -> None:
    futile = _message(engine, 1, status="failed", error_code=132000, failed_at=NOW)
    at = page(MODULE, person("manager"))
    at.session_state["messages_selected"] = futile
    at.run()
    assert not [b for b in at.button if b.key == f"resend_{futile}"]
    assert "would fail the same way" in texts(at)


def test_resent_as_opens_that_message_and_names_it_in_the_address(
    dashboard_env: str, engine: Engine
) -> None:
    copy = _message(engine, 2, status="delivered", po="PO-2026-COPY")
    original = _message(engine, 1, status="failed", error_code=131026, failed_at=NOW,
                        meta={"resent_as": [copy]})  # fmt: skip
    at = page(MODULE, person("manager"))
    at.session_state["messages_selected"] = original
    at.run()
    link = at.button(key=f"messages_open_{copy}")
    assert link.label.startswith("Resent as message " + copy[:8])
    link.click().run()
    assert at.session_state["messages_selected"] == copy
    assert at.query_params["message"] in (copy, [copy])
    assert "PO-2026-COPY →" in texts(at)
    again = page(MODULE, person("manager"))  # the address alone opens it
    again.query_params["message"] = copy
    again.run()
    assert "PO-2026-COPY →" in texts(again)
