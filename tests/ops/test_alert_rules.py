"""The operators' alert rules: valid for Prometheus, their own unit tests pass, and
every metric they name is exported by the real processes.

`promtool` comes from Debian's `prometheus` package (`.ci/run` installs it); without it
the promtool tests are skipped with that reason. The export test scrapes a real
`wanotify worker --metrics-port` process sending to the sandbox, and the real webhook
app, and checks the values against what happened.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine
from starlette.testclient import TestClient

from core.control import queue_depth, sending_state
from core.outbox import enqueue_many
from core.sandbox import SandboxServer, magic
from core.settings import get_settings
from tests.core.sender.helpers import notice, phone
from tests.core.webhooks.helpers import SECRET, VERIFY_TOKEN, WEBHOOK_PATH, sample, signed
from tests.fixtures.live import set_live_env
from webhook_app import create_app

RULES_DIR = Path(__file__).resolve().parents[2] / "ops" / "prometheus"
RULES = RULES_DIR / "wanotify-rules.yml"
RULE_TESTS = RULES_DIR / "wanotify-rules.test.yml"
_METRIC = re.compile(r"\bwanotify_[a-z0-9_]+")
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$")


def promtool() -> str:
    """The promtool binary, or skip the test saying how to get it."""
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("promtool not installed: apt-get install prometheus (.ci/run does)")
    return path


def test_the_rules_file_is_valid_for_prometheus() -> None:
    result = subprocess.run(
        [promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 9 rules found" in result.stdout


def test_the_rules_pass_their_unit_tests() -> None:
    result = subprocess.run(
        [promtool(), "test", "rules", RULE_TESTS.name],
        cwd=RULES_DIR,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_in_the_rules_has_a_unit_test() -> None:
    rules = set(re.findall(r"- alert: (\w+)", RULES.read_text()))
    tested = set(re.findall(r"alertname: (\w+)", RULE_TESTS.read_text()))
    assert rules and rules == tested


# --- the metrics the rules name, scraped from the real processes ---------------------------


def rule_metric_names() -> set[str]:
    """Every wanotify metric the rules file names (queries and annotations), as exported
    (a histogram's `_bucket` is its own sample name)."""
    return set(_METRIC.findall(RULES.read_text()))


def parse(text: str) -> dict[str, dict[str, float]]:
    """Prometheus text as {name: {labels: value}}."""
    samples: dict[str, dict[str, float]] = {}
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if line.startswith("#") or match is None:
            continue
        name, labels, value = match.groups()
        samples.setdefault(name, {})[labels or ""] = float(value)
    return samples


def value(samples: dict[str, dict[str, float]], name: str, **labels: str) -> float | None:
    """The value of the one sample of `name` whose labels include `labels`."""
    found = [
        v
        for text, v in samples.get(name, {}).items()
        if all(f'{k}="{val}"' in text for k, val in labels.items())
    ]
    assert len(found) <= 1, (name, labels, found)
    return found[0] if found else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(check: Callable[[], bool], what: str, within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.1)


class Worker:
    """`wanotify worker --metrics-port` as its own process."""

    def __init__(self, database_url: str, sandbox_url: str) -> None:
        self.port = free_port()
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "WHATSAPP_API_BASE_URL": sandbox_url,
            "WANOTIFY_MODE": "sandbox",
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "core.cli", "worker", "--metrics-port", str(self.port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def scrape(self) -> dict[str, dict[str, float]]:
        response = httpx.get(f"http://127.0.0.1:{self.port}/metrics", timeout=10)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        return parse(response.text)

    def scrape_when(self, check: Callable[[dict[str, dict[str, float]]], bool]) -> dict:
        last: dict[str, dict[str, float]] = {}

        def ready() -> bool:
            nonlocal last
            assert self.process.poll() is None, self.process.stderr.read().decode()  # type: ignore[union-attr]
            try:
                last = self.scrape()
            except httpx.TransportError:
                return False  # not listening yet
            return check(last)

        wait_until(ready, "the worker's metrics")
        return last

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def worker(database_url: str, sandbox_env: SandboxServer) -> Iterator[Worker]:
    running = Worker(database_url, sandbox_env.url)
    yield running
    running.stop()


@pytest.fixture
def webhook_client(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    set_live_env(
        monkeypatch, WHATSAPP_APP_SECRET=SECRET, WHATSAPP_WEBHOOK_VERIFY_TOKEN=VERIFY_TOKEN
    )
    get_settings.cache_clear()
    with TestClient(create_app(get_settings(), engine)) as client:
        yield client
    get_settings.cache_clear()


def test_the_worker_exports_sends_refusals_queue_pause_and_quality(
    worker: Worker, engine: Engine
) -> None:
    number = get_settings().phone_number_id
    unknown = notice(phone(2), "unknown-template")
    unknown.request_payload["template"]["name"] = "no_such_template"  # 132001: fails for good
    enqueue_many([notice(phone(1), "fine"), unknown], engine=engine)

    samples = worker.scrape_when(
        lambda s: (
            value(s, "wanotify_sender_messages_total", outcome="sent") == 1
            and value(s, "wanotify_sender_messages_total", outcome="failed") == 1
        )
    )
    assert value(samples, "wanotify_sender_refusals_total", code="132001") == 1
    assert value(samples, "wanotify_sender_messages_total", phone_number_id=number, outcome="sent")
    assert value(samples, "wanotify_sender_database_up", phone_number_id=number) == 1
    assert value(samples, "wanotify_sender_paused", phone_number_id=number) == 0
    assert value(samples, "wanotify_sender_queue_messages", state="pending") == 0
    # the sandbox's number is GREEN unless configured otherwise
    assert value(samples, "wanotify_phone_quality_score", rating="GREEN") == 3
    assert value(samples, "wanotify_phone_quality_probe_ok") == 1

    # Meta's 368 (blocked for policy) pauses sending; what waits stays in the queue
    enqueue_many([notice(phone(3, magic.BLOCKED), "blocked")], engine=engine)
    samples = worker.scrape_when(lambda s: value(s, "wanotify_sender_paused", code="368") == 1)
    assert value(samples, "wanotify_sender_refusals_total", code="368") == 1
    enqueue_many([notice(phone(4), "later-1"), notice(phone(5), "later-2")], engine=engine)
    samples = worker.scrape_when(
        lambda s: value(s, "wanotify_sender_queue_messages", state="pending") == 3
    )
    assert queue_depth(engine).pending == 3  # the blocked one went back, and the two new
    (labels,) = samples["wanotify_sender_paused"]
    state = sending_state(engine, number)
    assert state.paused and f'reason="{state.reason}"' in labels
    assert value(samples, "wanotify_sender_messages_total", outcome="sent") == 1

    exported = set(samples)
    webhook_names = {n for n in rule_metric_names() if n.startswith("wanotify_webhook_")}
    assert rule_metric_names() - webhook_names <= exported


def test_the_webhook_app_exports_what_the_rules_read(webhook_client: TestClient) -> None:
    body = sample("status_sent.json")
    forged = {"Content-Type": "application/json", "X-Hub-Signature-256": "sha256=" + "1" * 64}
    assert webhook_client.post(WEBHOOK_PATH, content=body, headers=forged).status_code == 401

    def scrape() -> dict[str, dict[str, float]]:
        return parse(webhook_client.get("/metrics").text)

    # the refusal reaches the database about once a second; the gauge reads it there
    wait_until(lambda: value(scrape(), "wanotify_webhook_refused_signatures") == 1, "refusal count")
    assert value(scrape(), "wanotify_webhook_last_event_timestamp_seconds") == 0  # none valid
    before = time.time()
    assert webhook_client.post(WEBHOOK_PATH, content=body, headers=signed(body)).status_code == 200
    wait_until(lambda: value(scrape(), "wanotify_webhook_apply_lag_seconds_count") == 1, "applied")
    samples = scrape()
    assert value(samples, "wanotify_webhook_refused_signatures") == 0  # a valid one clears it
    last = value(samples, "wanotify_webhook_last_event_timestamp_seconds")
    assert last is not None and before - 5 <= last <= time.time() + 5
    assert value(samples, "wanotify_webhook_oldest_unapplied_age_seconds") == 0

    worker_names = {n for n in rule_metric_names() if not n.startswith("wanotify_webhook_")}
    assert rule_metric_names() - worker_names <= set(samples)


def test_a_metrics_port_in_use_stops_the_worker_with_the_reason(database_url: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "core.cli", "worker", "--metrics-port", str(port)],
            env={**os.environ, "DATABASE_URL": database_url, "WANOTIFY_MODE": "sandbox"},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 1
    assert f"cannot serve metrics on 127.0.0.1:{port}" in result.stderr
