"""The messages page lists messages needing attention (sends a crash left unknown) and
resends them all on a person's confirmed word (AppTest, real SQLite file)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, inspect, text
from sqlmodel import Session, col, select

from core.db import session_scope
from core.models.messages import WhatsAppMessage
from core.sender.recovery import INFLIGHT_LOST_CLASS, INFLIGHT_LOST_MESSAGE
from tests.dashboard.pages import dashboard_env, page, person, texts

__all__ = ["dashboard_env"]

MODULE = "dashboard.views.messages"
NOW = datetime.now(UTC)
HOSTILE = "**bold** <script>alert(1)</script> [link](http://x)"


def _lost(engine: Engine, n: int, *, tenant: str = "default", reason: str = "") -> str:
    at = NOW - timedelta(minutes=n)
    row = WhatsAppMessage(
        tenant_id=tenant,
        idempotency_key=f"lost:{tenant}:{n}",
        recipient_phone=f"+3461200{n:04d}",
        request_payload={"type": "template", "template": {"name": "po_notification"}},
        template_name="po_notification",
        status="needs_attention",
        error_class=INFLIGHT_LOST_CLASS,
        error_message=reason or INFLIGHT_LOST_MESSAGE,
        po_number=f"PO-L{n}",
        created_at=at,
        updated_at=at,
    )
    with session_scope(engine) as session:
        session.add(row)
    return row.id


def _allow_unrecorded_consent(engine: Engine) -> None:
    """These rows name no supplier: let the tenant send without recorded consent."""
    if not inspect(engine).has_table("tenant_settings"):
        return
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO tenant_settings (tenant_id, key, value, updated_by, updated_at)"
                " VALUES ('default', 'consent.allow_unrecorded', 'true', 't', CURRENT_TIMESTAMP)"
            )
        )


def _copies(engine: Engine, originals: set[str]) -> list[WhatsAppMessage]:
    with Session(engine) as session:
        found = session.exec(
            select(WhatsAppMessage).where(col(WhatsAppMessage.id).not_in(originals))
        ).all()
    return list(found)


def test_messages_needing_attention_are_listed_and_resent_all_after_confirming(
    dashboard_env: str, engine: Engine
) -> None:
    _allow_unrecorded_consent(engine)
    lost = {_lost(engine, 1), _lost(engine, 2, reason=HOSTILE)}
    at = page(MODULE, person("manager")).run()
    assert not at.exception
    assert "2 messages need attention" in texts(at)
    (listed,) = [d.value for d in at.dataframe if "Reason" in d.value.columns]
    assert set(listed["PO"]) == {"PO-L1", "PO-L2"}
    assert HOSTILE in set(listed["Reason"])  # outside text as a cell, never Markdown
    at.button(key="resend_all_attention").click().run()
    assert "Send these 2 messages again" in texts(at)
    assert _copies(engine, lost) == []  # nothing until confirmed
    at.button(key="resend_all_yes").click().run()
    assert not at.exception
    copies = _copies(engine, lost)
    assert {(m.meta or {}).get("resend_of") for m in copies} == lost
    assert all(m.status == "pending" and m.created_by == "manager-user" for m in copies)
    at.run()  # resent: settled, no longer listed
    assert not [b for b in at.button if b.key == "resend_all_attention"]
    assert "need attention" not in texts(at)


def test_cancel_resends_nothing_and_foreign_or_buyer_views_offer_no_button(
    dashboard_env: str, engine: Engine
) -> None:
    mine = _lost(engine, 1)
    at = page(MODULE, person("manager")).run()
    at.button(key="resend_all_attention").click().run()
    at.button(key="resend_all_no").click().run()
    assert _copies(engine, {mine}) == []
    assert [b for b in at.button if b.key == "resend_all_attention"]

    foreign = _lost(engine, 2, tenant="branch")
    other = page(MODULE, person("manager", "branch", "default")).run()
    assert "2 messages need attention" in texts(other)  # both tenants visible
    other.button(key="resend_all_attention").click().run()
    assert "Send these 1 messages again" in texts(other)  # only its own tenant's
    buyer = page(MODULE, person("buyer")).run()
    assert not [b for b in buyer.button if b.key == "resend_all_attention"]
    assert _copies(engine, {mine, foreign}) == []
