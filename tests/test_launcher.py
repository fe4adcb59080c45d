"""`wanotify run` (core.launcher + core.supervisor): the parts, their supervision, and the
sandbox -> webhook app -> database loop with real processes (the dashboard is left out;
its own tests start it)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, text

from core.launcher import product_parts
from core.settings import get_settings
from core.supervisor import Part, supervise, wait_ready
from tests.core.webhooks.helpers import ROOT, free_port
from tests.fixtures.live import set_live_env


def test_sandbox_mode_runs_sandbox_webhook_app_and_dashboard(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WEBHOOK_PORT", "8123")
    monkeypatch.setenv("SANDBOX_PORT", "8124")
    get_settings.cache_clear()
    settings = get_settings()
    parts = product_parts(settings)
    assert [p.name for p in parts] == ["sandbox", "webhook app", "dashboard"]
    assert parts[0].argv[-1] == "sandbox" and parts[1].argv[-1] == "webhook"
    assert parts[1].ready_url == "http://127.0.0.1:8123/api/v1/whatsapp/health"
    assert parts[0].ready_url == "http://127.0.0.1:8124/_sandbox/stats"
    # The sandbox posts its webhooks to this webhook app.
    assert settings.webhook_url == "http://127.0.0.1:8123/api/v1/whatsapp/webhook"
    assert [p.name for p in product_parts(settings, dashboard=False)] == ["sandbox", "webhook app"]


def test_with_meta_credentials_there_is_no_sandbox(monkeypatch: pytest.MonkeyPatch) -> None:
    set_live_env(monkeypatch)
    assert [p.name for p in product_parts(get_settings())] == ["webhook app", "dashboard"]


def test_supervise_stops_every_part_when_one_exits(tmp_path: Path) -> None:
    port = free_port()
    server = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
              "--directory", str(tmp_path)]  # fmt: skip
    started: list[str] = []
    parts = [
        Part("server", server, f"http://127.0.0.1:{port}/", lambda: started.append("server")),
        Part("short", [sys.executable, "-c", "import time; time.sleep(1); raise SystemExit(3)"]),
    ]
    assert supervise(parts) == 3
    assert started == ["server"]
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{port}/", timeout=2)


def test_a_part_that_never_gets_ready_stops_the_start() -> None:
    parts = [Part("dies", [sys.executable, "-c", "raise SystemExit(0)"], "http://127.0.0.1:9/")]
    assert supervise(parts) == 1


def test_wait_ready_sees_a_dead_process() -> None:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    assert not wait_ready("http://127.0.0.1:9/", process, timeout=5)


def _rows(engine: Engine, sql: str) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql))]


@pytest.mark.slow
def test_a_sandbox_send_ends_read_and_acknowledged_in_the_database(
    database_url: str, engine: Engine, tmp_path: Path
) -> None:
    """`wanotify run` minus the dashboard, then `wanotify send`: no further action."""
    sandbox_port, webhook_port = free_port(), free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "SANDBOX_PORT": str(sandbox_port),
        "WEBHOOK_PORT": str(webhook_port),
        "PYTHONPATH": str(ROOT),
    }
    script = (
        "import sys; from core.launcher import run_product; from core.settings import "
        "get_settings; sys.exit(run_product(get_settings(), dashboard=False))"
    )
    log = (tmp_path / "run.log").open("wb")
    product = subprocess.Popen(
        [sys.executable, "-c", script], env=env, cwd=ROOT, stdout=log, stderr=log,
        start_new_session=True,
    )  # fmt: skip
    sandbox = f"http://127.0.0.1:{sandbox_port}"
    webhook = f"http://127.0.0.1:{webhook_port}/api/v1/whatsapp/health"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert product.poll() is None, (tmp_path / "run.log").read_text()[-3000:]
            try:
                if httpx.get(webhook, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the product did not start"
            time.sleep(0.2)
        # Only to keep the test short: a minute of Meta's statuses in about a second, and
        # the supplier always answers with the first quick-reply button.
        config = {"time_scale": 0.02, "reply_rate": 1.0, "read_rate": 1.0, "fail_rate": 0.0}
        assert httpx.post(f"{sandbox}/_sandbox/config", json=config).status_code == 200
        send = subprocess.run(
            [sys.executable, "-m", "core.cli", "send", "--to", "+34 612 34 56 99",
             "--supplier-name", "Harinas Test", "--po-number", "PO-E2E-1", "--amount",
             "1234.50", "--consent"],
            env=env, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert send.returncode == 0, send.stdout + send.stderr
        deadline = time.monotonic() + 60
        sql = (
            "SELECT status, sent_at, delivered_at, read_at, pricing_category "
            "FROM whatsapp_messages WHERE po_number = 'PO-E2E-1'"
        )
        while True:
            rows = _rows(engine, sql)
            acks = _rows(engine, "SELECT action FROM po_acknowledgements "
                                 "WHERE po_number = 'PO-E2E-1'")  # fmt: skip
            if rows and rows[0][0] == "read" and acks:
                break
            assert time.monotonic() < deadline, (rows, acks)
            time.sleep(0.2)
        ((_status, sent_at, delivered_at, read_at, category),) = rows
        assert sent_at is not None and delivered_at is not None and read_at is not None
        assert category == "utility"
        assert acks == [("confirmed",)]
        inbound = _rows(engine, "SELECT message_type, context_message_id FROM inbound_messages "
                                "WHERE po_number = 'PO-E2E-1'")  # fmt: skip
        assert inbound and inbound[0][0] == "button" and inbound[0][1] is not None
        health = httpx.get(webhook, timeout=5).json()
        assert health["failed_receipts"] == 0
    finally:
        if product.poll() is None:
            product.send_signal(signal.SIGTERM)
            try:
                product.wait(timeout=40)
            except subprocess.TimeoutExpired:
                os.killpg(product.pid, signal.SIGKILL)
                product.wait()
        log.close()
    assert product.returncode == 0  # Ctrl-C / SIGTERM stops every part cleanly
