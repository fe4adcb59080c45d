"""`core.db.one_of`: the IN of set-based lookups (a bulk upload's suppliers and keys)
finds exactly what a plain IN finds, on SQLite and on PostgreSQL (where it is one array
parameter), also once the statement has run often enough for psycopg to prepare it."""

from __future__ import annotations

from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from core.db import one_of
from core.models.suppliers import Supplier
from core.models.types import utcnow


def _suppliers(engine: Engine, tenant: str, count: int) -> None:
    now = utcnow()
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


def test_finds_what_in_finds(engine: Engine) -> None:
    _suppliers(engine, "t1", 30)
    _suppliers(engine, "t2", 5)  # another tenant's numbers are not found
    asked = [f"+346100000{n:02d}" for n in range(0, 40, 3)] + ["+34999", "", "+346100000'; --"]
    with Session(engine) as session:
        for _round in range(8):  # past psycopg's prepare threshold (5)
            found = session.exec(
                select(Supplier.phone_e164).where(
                    col(Supplier.tenant_id) == "t1",
                    one_of(session, col(Supplier.phone_e164), asked),
                )
            ).all()
            plain = session.exec(
                select(Supplier.phone_e164).where(
                    col(Supplier.tenant_id) == "t1", col(Supplier.phone_e164).in_(asked)
                )
            ).all()
            assert sorted(found) == sorted(plain)
            assert len(found) == 10


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
