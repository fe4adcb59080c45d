"""Analytics at volume: seed a million messages and time every chart's query.

    python -m benchmarks.analytics [--rows 1000000] [--db PATH] [--keep]
    python -m benchmarks.analytics --database-url postgresql://.../wanotify_bench

On SQLite (a file) by default; with `--database-url`, a dedicated PostgreSQL database
(migrated, seeded once with the same rows, reused while it holds messages).

Seeds messages spread over the last 90 days (statuses, latencies, failures, pricing,
replies and PO acknowledgements in realistic proportions) with one INSERT ... SELECT
over a recursive CTE (the rollup triggers of migrations 0009 and 0026 fire for every row, as in
production), then times each `core.stats` function the dashboard calls, warm (best and
worst of several runs), for the full 90 days and for the last 30, with every filter a
manager uses (none, one template, one supplier, several tenants), plus the whole page
(`stats.report`). Beside them: the charts that read the rollups timed on the raw path
(`rollup=False`), and a baseline that loads every row into pandas and aggregates
there, as a dashboard without SQL aggregation would, all in the same run.

Last, the rollup triggers' cost on writes: 50,000 sent messages marked delivered with
Meta's pricing (one UPDATE by id per message, as the webhook applier writes, and one
bulk UPDATE), with and without the rollup triggers (0009, 0026), each rolled back.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
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
#: The whole page (`stats.report`, every chart at once), on its best run (issue 13).
PAGE_TARGET_SQLITE = 0.25
PAGE_TARGET_POSTGRES = 1.0
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
    with engine.connect() as conn:
        # One seeding transaction leaves a WAL as big as the database; production's
        # auto-checkpoints keep it small, so the timings start from the same state.
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    ensure_default_rate_card(engine, TENANT)
    ensure_default_rate_card(engine, OTHER_TENANT)


def seed_postgres(engine: Engine, rows: int, now: datetime) -> None:
    """`seed` for PostgreSQL: the same rows, pseudo-random numbers and proportions,
    written with generate_series (the rollup and stage triggers fire for every row)."""
    base = (now - timedelta(days=DAYS)).astimezone(UTC)
    span = DAYS * 86400

    def at(seconds: str) -> str:
        return f"(CAST(:base AS timestamptz) + ({seconds}) * interval '1 second')"

    with engine.begin() as conn:
        dropped = _drop_postgres_indexes(conn)
        conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
        conn.execute(
            text(
                """
                INSERT INTO suppliers (tenant_id, name, phone_e164, language, opted_in,
                                       is_active, created_at, updated_at)
                SELECT :tenant, 'Supplier ' || lpad(i::text, 4, '0'),
                       '+3460' || lpad(i::text, 7, '0'), 'es', true, true, :base, :base
                FROM generate_series(1, :k) AS i
                """
            ),
            {"k": SUPPLIERS, "tenant": TENANT, "base": base},
        )
        # one INSERT takes consecutive ids, but not from 1 if the sequence was used before
        first = conn.execute(
            text("SELECT MIN(id) FROM suppliers WHERE tenant_id = :t"), {"t": TENANT}
        ).scalar_one()
        conn.execute(
            text(
                f"""
                WITH r AS (
                    SELECT i,
                           (i * 2654435761) % 1000003 AS h,
                           (i * 40503 + 7) % 999983 AS h2,
                           (i * 69069 + 11) % 999979 AS h3,
                           (i * 2654435761) % {span} AS secs
                    FROM generate_series(1::bigint, :rows) AS i
                ),
                s AS (SELECT *, h % 1000 AS p FROM r)
                INSERT INTO whatsapp_messages (
                    id, tenant_id, idempotency_key, recipient_phone, wa_id, message_type,
                    status, template_name, template_language, recipient_country, po_number,
                    supplier_id, attempt_count, whatsapp_message_id,
                    created_at, updated_at, accepted_at, sent_at, delivered_at, read_at,
                    failed_at, error_code, error_title, error_class,
                    pricing_category, pricing_type, pricing_model)
                SELECT
                    lpad(to_hex(i), 8, '0') || '-0000-4000-8000-' || lpad(to_hex(i), 12, '0'),
                    CASE WHEN i % 10 = 0 THEN :other ELSE :tenant END,
                    'bench:' || i,
                    '+34600' || lpad((h % 1000000)::text, 6, '0'),
                    '34600' || lpad((h % 1000000)::text, 6, '0'),
                    'template',
                    CASE WHEN p < 50 THEN 'failed' WHEN p < 60 THEN 'pending'
                         WHEN p < 150 THEN 'sent' WHEN p < 500 THEN 'delivered'
                         ELSE 'read' END,
                    CASE i % 3 WHEN 0 THEN 'po_notification' WHEN 1 THEN 'po_reminder'
                         ELSE 'po_update' END,
                    'es',
                    CASE h2 % 4 WHEN 0 THEN '351' WHEN 1 THEN '44' ELSE '34' END,
                    'PO-' || lpad(i::text, 7, '0'),
                    :first + h3 % {SUPPLIERS},
                    CASE WHEN p BETWEEN 50 AND 59 THEN 0 ELSE 1 END,
                    CASE WHEN p BETWEEN 50 AND 59 THEN NULL ELSE 'wamid.bench' || i END,
                    {at("secs")},
                    {at("secs")},
                    CASE WHEN p BETWEEN 50 AND 59 THEN NULL ELSE {at("secs + 1")} END,
                    CASE WHEN p >= 60 THEN {at("secs + 3")} END,
                    CASE WHEN p >= 150 THEN {at("secs + 5 + h2 % 900")} END,
                    CASE WHEN p >= 500 THEN {at("secs + 10 + h2 % 900 + h3 % 14400")} END,
                    CASE WHEN p < 50 THEN {at("secs + 4")} END,
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
            {
                "rows": rows,
                "tenant": TENANT,
                "other": OTHER_TENANT,
                "base": base,
                "first": first,
            },
        )
        # the same replies and acknowledgements as on SQLite (its rowid is our i; ids cut
        # to the 36 characters PostgreSQL enforces, still unique: the id ends with i)
        conn.execute(
            text(
                """
                INSERT INTO inbound_messages (id, tenant_id, wamid, from_wa_id, supplier_id,
                    message_type, text, context_wamid, context_message_id, at, received_at)
                SELECT 'in-' || substr(m.id, 4), m.tenant_id, 'wamid.in.' || m.id, m.wa_id,
                       m.supplier_id, 'text', 'Recibido, gracias', m.whatsapp_message_id, m.id,
                       m.read_at, m.read_at
                FROM whatsapp_messages m
                WHERE m.read_at IS NOT NULL
                  AND (m.attempt_count + length(m.id) + substr(m.po_number, 4)::bigint) % 8 = 0
                """
            )
        )
        conn.execute(
            text(
                """
                INSERT INTO po_acknowledgements (id, tenant_id, po_number, message_id,
                    supplier_id, inbound_wamid, action, payload, at, created_at)
                SELECT 'ack-' || substr(m.id, 5), m.tenant_id, m.po_number, m.id, m.supplier_id,
                       'wamid.ack.' || m.id,
                       CASE WHEN substr(m.po_number, 4)::bigint % 9 = 0 THEN 'rejected'
                            ELSE 'confirmed' END,
                       'ack:' || m.po_number, m.read_at, m.read_at
                FROM whatsapp_messages m
                WHERE m.read_at IS NOT NULL AND substr(m.po_number, 4)::bigint % 5 = 0
                """
            )
        )
        for ddl in dropped:
            conn.exec_driver_sql(ddl)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        # One seeding transaction updates each rollup row thousands of times and leaves
        # the rollups ten times their size in dead versions (264 MB for 27 MB of rows:
        # the planner then scans them whole, 1.3 s for the cost chart instead of 0.3 s);
        # in production, autovacuum reclaims them as webhooks trickle in.
        conn.exec_driver_sql("VACUUM FULL analytics_hourly")
        conn.exec_driver_sql("VACUUM FULL analytics_supplier_weekly")
        conn.exec_driver_sql("VACUUM FULL analytics_hourly_stages")
        conn.exec_driver_sql("VACUUM ANALYZE")
    ensure_default_rate_card(engine, TENANT)
    ensure_default_rate_card(engine, OTHER_TENANT)


def _drop_postgres_indexes(conn: Any) -> list[str]:
    """Drop the messages table's secondary indexes (not those behind a constraint)."""
    rows = conn.exec_driver_sql(
        "SELECT i.indexname, i.indexdef FROM pg_indexes i "
        "WHERE i.tablename = 'whatsapp_messages' AND i.schemaname = current_schema() "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)"
    ).all()
    for name, _ddl in rows:
        conn.exec_driver_sql(f'DROP INDEX "{name}"')
    return [ddl for _name, ddl in rows]


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


@dataclass
class Spread:
    best: float
    worst: float


def time_spread(fn: Callable[[], Any], repeats: int = REPEATS) -> Spread:
    """Best and worst wall time of `repeats` runs after one warm-up run."""
    fn()
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return Spread(min(samples), max(samples))


#: The charts served from the rollups, and their raw path (every message) for comparison.
RAW_PATHS: dict[str, Callable[[Engine, stats.StatsFilter], Any]] = {
    "funnel": lambda e, f: stats.funnel(e, f, rollup=False),
    "daily rates": lambda e, f: stats.daily_rates(e, f, rollup=False),
    "time to deliver": lambda e, f: stats.latency(e, f, "deliver", rollup=False),
    "time to read": lambda e, f: stats.latency(e, f, "read", rollup=False),
    "per-supplier table": lambda e, f: stats.supplier_table(e, f, rollup=False),
    "PO acknowledgements": lambda e, f: stats.acknowledgements(e, f, rollup=False),
    "cost": lambda e, f: stats.cost(e, f, rollup=False),
}


def filters(start: date, end: date, engine: Engine) -> dict[str, stats.StatsFilter]:
    """The filters a manager uses: none, one template, one supplier, several tenants."""
    with engine.connect() as conn:
        busiest = conn.execute(
            text(
                "SELECT supplier_id FROM whatsapp_messages WHERE tenant_id = :t "
                "AND supplier_id IS NOT NULL GROUP BY supplier_id ORDER BY COUNT(*) DESC LIMIT 1"
            ),
            {"t": TENANT},
        ).scalar_one()
    base = {"start": start, "end": end, "tz": "Europe/Madrid"}
    return {
        "no filter": stats.StatsFilter(tenant_ids=(TENANT,), **base),  # type: ignore[arg-type]
        "one template": stats.StatsFilter(
            tenant_ids=(TENANT,), template_names=("po_notification",), **base  # type: ignore[arg-type]
        ),
        f"one supplier (#{busiest})": stats.StatsFilter(
            tenant_ids=(TENANT,), supplier_ids=(int(busiest),), **base  # type: ignore[arg-type]
        ),
        "two tenants": stats.StatsFilter(
            tenant_ids=(TENANT, OTHER_TENANT), **base  # type: ignore[arg-type]
        ),
    }


def chart_calls(engine: Engine, flt: stats.StatsFilter) -> dict[str, Callable[[], Any]]:
    """Every query the analytics page runs, by chart, then the whole page at once."""
    return {
        "funnel": lambda: stats.funnel(engine, flt),
        "daily rates": lambda: stats.daily_rates(engine, flt),
        "time to deliver": lambda: stats.latency(engine, flt, "deliver"),
        "time to read": lambda: stats.latency(engine, flt, "read"),
        "failures by reason": lambda: stats.failures_by_reason(engine, flt),
        "per-supplier table": lambda: stats.supplier_table(engine, flt),
        "PO acknowledgements": lambda: stats.acknowledgements(engine, flt),
        "cost": lambda: stats.cost(engine, flt),
        "whole page (report)": lambda: stats.report(engine, flt),
        "page, in turn (before)": lambda: sequential_page(engine, flt),
    }


def sequential_page(engine: Engine, flt: stats.StatsFilter) -> None:
    """The whole page as `stats.report` computed it before issue 13: every chart's
    queries one after another, the funnel a pass of its own (the baseline)."""
    stats.funnel(engine, flt)
    stats.daily_rates(engine, flt)
    stats.latency(engine, flt, "deliver")
    stats.latency(engine, flt, "read")
    stats.failures_by_reason(engine, flt)
    stats.supplier_table(engine, flt)
    stats.acknowledgements(engine, flt)
    stats.cost(engine, flt)


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
                {"t": flt.tenant_ids[0], **_bounds(engine, start, end)},
            ).scalar_one()
        )


def _bounds(engine: Engine, start: datetime, end: datetime) -> dict[str, Any]:
    """The range's ends as the messages table compares them (text on SQLite)."""
    if engine.dialect.name == "sqlite":
        return {"s": _stored(start), "e": _stored(end)}
    return {"s": start, "e": end}


def _stored(at: datetime) -> str:
    """An instant as the messages table stores it on SQLite (UTC text)."""
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _load() -> str:
    try:
        return " / ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def run(
    rows: int,
    db_path: Path | None,
    *,
    keep: bool,
    writes: bool = True,
    database_url: str | None = None,
) -> int:
    """Seed (unless the database already holds the data), time, print; exit 1 if slow.

    `database_url` (PostgreSQL) instead of `db_path`: that database, migrated and
    seeded once (reused while it holds messages: use a dedicated one).
    """
    url = database_url or f"sqlite:///{db_path}"
    postgres = database_url is not None and not database_url.startswith("sqlite")
    fresh = db_path is not None and not db_path.exists()
    where = url.split("@")[-1] if postgres else str(db_path)
    page_target = PAGE_TARGET_POSTGRES if postgres else PAGE_TARGET_SQLITE
    migrate.upgrade(url)
    engine = get_engine(url)
    now = datetime.now(UTC)
    with engine.connect() as conn:
        have = conn.execute(text("SELECT COUNT(*) FROM whatsapp_messages")).scalar_one()
    if fresh or have == 0:
        started = time.perf_counter()
        (seed_postgres if postgres else seed)(engine, rows, now)
        print(f"seeded {rows:,} messages in {time.perf_counter() - started:.1f} s -> {where}")
    else:
        rows = int(have)
        print(f"reusing {rows:,} messages in {where}")
    today = now.date()
    ranges = {
        f"all {DAYS} days": (today - timedelta(days=DAYS), today),
        "last 30 days": (today - timedelta(days=29), today),
    }
    slow = False
    print(f"load average before timing: {_load()} on {os.cpu_count()} CPUs "
          "(timings scale with it on a shared machine; the ratios much less)")  # fmt: skip
    for label, (start, end) in ranges.items():
        flts = filters(start, end, engine)
        plain = flts["no filter"]
        floor = time_call(partial(count_floor, engine, plain))
        baseline = time_call(partial(pandas_baseline, engine, plain), repeats=2)
        print(f"\n{label} ({start} .. {end}, tenant {TENANT}, Europe/Madrid days); pandas "
              f"over all rows {baseline:.3f}s, COUNT(*) of the range {floor:.3f}s")  # fmt: skip
        for name, flt in flts.items():
            print(f"  {name + ':':<26}{'best':>8}{'worst':>8}{'vs pandas':>11}"
                  f"{'raw path':>10}")  # fmt: skip
            for chart, fn in chart_calls(engine, flt).items():
                spread = time_spread(fn)
                is_page = chart.startswith(("whole page", "page,"))
                if chart.startswith("whole page"):
                    flag = "" if spread.best < page_target else "  OVER PAGE TARGET"
                else:
                    flag = "" if is_page or spread.worst < TARGET_SECONDS else "  SLOW"
                slow = slow or bool(flag)
                raw = ""
                if chart in RAW_PATHS:
                    raw_fn = partial(RAW_PATHS[chart], engine, flt)
                    raw = f"{time_spread(raw_fn, repeats=2).best:>9.3f}s"
                ratio = baseline / spread.best if spread.best else float("inf")
                print(f"    {chart:<22}{spread.best:>7.3f}s{spread.worst:>7.3f}s"
                      f"{ratio:>10.0f}x{raw}{flag}")  # fmt: skip
        print(f"  target < {TARGET_SECONDS}s for every chart on its worst run, the whole "
              f"page < {page_target}s on its best; load average now {_load()}")
    if writes and not postgres:  # the trigger timings read SQLite's own catalogue
        trigger_cost(engine)
    engine.dispose()
    if not keep and fresh and db_path is not None:
        db_path.unlink(missing_ok=True)
        for suffix in ("-wal", "-shm"):
            Path(str(db_path) + suffix).unlink(missing_ok=True)
    return 1 if slow else 0


ROLLUP_TRIGGER_PREFIXES = ("trg_analytics_hourly_", "trg_analytics_supplier_weekly_")
#: 0009: insert, delete, update in place, update moving cell, per rollup (8); 0026's
#: analytics_hourly_stages: insert, delete, update (3; its names share the hourly prefix)
ROLLUP_TRIGGERS = 11
TRIGGER_ROWS = 50_000


def _sent_ids(engine: Engine, rows: int) -> list[str]:
    with engine.connect() as conn:
        return [
            r[0]
            for r in conn.execute(
                text("SELECT id FROM whatsapp_messages WHERE status = 'sent' LIMIT :n"),
                {"n": rows},
            )
        ]


def _mark_delivered(engine: Engine, ids: list[str], *, triggers: bool, bulk: bool) -> float:
    """Seconds to mark `ids` delivered with pricing, in a transaction rolled back after.

    Without the 0009 triggers they are dropped inside that same transaction, so the
    rollback restores them: on the DB-API connection with an explicit BEGIN, because
    pysqlite on its own commits DDL at once (it only opens transactions before DML).
    """
    at = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    set_clause = (
        "status = 'delivered', delivered_at = ?, updated_at = ?, "
        "pricing_category = 'utility', pricing_type = 'regular', pricing_model = 'PMP'"
    )
    raw = engine.raw_connection()
    driver: Any = raw.driver_connection
    saved = driver.isolation_level
    driver.isolation_level = None  # we issue BEGIN and ROLLBACK ourselves
    try:
        cursor = driver.cursor()
        cursor.execute("BEGIN")
        try:
            if not triggers:
                names = [r[0] for r in cursor.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'trigger'")]  # fmt: skip
                ours = [n for n in names if n.startswith(ROLLUP_TRIGGER_PREFIXES)]
                if len(ours) != ROLLUP_TRIGGERS:
                    raise RuntimeError(f"expected {ROLLUP_TRIGGERS} rollup triggers: {ours}")
                for name in ours:
                    cursor.execute(f"DROP TRIGGER {name}")
            started = time.perf_counter()
            if bulk:
                for chunk in range(0, len(ids), 1000):
                    part = ids[chunk : chunk + 1000]
                    marks = ", ".join("?" * len(part))
                    cursor.execute(
                        f"UPDATE whatsapp_messages SET {set_clause} WHERE id IN ({marks})",
                        [at, at, *part],
                    )
            else:
                cursor.executemany(
                    f"UPDATE whatsapp_messages SET {set_clause} WHERE id = ?",
                    [(at, at, i) for i in ids],
                )
            return time.perf_counter() - started
        finally:
            cursor.execute("ROLLBACK")
    finally:
        driver.isolation_level = saved
        raw.close()


def _rollup_trigger_count(engine: Engine) -> int:
    with engine.connect() as conn:
        names = conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        return sum(1 for n in names.scalars() if n.startswith(ROLLUP_TRIGGER_PREFIXES))


def trigger_cost(engine: Engine) -> None:
    """Print what the rollup triggers add to webhook-shaped writes (same run, same rows)."""
    ids = _sent_ids(engine, TRIGGER_ROWS)
    if not ids:
        return
    if _rollup_trigger_count(engine) != ROLLUP_TRIGGERS:
        raise RuntimeError("the database lacks the 0009 triggers: run `wanotify db upgrade`")
    print(f"\nrollup triggers on writes: {len(ids):,} sent messages marked delivered with "
          f"pricing (best of 3, rolled back); load average {_load()}")  # fmt: skip
    for bulk in (False, True):
        runs: dict[bool, list[float]] = {True: [], False: []}
        for _ in range(3):  # interleaved, so cache and WAL state favour neither side
            for triggers in (False, True):
                runs[triggers].append(_mark_delivered(engine, ids, triggers=triggers, bulk=bulk))
        with_t, without = min(runs[True]), min(runs[False])
        shape = "one UPDATE in 1,000-id chunks" if bulk else "one UPDATE by id per message"
        per_with, per_without = with_t / len(ids) * 1e6, without / len(ids) * 1e6
        print(f"  {shape:<32} without rollups {without:.3f}s ({per_without:.1f} us/row), "
              f"with {with_t:.3f}s ({per_with:.1f} us/row): {per_with - per_without:+.1f} us/row, "
              f"x{with_t / without:.2f}")  # fmt: skip
    if _rollup_trigger_count(engine) != ROLLUP_TRIGGERS:
        raise RuntimeError("the 0009 triggers did not survive the measurement")
    print(f"  load average now {_load()}")


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: `python -m benchmarks.analytics`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--db", type=Path, default=None, help="SQLite file (reused if present)")
    parser.add_argument("--keep", action="store_true", help="keep the seeded file")
    parser.add_argument(
        "--database-url",
        default=None,
        help="a dedicated PostgreSQL database instead of SQLite (seeded once, then reused)",
    )
    parser.add_argument(
        "--no-trigger-cost", action="store_true", help="skip timing the triggers on writes"
    )
    args = parser.parse_args(argv)
    if args.rows < 1000:
        parser.error("--rows must be at least 1000")
    if args.database_url is not None:
        return run(
            args.rows,
            None,
            keep=True,
            writes=not args.no_trigger_cost,
            database_url=args.database_url,
        )
    if args.db is None:
        directory = Path(tempfile.mkdtemp(prefix="wanotify-bench-"))
        db_path = directory / "analytics.db"
    else:
        db_path = args.db
    keep = args.keep or args.db is not None
    return run(args.rows, db_path, keep=keep, writes=not args.no_trigger_cost)


if __name__ == "__main__":
    sys.exit(main())
