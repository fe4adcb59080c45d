"""The template registry: storing Meta's templates per tenant, and syncing over HTTP."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import Engine
from sqlmodel import Session

from core.cloud_api import CloudApiClient
from core.db import session_scope
from core.settings import get_settings
from core.templates import (
    definition_of,
    get_template,
    list_templates,
    sync_templates,
    upsert_templates,
)
from tests.fixtures.templates import po_notification, positional_reminder, text_header_with_buttons


def all_three() -> list[dict[str, Any]]:
    return [po_notification("es"), po_notification("en"), positional_reminder()]


def test_first_sync_adds_every_template(engine: Engine) -> None:
    report = upsert_templates(engine, "acme", all_three())
    assert (report.added, report.updated, report.unchanged, report.deactivated) == (3, 0, 0, 0)
    with Session(engine) as session:
        row = get_template(session, "acme", "po_notification", "es")
        assert row is not None
        assert row.template_key == "po_notification:es"
        assert row.parameter_names == ["supplier_name", "po_number", "total_amount"]
        assert row.parameter_count == 3 and row.parameter_format == "NAMED"
        assert row.header_format == "DOCUMENT" and row.footer_text == "Compras"
        assert row.buttons == po_notification("es")["components"][3]["buttons"]
        assert row.components == po_notification("es")["components"]  # verbatim
        assert row.quality_score == "GREEN" and row.rejected_reason == "NONE"
        assert row.meta_template_id == "1029384756473821"
        assert row.synced_at is not None and row.synced_at.tzinfo is not None
        assert definition_of(row).body_params == ("supplier_name", "po_number", "total_amount")


def test_resync_is_idempotent_and_reports_changes(engine: Engine) -> None:
    upsert_templates(engine, "acme", all_three())
    again = upsert_templates(engine, "acme", all_three())
    assert (again.added, again.updated, again.unchanged, again.deactivated) == (0, 0, 3, 0)

    changed = all_three()
    changed[0]["status"] = "PAUSED"
    changed[2]["components"][0]["text"] = "Nuevo texto {{1}}"
    report = upsert_templates(engine, "acme", changed)
    assert (report.added, report.updated, report.unchanged) == (0, 2, 1)
    with Session(engine) as session:
        paused = get_template(session, "acme", "po_notification", "es")
        assert paused is not None and paused.status == "PAUSED"
        reminder = get_template(session, "acme", "delivery_reminder", "es")
        assert reminder is not None and reminder.parameter_count == 1


def test_templates_gone_from_the_account_are_deactivated_not_deleted(engine: Engine) -> None:
    upsert_templates(engine, "acme", all_three())
    with session_scope(engine) as session:
        row = get_template(session, "acme", "delivery_reminder", "es")
        assert row is not None
        row.sent_count = 41
    report = upsert_templates(engine, "acme", all_three()[:2])
    assert report.deactivated == 1 and report.unchanged == 2
    assert upsert_templates(engine, "acme", all_three()[:2]).deactivated == 0  # counted once
    with Session(engine) as session:
        gone = get_template(session, "acme", "delivery_reminder", "es")
        assert gone is not None and not gone.is_active and gone.sent_count == 41
        assert not definition_of(gone).is_sendable
        names = [row.template_key for row in list_templates(session, "acme")]
        assert names == ["po_notification:en", "po_notification:es"]
        everything = list_templates(session, "acme", include_inactive=True)
        assert len(everything) == 3
    back = upsert_templates(engine, "acme", all_three())
    assert back.updated == 1  # reactivated
    with Session(engine) as session:
        row = get_template(session, "acme", "delivery_reminder", "es")
        assert row is not None and row.is_active and row.sent_count == 41


def test_hold_set_by_the_sender_survives_a_sync(engine: Engine) -> None:
    upsert_templates(engine, "acme", all_three())
    with session_scope(engine) as session:
        row = get_template(session, "acme", "po_notification", "es")
        assert row is not None
        row.held_reason = "Meta paused the template (132015)"
    upsert_templates(engine, "acme", all_three())
    with Session(engine) as session:
        approved = list_templates(session, "acme", approved_only=True)
        assert [row.template_key for row in approved] == [
            "delivery_reminder:es",
            "po_notification:en",
        ]


def test_tenants_are_separate(engine: Engine) -> None:
    upsert_templates(engine, "acme", all_three())
    report = upsert_templates(engine, "globex", [text_header_with_buttons()])
    assert report.added == 1 and report.deactivated == 0
    with Session(engine) as session:
        assert get_template(session, "globex", "po_notification", "es") is None
        assert len(list_templates(session, "acme")) == 3
        assert [r.template_name for r in list_templates(session, "globex")] == ["payment_notice"]


def test_malformed_definitions_are_skipped_with_a_reason(engine: Engine) -> None:
    bad = [
        {"name": "no_body", "language": "es", "components": []},
        "junk",
        {"name": "x" * 600, "language": "es", "components": [{"type": "BODY", "text": "a"}]},
    ]
    report = upsert_templates(engine, "acme", [*all_three(), *bad])  # type: ignore[list-item]
    assert report.added == 3
    assert len(report.skipped) == 3
    assert any("no BODY" in reason for reason in report.skipped)


async def test_sync_pages_through_the_list_api(engine: Engine) -> None:
    """Two pages served by a stub Graph endpoint: everything lands in the registry."""
    pages = {None: all_three()[:2], "c2": all_three()[2:]}
    seen: list[httpx.URL] = []

    def graph(request: httpx.Request) -> httpx.Response:
        seen.append(request.url)
        after = request.url.params.get("after")
        body: dict[str, Any] = {"data": pages[after]}
        if after is None:
            body["paging"] = {"cursors": {"before": "c0", "after": "c2"}, "next": "https://x/next"}
        else:
            body["paging"] = {"cursors": {"before": "c2", "after": "c3"}}
        return httpx.Response(200, json=body)

    async with CloudApiClient(get_settings(), transport=httpx.MockTransport(graph)) as client:
        report = await sync_templates(client, engine, "acme")
    assert report.added == 3
    assert [url.params.get("after") for url in seen] == [None, "c2"]
    assert seen[0].path.endswith("/message_templates")
