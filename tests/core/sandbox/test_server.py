"""Running the sandbox: `run_sandbox` (the CLI's entry), the ASGI factory, `SandboxServer`."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from core.sandbox import BackgroundServer, SandboxServer, create_app
from core.settings import SANDBOX_PHONE_NUMBER_ID, SettingsError, get_settings
from tests.core.sandbox.helpers import AUTH, MESSAGES_PATH, po_notification
from tests.fixtures.live import set_live_env

REPO = Path(__file__).resolve().parents[3]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_run_sandbox_serves_on_the_configured_port_with_settings(tmp_path: Path) -> None:
    port = _free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("WHATSAPP_", "SANDBOX_", "WEBHOOK_"))
    }
    env.update({"SANDBOX_PORT": str(port), "WHATSAPP_MAX_MPS": "7", "PYTHONPATH": str(REPO)})
    process = subprocess.Popen(
        [sys.executable, "-c", "from core.sandbox import run_sandbox; run_sandbox()"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                stats = httpx.get(f"http://127.0.0.1:{port}/_sandbox/stats", timeout=2).json()
                break
            except httpx.TransportError:
                assert process.poll() is None, process.stderr.read() if process.stderr else ""
                assert time.monotonic() < deadline, "run_sandbox never answered"
                time.sleep(0.1)
        assert stats["mps"] == 7  # WHATSAPP_MAX_MPS reached the sandbox
        response = httpx.post(
            f"http://127.0.0.1:{port}{MESSAGES_PATH}", json=po_notification(), headers=AUTH
        )
        assert response.status_code == 200
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    # uvicorn shuts down gracefully, then re-raises the signal it caught
    assert process.returncode in (0, -signal.SIGINT)


def test_create_app_without_config_reads_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WHATSAPP_MAX_MPS", "9")
    get_settings.cache_clear()
    server = BackgroundServer(create_app())
    url = server.start()
    try:
        stats = httpx.get(f"{url}/_sandbox/stats").json()
        sent = httpx.post(
            f"{url}/v25.0/{SANDBOX_PHONE_NUMBER_ID}/messages", json=po_notification(), headers=AUTH
        )
    finally:
        server.stop()
        get_settings.cache_clear()
    assert stats["mps"] == 9
    assert sent.status_code == 200


def test_the_sandbox_refuses_to_start_outside_sandbox_mode(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A sandbox holding the live app secret would sign webhooks production accepts."""
    set_live_env(monkeypatch)
    get_settings.cache_clear()
    try:
        with pytest.raises(SettingsError, match="only in sandbox mode"):
            create_app()
    finally:
        get_settings.cache_clear()


def test_sandbox_server_takes_config_overrides_and_stops_cleanly() -> None:
    with SandboxServer(mps=3, seed=11, access_token="t0ken") as sandbox:
        url = sandbox.url
        assert sandbox.stats()["mps"] == 3
        ok = httpx.post(
            f"{url}{MESSAGES_PATH}",
            json=po_notification(),
            headers={"Authorization": "Bearer t0ken"},
        )
        assert ok.status_code == 200
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{url}/_sandbox/health", timeout=2)
    with pytest.raises(RuntimeError):
        sandbox.stats()


def test_two_sandboxes_are_independent() -> None:
    with SandboxServer() as one, SandboxServer() as two:
        httpx.post(f"{one.url}{MESSAGES_PATH}", json=po_notification(), headers=AUTH)
        assert one.stats()["accepted"] == 1
        assert two.stats()["accepted"] == 0


def test_long_runs_keep_counters_but_only_the_latest_bodies() -> None:
    with SandboxServer(max_stored_messages=3) as sandbox:
        for i in range(5):
            response = httpx.post(
                f"{sandbox.url}{MESSAGES_PATH}",
                json=po_notification(f"+3461234560{i}", opaque=f"row-{i}"),
                headers=AUTH,
            )
            assert response.status_code == 200
        stored = [m["biz_opaque_callback_data"] for m in sandbox.messages()]
        stats = sandbox.stats()
    assert stored == ["row-2", "row-3", "row-4"]
    assert stats["accepted"] == 5 and stats["recipients"] == 5


def test_sandbox_env_points_settings_at_the_sandbox(sandbox_env: SandboxServer) -> None:
    settings = get_settings()
    assert settings.sandbox_mode
    assert settings.api_base_url == sandbox_env.url
    response = httpx.post(
        f"{settings.api_base_url}/{settings.whatsapp_api_version}/{settings.phone_number_id}/messages",
        json=po_notification(),
        headers={"Authorization": f"Bearer {settings.access_token}"},
    )
    assert response.status_code == 200
    assert sandbox_env.stats()["accepted"] == 1
