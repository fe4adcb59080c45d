"""Migration 0015_supplier_consent on SQLite and PostgreSQL: suppliers stored before
consent tracking keep their meaning (opted in: consent from "legacy"; unticked: opted
out, never sendable), each with one history row; the downgrade drops what it added."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic import command
from sqlalchemy import inspect, text

from core import migrate
from core.db import get_engine, is_sqlite
from tests.core.test_migrations import empty_url, schema_diff

__all__ = ["empty_url"]  # the fixture, parametrised over both databases

BEFORE = "0014_batch_file_format"
AFTER = "0015_supplier_consent"


def test_0015_keeps_old_consent_as_legacy_and_unticked_suppliers_opted_out(empty_url: str) -> None:
    config = migrate.alembic_config(empty_url)
    command.upgrade(config, BEFORE)
    engine = get_engine(empty_url)
    created = datetime(2026, 3, 4, 9, 30, tzinfo=UTC)
    updated = datetime(2026, 5, 6, 7, 8, tzinfo=UTC)

    def when(value: datetime) -> object:
        return value.isoformat() if is_sqlite(empty_url) else value

    with engine.begin() as conn:
        for name, phone, opted_in, opted_in_at in (
            ("Con fecha", "+34612000001", True, created),
            ("Sin fecha", "+34612000002", True, None),
            ("Desmarcado", "+34612000003", False, None),
        ):
            conn.execute(
                text(
                    "INSERT INTO suppliers (tenant_id, name, phone_e164, language, opted_in, "
                    "opted_in_at, is_active, created_at, updated_at) VALUES ('acme', :name, "
                    ":phone, 'es', :opted_in, :at, :yes, :created, :updated)"
                ),
                {"name": name, "phone": phone, "opted_in": opted_in, "yes": True,
                 "at": when(opted_in_at) if opted_in_at else None,
                 "created": when(created), "updated": when(updated)},
            )  # fmt: skip
    command.upgrade(config, AFTER)
    with engine.connect() as conn:
        rows = {
            r.name: r
            for r in conn.execute(
                text("SELECT name, opted_in, opted_in_at, consent_source, opted_out_at, "
                     "opt_out_source FROM suppliers")
            )
        }  # fmt: skip
        events = conn.execute(
            text("SELECT s.name, e.action, e.source, e.evidence FROM consent_events e "
                 "JOIN suppliers s ON s.id = e.supplier_id ORDER BY s.name")
        ).all()  # fmt: skip
    assert rows["Con fecha"].consent_source == "legacy" and rows["Con fecha"].opted_in
    assert rows["Sin fecha"].consent_source == "legacy"
    assert str(rows["Sin fecha"].opted_in_at)[:10] == "2026-03-04"  # its creation time
    out = rows["Desmarcado"]
    assert not out.opted_in and out.opt_out_source == "legacy"
    assert str(out.opted_out_at)[:10] == "2026-05-06"  # its last update
    assert [tuple(e)[:3] for e in events] == [
        ("Con fecha", "granted", "legacy"),
        ("Desmarcado", "withdrawn", "legacy"),
        ("Sin fecha", "granted", "legacy"),
    ]
    assert all(e.evidence == "recorded before consent tracking" for e in events)
    migrate.upgrade(empty_url)
    assert schema_diff(empty_url) == []
    command.downgrade(config, BEFORE)
    inspector = inspect(get_engine(empty_url))
    assert {"consent_events", "tenant_settings"}.isdisjoint(inspector.get_table_names())
    columns = {c["name"] for c in inspector.get_columns("suppliers")}
    assert "opted_in" in columns and "opted_out_at" not in columns
    with get_engine(empty_url).connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM suppliers")).scalar_one() == 3
