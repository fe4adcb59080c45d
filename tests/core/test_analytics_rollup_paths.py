"""Migration 0009 backfills exact rollups from messages written before it, its
downgrade drops them, and the rollup reads seek the rollups' primary keys (no scans).

Real SQLite files, and PostgreSQL when WANOTIFY_TEST_DATABASE_URL names one.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, event, inspect, text

from core import migrate, stats
from core.db import analytics_engine, get_engine, is_sqlite
from tests.core.test_analytics_rollup import (
    BASE,
    apply,
    assert_same,
    expected_cells,
    operations,
    stored_cells,
)
from tests.core.test_stats import supplier

BEFORE = "0008_analytics_latency"
ROLLUP_TABLES = {"analytics_hourly", "analytics_supplier_weekly"}


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database migrated to head: a fresh SQLite file, or the emptied PostgreSQL one."""
    if request.param == "sqlite":
        value = f"sqlite:///{tmp_path / 'rollup.db'}"
    else:
        value = request.getfixturevalue("empty_postgres_url")
    migrate.upgrade(value)
    yield value
    get_engine(value).dispose()


def _triggers(engine: Engine) -> set[str]:
    sql = (
        "SELECT name FROM sqlite_master WHERE type = 'trigger'"
        if is_sqlite(engine)
        else "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"
    )
    with engine.connect() as conn:
        return {str(n) for n in conn.execute(text(sql)).scalars()}


_phones = iter(range(10**6))


def _supplier_at_0008(engine: Engine, name: str, tenant: str) -> int:
    """A supplier row written with the columns `suppliers` has at 0008 (the model's
    newer columns, such as the consent ones of 0015, do not exist there yet)."""
    values = {"tenant_id": tenant, "name": name, "phone_e164": f"+3462{next(_phones):07d}",
              "language": "es", "opted_in": False, "is_active": True,
              "created_at": BASE, "updated_at": BASE}  # fmt: skip
    columns = ", ".join(values)
    marks = ", ".join(f":{c}" for c in values)
    with engine.begin() as conn:
        conn.execute(text(f"INSERT INTO suppliers ({columns}) VALUES ({marks})"), values)
        found = conn.execute(
            text("SELECT id FROM suppliers WHERE tenant_id = :t AND phone_e164 = :p"),
            {"t": tenant, "p": values["phone_e164"]},
        ).scalar_one()
    return int(found)


@settings(
    max_examples=6, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)  # fmt: skip
@given(data=st.data())
def test_the_upgrade_backfills_messages_written_before_it(url: str, data: st.DataObject) -> None:
    engine = get_engine(url)
    config = migrate.alembic_config(url)
    command.downgrade(config, BEFORE)
    assert not ROLLUP_TABLES & set(inspect(engine).get_table_names())
    assert not [t for t in _triggers(engine) if "analytics" in t or "rollup" in t]
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM whatsapp_messages"))
        conn.execute(text("DELETE FROM suppliers"))
    suppliers = {t: [_supplier_at_0008(engine, f"{t} {n}", tenant=t) for n in ("A", "B")]
                 for t in ("acme", "beta")}  # fmt: skip
    apply(engine, data.draw(operations(suppliers), label="operations at 0008"))
    migrate.upgrade(url)
    assert stored_cells(engine) == expected_cells(engine)
    # and the triggers installed by the upgrade keep them so
    apply(engine, data.draw(operations(suppliers), label="operations at 0009"))
    assert stored_cells(engine) == expected_cells(engine)
    start = BASE.date() + timedelta(days=data.draw(st.integers(-1, 10), label="first day"))
    flt = stats.StatsFilter(tenant_ids=("acme", "beta"), start=start,
                            end=start + timedelta(days=9), tz="Asia/Kolkata")  # fmt: skip
    assert_same(engine, flt)


# --- the read paths (SQLite: the volume target) ----------------------------------------


def rollup_plans(engine: Engine, run: Any) -> list[str]:
    """The plan lines of every statement `run` sends that reads a rollup table."""
    seen: list[tuple[str, Any]] = []

    def listen(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "analytics_" in statement and not statement.startswith("EXPLAIN"):
            seen.append((statement, parameters))

    reads = analytics_engine(engine)  # where the charts' statements go
    event.listen(reads, "before_cursor_execute", listen)
    try:
        run()
    finally:
        event.remove(reads, "before_cursor_execute", listen)
    lines: list[str] = []
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        for statement, parameters in seen:
            cursor.execute("EXPLAIN QUERY PLAN " + statement, parameters)
            lines += [str(row[-1]) for row in cursor.fetchall()]
    finally:
        raw.close()
    return lines


@pytest.fixture
def sqlite_engine(engine: Engine) -> Engine:
    if not is_sqlite(engine):
        pytest.skip("query plans are checked on SQLite, the volume target")
    sid = supplier(engine, "Plans SA")
    apply(engine, [("insert", {"tenant_id": "acme", "created_at": BASE + timedelta(hours=h),
                               "status": "delivered", "delivered_at": BASE, "supplier_id": sid,
                               "po_number": "PO-1", "pricing_type": "regular",
                               "pricing_category": "utility"})
                   for h in range(0, 400, 7)])  # fmt: skip
    with engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    return engine


RANGE = {"start": date(2026, 11, 1), "end": date(2026, 11, 30), "tz": "Europe/Madrid"}


@pytest.mark.parametrize("templates", [(), ("po_notification",)])
@pytest.mark.parametrize(
    "chart", ["suppliers", "acknowledgements", "cost", "funnel", "daily", "deliver", "read"]
)
def test_rollup_reads_seek_the_primary_key_by_tenant_and_bucket(
    sqlite_engine: Engine, chart: str, templates: tuple[str, ...]
) -> None:
    flt = stats.StatsFilter(
        tenant_ids=("acme", "beta"), template_names=templates, **RANGE  # type: ignore[arg-type]
    )
    run = {
        "suppliers": lambda: stats.supplier_table(sqlite_engine, flt),
        "acknowledgements": lambda: stats.acknowledgements(sqlite_engine, flt),
        "cost": lambda: stats.cost(sqlite_engine, flt),
        "funnel": lambda: stats.funnel(sqlite_engine, flt),
        "daily": lambda: stats.daily_rates(sqlite_engine, flt),
        "deliver": lambda: stats.latency(sqlite_engine, flt, "deliver"),
        "read": lambda: stats.latency(sqlite_engine, flt, "read"),
    }[chart]
    lines = [line for line in rollup_plans(sqlite_engine, run) if " r " in f"{line} "]
    assert lines, "the chart did not read its rollup"
    seek = "SEARCH r USING PRIMARY KEY (tenant_id=?"
    if chart in ("funnel", "daily", "deliver", "read"):  # the stages rollup, by kind
        seek += " AND kind=?"
    assert all(line.startswith(seek) for line in lines), lines
    bucket = "week" if chart == "suppliers" else "hour"
    assert all(f"{bucket}>?" in line for line in lines), lines  # the range is seeked


def test_a_supplier_filter_reads_no_rollup(sqlite_engine: Engine) -> None:
    """One supplier's messages are a small range of the supplier index: no rollup."""
    flt = stats.StatsFilter(tenant_ids=("acme",), supplier_ids=(1,), **RANGE)  # type: ignore[arg-type]
    for run in (stats.supplier_table, stats.acknowledgements, stats.cost, stats.funnel,
                stats.daily_rates):  # fmt: skip
        assert rollup_plans(sqlite_engine, lambda run=run: run(sqlite_engine, flt)) == []
    for stage in ("deliver", "read"):
        read = lambda stage=stage: stats.latency(sqlite_engine, flt, stage)  # noqa: E731
        assert rollup_plans(sqlite_engine, read) == []
