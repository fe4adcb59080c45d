"""`core.webhooks.apply`: receipts applied in batches; a bad one is set aside, never the rest."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from core.db import is_sqlite
from core.models.types import utcnow
from core.webhooks.apply import (
    MAX_APPLY_ATTEMPTS,
    apply_next_batch,
    is_transient,
    retry_failed_receipts,
)
from core.webhooks.health import read_health
from core.webhooks.journal import ReceiptIn, write_receipts
from tests.core.webhooks.helpers import (
    T0,
    add_message,
    apply_all,
    body_of,
    envelope,
    inbound_body,
    inbound_message,
    journal,
    message_row,
    sample,
    status,
    statuses_body,
    value,
)


def receipts(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [
            dict(r._mapping)
            for r in conn.execute(text("SELECT * FROM webhook_receipts ORDER BY id"))
        ]


def test_the_batch_sample_applies_every_status(engine: Engine) -> None:
    ids = [add_message(engine, wamid=f"wamid.BATCH000{i}") for i in (1, 2, 3)]
    journal(engine, sample("statuses_batch.json"))
    report = apply_all(engine)
    assert report.statuses.applied == 3
    assert [message_row(engine, i)["status"] for i in ids] == ["delivered", "read", "sent"]


def test_many_entries_changes_and_statuses_in_one_body_all_apply(engine: Engine) -> None:
    ids = {f"wamid.M{n}": add_message(engine, wamid=f"wamid.M{n}") for n in range(60)}
    wamids = list(ids)
    doc = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": str(e),
                "changes": [
                    {
                        "field": "messages",
                        "value": value(
                            statuses=[
                                status(wamids[e * 20 + c * 5 + s], "delivered", T0)
                                for s in range(5)
                            ]
                        ),
                    }
                    for c in range(4)
                ],
            }
            for e in range(3)
        ],
    }
    journal(engine, body_of(doc))
    report = apply_all(engine, max_events=10)  # one body bigger than a batch still applies
    assert report.statuses.applied == 60
    assert {message_row(engine, m)["status"] for m in ids.values()} == {"delivered"}


def test_statuses_messages_and_other_fields_in_one_body(engine: Engine) -> None:
    mid = add_message(engine, wamid="wamid.MIX")
    reply = inbound_message("wamid.IN1", "34612345678", "text", text={"body": "vale"})
    doc = envelope(
        value(statuses=[status("wamid.MIX", "read", T0)]),
        value(messages=[reply], contacts=[{"wa_id": "34612345678"}]),
    )
    doc["entry"].append(
        {"id": "x", "changes": [{"field": "account_update", "value": {"event": "VERIFIED"}}]}
    )
    journal(engine, body_of(doc))
    report = apply_all(engine)
    assert message_row(engine, mid)["status"] == "read"
    assert report.inbound.stored == 1
    assert report.events["other", "account_update"] == 1
    assert all(r["applied_at"] is not None for r in receipts(engine))


def test_receipts_are_applied_oldest_first_in_bounded_batches(engine: Engine) -> None:
    for n in range(7):
        add_message(engine, wamid=f"wamid.O{n}")
        journal(engine, statuses_body(status(f"wamid.O{n}", "sent", T0)))
    first = apply_next_batch(engine, max_receipts=3)
    assert first.receipts == 3
    applied = [r["id"] for r in receipts(engine) if r["applied_at"] is not None]
    assert applied == [r["id"] for r in receipts(engine)][:3]
    assert read_health(engine).backlog == 4
    apply_all(engine)
    assert read_health(engine).backlog == 0


def _poison(engine: Engine, wamid: str) -> None:
    """A database trigger that refuses one inbound wamid: a real, non-transient failure."""
    if is_sqlite(engine):
        ddl = (
            "CREATE TRIGGER poison BEFORE INSERT ON inbound_messages "
            f"WHEN NEW.wamid = '{wamid}' BEGIN SELECT RAISE(ABORT, 'poisoned row'); END"
        )
        with engine.begin() as conn:
            conn.execute(text(ddl))
        return
    with engine.begin() as conn:
        conn.execute(
            text(
                "CREATE FUNCTION poison() RETURNS trigger AS $$ BEGIN "
                f"IF NEW.wamid = '{wamid}' THEN RAISE EXCEPTION 'poisoned row' "
                "USING ERRCODE = '23514'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql"
            )
        )
        conn.execute(
            text(
                "CREATE TRIGGER poison BEFORE INSERT ON inbound_messages "
                "FOR EACH ROW EXECUTE FUNCTION poison()"
            )
        )


def test_a_receipt_that_cannot_be_applied_is_set_aside_and_the_rest_apply(engine: Engine) -> None:
    _poison(engine, "wamid.POISON")
    mid = add_message(engine, wamid="wamid.GOOD")
    bad = inbound_body(inbound_message("wamid.POISON", "34612345678", "text", text={"body": "x"}))
    journal(engine, statuses_body(status("wamid.GOOD", "sent", T0)), bad)
    journal(engine, statuses_body(status("wamid.GOOD", "delivered", T0 + 1)))
    report = apply_next_batch(engine)
    assert report.failed_receipts == 1 and report.receipts == 2
    assert message_row(engine, mid)["status"] == "delivered"
    for _ in range(MAX_APPLY_ATTEMPTS):
        apply_next_batch(engine)
    (poisoned,) = [r for r in receipts(engine) if r["applied_at"] is None]
    assert poisoned["apply_attempts"] == MAX_APPLY_ATTEMPTS
    assert "poisoned row" in poisoned["apply_error"]
    health = read_health(engine)
    assert health.failed_receipts == 1 and health.backlog == 0 and health.needs_attention
    assert not apply_next_batch(engine).did_work  # set aside: no longer retried on its own
    # Once the cause is fixed, an operator gives it fresh tries and nothing was lost.
    with engine.begin() as conn:
        conn.execute(
            text("DROP TRIGGER poison" + ("" if is_sqlite(engine) else " ON inbound_messages"))
        )
    assert retry_failed_receipts(engine) == 1
    assert apply_all(engine).inbound.stored == 1
    assert read_health(engine).failed_receipts == 0


def test_a_receipt_applied_again_changes_nothing(engine: Engine) -> None:
    """A crash after the apply but before the receipt was marked leaves it to apply again."""
    mid = add_message(engine, wamid="wamid.CR")
    journal(
        engine, statuses_body(status("wamid.CR", "sent", T0), status("wamid.CR", "read", T0 + 9))
    )
    apply_all(engine)
    before = message_row(engine, mid)
    with engine.begin() as conn:
        conn.execute(text("UPDATE webhook_receipts SET applied_at = NULL"))
    report = apply_all(engine)
    assert report.receipts == 1 and report.failed_receipts == 0
    assert report.statuses.duplicates == 2
    assert message_row(engine, mid) == before


def test_several_held_statuses_are_released_together(engine: Engine) -> None:
    journal(
        engine,
        statuses_body(*(status(f"wamid.HH{n}", w, T0) for n in range(3) for w in ("sent", "read"))),
    )
    apply_all(engine)
    assert read_health(engine).held == 6
    ids = [add_message(engine, wamid=f"wamid.HH{n}") for n in range(3)]
    # Meta's retry of some of them arrives once the messages exist: promoted, not duplicated.
    journal(engine, statuses_body(status("wamid.HH0", "sent", T0), status("wamid.HH1", "sent", T0)))
    apply_all(engine)
    assert read_health(engine).held == 0
    assert {message_row(engine, i)["status"] for i in ids} == {"read"}


def test_a_busy_database_error_is_transient() -> None:
    busy = OperationalError("BEGIN IMMEDIATE", {}, Exception("database is locked"))
    gone = OperationalError("SELECT", {}, Exception("server closed the connection"))
    deadlock = OperationalError("UPDATE", {}, Exception("deadlock detected"))
    bad = OperationalError("INSERT", {}, Exception("no such column: x"))
    assert is_transient(busy) and is_transient(gone) and is_transient(deadlock)
    assert not is_transient(bad) and not is_transient(ValueError("x"))


def test_transient_errors_are_raised_for_the_caller_to_retry(engine: Engine, tmp_path) -> None:
    if not is_sqlite(engine):
        pytest.skip("holds SQLite's write lock from a second connection")
    journal(engine, statuses_body(status("wamid.BUSY", "sent", T0)))
    import sqlite3

    holder = sqlite3.connect(engine.url.database, timeout=0.1)
    holder.execute("BEGIN IMMEDIATE")
    try:
        from core.db import get_engine

        impatient = get_engine(f"sqlite:///{engine.url.database}?timeout=0.2")
        with impatient.connect() as conn:
            conn.exec_driver_sql("PRAGMA busy_timeout=200")
        with pytest.raises(OperationalError):
            apply_next_batch(impatient)
    finally:
        holder.rollback()
        holder.close()
    assert read_health(engine).backlog == 1  # untouched, applied on the next run
    assert apply_all(engine).receipts == 1


def test_a_deeply_nested_receipt_from_before_the_depth_limit_is_not_set_aside(
    engine: Engine,
) -> None:
    """A body nested 1,000 levels was acknowledged before `decode_body` refused such bodies,
    then failed every apply on a RecursionError (found by tests/fuzz). One already in the
    journal is applied with an issue noted; the receipts beside it apply as usual."""
    mid = add_message(engine, wamid="wamid.NEXT")
    shallow = statuses_body(status("wamid.NEXT", "read", T0 + 5))  # its timestamp nested:
    deep = shallow.replace(f'"{T0 + 5}"'.encode(), b"[" * 1000 + b"1" + b"]" * 1000)
    write_receipts(engine, [ReceiptIn(deep, utcnow(), 1)])
    journal(engine, statuses_body(status("wamid.NEXT", "sent", T0)))
    report = apply_all(engine)
    assert (report.receipts, report.failed_receipts, report.issues) == (2, 0, 1)
    assert message_row(engine, mid)["status"] == "sent"
    assert read_health(engine).failed_receipts == 0
