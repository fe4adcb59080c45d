"""Alembic migrations on real SQLite files and the real PostgreSQL: from empty to head,
down to base and up again, one revision at a time, and no difference from the models."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

import core.models  # noqa: F401  (registers every table on the metadata)
from core import migrate
from core.db import get_engine, is_sqlite
from core.models.base import metadata
from core.models.types import PortableJSON, UTCDateTime

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of each kind: a fresh SQLite file, the emptied PostgreSQL one."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'migrations.db'}"
        yield url
        get_engine(url).dispose()
    else:
        yield request.getfixturevalue("empty_postgres_url")


def script() -> ScriptDirectory:
    return ScriptDirectory.from_config(migrate.alembic_config("sqlite://"))


def schema_diff(url: str) -> list[object]:
    """What autogenerate would write to make the database match the models."""
    with get_engine(url).connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "render_as_batch": True}
        )
        return list(compare_metadata(context, metadata))


def tables(url: str) -> set[str]:
    return set(inspect(get_engine(url)).get_table_names())


def current_revisions(url: str) -> set[str]:
    with get_engine(url).connect() as connection:
        return set(MigrationContext.configure(connection).get_current_heads())


def leftover_postgres_objects(url: str) -> list[str]:
    """Enum types, sequences and functions (of triggers) left in `public`: a downgrade
    must drop what its upgrade made."""
    query = text(
        "SELECT t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
        "WHERE n.nspname = 'public' AND t.typtype = 'e' "
        "UNION ALL SELECT sequence_name FROM information_schema.sequences "
        "WHERE sequence_schema = 'public' "
        "UNION ALL SELECT p.proname FROM pg_proc p "
        "JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public'"
    )
    with get_engine(url).connect() as connection:
        return [str(name) for name in connection.execute(query).scalars()]


def test_there_is_exactly_one_head() -> None:
    """Two engineers' migrations on one parent leave two heads; they must be merged."""
    heads = script().get_heads()
    assert len(heads) == 1, f"several migration heads, merge them: {heads}"


def test_every_revision_file_names_its_revision() -> None:
    for revision in script().walk_revisions():
        assert revision.path is not None
        name = Path(revision.path).stem
        assert name.startswith(revision.revision.split("_")[0]), (name, revision.revision)
        assert revision.doc, f"{name} has no description"


def test_upgrade_from_empty_matches_the_models(empty_url: str) -> None:
    migrate.upgrade(empty_url)
    assert current_revisions(empty_url) == set(script().get_heads())
    assert tables(empty_url) == set(metadata.tables) | {"alembic_version"}
    assert schema_diff(empty_url) == []


def test_downgrade_to_base_and_upgrade_again(empty_url: str) -> None:
    config = migrate.alembic_config(empty_url)
    migrate.upgrade(empty_url)
    command.downgrade(config, "base")
    assert tables(empty_url) <= {"alembic_version"}
    assert current_revisions(empty_url) == set()
    if not is_sqlite(empty_url):
        assert leftover_postgres_objects(empty_url) == []
    migrate.upgrade(empty_url)
    assert schema_diff(empty_url) == []


def test_each_revision_applies_and_reverts_on_its_own(empty_url: str) -> None:
    """Walk up one revision at a time (oldest first), then back down revision by
    revision: every single step must work, not only the whole run."""
    config = migrate.alembic_config(empty_url)
    order = list(reversed(list(script().walk_revisions())))  # base first
    for revision in order:
        command.upgrade(config, revision.revision)
        assert revision.revision in current_revisions(empty_url)
    assert schema_diff(empty_url) == []
    for target in reversed(order[:-1]):
        if target.revision not in current_revisions(empty_url):
            continue  # a parent beside a merge point: undone with its sibling below
        command.downgrade(config, target.revision)
        assert current_revisions(empty_url) == {target.revision}
    command.downgrade(config, "base")
    assert current_revisions(empty_url) == set()
    assert tables(empty_url) <= {"alembic_version"}


def test_upgrading_twice_changes_nothing(empty_url: str) -> None:
    migrate.upgrade(empty_url)
    first = current_revisions(empty_url)
    migrate.upgrade(empty_url)
    assert current_revisions(empty_url) == first
    assert schema_diff(empty_url) == []


def test_upgrade_keeps_rows_written_at_an_older_revision(empty_url: str) -> None:
    """A supplier stored at the first revision is still there, unchanged, at head (no
    table is dropped and recreated empty along the way, on either database)."""
    first = list(script().walk_revisions())[-1].revision  # the base revision
    command.upgrade(migrate.alembic_config(empty_url), first)
    engine = get_engine(empty_url)
    now = datetime(2026, 3, 4, 9, 30, tzinfo=UTC)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO suppliers (tenant_id, name, phone_e164, language, opted_in, "
                "is_active, created_at, updated_at) VALUES ('acme', 'Harinas Martín', "
                "'+34612345678', 'es', :yes, :yes, :now, :now)"
            ),
            {"yes": True, "now": now if not is_sqlite(empty_url) else now.isoformat()},
        )
    migrate.upgrade(empty_url)
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT tenant_id, name, phone_e164 FROM suppliers")).all()
    assert [tuple(row) for row in rows] == [("acme", "Harinas Martín", "+34612345678")]
    assert schema_diff(empty_url) == []


def test_two_upgrades_at_once_take_turns_on_postgresql(
    empty_postgres_url: str, tmp_path: Path
) -> None:
    """Two deploy hosts running `wanotify db upgrade` at the same moment: both succeed
    (the second waits on the migration lock, then finds the schema at head). Two real
    processes: Alembic's context is global to a process."""
    env = {
        **os.environ, "DATABASE_URL": empty_postgres_url,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }  # fmt: skip
    start = tmp_path / "go"
    code = (
        "import pathlib, time\n"
        f"while not pathlib.Path({str(start)!r}).exists(): time.sleep(0.01)\n"
        "from core import migrate\n"
        "migrate.upgrade()\n"
    )
    processes = [
        subprocess.Popen([sys.executable, "-c", code], cwd=tmp_path, env=env,
                         stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]  # fmt: skip
    start.touch()
    outcomes = [process.communicate(timeout=120) for process in processes]
    assert [process.returncode for process in processes] == [0, 0], outcomes
    assert current_revisions(empty_postgres_url) == set(script().get_heads())
    assert schema_diff(empty_postgres_url) == []


def test_0014_moves_batch_header_records_onto_the_batch_and_back(empty_url: str) -> None:
    """Batches recorded before 0014 kept their upload's format as a header record (row 0
    of send_batch_rows, no message, no refusal): the upgrade moves it onto the batch
    (send_batches.upload_format) and deletes it, leaving every input row (even one that
    an old API call numbered 0) as it was; the downgrade puts it back as row 0."""
    config = migrate.alembic_config(empty_url)
    command.upgrade(config, "0013_webhook_rejections")
    engine = get_engine(empty_url)
    now = datetime(2026, 3, 4, 9, 30, tzinfo=UTC)
    batches = sa.table(
        "send_batches", sa.column("id"), sa.column("tenant_id"), sa.column("name"),
        sa.column("source"), sa.column("status"), sa.column("total_rows"),
        sa.column("created_at", UTCDateTime()), sa.column("updated_at", UTCDateTime()),
    )  # fmt: skip
    rows = sa.table(
        "send_batch_rows", sa.column("batch_id"), sa.column("row_number"),
        sa.column("raw", PortableJSON), sa.column("error"),
    )  # fmt: skip
    kept = {
        "columns": ["supplier_name", "phone", "po_number"],
        "dialect": {"delimiter": ";", "bom": True, "encoding": "utf-8"},
    }
    inputs = [
        ("csv", 1, {"supplier_name": "Harinas Martín", "phone": "612345678"}, None),
        ("csv", 2, {"supplier_name": "=1+2", "phone": ""}, "phone: missing"),
        ("old-api", 0, {"phone": "+34612345678"}, "template: missing"),
    ]
    batch = {"tenant_id": "acme", "status": "done", "total_rows": 2, "created_at": now,
             "updated_at": now}  # fmt: skip
    with engine.begin() as connection:
        for name, source in (("csv", "csv"), ("old-api", "api")):
            connection.execute(
                sa.insert(batches).values(id=name, name=name, source=source, **batch)
            )
        connection.execute(sa.insert(rows).values(batch_id="csv", row_number=0, raw=kept))
        for batch_id, number, raw, error in inputs:
            connection.execute(
                sa.insert(rows).values(batch_id=batch_id, row_number=number, raw=raw, error=error)
            )

    def stored_rows() -> list[tuple[object, ...]]:
        with engine.connect() as connection:
            query = sa.select(rows).order_by(rows.c.batch_id, rows.c.row_number)
            return [tuple(row) for row in connection.execute(query)]

    migrate.upgrade(empty_url)
    assert stored_rows() == inputs
    formats = sa.table("send_batches", sa.column("id"), sa.column("upload_format", PortableJSON))
    with engine.begin() as connection:
        query = sa.select(formats.c.id, formats.c.upload_format).order_by(formats.c.id)
        assert [tuple(row) for row in connection.execute(query)] == [
            ("csv", kept),
            ("old-api", None),
        ]
        # a batch recorded at head without a format (None: SQL NULL or JSON null)
        connection.execute(sa.insert(batches).values(id="new-api", name="n", source="api", **batch))
        connection.execute(
            sa.update(formats).where(formats.c.id == "new-api").values(upload_format=None)
        )
    assert schema_diff(empty_url) == []

    command.downgrade(config, "0013_webhook_rejections")
    assert "upload_format" not in {c["name"] for c in inspect(engine).get_columns("send_batches")}
    assert stored_rows() == sorted([("csv", 0, kept, None), *inputs], key=lambda r: r[:2])
