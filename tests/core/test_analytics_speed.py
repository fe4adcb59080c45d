"""The analytics queries keep their fast plans on SQLite (no timings: the plans themselves).

Each chart must read one covering index by ranges and never sort every message (a
"TEMP B-TREE"): that is what keeps a million messages under half a second. A plan that
regresses (a new index the planner prefers, a rewritten query) fails here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, event, text

from core import stats
from core.db import analytics_engine, is_sqlite
from tests.core.test_stats import T0, message, supplier


@contextmanager
def captured_selects(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    """Every SELECT on whatsapp_messages the charts run inside the block (through the
    analytics engine, `core.db.analytics_engine`), with its parameters."""
    seen: list[tuple[str, Any]] = []

    def listen(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "whatsapp_messages" in statement and not statement.startswith("EXPLAIN"):
            seen.append((statement, parameters))

    reads = analytics_engine(engine)
    event.listen(reads, "before_cursor_execute", listen)
    try:
        yield seen
    finally:
        event.remove(reads, "before_cursor_execute", listen)


def plans(engine: Engine, run: Callable[[], object]) -> list[str]:
    """The query plan lines of every statement `run` sends."""
    with captured_selects(engine) as seen:
        run()
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
    for i in range(30):
        message(engine, at=T0, delivered=5 + i, read=50 + i, supplier_id=sid)
    with engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    return engine


FLT = stats.StatsFilter(
    tenant_ids=("acme", "beta"), start=date(2026, 11, 1), end=date(2026, 11, 30),
    tz="Europe/Madrid", template_names=("po_notification",),
)  # fmt: skip


@pytest.mark.parametrize(
    ("chart", "index"),
    [
        ("funnel", "ix_whatsapp_messages_stages"),
        ("daily", "ix_whatsapp_messages_stages"),
        ("deliver", "ix_whatsapp_messages_deliver_latency"),
        ("read", "ix_whatsapp_messages_read_latency"),
    ],
)
def test_each_chart_reads_ranges_of_its_covering_index_without_a_sort(
    sqlite_engine: Engine, chart: str, index: str
) -> None:
    run = {
        # the raw path: a supplier filter and the partial hours at a range's ends read it
        "funnel": lambda: stats.funnel(sqlite_engine, FLT, rollup=False),
        "daily": lambda: stats.daily_rates(sqlite_engine, FLT, rollup=False),
        "deliver": lambda: stats.latency(sqlite_engine, FLT, "deliver", rollup=False),
        "read": lambda: stats.latency(sqlite_engine, FLT, "read", rollup=False),
    }[chart]
    lines = plans(sqlite_engine, run)
    assert lines
    assert all(f"COVERING INDEX {index}" in line for line in lines), lines
    assert all("created_at>?" in line for line in lines), lines  # the range is seeked
    assert not [line for line in lines if "TEMP B-TREE" in line], lines


def test_the_supplier_table_is_driven_from_suppliers(sqlite_engine: Engine) -> None:
    lines = plans(sqlite_engine, lambda: stats.supplier_table(sqlite_engine, FLT))
    joined = [line for line in lines if "ix_whatsapp_messages_supplier_analytics" in line]
    assert joined and all("supplier_id=?" in line for line in joined), lines
    assert not [line for line in lines if "TEMP B-TREE" in line], lines



def test_analytics_reads_map_the_file_on_their_own_connections_only(
    sqlite_engine: Engine,
) -> None:
    """The charts' connections map the file with a large cache; the shared pool's (an
    import, a login) never get those settings, even after charts were read through it."""
    stats.funnel(sqlite_engine, FLT)
    reads = analytics_engine(sqlite_engine)
    assert reads is not sqlite_engine
    assert reads is analytics_engine(sqlite_engine)  # one per database
    with reads.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA mmap_size").scalar_one() > 0
        assert conn.exec_driver_sql("PRAGMA cache_size").scalar_one() < -2000
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar_one() == 1
    for _ in range(3):  # whichever pooled connection comes back
        with sqlite_engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA mmap_size").scalar_one() == 0
            assert conn.exec_driver_sql("PRAGMA cache_size").scalar_one() == -2000


def test_an_in_memory_database_is_read_through_its_own_engine() -> None:
    """A sibling engine of `sqlite://` would open another, empty, database."""
    memory = create_engine("sqlite://")
    assert analytics_engine(memory) is memory
