"""Submitting a template against the real sandbox, and its status followed into the
database by the real webhook app (Meta's `message_template_status_update`) and by sync."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from core.errors import GraphError
from core.models.templates import WhatsAppTemplate
from core.notify import sync_templates_now
from core.numbers.errors import NumberError
from core.sandbox import BackgroundServer, SandboxServer
from core.settings import get_settings
from core.templates import get_template
from core.templates.draft import TemplateDraft, build_template
from core.templates.submit import (
    TemplateInvalid,
    record_template,
    refusal_text,
    reserve_template,
    submit_template_now,
)
from core.webhooks.apply import apply_next_batch
from webhook_app import WEBHOOK_PATH, create_app

TENANT = "default"


def chaser(**changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "name": "po_chaser",
        "language": "es",
        "category": "UTILITY",
        "body": "Hola {{supplier_name}}, el pedido {{po_number}} sigue sin confirmar. Gracias.",
        "examples": {"supplier_name": "Harinas Martín", "po_number": "PO-1"},
        "footer": "Compras",
        "quick_replies": ("Confirmar", "Rechazar"),
    }
    values.update(changes)
    return build_template(TemplateDraft(**values))


@pytest.fixture
def webhooks_to_db(sandbox_env: SandboxServer, engine: Engine) -> Iterator[SandboxServer]:
    """The sandbox posting its webhooks to the real webhook app on the test's database."""
    server = BackgroundServer(create_app(get_settings(), engine))
    url = server.start() + WEBHOOK_PATH
    sandbox_env.configure(webhook_url=url, template_review_s=0.1)
    yield sandbox_env
    server.stop()


def row(engine: Engine, name: str = "po_chaser") -> WhatsAppTemplate | None:
    with Session(engine) as session:
        return get_template(session, TENANT, name, "es")


def wait_for_status(engine: Engine, status: str, timeout: float = 20.0) -> WhatsAppTemplate:
    deadline = time.monotonic() + timeout
    while True:
        apply_next_batch(engine)  # as the applier process does
        found = row(engine)
        if found is not None and found.status == status:
            return found
        assert time.monotonic() < deadline, f"still {found.status if found else None}"
        time.sleep(0.05)


def test_a_submitted_template_is_pending_then_approved_by_webhook(
    webhooks_to_db: SandboxServer, engine: Engine
) -> None:
    result = submit_template_now(TENANT, chaser(), engine=engine)
    assert (result.status, result.category, result.name) == ("PENDING", "UTILITY", "po_chaser")
    stored = row(engine)
    assert stored is not None and stored.meta_template_id == result.meta_id
    assert stored.parameter_format == "NAMED"
    assert stored.parameter_names == ["supplier_name", "po_number"]
    approved = wait_for_status(engine, "APPROVED")
    assert approved.held_reason is None
    sync_templates_now(TENANT, engine=engine)  # the account's list agrees
    after = row(engine)
    assert after is not None and after.status == "APPROVED" and after.is_active


def test_a_review_rejection_keeps_metas_reason(
    webhooks_to_db: SandboxServer, engine: Engine
) -> None:
    promo = chaser(body="Hola {{supplier_name}}, 20% de descuento en el pedido {{po_number}} hoy.")
    submit_template_now(TENANT, promo, engine=engine)
    rejected = wait_for_status(engine, "REJECTED")
    assert rejected.rejected_reason == "INCORRECT_CATEGORY"
    sync_templates_now(TENANT, engine=engine)
    after = row(engine)
    assert after is not None and (after.status, after.rejected_reason) == (
        "REJECTED",
        "INCORRECT_CATEGORY",
    )


def test_metas_refusal_is_reported_in_its_words_and_changes_nothing(
    sandbox_env: SandboxServer, engine: Engine
) -> None:
    sandbox_env.configure(template_review_s=60)
    taken = chaser(name="po_notification")  # the sandbox's own template, in Spanish
    with pytest.raises(GraphError) as refused:
        submit_template_now(TENANT, taken, engine=engine)
    assert refused.value.code == 100 and refused.value.subcode == 2388024
    assert "already" in refusal_text(refused.value)
    assert row(engine, "po_notification") is None


def test_an_invalid_template_is_never_sent(sandbox_env: SandboxServer, engine: Engine) -> None:
    bad = chaser(name="Chaser!", body="{{supplier_name}} debe confirmar {{po_number}}")
    with pytest.raises(TemplateInvalid) as invalid:
        submit_template_now(TENANT, bad, engine=engine)
    assert {p.path for p in invalid.value.problems} >= {"name", "body.text"}
    listed = sandbox_env.stats()  # nothing reached the sandbox's catalogue
    assert listed["accepted"] == 0
    assert row(engine, "Chaser!") is None


def test_a_tenant_without_a_number_has_no_account_to_submit_to(
    sandbox_env: SandboxServer, engine: Engine
) -> None:
    with pytest.raises(NumberError, match="acme"):
        submit_template_now("acme", chaser(), engine=engine)
    with pytest.raises(TemplateInvalid):  # the rules come first, whatever the numbers
        submit_template_now("acme", chaser(name="Bad Name"), engine=engine)


def test_a_decision_that_overtakes_metas_answer_is_kept(engine: Engine) -> None:
    template = chaser()
    reserved = reserve_template(engine, TENANT, {**template, "status": "PENDING"}, None)
    assert reserved is not None and row(engine) is not None
    assert reserve_template(engine, TENANT, {**template, "status": "PENDING"}, None) is None
    with Session(engine) as session:  # the review webhook is applied first
        found = session.get(WhatsAppTemplate, reserved)
        assert found is not None
        found.status, found.rejected_reason = "REJECTED", "INVALID_FORMAT"
        session.add(found)
        session.commit()
    record_template(engine, TENANT, {**template, "id": "42", "status": "PENDING"})
    after = row(engine)
    assert after is not None and after.meta_template_id == "42"
    assert (after.status, after.rejected_reason) == ("REJECTED", "INVALID_FORMAT")
