"""Suppliers an upload would add under a name another supplier already has."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

import core.namesakes as namesakes
from core.db import session_scope
from core.models.suppliers import Supplier
from core.namesakes import find_namesakes


def _directory(engine: Engine, count: int) -> None:
    """`count` suppliers of tenant acme named "Supplier <n>", and one of another tenant."""
    now = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)  # nothing here reads ages
    with session_scope(engine) as session:
        session.add_all(
            Supplier(tenant_id="acme", name=f"Supplier {n}", phone_e164=f"+3461{n:07d}",
                     created_at=now, updated_at=now)
            for n in range(count)
        )  # fmt: skip
        session.add(Supplier(tenant_id="other", name="Supplier 1", phone_e164="+34699999999"))


def _rows(count: int) -> list[tuple[int, str, str]]:
    """A file of `count` new suppliers, every tenth named like one of the directory, with
    names repeated within the file and written in other cases and with spaces."""
    rows = []
    for n in range(count):
        name = f" SUPPLIER {n // 10} " if n % 10 == 0 else f"New {n % 700}"
        rows.append((n + 2, name, f"+3462{n:07d}"))
    return rows


def test_large_files_are_looked_up_in_fewer_larger_chunks_with_the_same_answer(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The directory is read per chunk of names; however many chunks, the namesakes
    # found, their order and the suppliers each one names are the same.
    _directory(engine, 300)
    rows = _rows(3_000)
    with Session(engine) as session:
        assert namesakes._chunk_size(session) > namesakes._IN_CHUNK
        large = find_namesakes(session, "acme", rows)
        monkeypatch.setattr(namesakes, "_chunk_size", lambda _session: 7)
        small = find_namesakes(session, "acme", rows)
    assert large == small
    # Every tenth row is named like a supplier; the other 2,700 share 630 names "New x".
    assert len(large) == 300 + 2_700 - 630
    first = large[0]
    assert (first.row_number, first.name) == (2, "SUPPLIER 0")
    assert first.others == ["Supplier 0 · +34 610 00 00 00"]


def test_a_small_file_takes_one_lookup(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    _directory(engine, 3)
    monkeypatch.setattr(namesakes, "_chunk_size", lambda _session: pytest.fail("not asked"))
    with Session(engine) as session:
        found = find_namesakes(session, "acme", [(2, "supplier 2", "+34600000002")])
    assert [(n.row_number, n.others) for n in found] == [(2, ["Supplier 2 · +34 610 00 00 02"])]
