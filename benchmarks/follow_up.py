"""Awaiting answer at volume: seed PO notices and time the list a buyer opens.

    python -m benchmarks.follow_up [--rows 100000] [--database-url URL]

Seeds `rows` delivered PO notices over 90 days (a third confirmed, one in a hundred
rejected, one in ten with a text reply) on a fresh SQLite file (or the given, empty,
migrated database), then times, warm, best of several runs in the same process:

- `awaiting`: page 1 of the list (rejected first, then oldest; the tenant's 24 h);
- with the state filter and with a supplier search;
- the baseline: page 1 of the same tenant's delivered PO notices by age alone, one
  indexed query without answers, replies or reminders (what a list costs at least);
- one `remind` decision (the rules, without a template: refused at the gate);
- each list case with the previous code (`benchmarks.follow_up_before`: a count and a
  page query, each looking up every row's answers through the PO's messages) on the
  previous schema (migration 0023's index dropped for its turn, then made again).

Prints each figure beside the goal (a page in under 2 s), the previous code measured in
the same run and the baseline, and the load average, since the machine is shared.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, insert, select

from benchmarks import follow_up_before as before
from core import migrate
from core.db import get_engine
from core.followup.query import AwaitingFilter, awaiting
from core.followup.reminders import remind
from core.models.events import InboundMessage, PoAcknowledgement
from core.models.messages import WhatsAppMessage

TENANT = "bench"
GOAL_SECONDS = 2.0
REPEATS = 3
NOW = datetime(2026, 3, 2, 12, tzinfo=UTC)
_M = WhatsAppMessage.__table__  # type: ignore[attr-defined]
_A = PoAcknowledgement.__table__  # type: ignore[attr-defined]
_I = InboundMessage.__table__  # type: ignore[attr-defined]


def seed(engine: Engine, rows: int) -> None:
    """`rows` delivered PO notices with their answers, in batches of 5,000."""
    span = 90 * 24 * 60
    for start in range(0, rows, 5000):
        notices, acks, replies = [], [], []
        for i in range(start, min(rows, start + 5000)):
            at = NOW - timedelta(minutes=(i * 7919) % span)
            mid = f"bench-{i:08d}"
            notices.append(dict(
                id=mid, tenant_id=TENANT, idempotency_key=f"po:B-{i}", po_number=f"B-{i}",
                recipient_phone=f"+3461{i % 9_000_000:07d}", message_type="template",
                status="delivered", template_name="po_notification", request_payload={},
                delivered_at=at, sent_at=at, created_at=at, updated_at=at,
                whatsapp_message_id=f"wamid.bench.{i}",
            ))  # fmt: skip
            action = "confirmed" if i % 3 == 0 else "rejected" if i % 100 == 1 else None
            if action:
                acks.append(dict(id=f"ack-{i}", tenant_id=TENANT, po_number=f"B-{i}",
                                 message_id=mid, inbound_wamid=f"wamid.in.{i}", action=action,
                                 at=at + timedelta(hours=2), created_at=at))  # fmt: skip
            if i % 10 == 2:
                replies.append(dict(id=f"in-{i}", tenant_id=TENANT, wamid=f"wamid.txt.{i}",
                                    from_wa_id="34610000000", message_type="text",
                                    text="¿Plazo de entrega?", context_message_id=mid,
                                    at=at + timedelta(hours=3),
                                    received_at=at + timedelta(hours=3)))  # fmt: skip
        with engine.begin() as conn:
            conn.execute(insert(_M), notices)
            if acks:
                conn.execute(insert(_A), acks)
            if replies:
                conn.execute(insert(_I), replies)


def best(call: Callable[[], Any]) -> float:
    """The best of REPEATS warm runs, in seconds (the first run warms caches)."""
    call()
    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return min(times)


def baseline(engine: Engine) -> None:
    """Page 1 of the tenant's delivered PO notices by age: one indexed query, no answers."""
    with engine.connect() as conn:
        conn.execute(
            select(_M.c.id, _M.c.po_number, _M.c.delivered_at)
            .where(
                _M.c.tenant_id == TENANT,
                _M.c.po_number.is_not(None),
                _M.c.delivered_at <= NOW - timedelta(hours=24),
            )
            .order_by(_M.c.delivered_at)
            .limit(50)
        ).all()


def main() -> None:
    """Seed, time, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    url = args.database_url or f"sqlite:///{Path(tempfile.mkdtemp()) / 'followup-bench.db'}"
    migrate.upgrade(url)
    engine = get_engine(url)
    started = time.perf_counter()
    seed(engine, args.rows)
    print(f"seeded {args.rows:,} notices in {time.perf_counter() - started:.1f} s ({url})")
    if engine.dialect.name == "postgresql":  # fresh statistics, as autovacuum would give
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
    base = best(lambda: baseline(engine))
    print(f"baseline (page of notices by age, no answers): {base * 1000:.1f} ms")
    filters = {
        "page 1": AwaitingFilter((TENANT,)),
        "last page": AwaitingFilter((TENANT,), page=10**6),
        "state filter": AwaitingFilter((TENANT,), states=("replied",)),
        "supplier search": AwaitingFilter((TENANT,), supplier="61000"),
    }
    total = awaiting(engine, filters["page 1"], now=NOW).total
    print(f"{total:,} notices waiting; load average before timing: {load()}")
    # The previous code on the previous schema: without migration 0023's index (dropped
    # for its turn, made again for the current code's).
    thread = next(i for i in _M.indexes if i.name == "ix_whatsapp_messages_po_thread")
    thread.drop(engine)
    previous, previous_ids = {}, {}
    for name, search in filters.items():
        old = before.AwaitingFilter(**vars(search))
        previous_ids[name] = [n.message_id for n in before.awaiting(engine, old, now=NOW).rows]
        previous[name] = best(lambda o=old: before.awaiting(engine, o, now=NOW))  # type: ignore[misc]
    thread.create(engine)
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE whatsapp_messages")
    for name, search in filters.items():
        same = [n.message_id for n in awaiting(engine, search, now=NOW).rows] == previous_ids[name]
        took = best(lambda s=search: awaiting(engine, s, now=NOW))  # type: ignore[misc]
        prev = previous[name]
        print(
            f"awaiting, {name:16s} {took * 1000:8.1f} ms  goal {took / GOAL_SECONDS:5.2f}×  "
            f"previous {prev * 1000:8.1f} ms ({took / prev:5.2f}×)  "
            f"baseline {took / base:7.1f}×  same rows as previous: {same}"
        )
    took = best(lambda: remind(engine, TENANT, "bench-00000004", now=NOW, by="bench"))
    print(
        f"{'remind (rules, refused at the gate)':26s} {took * 1000:8.1f} ms  "
        f"goal {took / GOAL_SECONDS:5.2f}×  baseline {took / base:7.1f}×"
    )
    print(f"load average after: {load()}")


def load() -> str:
    """The machine's load average and CPU count (figures are noisy on a shared machine)."""
    return f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} CPUs)"


if __name__ == "__main__":
    main()
