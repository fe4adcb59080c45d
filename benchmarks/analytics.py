"""Analytics at volume: seed a million messages into SQLite and time every chart's query.

    python -m benchmarks.analytics [--rows 1000000] [--db PATH] [--keep]

Seeds messages spread over the last 90 days (statuses, latencies, failures, pricing,
replies and PO acknowledgements in realistic proportions) with one INSERT ... SELECT
over a recursive CTE, then times each `core.stats` function warm (best of several
runs) for the full 90 days and for the last 30, beside a baseline that loads every
row into pandas and aggregates there, as a dashboard without SQL aggregation would.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Engine, text

from core import migrate, stats
from core.db import get_engine
from core.pricing import ensure_default_rate_card

TENANT = "bench"
OTHER_TENANT = "bench-other"
SUPPLIERS = 2000
DAYS = 90
TARGET_SECONDS = 0.5
REPEATS = 5


def seed(engine: Engine, rows: int, now: datetime) -> None:
    """Fill an empty, migrated database with `rows` messages and their replies."""
    base = (now - timedelta(days=DAYS)).strftime("%Y-%m-%d %H:%M:%S")
    span = DAYS * 86400
    with engine.begin() as conn:
        dropped = _drop_message_indexes(conn)
        conn.exec_driver_sql("PRAGMA synchronous=OFF")
        conn.execute(
            text(
                """
                WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :k)
                INSERT INTO suppliers (tenant_id, name, phone_e164, language, opted_in,
                                       is_active, created_at, updated_at)
                SELECT :tenant, 'Supplier ' || printf('%04d', i), '+3460' || printf('%07d', i),
                       'es', 1, 1, :base, :base
                FROM n
                """
            ),
            {"k": SUPPLIERS, "tenant": TENANT, "base": base + ".000000"},
        )
        # h, h2, h3: three independent pseudo-random numbers per row (deterministic).
        conn.execute(
            text(
                f"""
                WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :rows),
                r AS (
                    SELECT i,
                           (i * 2654435761) % 1000003 AS h,
                           (i * 40503 + 7) % 999983 AS h2,
                           (i * 69069 + 11) % 999979 AS h3,
                           (i * 2654435761) % {span} AS secs
                    FROM n
                ),
                s AS (
                    SELECT *,
                           h % 1000 AS p,
                           secs - 3 AS sent_secs,
                           secs - 3 - (2 + h2 % 900) AS deliv_secs,
                           secs - 3 - (2 + h2 % 900) - (5 + h3 % 14400) AS read_secs
                    FROM r
                )
                INSERT INTO whatsapp_messages (
                    id, tenant_id, idempotency_key, recipient_phone, wa_id, message_type,
                    status, template_name, template_language, recipient_country, po_number,
                    supplier_id, attempt_count, whatsapp_message_id,
                    created_at, updated_at, accepted_at, sent_at, delivered_at, read_at,
                    failed_at, error_code, error_title, error_class,
                    pricing_category, pricing_type, pricing_model)
                SELECT
                    printf('%08x-0000-4000-8000-%012x', i, i),
                    CASE WHEN i % 10 = 0 THEN :other ELSE :tenant END,
                    'bench:' || i,
                    '+34600' || printf('%06d', h % 1000000),
                    '34600' || printf('%06d', h % 1000000),
                    'template',
                    CASE WHEN p < 50 THEN 'failed' WHEN p < 60 THEN 'pending'
                         WHEN p < 150 THEN 'sent' WHEN p < 500 THEN 'delivered'
                         ELSE 'read' END,
                    CASE i % 3 WHEN 0 THEN 'po_notification' WHEN 1 THEN 'po_reminder'
                         ELSE 'po_update' END,
                    'es',
                    CASE h2 % 4 WHEN 0 THEN '351' WHEN 1 THEN '44' ELSE '34' END,
                    'PO-' || printf('%07d', i),
                    1 + h3 % {SUPPLIERS},
                    CASE WHEN p BETWEEN 50 AND 59 THEN 0 ELSE 1 END,
                    CASE WHEN p BETWEEN 50 AND 59 THEN NULL ELSE 'wamid.bench' || i END,
                    strftime('%Y-%m-%d %H:%M:%f', :base, '+' || secs || ' seconds') || '000',
                    strftime('%Y-%m-%d %H:%M:%f', :base, '+' || secs || ' seconds') || '000',
                    CASE WHEN p BETWEEN 50 AND 59 THEN NULL ELSE
                      strftime('%Y-%m-%d %H:%M:%f', :base, '+' || (secs + 1) || ' seconds')
                      || '000' END,
                    CASE WHEN p >= 60 THEN
                      strftime('%Y-%m-%d %H:%M:%f', :base, '+' || (secs + 3) || ' seconds')
                      || '000' END,
                    CASE WHEN p >= 150 THEN
                      strftime('%Y-%m-%d %H:%M:%f', :base,
                               '+' || (secs + 5 + h2 % 900) || ' seconds') || '000' END,
                    CASE WHEN p >= 500 THEN
                      strftime('%Y-%m-%d %H:%M:%f', :base,
                               '+' || (secs + 10 + h2 % 900 + h3 % 14400) || ' seconds')
                      || '000' END,
                    CASE WHEN p < 50 THEN
                      strftime('%Y-%m-%d %H:%M:%f', :base, '+' || (secs + 4) || ' seconds')
                      || '000' END,
                    CASE WHEN p < 50 THEN
                      CASE h3 % 5 WHEN 0 THEN 131026 WHEN 1 THEN 131049 WHEN 2 THEN 132000
                                  WHEN 3 THEN 131047 ELSE 130472 END END,
                    CASE WHEN p < 50 THEN 'Meta error' END,
                    CASE WHEN p < 50 THEN 'permanent' END,
                    CASE WHEN p >= 150 THEN CASE WHEN h3 % 10 = 0 THEN 'marketing'
                                                 ELSE 'utility' END END,
                    CASE WHEN p >= 150 THEN CASE WHEN h2 % 7 = 0 THEN 'free_customer_service'
                                                 ELSE 'regular' END END,
                    CASE WHEN p >= 150 THEN 'PMP' END
                FROM s
                """
            ),
            {"rows": rows, "tenant": TENANT, "other": OTHER_TENANT, "base": base},
        )
        # Replies quoting ~12% of read messages, PO acknowledgements for ~20% of them.
        conn.execute(
            text(
                """
                INSERT INTO inbound_messages (id, tenant_id, wamid, from_wa_id, supplier_id,
                    message_type, text, context_wamid, context_message_id, at, received_at)
                SELECT 'in-' || m.id, m.tenant_id, 'wamid.in.' || m.id, m.wa_id, m.supplier_id,
                       'text', 'Recibido, gracias', m.whatsapp_message_id, m.id,
                       m.read_at, m.read_at
                FROM whatsapp_messages m
                WHERE m.read_at IS NOT NULL AND (m.attempt_count + length(m.id) + rowid) % 8 = 0
                """
            )
        )
        conn.execute(
            text(
                """
                INSERT INTO po_acknowledgements (id, tenant_id, po_number, message_id,
                    supplier_id, inbound_wamid, action, payload, at, created_at)
                SELECT 'ack-' || m.id, m.tenant_id, m.po_number, m.id, m.supplier_id,
                       'wamid.ack.' || m.id,
                       CASE WHEN m.rowid % 9 = 0 THEN 'rejected' ELSE 'confirmed' END,
                       'ack:' || m.po_number, m.read_at, m.read_at
                FROM whatsapp_messages m
                WHERE m.read_at IS NOT NULL AND m.rowid % 5 = 0
                """
            )
        )
        for ddl in dropped:
            conn.exec_driver_sql(ddl)
        conn.exec_driver_sql("ANALYZE")
    ensure_default_rate_card(engine, TENANT)
    ensure_default_rate_card(engine, OTHER_TENANT)


def _drop_message_indexes(conn: Any) -> list[str]:
    """Drop the messages table's secondary indexes (rebuilt after the bulk insert)."""
    rows = conn.exec_driver_sql(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' "
        "AND tbl_name = 'whatsapp_messages' AND sql IS NOT NULL"
    ).all()
    for name, _sql in rows:
        conn.exec_driver_sql(f'DROP INDEX "{name}"')
    return [sql for _name, sql in rows]


# --- the pandas baseline -------------------------------------------------------------

_BASELINE_COLUMNS = (
    "id, tenant_id, status, template_name, supplier_id, po_number, created_at, accepted_at, "
    "sent_at, delivered_at, read_at, error_code, recipient_country, pricing_category, "
    "pricing_type"
)


def pandas_baseline(engine: Engine, flt: stats.StatsFilter) -> dict[str, Any]:
    """The same figures computed by loading every message into pandas first."""
    with engine.connect() as conn:
        frame = pd.read_sql(text(f"SELECT {_BASELINE_COLUMNS} FROM whatsapp_messages"), conn)
        replies = pd.read_sql(text("SELECT context_message_id FROM inbound_messages"), conn)
        acks = pd.read_sql(text("SELECT message_id, action FROM po_acknowledgements"), conn)
    for column in ("created_at", "accepted_at", "sent_at", "delivered_at", "read_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True, format="ISO8601")
    start, end = flt.utc_range
    m = frame[
        frame["tenant_id"].isin(flt.tenant_ids)
        & (frame["created_at"] >= start)
        & (frame["created_at"] < end)
        & (frame["status"] != "cancelled")
    ]
    sent = m["accepted_at"].notna() | m["sent_at"].notna()
    replied_ids = set(replies["context_message_id"]) | set(acks["message_id"])
    local_day = m["created_at"].dt.tz_convert(flt.tz).dt.date
    daily = m.assign(day=local_day, is_sent=sent, failed=m["status"] == "failed").groupby("day")[
        ["is_sent", "delivered_at", "read_at", "failed"]
    ].agg({"is_sent": "sum", "delivered_at": "count", "read_at": "count", "failed": "sum"})
    to_deliver = (m["delivered_at"] - m["sent_at"]).dt.total_seconds().dropna()
    to_read = (m["read_at"] - m["sent_at"]).dt.total_seconds().dropna()
    edges = [0, *stats.LATENCY_EDGES, float("inf")]
    return {
        "funnel": (
            len(m),
            int(sent.sum()),
            int(m["delivered_at"].notna().sum()),
            int(m["read_at"].notna().sum()),
            int(m["id"].isin(replied_ids).sum()),
        ),
        "daily": daily,
        "deliver": pd.cut(to_deliver, edges, right=False).value_counts(),
        "read": pd.cut(to_read, edges, right=False).value_counts(),
        "failures": m[m["status"] == "failed"].groupby("error_code").size(),
        "suppliers": m.groupby("supplier_id").agg(
            messages=("id", "size"), delivered=("delivered_at", "count")
        ),
        "acks": acks[acks["message_id"].isin(m["id"])].groupby("action").size(),
        "cost_groups": m[m["delivered_at"].notna()]
        .groupby(["recipient_country", "pricing_category", "pricing_type"])
        .size(),
    }


# --- timing --------------------------------------------------------------------------


@dataclass
class Timing:
    name: str
    seconds: float


def time_call(fn: Callable[[], Any], repeats: int = REPEATS) -> float:
    """Best-of-`repeats` wall time after one warm-up run."""
    fn()
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return min(samples)


def chart_calls(engine: Engine, flt: stats.StatsFilter) -> dict[str, Callable[[], Any]]:
    """Every query the analytics page runs, by chart."""
    return {
        "funnel": lambda: stats.funnel(engine, flt),
        "daily rates": lambda: stats.daily_rates(engine, flt),
        "time to deliver": lambda: stats.latency(engine, flt, "deliver"),
        "time to read": lambda: stats.latency(engine, flt, "read"),
        "failures by reason": lambda: stats.failures_by_reason(engine, flt),
        "per-supplier table": lambda: stats.supplier_table(engine, flt),
        "PO acknowledgements": lambda: stats.acknowledgements(engine, flt),
        "cost": lambda: stats.cost(engine, flt),
    }


def count_floor(engine: Engine, flt: stats.StatsFilter) -> int:
    """COUNT(*) of the filter's rows: the cheapest possible read of the range."""
    start, end = flt.utc_range
    with engine.connect() as conn:
        return int(
            conn.execute(
                text(
                    "SELECT COUNT(*) FROM whatsapp_messages WHERE tenant_id = :t "
                    "AND created_at >= :s AND created_at < :e"
                ),
                {"t": flt.tenant_ids[0], "s": _stored(start), "e": _stored(end)},
            ).scalar_one()
        )


def _stored(at: datetime) -> str:
    """An instant as the messages table stores it on SQLite (UTC text)."""
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _load() -> str:
    try:
        return " / ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def run(rows: int, db_path: Path, *, keep: bool) -> int:
    """Seed (unless the file already holds the data), time, print; exit code 1 if slow."""
    url = f"sqlite:///{db_path}"
    fresh = not db_path.exists()
    migrate.upgrade(url)
    engine = get_engine(url)
    now = datetime.now(UTC)
    with engine.connect() as conn:
        have = conn.execute(text("SELECT COUNT(*) FROM whatsapp_messages")).scalar_one()
    if fresh or have == 0:
        started = time.perf_counter()
        seed(engine, rows, now)
        print(f"seeded {rows:,} messages in {time.perf_counter() - started:.1f} s -> {db_path}")
    else:
        rows = int(have)
        print(f"reusing {rows:,} messages in {db_path}")
    today = now.date()
    ranges = {
        f"all {DAYS} days": (today - timedelta(days=DAYS), today),
        "last 30 days": (today - timedelta(days=29), today),
    }
    slow = False
    print(f"load average before timing: {_load()} on {os.cpu_count()} CPUs "
          "(timings scale with it on a shared machine; the ratios much less)")  # fmt: skip
    for label, (start, end) in ranges.items():
        flt = stats.StatsFilter(tenant_ids=(TENANT,), start=start, end=end, tz="Europe/Madrid")
        floor = time_call(partial(count_floor, engine, flt))
        timings = [Timing(name, time_call(fn)) for name, fn in chart_calls(engine, flt).items()]
        baseline = time_call(partial(pandas_baseline, engine, flt), repeats=2)
        print(f"\n{label} ({start} .. {end}, tenant {TENANT}, Europe/Madrid days)")
        print(f"  {'chart':<22}{'SQL warm':>10}{'vs pandas':>11}{'vs COUNT(*)':>13}")
        for timing in timings:
            flag = "" if timing.seconds < TARGET_SECONDS else "  SLOW"
            slow = slow or bool(flag)
            ratio = baseline / timing.seconds if timing.seconds else float("inf")
            print(f"  {timing.name:<22}{timing.seconds:>9.3f}s{ratio:>10.0f}x"
                  f"{timing.seconds / floor:>12.1f}x{flag}")  # fmt: skip
        print(f"  {'COUNT(*) of the range':<22}{floor:>9.3f}s  (the floor: one index scan, "
              "nothing computed)")  # fmt: skip
        total = sum(t.seconds for t in timings)
        print(f"  {'all charts together':<22}{total:>9.3f}s")
        print(f"  {'pandas over all rows':<22}{baseline:>9.3f}s  (load every row, then aggregate)")
        print(f"  median chart {statistics.median(t.seconds for t in timings):.3f}s, target "
              f"< {TARGET_SECONDS}s each; load average now {_load()}")
    engine.dispose()
    if not keep and fresh:
        db_path.unlink(missing_ok=True)
        for suffix in ("-wal", "-shm"):
            Path(str(db_path) + suffix).unlink(missing_ok=True)
    return 1 if slow else 0


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: `python -m benchmarks.analytics`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--db", type=Path, default=None, help="SQLite file (reused if present)")
    parser.add_argument("--keep", action="store_true", help="keep the seeded file")
    args = parser.parse_args(argv)
    if args.rows < 1000:
        parser.error("--rows must be at least 1000")
    if args.db is None:
        directory = Path(tempfile.mkdtemp(prefix="wanotify-bench-"))
        db_path = directory / "analytics.db"
    else:
        db_path = args.db
    return run(args.rows, db_path, keep=args.keep or args.db is not None)


if __name__ == "__main__":
    sys.exit(main())
