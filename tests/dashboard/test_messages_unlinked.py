"""Replies tied to no notice are visible as such (issue 11 item 5): `core.message_log`'s
list and the messages page's "Replies not linked to a notice", on the real webhook path."""

from __future__ import annotations

from sqlalchemy import Engine

from core.message_log import unlinked_replies
from tests.core.webhooks.helpers import (
    add_message,
    add_supplier,
    apply_all,
    inbound_body,
    inbound_message,
    journal,
)
from tests.dashboard.pages import dashboard_env, page, person

__all__ = ["dashboard_env"]

HOSTILE = "[pulse aquí](https://evil.example) **PO?** <img src=x>"


def _replies(engine: Engine) -> None:
    """Through the webhook applier: one linked reply, two unlinked, one of another tenant."""
    sid = add_supplier(engine, "+34612345678", name="Harinas Martín")
    add_supplier(engine, "+34655555555", tenant="globex", name="Globex Foods")
    add_message(engine, wamid="wamid.N1", po_number="PO-1", supplier_id=sid)
    journal(
        engine,
        inbound_body(
            inbound_message("wamid.LINKED", "34612345678", "text", text={"body": "ok PO-1"}),
            inbound_message("wamid.FREE", "34612345678", "text", text={"body": HOSTILE}),
            inbound_message("wamid.STRANGER", "34699999999", "text", text={"body": "¿hola?"}),
        ),
        inbound_body(
            inbound_message("wamid.GLOBEX", "34655555555", "text", text={"body": "globex"})
        ),
    )
    apply_all(engine)


def test_unlinked_replies_are_listed_per_tenant(engine: Engine) -> None:
    _replies(engine)
    listed = unlinked_replies(engine, ("default",))
    assert sorted((r.from_wa_id, r.supplier, r.text) for r in listed) == [
        ("34612345678", "Harinas Martín", HOSTILE),
        ("34699999999", None, "¿hola?"),
    ]
    assert [r.text for r in unlinked_replies(engine, ("globex",))] == ["globex"]
    assert unlinked_replies(engine, ()) == []
    assert len(unlinked_replies(engine, ("default", "globex"), limit=10_000)) == 3
    assert len(unlinked_replies(engine, ("default",), limit=-5)) == 1


def test_the_messages_page_shows_them_as_text(dashboard_env: str, engine: Engine) -> None:
    _replies(engine)
    at = page("dashboard.views.messages", person("manager")).run()
    assert not at.exception
    (expander,) = [e for e in at.expander if "not linked" in e.label]
    assert expander.label == "Replies not linked to a notice (2)"
    (frame,) = [d.value for d in at.dataframe if "Text" in d.value.columns]
    assert sorted(frame["Text"]) == sorted([HOSTILE, "¿hola?"])  # a cell: never Markdown
    assert sorted(frame["Supplier"]) == ["Harinas Martín", "unknown"]
    assert "globex" not in list(frame["Text"])
