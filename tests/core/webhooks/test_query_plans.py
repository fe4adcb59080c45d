"""The webhook pipeline's queries use indexes: none scans a table that grows with traffic.

Every statement the applier, the sweep and health run is captured and explained by
SQLite (`EXPLAIN QUERY PLAN`); a full scan of the receipts, the timeline or the messages
would make each run slower as the tables grow, holding the write lock ever longer.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, event

from core.db import is_sqlite
from core.webhooks.apply import apply_next_batch, sweep_held
from core.webhooks.health import read_health
from tests.core.webhooks.helpers import T0, add_message, journal, status, statuses_body

GROWING = ("webhook_receipts", "message_status_events", "whatsapp_messages", "inbound_messages")
#: Partial indexes: scanning one reads only the backlog or the held statuses.
PARTIAL = ("ix_webhook_receipts_unapplied", "ix_message_status_events_held")


def _bounded(detail: str, sql: str) -> bool:
    if any(f"INDEX {name}" in detail for name in PARTIAL):
        return True
    # The newest receipt: a backward walk of the rowid that stops at the first row.
    return "ORDER BY webhook_receipts.id DESC" in sql and "LIMIT" in sql


def test_no_full_scan_of_a_growing_table(engine: Engine) -> None:
    if not is_sqlite(engine):
        pytest.skip("reads SQLite's query plans")
    for n in range(5):
        add_message(engine, wamid=f"wamid.Q{n}")
    journal(engine, statuses_body(*(status(f"wamid.Q{n}", "read", T0) for n in range(5))))
    journal(engine, statuses_body(status("wamid.NOT-YET", "sent", T0)))
    statements: list[tuple[str, Any]] = []

    def capture(conn, cursor, sql, params, context, executemany) -> None:
        if sql.lstrip().upper().startswith(("SELECT", "UPDATE", "DELETE")):
            statements.append((sql, params[0] if executemany else params))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        apply_next_batch(engine)
        add_message(engine, wamid="wamid.NOT-YET")
        sweep_held(engine, include_unmatched=True)
        read_health(engine)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    assert statements
    scans = []
    with engine.connect() as conn:
        for sql, params in statements:
            plan = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", params).all()
            for row in plan:
                detail = str(row[-1])
                scan = detail.startswith("SCAN ") and detail.split()[1] in GROWING
                if scan and not _bounded(detail, sql):
                    scans.append((detail, sql[:120]))
    assert scans == []
