"""core.template_admin on a real SQLite file and the real sandbox."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from core.auth import PermissionDenied
from core.models.templates import WhatsAppTemplate
from core.numbers.admin import add_number
from core.numbers.errors import NumberError
from core.sandbox import SandboxServer
from core.settings import SANDBOX_WABA_ID, load_settings
from core.template_admin import sync_templates_as, template_summaries
from core.templates import upsert_templates
from tests.dashboard.pages import person
from tests.fixtures.templates import po_notification, positional_reminder


def test_summaries_explain_why_a_template_cannot_be_sent(engine: Engine) -> None:
    rejected = positional_reminder(status="REJECTED", rejected_reason="TAG_CONTENT_MISMATCH")
    upsert_templates(engine, "default", [po_notification("es"), rejected])
    with Session(engine) as session:
        row = session.exec(
            select(WhatsAppTemplate).where(col(WhatsAppTemplate.template_name) == "po_notification")
        ).one()
        row.held_reason = "Meta paused it for low quality (132015)"
        session.add(row)
        session.commit()
    by_name = {t.name: t for t in template_summaries(engine, "default")}
    po, reminder = by_name["po_notification"], by_name["delivery_reminder"]
    assert not po.sendable and "on hold" in (po.problem or "")
    assert po.parameter_count == 3 and po.parameter_names == ("supplier_name", "po_number",
                                                              "total_amount")  # fmt: skip
    assert po.preview is not None and "{{supplier_name}}" in po.preview.body
    assert reminder.rejected_reason == "TAG_CONTENT_MISMATCH" and not reminder.sendable
    assert template_summaries(engine, "other-tenant") == []


def test_only_admins_sync_and_only_for_their_tenant(
    engine: Engine, sandbox_env: SandboxServer
) -> None:
    with pytest.raises(PermissionDenied):
        sync_templates_as(engine, person("manager"))
    # No number registered: every tenant sends from the environment's number
    # (core.routing), so acme's admin syncs that number's WABA into acme's registry only.
    shared = sync_templates_as(engine, person("admin", "acme"))
    assert shared.added > 0
    assert template_summaries(engine, "default") == []
    # Once numbers are registered, templates live in the tenant's own WABAs: acme without
    # a number of its own gets none (not another business's), with the one-line reason.
    add_number(engine, load_settings(), tenant_id="norte", phone_number_id="2000002",
               access_token=None, waba_id=SANDBOX_WABA_ID)  # fmt: skip
    with pytest.raises(NumberError, match="tenant acme has no number"):
        sync_templates_as(engine, person("admin", "acme"))
    add_number(engine, load_settings(), tenant_id="acme", phone_number_id="2000001",
               access_token=None, waba_id=SANDBOX_WABA_ID)  # fmt: skip
    report = sync_templates_as(engine, person("admin", "acme"))
    assert report.added == 0 and report.unchanged == shared.added
    listed = template_summaries(engine, "acme", include_inactive=True)
    assert len(listed) == shared.added
    assert template_summaries(engine, "default") == []


def test_a_graph_error_keeps_its_type_through_a_with_block(engine: Engine) -> None:
    """The templates page catches GraphError around a spinner and inside session_scope:
    both are generator context managers, which set __traceback__ when re-raising."""
    from core.db import session_scope
    from core.errors import GraphError

    with pytest.raises(GraphError) as caught, session_scope(engine):
        raise GraphError(code=190, message="Error validating access token")
    assert caught.value.code == 190
