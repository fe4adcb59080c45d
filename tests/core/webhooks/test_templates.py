"""`core.webhooks.templates`: Meta's template status and quality changes onto template rows."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, text
from sqlmodel import Session

from core.models.templates import WhatsAppTemplate
from tests.core.webhooks.helpers import apply_all, body_of, envelope, journal


def template(engine: Engine, language: str) -> dict[str, Any]:
    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT * FROM whatsapp_templates WHERE language = :l"), {"l": language}
        ).one()
    return dict(row._mapping)


def change(event: str, language: str | None = "es", reason: str | None = None) -> bytes:
    item: dict[str, Any] = {
        "event": event,
        "message_template_id": 1029384756473821,
        "message_template_name": "po_notification",
    }
    if language:
        item["message_template_language"] = language
    if reason:
        item["reason"] = reason
    return body_of(envelope(item, field="message_template_status_update"))


def test_paused_holds_and_approved_releases(engine: Engine) -> None:
    with Session(engine) as session:
        for lang in ("es", "en"):
            session.add(
                WhatsAppTemplate(
                    tenant_id="default",
                    template_name="po_notification",
                    template_key=f"po_notification:{lang}",
                    language=lang,
                )
            )
        session.commit()
    journal(engine, change("PAUSED", reason="LOW_QUALITY"))
    report = apply_all(engine)
    assert report.events["template_status", "paused"] == 1
    es = template(engine, "es")
    assert es["status"] == "PAUSED" and "LOW_QUALITY" in es["held_reason"]
    assert template(engine, "en")["held_reason"] is None
    journal(engine, change("APPROVED"))
    apply_all(engine)
    assert template(engine, "es")["status"] == "APPROVED"
    assert template(engine, "es")["held_reason"] is None
    journal(engine, change("REJECTED", language=None, reason="INCORRECT_CATEGORY"))
    apply_all(engine)
    assert {template(engine, lang)["status"] for lang in ("es", "en")} == {"REJECTED"}
    assert template(engine, "en")["rejected_reason"] == "INCORRECT_CATEGORY"


def test_quality_update_and_unknown_template_are_harmless(engine: Engine) -> None:
    with Session(engine) as session:
        session.add(
            WhatsAppTemplate(
                tenant_id="default",
                template_name="po_notification",
                template_key="po_notification:es",
                language="es",
            )
        )
        session.commit()
    quality = {
        "previous_quality_score": "GREEN",
        "new_quality_score": "YELLOW",
        "message_template_name": "po_notification",
        "message_template_language": "es",
    }
    unknown = {"event": "APPROVED", "message_template_name": "nobody", "message_template_id": 1}
    journal(
        engine,
        body_of(envelope(quality, field="message_template_quality_update")),
        body_of(envelope(unknown, field="message_template_status_update")),
    )
    report = apply_all(engine)
    assert report.receipts == 2 and report.failed_receipts == 0
    assert template(engine, "es")["quality_score"] == "YELLOW"
