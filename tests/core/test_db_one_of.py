"""Set-based lookups of a bulk upload on PostgreSQL: `core.db.one_of` and
`core.db.by_unique_key` find exactly what a plain IN finds (on SQLite too), also once the
statement ran often enough for psycopg to prepare it; `by_unique_key` goes through the
unique index even when the statistics are stale, and `refresh_statistics` takes them when
autovacuum would (never taken, or taken while the table was empty) so that it does;
`plan_each_statement` plans a transaction's statements for their values."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, Select, func, text
from sqlmodel import Session, col, select

from core.batch_import import LOOKED_UP
from core.db import by_unique_key, one_of, plan_each_statement, refresh_statistics
from core.models.messages import WhatsAppMessage
from core.models.suppliers import Supplier


def _suppliers(engine: Engine, tenant: str, count: int) -> None:
    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # any fixed day: nothing here reads ages
    with Session(engine) as session:
        session.add_all(
            Supplier(
                tenant_id=tenant,
                name=f"Proveedor {n}" if n % 2 else f"PROVEEDOR {n}",
                phone_e164=f"+346100000{n:02d}",
                created_at=now,
                updated_at=now,
            )
            for n in range(count)
        )
        session.commit()


_S = Supplier.__table__  # type: ignore[attr-defined]


def _one_of(session: Session, asked: list[str]) -> list[tuple[str, str]]:
    return [
        (phone, name)
        for phone, name in session.execute(
            select(_S.c.phone_e164, _S.c.name).where(
                _S.c.tenant_id == "t1", one_of(session, _S.c.phone_e164, asked)
            )
        )
    ]


def _by_unique_key(session: Session, asked: list[str]) -> list[tuple[str, str]]:
    return [
        (phone, name)
        for phone, name in session.execute(
            by_unique_key(
                session,
                [_S.c.phone_e164, _S.c.name],
                _S.c.tenant_id == "t1",
                _S.c.phone_e164,
                asked,
            )
        )
    ]


@pytest.mark.parametrize("lookup", [_one_of, _by_unique_key])
def test_finds_what_in_finds(
    engine: Engine, lookup: Callable[[Session, list[str]], list[tuple[str, str]]]
) -> None:
    _suppliers(engine, "t1", 30)
    _suppliers(engine, "t2", 5)  # another tenant's numbers are not found
    asked = [f"+346100000{n:02d}" for n in range(0, 40, 3)] + ["+34999", "", "+346100000'; --"]
    with Session(engine) as session:
        for _round in range(8):  # past psycopg's prepare threshold (5)
            found = lookup(session, asked)
            plain = session.execute(
                select(_S.c.phone_e164, _S.c.name).where(
                    _S.c.tenant_id == "t1", _S.c.phone_e164.in_(asked)
                )
            ).all()
            assert sorted(found) == sorted((phone, name) for phone, name in plain)
            assert {name.casefold() for _phone, name in found} == {
                f"proveedor {n}" for n in range(0, 30, 3)
            }
        assert lookup(session, []) == []


def test_an_expression_and_no_values(engine: Engine) -> None:
    _suppliers(engine, "t1", 4)
    with Session(engine) as session:
        conn = session.connection()  # one_of takes a Core connection too
        lowered = func.lower(col(Supplier.name))
        names = session.exec(
            select(Supplier.name).where(one_of(session, lowered, ["proveedor 1", "proveedor 2"]))
        ).all()
        assert sorted(names) == ["PROVEEDOR 2", "Proveedor 1"]
        assert session.exec(select(Supplier.id).where(one_of(conn, lowered, []))).all() == []


def _forget_statistics(engine: Engine, table: str) -> None:
    """`table` emptied and its statistics gone, as on a new database: its row count
    unknown (-1, by TRUNCATE) and no column statistics left by an earlier ANALYZE
    (deleting them is a superuser's right, as the test database's owner has here)."""
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {table} CASCADE"))
        conn.execute(
            text("DELETE FROM pg_statistic WHERE starelid = CAST(:table AS regclass)"),
            {"table": table},
        )


def _plan(conn: Connection, query: Select[Any]) -> str:
    """PostgreSQL's plan of `query` (EXPLAIN), as text."""
    statement = query.compile(dialect=conn.dialect)
    return "\n".join(conn.exec_driver_sql(f"EXPLAIN {statement}", statement.params).scalars())


@pytest.mark.parametrize(("statistics", "rows"), [("stale", 20_000), ("never-taken", 1_250)])
def test_by_unique_key_uses_the_index_with_stale_statistics(
    engine: Engine, statistics: str, rows: int
) -> None:
    # A table analyzed while nearly empty, or never (a new database, a first bulk import;
    # autovacuum off or not yet round), then filled: the plan must still look each value
    # up in the unique index rather than read every row of the tenant. Never analyzed,
    # PostgreSQL costed a tenant-only index the same, took it, and filtered the tenant's
    # rows for each value (30 ms per 500 values at 1,250 suppliers): migration 0027.
    if engine.dialect.name != "postgresql":
        pytest.skip(
            "PostgreSQL pass only: SQLite plans a unique index's equality without statistics"
        )
    _forget_statistics(engine, "suppliers")
    _suppliers(engine, "t1", 2)
    with engine.begin() as conn:
        if statistics == "stale":
            conn.execute(text("ANALYZE suppliers"))
        conn.execute(
            text(
                "INSERT INTO suppliers (tenant_id, name, phone_e164, language, is_active, "
                "opted_in, created_at, updated_at) SELECT 't1', 'Proveedor ' || n, '+3462' || "
                "lpad(n::text, 7, '0'), 'es', true, false, :at, :at "
                "FROM generate_series(1, :rows) AS n"
            ),
            {"at": datetime(2026, 3, 2, 9, 0, tzinfo=UTC), "rows": rows},
        )
    asked = [f"+3462{n:07d}" for n in range(1, rows, rows // 500)]
    with engine.connect() as conn:
        plan = _plan(
            conn,
            by_unique_key(
                conn, [_S.c.phone_e164, _S.c.id], _S.c.tenant_id == "t1", _S.c.phone_e164, asked
            ),
        )
        assert "uq_suppliers_tenant_id_phone_e164" in plan, plan
        assert "Bitmap Heap Scan" not in plan and "Seq Scan on suppliers" not in plan, plan
        assert "Filter" not in plan, plan  # no row of the tenant read and dropped
        found = conn.execute(
            by_unique_key(conn, [_S.c.phone_e164], _S.c.tenant_id == "t1", _S.c.phone_e164, asked)
        ).scalars()
        assert sorted(found) == sorted(asked)


_M = WhatsAppMessage.__table__  # type: ignore[attr-defined]


def _statistics(engine: Engine) -> tuple[float, int]:
    """whatsapp_messages' row count as its statistics say, and how often it was analyzed."""
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT c.reltuples, s.analyze_count FROM pg_class c JOIN pg_stat_user_tables "
                "s ON s.relid = c.oid WHERE c.oid = 'whatsapp_messages'::regclass"
            )
        ).one()
        return float(row[0]), int(row[1])


@pytest.mark.parametrize("statistics", ["never-taken", "taken-while-empty"])
def test_refresh_statistics_analyzes_when_autovacuum_would_and_the_lookup_uses_the_index(
    engine: Engine, statistics: str
) -> None:
    # A new database after a few trials (635 messages of the one tenant), its messages
    # never analyzed, or analyzed while empty (autovacuum off, or not yet round), then a
    # 100,000-row check: PostgreSQL took ix_whatsapp_messages_tenant_status for each key
    # and filtered all of the tenant's messages (30 ms per 500 keys, 6 s of the check).
    if engine.dialect.name != "postgresql":
        refresh_statistics(engine, LOOKED_UP)  # nothing to do on SQLite
        pytest.skip("PostgreSQL pass only: SQLite plans a unique index's equality as it is")
    _forget_statistics(engine, "whatsapp_messages")
    if statistics == "taken-while-empty":
        with engine.begin() as conn:
            conn.execute(text("ANALYZE whatsapp_messages"))
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO whatsapp_messages (id, tenant_id, idempotency_key, "
                "recipient_phone, message_type, status, attempt_count, created_at, updated_at) "
                "SELECT 'm' || n, 't1', 'key-' || n, '+3461' || lpad(n::text, 7, '0'), "
                "'template', 'sent', 1, :at, :at FROM generate_series(1, 635) AS n"
            ),
            {"at": datetime(2026, 3, 2, 9, 0, tzinfo=UTC)},
        )
        conn.execute(text("SELECT pg_stat_force_next_flush()"))  # counted as it commits
    before = _statistics(engine)

    refresh_statistics(engine, LOOKED_UP)

    rows, analyzed = _statistics(engine)
    assert rows == 635 and analyzed == before[1] + 1
    asked = [f"key-{n}" for n in range(1, 1001, 2)]  # 318 stored, 182 not
    with engine.connect() as conn:
        plan = _plan(
            conn,
            by_unique_key(conn, [_M.c.id], _M.c.tenant_id == "t1", _M.c.idempotency_key, asked),
        )
        assert "uq_whatsapp_messages_tenant_id_idempotency_key" in plan, plan
        assert "Filter" not in plan, plan  # no message of the tenant read and dropped
    refresh_statistics(engine, LOOKED_UP)  # nothing changed since: not analyzed again
    assert _statistics(engine) == (rows, analyzed)


def test_plan_each_statement_lasts_for_the_transaction(engine: Engine) -> None:
    # On PostgreSQL the bulk lookups of one transaction are planned for their own values;
    # the connection goes back to the pool as it was. Elsewhere nothing changes.
    postgres = engine.dialect.name == "postgresql"
    with engine.connect() as conn:
        before = conn.execute(text("SHOW plan_cache_mode")).scalar() if postgres else None
        conn.commit()
        with conn.begin():
            plan_each_statement(conn)
            if postgres:
                assert conn.execute(text("SHOW plan_cache_mode")).scalar() == "force_custom_plan"
        if postgres:
            assert conn.execute(text("SHOW plan_cache_mode")).scalar() == before
