"""Several `wanotify worker` processes on one database: no double sends, one shared cap.

Three real worker processes claim from one outbox (FOR UPDATE SKIP LOCKED on
PostgreSQL; SQLite's single writer) and split WHATSAPP_MAX_MPS through the database.
The sandbox is set far above the cap, so its own count of accepted sends per sliding
one-second window measures the workers' combined rate, not its own refusals.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from core import migrate
from core.db import get_engine
from core.models.messages import MessageStatus
from core.sandbox import SandboxServer
from tests.core.sender.helpers import (
    enqueue_notices,
    phone,
    rows,
    start_worker,
    stop_worker,
    unsettled,
    wait_until,
    worker_env,
)

CAP = 30
WORKERS = 3
MESSAGES = 180
#: This engineer's own PostgreSQL database unless the suite runs on another one.
OWN_PG_URL = "postgresql://postgres@127.0.0.1:5432/wanotify_h1"


def _pg_url() -> str:
    configured = os.environ.get("WANOTIFY_TEST_DATABASE_URL", "")
    return configured if configured.startswith("postgres") else OWN_PG_URL


def _fresh_postgres(url: str) -> None:
    """Empty the database's public schema, creating the database first if missing."""
    try:
        engine = get_engine(url)
        with engine.connect():
            pass
    except OperationalError:
        admin = get_engine(str(make_url(url).set(database="postgres")))
        name = make_url(url).database
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        engine = get_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))


@pytest.fixture(params=["sqlite", "postgresql"])
def shared_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database that worker processes share."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'workers.db'}"
    else:
        url = _pg_url()
        try:
            _fresh_postgres(url)
        except OperationalError as exc:
            pytest.skip(f"PostgreSQL unreachable at {make_url(url).host}: {exc.orig}")
    migrate.upgrade(url)
    yield url
    get_engine(url).dispose()


@pytest.mark.slow
def test_three_workers_share_the_cap_and_never_send_twice(
    sandbox: SandboxServer, shared_database: str, tmp_path: Path
) -> None:
    sandbox.configure(mps=10_000, latency_ms=100)
    engine: Engine = get_engine(shared_database)
    ids = enqueue_notices(engine, [phone(i) for i in range(MESSAGES)])
    # A wide margin: on a shared 2-core machine a worker may stall for a tenth of a
    # second between starting a send and the sandbox stamping it. The shares are still
    # what is tested: three workers that each took the whole cap would send 3x over it.
    env = worker_env(
        shared_database,
        sandbox.url,
        WHATSAPP_MAX_MPS=str(CAP),
        WHATSAPP_RATE_MARGIN_SECONDS="0.25",
    )
    log = tmp_path / "workers.log"
    workers = [start_worker(env, f"w{n}", log) for n in range(WORKERS)]
    try:
        wait_until(
            lambda: unsettled(engine) == 0,
            MESSAGES / CAP * 6 + 60,
            "the workers to send everything",
        )
    finally:
        codes = [stop_worker(w) for w in workers]
    assert codes == [0] * WORKERS, log.read_text()[-3000:]

    stats = sandbox.stats()
    assert stats["accepted"] == MESSAGES
    assert stats["duplicates"] == []  # no message sent twice
    assert stats["max_in_window"] <= CAP, log.read_text()[-3000:]  # combined, any 1 s window
    final = rows(engine)
    assert {m.status for m in final.values()} == {MessageStatus.ACCEPTED}
    assert set(final) == set(ids)
    senders = {m.claimed_by for m in final.values()}
    assert senders == {"w0", "w1", "w2"}, log.read_text()[-4000:]  # every worker took part
