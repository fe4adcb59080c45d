"""Engines and sessions on a real SQLite file and (in the PostgreSQL pass) the real server."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlmodel import Session, select

from core.db import get_engine, is_sqlite, normalise_url, session_scope
from core.models import Supplier


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgres://u:p@db/wanotify", "postgresql+psycopg://u:p@db/wanotify"),
        ("postgresql://u@db:5433/wanotify", "postgresql+psycopg://u@db:5433/wanotify"),
        ("postgresql+psycopg2://u@db/w", "postgresql+psycopg://u@db/w"),
        ("postgresql+psycopg://u@db/w", "postgresql+psycopg://u@db/w"),
        ("sqlite:///wanotify.db", "sqlite:///wanotify.db"),
        ("sqlite:////var/lib/wanotify/w.db", "sqlite:////var/lib/wanotify/w.db"),
    ],
)
def test_urls_get_the_shipped_drivers(url: str, expected: str) -> None:
    assert normalise_url(url) == expected


def test_a_password_with_special_characters_survives_normalising() -> None:
    url = "postgresql://wanotify:p%40ss%2Fw0rd@db/wanotify"
    normal = normalise_url(url)
    assert normal == "postgresql+psycopg://wanotify:p%40ss%2Fw0rd@db/wanotify"
    from sqlalchemy.engine import make_url

    assert make_url(normal).password == "p@ss/w0rd"


def test_is_sqlite_reads_urls_and_engines(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    assert is_sqlite(url) and is_sqlite(get_engine(url))
    assert not is_sqlite("postgresql://u@db/w")
    get_engine(url).dispose()


def test_the_engine_is_shared_per_url(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    assert get_engine(url) is get_engine(url)
    get_engine(url).dispose()


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path: Path) -> None:
    engine = get_engine(f"sqlite:///{tmp_path / 'wal.db'}")
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar_one() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar_one() == 1
        assert connection.execute(text("PRAGMA busy_timeout")).scalar_one() == 30000
    engine.dispose()


def test_session_scope_commits_on_success(engine: Engine) -> None:
    with session_scope(engine) as session:
        session.add(Supplier(tenant_id="acme", name="Harinas Martín", phone_e164="+34612345678"))
    with Session(engine) as session:
        [supplier] = session.exec(select(Supplier)).all()
    assert supplier.name == "Harinas Martín"
    assert supplier.created_at.tzinfo is not None  # read back timezone-aware, both databases


def test_session_scope_rolls_back_on_error(engine: Engine) -> None:
    with pytest.raises(RuntimeError, match="boom"), session_scope(engine) as session:
        session.add(Supplier(tenant_id="acme", name="Lost", phone_e164="+34612345679"))
        session.flush()
        raise RuntimeError("boom")
    with Session(engine) as session:
        assert session.exec(select(Supplier)).all() == []


def test_objects_stay_readable_after_the_commit(engine: Engine) -> None:
    with session_scope(engine) as session:
        supplier = Supplier(tenant_id="acme", name="Aceros", phone_e164="+34612345670")
        session.add(supplier)
    assert supplier.id is not None and supplier.name == "Aceros"  # not expired on commit


def test_the_configured_database_is_the_default(database_url: str) -> None:
    """With no URL, `get_engine` follows DATABASE_URL (the fixture sets it)."""
    assert get_engine().url.render_as_string(hide_password=False) == normalise_url(database_url)
    with get_engine().connect() as connection:
        assert connection.execute(text("SELECT 1")).scalar_one() == 1


def test_postgresql_sessions_are_named_and_in_utc(engine: Engine) -> None:
    if is_sqlite(engine):
        pytest.skip("PostgreSQL pass only (set WANOTIFY_TEST_DATABASE_URL)")
    with engine.connect() as connection:
        name = connection.execute(text("SHOW application_name")).scalar_one()
        zone = connection.execute(text("SHOW TIME ZONE")).scalar_one()
    assert name.startswith("wanotify")
    assert zone == "UTC"


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["/srv/.venv/bin/wanotify", "worker", "--id", "w1"], "wanotify worker"),
        (["/srv/.venv/bin/wanotify", "consume-po-events"], "wanotify consume-po-events"),
        (["/srv/.venv/bin/wanotify"], "wanotify"),
        (["/usr/bin/pytest", "-q"], "wanotify"),
        (["/srv/core/webhooks/applier_process.py"], "wanotify webhook-applier"),
        (["/srv/.venv/bin/wanotify", "x'; DROP"], "wanotify"),
    ],
)
def test_the_application_name_says_which_process(argv: list[str], expected: str) -> None:
    from core.db import application_name

    assert application_name(argv) == expected
