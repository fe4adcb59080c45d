"""`core.webhooks.applier_process`: the applier is a process of its own, started, restarted
and stopped by the webhook process, and gone when its parent is."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from core import migrate
from core.db import get_engine
from core.settings import get_settings
from core.webhooks.applier import ApplierTuning
from core.webhooks.applier_process import ApplierJob
from core.webhooks.runtime import WebhookRuntime
from core.webhooks.signature import sign
from tests.core.webhooks.helpers import (
    SECRET,
    T0,
    WebhookProcess,
    add_message,
    message_row,
    status,
    statuses_body,
)
from tests.fixtures.live import set_live_env


@pytest.fixture
def sqlite_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'wanotify.db'}"
    migrate.upgrade(url)
    monkeypatch.setenv("DATABASE_URL", url)
    set_live_env(monkeypatch, WHATSAPP_APP_SECRET=SECRET)
    yield url
    get_settings.cache_clear()


@pytest.fixture
def main(sqlite_url: str) -> Engine:
    return get_engine(sqlite_url)


@pytest.fixture
async def runtime(main: Engine) -> AsyncIterator[WebhookRuntime]:
    rt = WebhookRuntime(get_settings(), main)
    await rt.start()
    yield rt
    await rt.stop()


async def wait_for_pid(runtime: WebhookRuntime, within: float = 30.0) -> int:
    assert runtime.applier_process is not None
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        pid = runtime.applier_process.pid
        if pid is not None:
            return pid
        await asyncio.sleep(0.05)
    raise AssertionError("the applier process did not start")


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited


async def post(runtime: WebhookRuntime, wamid: str, word: str, at: int) -> None:
    body = statuses_body(status(wamid, word, at))
    answer = await runtime.receive(body, sign(SECRET, body))
    assert answer.status_code == 200


async def test_on_sqlite_events_are_applied_by_a_process_of_its_own(
    main: Engine, runtime: WebhookRuntime
) -> None:
    mid = add_message(main, wamid="wamid.PROC")
    pid = await wait_for_pid(runtime)
    assert pid != os.getpid()
    await post(runtime, "wamid.PROC", "delivered", T0)
    assert await runtime.wait_until_applied(within=30)
    assert message_row(main, mid)["status"] == "delivered"
    deadline = time.monotonic() + 10
    metrics = ""
    while time.monotonic() < deadline and 'outcome="applied"' not in metrics:
        metrics = (await runtime.metrics_text()).decode()  # the child's reports came back
    assert 'wanotify_webhook_events_total{kind="status",status="delivered"} 1.0' in metrics


async def test_a_killed_applier_is_restarted_and_nothing_is_lost(
    main: Engine, runtime: WebhookRuntime
) -> None:
    mid = add_message(main, wamid="wamid.RESTART")
    first = await wait_for_pid(runtime)
    os.kill(first, signal.SIGKILL)
    await post(runtime, "wamid.RESTART", "sent", T0)  # acknowledged while no applier runs
    await post(runtime, "wamid.RESTART", "read", T0 + 5)
    assert await runtime.wait_until_applied(within=60)
    assert message_row(main, mid)["status"] == "read"
    assert runtime.applier_process is not None and runtime.applier_process.restarts == 1
    assert await wait_for_pid(runtime) != first
    assert "wanotify_webhook_apply_errors_total 1.0" in (await runtime.metrics_text()).decode()


async def test_stop_ends_the_applier_process(main: Engine) -> None:
    runtime = WebhookRuntime(get_settings(), main)
    await runtime.start()
    pid = await wait_for_pid(runtime)
    await runtime.stop()
    assert not alive(pid)


@pytest.mark.slow
def test_the_applier_exits_when_the_webhook_process_is_killed(
    sqlite_url: str, tmp_path: Path
) -> None:
    app = WebhookProcess(sqlite_url, log_path=tmp_path / "webhook.log").start()
    assert app.process is not None
    parent = app.process.pid
    deadline = time.monotonic() + 30
    children: list[int] = []
    while time.monotonic() < deadline and not children:
        children = [
            int(c) for c in Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
        ]
        time.sleep(0.05)
    assert children, "the webhook process started no applier"
    app.kill()  # SIGKILL: no shutdown code runs in the parent
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(alive(c) for c in children):
        time.sleep(0.05)
    assert not any(alive(c) for c in children)


def test_the_job_reaches_the_child_whole() -> None:
    job = ApplierJob(
        "sqlite:////tmp/x.db",
        "acme",
        ApplierTuning(max_receipts=7, hold_grace=timedelta(minutes=3), gather_seconds=0.0),
    )
    assert ApplierJob.from_json(job.to_json()) == job


async def test_the_applier_yields_the_cpu_to_the_webhook_process(
    main: Engine, runtime: WebhookRuntime
) -> None:
    """When the cores are short, acknowledgements (what Meta waits for) go first."""
    pid = await wait_for_pid(runtime)
    ours = os.nice(0)  # the webhook process keeps its priority
    expected = min(19, ours + runtime.tuning.nice)
    deadline = time.monotonic() + 30
    nice = ours
    while time.monotonic() < deadline and nice != expected:
        nice = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])
        await asyncio.sleep(0.05)
    assert nice == expected and runtime.tuning.nice == 10


async def test_on_the_configured_database_too_and_its_url_stays_off_the_command_line(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL in the PostgreSQL pass: a URL there may carry a password, and a command
    line is visible to every local user."""
    set_live_env(monkeypatch, WHATSAPP_APP_SECRET=SECRET)
    mid = add_message(engine, wamid="wamid.ANYDB")
    runtime = WebhookRuntime(get_settings(), engine)
    await runtime.start()
    try:
        pid = await wait_for_pid(runtime)
        command_line = Path(f"/proc/{pid}/cmdline").read_bytes().decode()
        assert str(engine.url.database) not in command_line
        assert "core.webhooks.applier_process" in command_line
        await post(runtime, "wamid.ANYDB", "read", T0)
        assert await runtime.wait_until_applied(within=30)
        assert message_row(engine, mid)["status"] == "read"
    finally:
        await runtime.stop()
    get_settings.cache_clear()
