"""Which tests the PostgreSQL pass keeps (tests/fixtures/passes.py)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from tests.fixtures.passes import is_the_postgresql_case, is_the_sqlite_case


def item(case: str | None) -> Any:
    """A collected test as the selection reads it: its parametrised case id, if any."""
    return SimpleNamespace(callspec=None if case is None else SimpleNamespace(id=case))


def test_a_test_parametrised_over_both_databases_runs_its_postgresql_case_there() -> None:
    """Its fixture may ask for the PostgreSQL database by name at run time
    (`request.getfixturevalue`): the case is kept whatever its fixture list says, or the
    first pass skips it and the second leaves it out (test_migrations' did)."""
    assert is_the_postgresql_case(item("postgresql"))
    assert is_the_postgresql_case(item("postgresql-0015"))
    assert not is_the_sqlite_case(item("postgresql"))
    assert is_the_sqlite_case(item("sqlite")) and not is_the_postgresql_case(item("sqlite"))


def test_other_ids_are_neither_case() -> None:
    """A value that merely contains a database's name is not its case."""
    for case in (None, "postgresql+psycopg://u@db/w", "x-postgres://db", "sqlite:///f"):
        assert not is_the_postgresql_case(item(case)) and not is_the_sqlite_case(item(case))
