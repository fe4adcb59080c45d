"""core/batch_import.py's bulk writing: multi-row SQLite INSERTs (with RETURNING), values
converted once per chunk, ids, checked payloads, and the rollup triggers still counting
every row exactly once (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, insert, select
from sqlalchemy.exc import IntegrityError

from core import batch_import
from core.batch_import import _CheckedPayload, _column_values, insert_many, new_ids
from core.models.messages import WhatsAppMessage
from core.models.rollup import AnalyticsHourlyStages
from core.models.suppliers import Supplier
from core.outbox import OutboundMessage, OutboxError
from tests.core.test_analytics_rollup import expected_cells, stored_cells

M = WhatsAppMessage.__table__  # type: ignore[attr-defined]
S = Supplier.__table__  # type: ignore[attr-defined]
STAGES = AnalyticsHourlyStages.__table__  # type: ignore[attr-defined]
BASE = datetime(2026, 11, 30, 22, 10, tzinfo=UTC)  # a Monday night: two days, two hours
TENANTS = ("acme", "beta")


@pytest.fixture
def small_statements(monkeypatch: pytest.MonkeyPatch) -> None:
    """A few rows per SQLite statement, so a handful of rows spans several statements."""
    monkeypatch.setattr(batch_import, "SQLITE_ROWS", 3)


def supplier_rows(tenant: str, count: int) -> list[dict[str, Any]]:
    at = BASE + timedelta(minutes=1)
    return [
        {
            "tenant_id": tenant,
            "name": f"Proveedor {n} 'comillas' \\N ñ 😀",
            "phone_e164": f"+3461200{n:04d}",
            "language": "es",
            "opted_in": n % 2 == 0,
            "opted_out_at": at if n % 3 == 0 else None,
            "is_active": True,
            "created_at": at,
            "updated_at": at + timedelta(microseconds=n),
        }
        for n in range(count)
    ]


def stored_suppliers(engine: Engine, tenant: str) -> list[tuple[Any, ...]]:
    columns = [c for c in S.c if c.key not in ("id", "tenant_id")]
    with engine.connect() as conn:
        return [
            tuple(row)
            for row in conn.execute(
                select(*columns).where(S.c.tenant_id == tenant).order_by(S.c.id)
            )
        ]


@pytest.mark.usefixtures("small_statements")
def test_rows_are_stored_as_a_core_insert_stores_them_in_order(engine: Engine) -> None:
    with engine.begin() as conn:
        returned = insert_many(
            conn, S, supplier_rows("acme", 10), returning=("phone_e164", "id", "opted_out_at")
        )
        conn.execute(insert(S), supplier_rows("beta", 10))
    assert stored_suppliers(engine, "acme") == stored_suppliers(engine, "beta")
    with engine.connect() as conn:
        read = {
            tuple(row)
            for row in conn.execute(
                select(S.c.phone_e164, S.c.id, S.c.opted_out_at).where(S.c.tenant_id == "acme")
            )
        }
        ids = conn.execute(select(S.c.id).where(S.c.tenant_id == "acme").order_by(S.c.id))
        phones = [p for (p,) in conn.execute(select(S.c.phone_e164).order_by(S.c.id).limit(10))]
    assert phones == [row["phone_e164"] for row in supplier_rows("acme", 10)]  # input order
    if engine.dialect.name == "sqlite":
        assert returned is not None and len(returned) == 10
        assert set(returned) == read  # converted as a read converts them (aware times)
        assert {row[1] for row in returned} == set(ids.scalars())
    else:
        assert returned is None  # COPY returns nothing: the caller reads back


def test_nothing_to_insert_writes_nothing(engine: Engine) -> None:
    with engine.begin() as conn:
        returned = insert_many(conn, S, [], returning=("id",))
        assert insert_many(conn, S, []) is None
        assert conn.execute(select(func.count()).select_from(S)).scalar_one() == 0
    assert returned == ([] if engine.dialect.name == "sqlite" else None)


def test_a_column_with_a_python_default_must_be_given(engine: Engine) -> None:
    rows = supplier_rows("acme", 1)
    del rows[0]["language"]  # a Core INSERT would fill it; a bulk insert cannot
    with engine.begin() as conn, pytest.raises(ValueError, match="language"):
        insert_many(conn, S, rows)


def test_the_variable_limit_bounds_the_rows_of_a_statement(engine: Engine) -> None:
    """However many rows `SQLITE_ROWS` allows, a statement never binds more values than
    the connection's limit (SQLite refuses the statement otherwise)."""
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite's variable limit")
    rows = supplier_rows("acme", 40)
    with engine.begin() as conn:
        raw = conn.connection.dbapi_connection
        assert raw is not None
        previous = raw.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 30)  # 3 rows of 9
        try:
            insert_many(conn, S, rows)
        finally:
            raw.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, previous)
    assert len(stored_suppliers(engine, "acme")) == 40


# --- the rollups: the triggers still count every row once ---------------------------


@pytest.fixture
def supplier_ids(engine: Engine) -> list[int]:
    with engine.begin() as conn:
        conn.execute(insert(S), supplier_rows("acme", 3))
        return list(conn.execute(select(S.c.id).order_by(S.c.id)).scalars())


def message_rows(suppliers: list[int], count: int, *, start: int = 0) -> list[dict[str, Any]]:
    """Messages of every kind the rollups tell apart: two tenants, templates (one
    NULL), cancelled and failed ones, delivered and read ones (their latency columns
    set by the triggers), with and without a PO or a supplier, over two days."""
    rows = []
    for n in range(start, start + count):
        created = BASE + timedelta(minutes=7 * n)
        status = ("pending", "sent", "delivered", "read", "failed", "cancelled")[n % 6]
        sent = created + timedelta(seconds=2) if status in ("sent", "delivered", "read") else None
        delivered = created + timedelta(seconds=3 + n) if status in ("delivered", "read") else None
        rows.append(
            {
                "id": str(uuid.uuid4()),
                "tenant_id": TENANTS[n % 2],
                "idempotency_key": f"key-{n}",
                "recipient_phone": f"+346120{n:05d}",
                "request_payload": {"type": "template", "to": f"346120{n:05d}"},
                "message_type": "template",
                "status": status,
                "template_name": (None, "po_notification", "po_reminder")[n % 3],
                "template_language": "es",
                "template_parameters": {"po_number": f"PO-{n}", "amount": "1.50"},
                "recipient_country": ("34", None)[n % 5 == 0],
                "pricing_type": (None, "regular")[n % 4 == 0],
                "pricing_category": (None, "utility")[n % 4 == 0],
                "po_number": (f"PO-{n}", None)[n % 7 == 0],
                "supplier_id": (None, suppliers[n % len(suppliers)])[n % 8 != 0],
                "sent_at": sent,
                "accepted_at": sent,
                "delivered_at": delivered,
                "read_at": (
                    delivered + timedelta(minutes=1) if delivered and status == "read" else None
                ),
                "ack_action": ("confirmed", "rejected", None)[n % 3] if n % 7 else None,
                "attempt_count": 0,
                "metadata": {"source": "csv"},
                "created_at": created,
                "updated_at": created,
            }
        )
    return rows


def stage_cells(engine: Engine) -> Counter[tuple[Any, ...]]:
    with engine.connect() as conn:
        return Counter(
            {
                (r.tenant_id, r.kind, r.hour, r.template_name, r.null_bits, r.value): r.messages
                for r in conn.execute(select(STAGES))
                if r.messages
            }
        )


@pytest.mark.usefixtures("small_statements")
def test_rollups_after_a_bulk_insert_equal_a_recount_and_the_per_row_inserts(
    engine: Engine, supplier_ids: list[int]
) -> None:
    rows = message_rows(supplier_ids, 50)
    with engine.begin() as conn:
        insert_many(conn, M, rows[:30])
    with engine.begin() as conn:  # another writer's row-by-row inserts in between
        for row in rows[30:40]:
            conn.execute(insert(M), [row])
    with engine.begin() as conn:
        insert_many(conn, M, rows[40:])
    assert stored_cells(engine) == expected_cells(engine)
    bulk_stages = stage_cells(engine)
    assert sum(bulk_stages.values()) > 0

    # the same messages inserted one statement per row (the path before): same stages
    with engine.begin() as conn:
        conn.execute(M.delete())
    assert sum(stage_cells(engine).values()) == 0  # the delete triggers took them out
    with engine.begin() as conn:
        for row in rows:
            conn.execute(insert(M), [row])
    assert stage_cells(engine) == bulk_stages
    assert stored_cells(engine) == expected_cells(engine)


@pytest.mark.usefixtures("small_statements")
def test_a_row_that_fails_leaves_nothing_of_its_chunk(
    engine: Engine, supplier_ids: list[int]
) -> None:
    """A key used twice fails the statement that meets it (not the first one); the
    chunk's transaction rolls back every message and every count it had added."""
    rows = message_rows(supplier_ids, 8)
    rows[7]["idempotency_key"] = rows[0]["idempotency_key"]
    rows[7]["tenant_id"] = rows[0]["tenant_id"]
    with pytest.raises(IntegrityError), engine.begin() as conn:
        insert_many(conn, M, rows)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(M)).scalar_one() == 0
    assert stored_cells(engine) == (Counter(), Counter())
    assert stage_cells(engine) == Counter()


# --- the parts of a row ---------------------------------------------------------------


def test_new_ids_are_uuid4_text_as_new_id_makes_them() -> None:
    ids = new_ids(5000)
    assert len(set(ids)) == 5000 and new_ids(0) == []
    for text in ids:
        parsed = uuid.UUID(text)
        assert str(parsed) == text and parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
    # every bit but the version and variant ones takes both values
    seen_one = seen_zero = 0
    for text in ids:
        value = uuid.UUID(text).int
        seen_one |= value
        seen_zero |= ~value
    fixed = {62, 63, 76, 77, 78, 79}
    mask = (1 << 128) - 1
    assert {b for b in range(128) if not (seen_one & seen_zero & mask) >> b & 1} == fixed


def test_one_object_in_every_row_is_converted_once() -> None:
    calls: list[Any] = []

    def process(value: Any) -> str:
        calls.append(value)
        return json.dumps(value)

    meta = {"source": "csv"}
    assert _column_values([meta] * 4, process, False) == ['{"source": "csv"}'] * 4
    assert calls == [meta]
    calls.clear()
    alike = [{"source": "csv"}, {"source": "csv"}, None]  # equal, not one object
    assert _column_values(alike, process, False) == ['{"source": "csv"}'] * 2 + [None]
    assert len(calls) == 2
    assert _column_values([None, None], process, False) == [None, None]
    assert _column_values([], process, False) == []


def outbound(payload: dict[str, Any]) -> OutboundMessage:
    return OutboundMessage(
        tenant_id="acme",
        idempotency_key="k",
        recipient_phone="+34612000001",
        request_payload=payload,
    )


def test_a_checked_payload_is_its_text_read_as_its_top_level_members() -> None:
    body = {
        "messaging_product": "whatsapp",
        "to": "34612000001",
        "type": "template",
        "template": {"name": "po", "components": [{"type": "body"}]},
    }
    text = json.dumps(body, separators=(",", ":"))
    payload = _CheckedPayload(text)
    assert payload.text == text
    assert payload == {"messaging_product": "whatsapp", "to": "34612000001", "type": "template"}
    outbound(payload).validate()  # the outbox's rules read it as before


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("[1, 2]", "with a type"),  # not an object: no members
        ('"template"', "with a type"),
        ('{"to": "34612000001", "template": {"type": "template"}}', "with a type"),  # nested
        ('{"type": "template", "to": "34699999999"}', "differs"),
        ('{"type": "template", "biz_opaque_callback_data": "x"}', "set by the sender"),
        ('{"type": "template", "to": "34699999999", "to": "34612000001"}', None),  # last wins
    ],
)
def test_hostile_checked_payloads_are_refused_by_the_outbox_rules(
    text: str, reason: str | None
) -> None:
    payload = _CheckedPayload(text)
    assert payload.text == text
    if reason is None:
        outbound(payload).validate()  # as json.loads reads it: the last "to" stands
        assert payload["to"] == json.loads(text)["to"]
        return
    with pytest.raises(OutboxError, match=reason):
        outbound(payload).validate()


def test_a_checked_payload_that_is_not_json_fails_loudly() -> None:
    with pytest.raises(ValueError):  # json.JSONDecodeError is a ValueError
        _CheckedPayload('{"type": "template",')
    big = '{"type": "template", "n": 123456789012345678901234567890}'  # beyond 64 bits
    assert _CheckedPayload(big).text == big  # stored as written, whatever a parse makes of it


class Text(str):
    """A subclass of str (a template's marked-up text, say)."""


@pytest.mark.parametrize(
    "value",
    [
        {"Proveedor": "Núñez 😀 \u202e", "Importe": "1.234,50", "vacío": ""},
        {"amount": "12.50", "count": 3, "ratio": 0.1, "yes": True, "nested": [1, {"a": "b"}]},
        {"big": 2**70, "negative": -(2**64)},  # beyond orjson's 64 bits
        {"none": None, "nan": float("nan"), "inf": float("inf")},  # null: json.dumps's text
        {1: "int key", "k": Text("subclass")},
        {"lone": "\ud800"},  # a lone surrogate: json.dumps escapes it
        ["a", ("tuple", 1)],
        "a string",
    ],
)
def test_sqlite_json_columns_store_what_json_dumps_stores_read_back(value: Any) -> None:
    """JSON columns on SQLite are encoded by orjson when json.loads reads the text back
    as the same value (the text may differ: no \\u escapes, no spaces); otherwise by the
    type's own json.dumps, text and all. The text is always valid JSON as json.dumps
    writes it."""
    from sqlalchemy.dialects import sqlite

    dialect = sqlite.dialect()
    stored = batch_import._converted(
        batch_import.R, dialect, [{"raw": value}], ["raw"], frozenset()
    )[0][0]
    expected = json.dumps(value)
    assert isinstance(stored, str)
    assert json.loads(stored) == json.loads(expected) or stored == expected  # NaN != NaN
    if "NaN" in expected or "\\ud800" in expected or "Infinity" in expected:
        assert stored == expected


def test_a_value_json_dumps_refuses_is_refused_as_before() -> None:
    from decimal import Decimal

    from sqlalchemy.dialects import sqlite

    with pytest.raises(TypeError):
        batch_import._converted(
            batch_import.R, sqlite.dialect(), [{"raw": {"d": Decimal("1.5")}}], ["raw"],
            frozenset(),
        )  # fmt: skip
    with pytest.raises(TypeError):
        batch_import._converted(
            batch_import.R, sqlite.dialect(), [{"raw": {"when": BASE}}], ["raw"], frozenset()
        )
