"""`core.webhooks.sql`: the driver-level executemany writes what SQLAlchemy would."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine, insert, select, text

from core.webhooks.sql import EVENTS, execute_many, insert_ignoring


def _row(key: str, at: datetime) -> dict:
    return {
        "event_key": key, "tenant_id": None, "message_id": None, "wamid": "wamid.SQL",
        "status": "sent", "at": at, "recipient_id": None, "callback_data": None,
        "error_code": None, "error_title": None, "error_details": None,
        "pricing_category": "utility", "pricing_type": None, "pricing_model": None,
        "billable": True, "conversation_id": None, "conversation_origin": None,
        "conversation_expires_at": None, "state": "pending", "receipt_id": None,
        "received_at": at, "applied_at": None,
    }  # fmt: skip


def test_rows_match_sqlalchemys_own_writes(engine: Engine) -> None:
    at = datetime(2026, 12, 1, 10, 0, 0, 5, tzinfo=timezone(timedelta(hours=2)))
    with engine.begin() as conn:
        conn.execute(insert(EVENTS), [_row("by-sqlalchemy", at)])
        rows = [_row("by-driver", at), _row("by-driver", at)]  # the second is a duplicate
        statement = insert_ignoring(conn, EVENTS, ["event_key"])
        assert execute_many(conn, "t_insert", statement, rows, columns=list(rows[0])) == 1
    with engine.connect() as conn:
        got = conn.execute(select(EVENTS.c.event_key, EVENTS.c.at, EVENTS.c.billable)).all()
        raw = conn.execute(text("SELECT at FROM message_status_events ORDER BY event_key")).all()
    assert {r.at for r in got} == {at.astimezone(UTC)}
    assert {r.billable for r in got} == {True}
    assert raw[0][0] == raw[1][0]  # the very same stored text (or value)


def test_naive_times_are_refused(engine: Engine) -> None:
    with engine.begin() as conn, pytest.raises(ValueError, match="naive"):
        statement = insert_ignoring(conn, EVENTS, ["event_key"])
        row = _row("naive", datetime(2026, 12, 1))
        execute_many(conn, "t_insert_naive", statement, [row], columns=list(row))


def test_nothing_to_write(engine: Engine) -> None:
    with engine.begin() as conn:
        assert execute_many(conn, "t_empty", insert_ignoring(conn, EVENTS, ["event_key"]), []) == 0


def test_named_update_parameters_store_times_as_sqlalchemy_does(engine: Engine) -> None:
    """The applier's UPDATE binds `b_*` names to UTCDateTime columns: converted, not raw."""
    from sqlalchemy import bindparam, update

    at = datetime(2026, 12, 1, 10, 0, 0, 5, tzinfo=timezone(timedelta(hours=-3)))
    with engine.begin() as conn:
        conn.execute(insert(EVENTS), [_row("a", at), _row("b", at)])
        conn.execute(update(EVENTS).where(EVENTS.c.event_key == "a").values(applied_at=at))
        statement = (
            update(EVENTS)
            .where(EVENTS.c.event_key == bindparam("b_key"))
            .values(applied_at=bindparam("b_at", type_=EVENTS.c.applied_at.type),
                    error_code=bindparam("b_code", type_=EVENTS.c.error_code.type))
        )  # fmt: skip
        changed = execute_many(
            conn, "t_update", statement, [{"b_key": "b", "b_at": at, "b_code": 7}]
        )
        assert changed == 1
    with engine.connect() as conn:
        raw = conn.execute(
            text("SELECT applied_at FROM message_status_events ORDER BY event_key")
        ).all()
        got = conn.execute(
            select(EVENTS.c.applied_at, EVENTS.c.error_code).order_by(EVENTS.c.event_key)
        ).all()
    assert raw[0][0] == raw[1][0]
    assert got[1].applied_at == at.astimezone(UTC) and got[1].error_code == 7


def test_array_rows_write_what_sqlalchemy_would_on_postgresql(engine: Engine) -> None:
    """PostgreSQL's one-statement batches (`array_rows`) store the same values as
    SQLAlchemy's own insert, skip duplicates, and refuse naive times."""
    if engine.dialect.name != "postgresql":
        pytest.skip("unnest arrays are PostgreSQL's")
    from core.webhooks.sql import array_rows

    at = datetime(2026, 12, 1, 10, 0, 0, 5, tzinfo=timezone(timedelta(hours=2)))
    with engine.begin() as conn:
        conn.execute(insert(EVENTS), [_row("by-sqlalchemy", at)])
        rows = [_row("by-arrays", at), _row("by-arrays", at), _row("by-sqlalchemy", at)]
        columns = list(rows[0])
        relation, arrays = array_rows(conn, EVENTS, columns, rows)
        quoted = ", ".join(f'"{c}"' for c in columns)
        written = conn.exec_driver_sql(
            f"INSERT INTO message_status_events ({quoted}) "
            f"SELECT * FROM {relation} ON CONFLICT (event_key) DO NOTHING",
            tuple(arrays),
        )
        assert written.rowcount == 1
        with pytest.raises(ValueError, match="naive"):
            array_rows(conn, EVENTS, columns, [_row("naive", at.replace(tzinfo=None))])
    with engine.connect() as conn:
        got = conn.execute(
            select(EVENTS.c.event_key, EVENTS.c.at, EVENTS.c.billable, EVENTS.c.error_code)
        ).all()
    assert sorted(r.event_key for r in got) == ["by-arrays", "by-sqlalchemy"]
    assert {(r.at, r.billable, r.error_code) for r in got} == {(at.astimezone(UTC), True, None)}
