"""The templates page (AppTest): empty state, a sync from the real sandbox, the preview,
a failed sync changing nothing, and role checks."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from core.sandbox import SandboxServer
from core.sandbox.catalog import default_templates
from core.settings import get_settings
from core.template_admin import template_summaries
from tests.dashboard.pages import dashboard_env, page, person, texts

__all__ = ["dashboard_env"]

MODULE = "dashboard.views.templates"


def test_sync_fills_the_list_and_previews_a_template(
    dashboard_env: str, engine: Engine, sandbox_env: SandboxServer
) -> None:
    at = page(MODULE, person("admin")).run()
    assert "No templates yet" in texts(at)
    at.button(key="templates_sync").click().run()
    assert not at.exception
    # Every template of the sandbox's catalogue is new (counted, not hard-coded: the
    # catalogue grows with features, po_reminder for instance).
    catalogue = len(default_templates())
    assert f"Synced: {catalogue} new" in texts(at)
    table = at.dataframe[0].value
    assert {"po_notification", "delivery_reminder"} <= set(table["template"])
    paused = table[table["template"] == "old_po_notice"].iloc[0]
    assert paused["status"] == "Paused by Meta"
    assert paused["quality"] == "Low"  # Meta's RED, in the reader's words
    at.selectbox(key="templates_preview").set_value("po_notification · es").run()
    bubble = "".join(str(h.proto) for h in at.get("html"))
    assert "Nuevo pedido de compra" in bubble and "{{supplier_name}}" in bubble
    assert "Confirmar pedido" in bubble
    assert "Parameters (3)" in texts(at)
    again = page(MODULE, person("admin")).run()
    again.button(key="templates_sync").click().run()
    assert f"0 new, 0 changed, {catalogue} unchanged" in texts(again)


def test_a_failed_sync_says_why_and_changes_nothing(
    dashboard_env: str, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WHATSAPP_API_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("WANOTIFY_MODE", "sandbox")
    get_settings.cache_clear()
    at = page(MODULE, person("admin")).run()
    at.button(key="templates_sync").click().run()
    assert "The sync failed, nothing was changed" in texts(at)
    assert template_summaries(engine, "default") == []


def test_managers_and_buyers_are_refused(dashboard_env: str) -> None:
    for role in ("manager", "buyer"):
        at = page(MODULE, person(role)).run()
        assert "may not manage templates" in texts(at)
        assert not [b for b in at.button if b.key == "templates_sync"]
