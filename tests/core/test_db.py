"""Engines and sessions on a real SQLite file and (in the PostgreSQL pass) the real server."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlmodel import Session, select

from core.db import (
    BULK_WRITE_CACHE_KIB,
    SQLITE_CACHE_KIB,
    SQLITE_PAGE_BYTES,
    bulk_write_cache,
    get_engine,
    is_sqlite,
    normalise_url,
    session_scope,
)
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


def test_a_new_sqlite_file_gets_large_pages_and_an_old_one_keeps_its_own(tmp_path: Path) -> None:
    """16 KiB pages for a file wanotify creates; a file made with 4 KiB pages (before)
    keeps them, stays in WAL mode and takes writes."""
    new = get_engine(f"sqlite:///{tmp_path / 'new.db'}")
    with new.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA page_size").scalar_one() == SQLITE_PAGE_BYTES
    new.dispose()
    old_path = tmp_path / "old.db"
    raw = sqlite3.connect(old_path)
    raw.execute("PRAGMA page_size=4096")
    raw.execute("PRAGMA journal_mode=WAL")
    raw.execute("CREATE TABLE t (x INTEGER)")
    raw.close()
    old = get_engine(f"sqlite:///{old_path}")
    with old.begin() as connection:
        connection.exec_driver_sql("INSERT INTO t VALUES (1)")
    with old.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA page_size").scalar_one() == 4096
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"
        assert connection.exec_driver_sql("SELECT x FROM t").scalar_one() == 1
    old.dispose()


def test_a_bulk_write_cache_lasts_until_the_connection_goes_back(tmp_path: Path) -> None:
    """The chunk's connection has the larger cache; the pool hands it on with SQLite's
    default again."""
    engine = get_engine(f"sqlite:///{tmp_path / 'c.db'}")
    with engine.connect() as connection:
        bulk_write_cache(connection)
        assert connection.exec_driver_sql("PRAGMA cache_size").scalar_one() == -BULK_WRITE_CACHE_KIB
        raised = connection.connection.dbapi_connection
    with engine.connect() as connection:  # the pool's only connection: the same one
        assert connection.connection.dbapi_connection is raised
        assert connection.exec_driver_sql("PRAGMA cache_size").scalar_one() == -SQLITE_CACHE_KIB
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
