"""Several webhook processes on one PostgreSQL (issue 5, item 3).

`wanotify webhook --workers 2` (uvicorn, two worker processes, each with its own journal
and applier) receives every event of a message at the same moment, duplicated and out of
order, from many connections at once; the final rows must be exactly what the state
machine says, every event must be in the timeline once, and nothing may be left held.
Runs against WANOTIFY_TEST_DATABASE_URL when it names a PostgreSQL, otherwise against a
database of its own created on the local server (127.0.0.1:5432); skipped, saying why,
only if PostgreSQL is unreachable.
"""

from __future__ import annotations

import concurrent.futures
import os
import random
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from core import migrate
from core.db import get_engine, is_sqlite
from core.settings import get_settings
from tests.core.webhooks.helpers import (
    T0,
    UNDELIVERABLE,
    UTILITY,
    WEBHOOK_PATH,
    WebhookProcess,
    add_message,
    message_row,
    signed,
    status,
    statuses_body,
    unix,
)

#: The local server's maintenance database: always there, used only to create our own.
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"


@pytest.fixture
def pg_url(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A migrated, empty PostgreSQL database of this test run's own.

    WANOTIFY_TEST_DATABASE_URL is used when it names a PostgreSQL; otherwise a database
    `wanotify_procs_<random>` is created on the local server and dropped afterwards, so
    two suites running at once (a checkout and a CI copy) never share it.
    """
    configured = os.environ.get("WANOTIFY_TEST_DATABASE_URL", "")
    base = configured if configured and not is_sqlite(configured) else DEFAULT_PG
    url, created = base, None
    admin = get_engine(base)
    try:
        if base == DEFAULT_PG:
            created = f"wanotify_procs_{uuid.uuid4().hex[:10]}"
            with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text(f'CREATE DATABASE "{created}"'))
            url = make_url(base).set(database=created).render_as_string(hide_password=False)
        else:
            with admin.begin() as conn:
                conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
                conn.execute(text("CREATE SCHEMA public"))
    except Exception as exc:
        pytest.skip(f"PostgreSQL is not reachable at {admin.url.host}:{admin.url.port} ({exc})")
    monkeypatch.setenv("DATABASE_URL", url)
    get_settings.cache_clear()
    migrate.upgrade(url)
    yield url
    get_engine(url).dispose()
    if created is not None:
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{created}" WITH (FORCE)'))
    admin.dispose()


def _plan(rng: random.Random, n_known: int, n_callback: int) -> list[dict[str, Any]]:
    """Per message: its events (with Meta's duplicates) and what its row must end as."""
    messages: list[dict[str, Any]] = []
    for i in range(n_known + n_callback):
        by_callback = i >= n_known
        wamid = f"wamid.PG{i:05d}"
        base = T0 + i * 10
        kind = rng.choice(["read", "read", "delivered", "sent", "failed", "failed_then_read"])
        times = {"sent": base + 1, "delivered": base + 4, "read": base + 30, "failed": base + 2}
        words = {
            "read": ["sent", "delivered", "read"],
            "delivered": ["sent", "delivered"],
            "sent": ["sent"],
            "failed": ["sent", "failed"],
            "failed_then_read": ["sent", "failed", "read"],
        }[kind]
        if kind == "read" and rng.random() < 0.3:
            words = ["sent", "read"]  # delivered never comes
        messages.append({"wamid": wamid, "by_callback": by_callback, "words": words,
                         "times": times})  # fmt: skip
    return messages


def _expected(words: list[str], times: dict[str, int]) -> dict[str, Any]:
    """The state machine, written out plainly: furthest stage wins, earliest time each."""
    read = times["read"] if "read" in words else None
    delivered_candidates = [times[w] for w in words if w in ("delivered", "read")]
    sent_candidates = [times[w] for w in words if w in ("sent", "delivered", "read")]
    if read is not None:
        final = "read"
    elif delivered_candidates:
        final = "delivered"
    elif "failed" in words:
        final = "failed"
    else:
        final = "sent"
    return {
        "status": final,
        "sent_at": unix(min(sent_candidates)) if sent_candidates else None,
        "delivered_at": unix(min(delivered_candidates)) if delivered_candidates else None,
        "read_at": unix(read) if read is not None else None,
        "failed_at": unix(times["failed"]) if "failed" in words else None,
    }


def _event(message: dict[str, Any], word: str, callback: str | None) -> dict[str, Any]:
    return status(
        message["wamid"],
        word,
        message["times"][word],
        callback=callback,
        pricing=UTILITY if word in ("sent", "delivered") else None,
        errors=UNDELIVERABLE if word == "failed" else None,
    )


def _worker_pids(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(c) for c in children]


@pytest.mark.slow
def test_two_worker_processes_keep_the_state_machine_exact(pg_url: str, tmp_path: Path) -> None:
    engine: Engine = get_engine(pg_url)
    rng = random.Random(20261201)
    messages = _plan(rng, n_known=150, n_callback=50)
    ids: dict[str, str] = {}
    for m in messages:
        # Callback-data messages have no wamid yet (the send's answer is not recorded).
        wamid = None if m["by_callback"] else m["wamid"]
        status_ = "sending" if m["by_callback"] else "accepted"
        ids[m["wamid"]] = add_message(engine, wamid=wamid, status_=status_)
    # Every event of a message, each posted 1-3 times, all of a message's posts together.
    bursts: list[list[bytes]] = []
    for m in messages:
        callback = ids[m["wamid"]] if m["by_callback"] else None
        posts = []
        for word in m["words"]:
            body = statuses_body(_event(m, word, callback))
            posts += [body] * rng.randint(1, 3)
        if rng.random() < 0.3:  # sometimes all of them in one body, too
            posts.append(statuses_body(*(_event(m, w, callback) for w in reversed(m["words"]))))
        rng.shuffle(posts)
        bursts.append(posts)
    with WebhookProcess(pg_url, workers=2, log_path=tmp_path / "webhook.log") as app:
        assert len(_worker_pids(app.process.pid)) >= 2  # really two worker processes
        local = threading.local()

        def client() -> httpx.Client:
            if not hasattr(local, "client"):
                local.client = httpx.Client(timeout=30)
            return local.client

        retried: list[int] = []

        def post(body: bytes) -> int:
            """POST until answered 200, as Meta retries any other answer (a 503 says
            the database was busy: nothing was stored, so nothing is lost)."""
            for _ in range(50):
                code = client().post(app.url + WEBHOOK_PATH, content=body,
                                     headers=signed(body)).status_code  # fmt: skip
                if code != 503:
                    return code
                retried.append(code)
                time.sleep(0.1)
            return code

        codes: list[int] = []
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            for burst in bursts:  # a message's posts race each other across processes
                codes += list(pool.map(post, burst))
        assert set(codes) == {200}, sorted(set(codes))
        health = app.wait_applied(timeout=120)
        assert health["backlog"] == 0 and health["failed_receipts"] == 0
        # Held statuses are released by the sweep (once a second); none should stay.
        deadline = time.monotonic() + 30
        while app.health()["held_statuses"] and time.monotonic() < deadline:
            time.sleep(0.2)
        health = app.health()
        assert health["held_statuses"] == 0 and health["conflicting_statuses"] == 0
        assert health["unmatched_statuses"] == 0
    wrong = []
    for m in messages:
        row = message_row(engine, ids[m["wamid"]])
        want = _expected(m["words"], m["times"])
        got = {k: row[k] for k in want}
        if got != want or row["whatsapp_message_id"] != m["wamid"]:
            wrong.append((m["wamid"], m["words"], got, want))
    assert wrong == []
    with engine.connect() as conn:
        per_wamid = dict(
            conn.execute(
                text("SELECT wamid, count(*) FROM message_status_events GROUP BY wamid")
            ).all()
        )
        failed = conn.execute(
            text("SELECT count(*) FROM whatsapp_messages WHERE status = 'failed' "
                 "AND (error_code IS NULL OR error_title IS NULL)")
        ).scalar_one()  # fmt: skip
    assert per_wamid == {m["wamid"]: len(m["words"]) for m in messages}
    assert failed == 0
