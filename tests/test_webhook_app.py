"""The webhook app over HTTP: routes, signature, bad input, durability across kill -9.

Route-level checks use Starlette's TestClient (the real app, lifespan and database); the
key flows run `wanotify webhook` as its own process under uvicorn on a free port.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, event, text
from starlette.testclient import TestClient

from core.settings import SANDBOX_APP_SECRET, SettingsError, get_settings
from core.webhooks.applier import ApplierTuning
from core.webhooks.health import read_health
from core.webhooks.signature import sign
from tests.core.webhooks.helpers import (
    HEALTH_PATH,
    SAMPLE_FAILED_WAMID,
    SAMPLE_MESSAGE_ID,
    SAMPLE_WAMID,
    SECRET,
    T0,
    VERIFY_TOKEN,
    WEBHOOK_PATH,
    WebhookProcess,
    add_message,
    add_supplier,
    body_of,
    envelope,
    journal_table,
    journalled,
    message_row,
    post_all,
    sample,
    sample_names,
    signed,
    status,
    statuses_body,
    timeline,
)
from tests.fixtures.live import set_live_env
from webhook_app import create_app


def receipts(engine: Engine) -> int:
    return len(journalled(engine))


@pytest.fixture
def production_env(monkeypatch: pytest.MonkeyPatch) -> None:
    set_live_env(
        monkeypatch, WHATSAPP_APP_SECRET=SECRET, WHATSAPP_WEBHOOK_VERIFY_TOKEN=VERIFY_TOKEN
    )
    monkeypatch.setenv("WEBHOOK_MAX_BODY_BYTES", str(64 * 1024))
    get_settings.cache_clear()


@pytest.fixture
def client(engine: Engine, production_env: None) -> Iterator[TestClient]:
    """The app for route checks, its applier in this process (`separate_process=False`,
    as on an in-memory database): these tests read what the routes answer and journal,
    never what is applied, and the applier's own process cost each ~0.5 s to start and
    stop. The tests that wait for events to be applied take `applying_client`."""
    app = create_app(get_settings(), engine, tuning=ApplierTuning(separate_process=False))
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def applying_client(engine: Engine, production_env: None) -> Iterator[TestClient]:
    """The app as deployed: events applied by the applier's own process."""
    app = create_app(get_settings(), engine)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def post(client: TestClient, body: bytes, **headers: str) -> httpx.Response:
    return client.post(WEBHOOK_PATH, content=body, headers={**signed(body), **headers})


def wait_backlog_zero(client: TestClient, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        health = client.get(HEALTH_PATH).json()
        if health["backlog"] == 0 or time.monotonic() > deadline:
            return health
        time.sleep(0.05)


# --- verification --------------------------------------------------------------------------


def test_verification_echoes_the_challenge_as_plain_text(client: TestClient) -> None:
    query = {
        "hub.mode": "subscribe",
        "hub.verify_token": VERIFY_TOKEN,
        "hub.challenge": "1158201444",
    }
    response = client.get(WEBHOOK_PATH, params=query)
    assert response.status_code == 200
    assert response.text == "1158201444"
    assert response.headers["content-type"].startswith("text/plain")


@pytest.mark.parametrize(
    "query",
    [
        {"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1"},
        {"hub.mode": "unsubscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1"},
        {"hub.mode": "subscribe", "hub.challenge": "1"},
        {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN},
        {},
    ],
)
def test_verification_refuses_anything_else(client: TestClient, query: dict[str, str]) -> None:
    response = client.get(WEBHOOK_PATH, params=query)
    assert response.status_code == 403
    assert "1" not in response.text


# --- events: samples, signature ------------------------------------------------------------


@pytest.mark.parametrize("name", sample_names())
def test_every_sample_is_accepted_when_signed(
    applying_client: TestClient, engine: Engine, name: str
) -> None:
    client = applying_client
    response = post(client, sample(name))
    assert (response.status_code, response.text) == (200, "EVENT_RECEIVED")
    assert receipts(engine) == 1
    health = wait_backlog_zero(client)
    assert health["backlog"] == 0 and health["failed_receipts"] == 0


def test_the_samples_end_as_rows(applying_client: TestClient, engine: Engine) -> None:
    client = applying_client
    sid = add_supplier(engine, "+34612345678")
    mid = add_message(
        engine, wamid=SAMPLE_WAMID, message_id=SAMPLE_MESSAGE_ID, po_number="PO-2026-0042",
        supplier_id=sid,
    )  # fmt: skip
    failed = add_message(engine, wamid=SAMPLE_FAILED_WAMID, phone="+34600000000")
    for name in sample_names():
        assert post(client, sample(name)).status_code == 200
    wait_backlog_zero(client)
    row = message_row(engine, mid)
    assert row["status"] == "read" and row["pricing_category"] == "utility"
    assert message_row(engine, failed)["error_code"] == 131026
    with engine.connect() as conn:
        acks = conn.execute(text("SELECT action, po_number FROM po_acknowledgements")).all()
        inbound = conn.execute(text("SELECT count(*) FROM inbound_messages")).scalar_one()
    assert [tuple(a) for a in acks] == [("confirmed", "PO-2026-0042")]
    assert inbound == 3


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, "missing_signature"),
        ("sha256=abc", "malformed_signature"),
        ("bad", "malformed_signature"),
    ],
)
def test_unsigned_or_badly_signed_posts_are_401_and_store_nothing(
    client: TestClient, engine: Engine, header: str | None, reason: str
) -> None:
    headers = {"Content-Type": "application/json"}
    if header is not None:
        headers["X-Hub-Signature-256"] = header
    response = client.post(WEBHOOK_PATH, content=sample("status_read.json"), headers=headers)
    assert response.status_code == 401
    assert receipts(engine) == 0
    assert f'wanotify_webhook_rejected_requests_total{{reason="{reason}"}} 1.0' in (
        client.get("/metrics").text
    )


def test_a_body_signed_with_another_secret_or_altered_is_401(
    client: TestClient, engine: Engine
) -> None:
    body = sample("status_read.json")
    forged = {"Content-Type": "application/json", "X-Hub-Signature-256": sign("guess", body)}
    assert client.post(WEBHOOK_PATH, content=body, headers=forged).status_code == 401
    altered = body.replace(b'"read"', b'"sent"')
    headers = signed(body)
    assert client.post(WEBHOOK_PATH, content=altered, headers=headers).status_code == 401
    assert receipts(engine) == 0


def test_no_app_secret_outside_sandbox_does_not_start(
    production_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WHATSAPP_APP_SECRET")
    get_settings.cache_clear()
    with pytest.raises(SettingsError, match="missing WHATSAPP_APP_SECRET"):
        get_settings()


def test_outside_sandbox_a_sandbox_signed_webhook_is_refused(
    client: TestClient, engine: Engine
) -> None:
    body = sample("status_read.json")
    response = client.post(WEBHOOK_PATH, content=body, headers=signed(body, SANDBOX_APP_SECRET))
    assert response.status_code == 401
    assert receipts(engine) == 0
    health = client.get(HEALTH_PATH).json()
    assert (health["mode"], health["sandbox_mode"]) == ("live", False)


# --- bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "code"),
    [
        ("text/plain", 415),
        ("application/x-www-form-urlencoded", 415),
        ("", 415),
        ("application/json; charset=utf-8", 200),
        ("Application/JSON", 200),
    ],
)
def test_content_type(client: TestClient, engine: Engine, content_type: str, code: int) -> None:
    body = sample("status_sent.json")
    headers = signed(body)
    headers["Content-Type"] = content_type
    if not content_type:
        headers.pop("Content-Type")
    assert client.post(WEBHOOK_PATH, content=body, headers=headers).status_code == code
    assert receipts(engine) == (1 if code == 200 else 0)


def test_oversize_bodies_are_413_declared_or_streamed(client: TestClient, engine: Engine) -> None:
    big = body_of(envelope({"pad": "x" * (70 * 1024)}, field="account_update"))
    assert post(client, big).status_code == 413

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(big), 8192):
            yield big[i : i + 8192]

    response = client.post(WEBHOOK_PATH, content=chunks(), headers=signed(big))
    assert response.status_code == 413
    assert receipts(engine) == 0


def test_a_lying_content_length_is_refused(client: TestClient, engine: Engine) -> None:
    body = sample("status_sent.json")
    headers = {**signed(body), "Content-Length": "twelve"}
    assert client.post(WEBHOOK_PATH, content=body, headers=headers).status_code == 400
    assert receipts(engine) == 0


@pytest.mark.parametrize(
    "body",
    [b"", b"{", b"null", b"[]", b'{"entry": "x"}', b"\xff\xfe", b"[" * 10000],
)
def test_signed_invalid_json_is_400(client: TestClient, engine: Engine, body: bytes) -> None:
    assert post(client, body).status_code == 400
    assert receipts(engine) == 0


def test_unknown_fields_and_event_kinds_are_200_and_stored(
    applying_client: TestClient, engine: Engine
) -> None:
    client = applying_client
    unknown_field = body_of(envelope({"event": "X"}, field="brand_new_field"))
    unknown_object = body_of({"object": "instagram", "entry": [{"id": "1", "changes": []}]})
    for body in (unknown_field, unknown_object):
        assert post(client, body).status_code == 200
    health = wait_backlog_zero(client)
    assert health["failed_receipts"] == 0 and receipts(engine) == 2


def test_a_database_failure_is_503_never_500(client: TestClient, engine: Engine) -> None:
    home, table = journal_table(engine)
    with home.begin() as conn:
        conn.execute(text(f"ALTER TABLE {table} RENAME TO receipts_away"))
    try:
        response = post(client, sample("status_sent.json"))
        assert response.status_code == 503
    finally:
        with home.begin() as conn:
            conn.execute(text(f"ALTER TABLE receipts_away RENAME TO {table}"))
    assert post(client, sample("status_sent.json")).status_code == 200  # Meta's retry works


def test_a_retried_body_is_stored_once(client: TestClient, engine: Engine) -> None:
    for _ in range(3):
        assert post(client, sample("status_delivered.json")).status_code == 200
    assert receipts(engine) == 1


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.binary(max_size=400) | st.text(max_size=200).map(str.encode))
def test_any_signed_bytes_are_200_or_400_never_500(client: TestClient, body: bytes) -> None:
    response = post(client, body)
    assert response.status_code in (200, 400)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.text(max_size=10),
        lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3),
        max_leaves=20,
    )
)
def test_hostile_json_in_a_status_never_breaks_the_app(
    applying_client: TestClient, junk: object
) -> None:
    client = applying_client
    item = status("wamid.HOSTILE", "sent", T0)
    item["pricing"] = junk
    item["errors"] = [junk]
    item["conversation"] = junk
    body = json.dumps(envelope({"statuses": [item, junk], "messages": [junk]})).encode()
    assert post(client, body).status_code == 200
    health = wait_backlog_zero(client)
    assert health["failed_receipts"] == 0


# --- health and metrics ------------------------------------------------------------------


def test_health_reports_database_last_event_and_backlog(applying_client: TestClient) -> None:
    client = applying_client
    body = client.get(HEALTH_PATH).json()
    assert body["database"] == "ok" and body["backlog"] == 0 and body["last_event_at"] is None
    assert body["sandbox_mode"] is False and body["accepting_events"] is True
    post(client, sample("status_sent.json"))
    wait_backlog_zero(client)
    body = client.get(HEALTH_PATH).json()
    assert body["last_event_at"] is not None
    assert body["held_statuses"] == 1  # the sample's message is not in this database


def test_health_is_503_when_the_database_is_unreachable(
    production_env: None, tmp_path: Path
) -> None:
    from core.db import get_engine

    engine = get_engine(f"sqlite:///{tmp_path / 'missing-dir' / 'x.db'}")
    with TestClient(create_app(get_settings(), engine)) as client:
        response = client.get(HEALTH_PATH)
        assert response.status_code == 503
        assert response.json()["status"] == "unavailable"
        assert post(client, sample("status_sent.json")).status_code == 503


def test_metrics_are_prometheus_text(applying_client: TestClient, engine: Engine) -> None:
    client = applying_client
    add_message(engine, wamid=SAMPLE_WAMID, message_id=SAMPLE_MESSAGE_ID)
    post(client, sample("status_sent.json"))
    post(client, sample("status_read.json"), **{"X-Hub-Signature-256": "sha256=" + "1" * 64})
    wait_backlog_zero(client)
    # the applier reports a batch's counts after its step (the sweep comes first)
    deadline = time.monotonic() + 30
    while True:
        response = client.get("/metrics")
        text_ = response.text
        if "wanotify_webhook_apply_lag_seconds_count 1.0" in text_:
            break
        assert time.monotonic() < deadline, text_
        time.sleep(0.05)
    assert response.headers["content-type"].startswith("text/plain")
    assert 'wanotify_webhook_events_total{kind="status",status="sent"} 1.0' in text_
    assert 'wanotify_webhook_rejected_requests_total{reason="bad_signature"} 1.0' in text_
    assert "wanotify_webhook_apply_lag_seconds_count 1.0" in text_
    assert "wanotify_webhook_backlog 0.0" in text_


def test_po_events_route_is_mounted(client: TestClient) -> None:
    response = client.post("/api/v1/po-events", json={"x": 1})
    assert response.status_code == 503 and response.json()["status"] == "disabled"


# --- the real process ----------------------------------------------------------------------


def test_the_app_under_uvicorn_applies_signed_samples(database_url: str, engine: Engine) -> None:
    mid = add_message(engine, wamid=SAMPLE_WAMID, message_id=SAMPLE_MESSAGE_ID)
    with WebhookProcess(database_url) as app:
        query = {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "42"}
        verify = httpx.get(app.url + WEBHOOK_PATH, params=query)
        assert (verify.status_code, verify.text) == (200, "42")
        codes = post_all(app.url, [sample(n) for n in ("status_read.json", "status_sent.json")])
        assert codes == [200, 200]
        forged = httpx.post(
            app.url + WEBHOOK_PATH, content=b"{}", headers={"Content-Type": "application/json"}
        )
        assert forged.status_code == 401
        assert app.wait_applied()["backlog"] == 0
        assert "wanotify_webhook_rejected_requests_total" in httpx.get(app.url + "/metrics").text
    assert message_row(engine, mid)["status"] == "read"


@pytest.mark.slow
def test_nothing_acknowledged_is_lost_when_the_process_is_killed(
    database_url: str, engine: Engine, tmp_path: Path
) -> None:
    """kill -9 the server in the middle of a load: every 200 it gave survives and applies."""
    ids = [add_message(engine, wamid=f"wamid.KILL{n:04d}") for n in range(400)]
    bodies = [
        statuses_body(status(f"wamid.KILL{n:04d}", word, T0 + k))
        for n in range(400)
        for k, word in enumerate(("sent", "delivered"))
    ]
    app = WebhookProcess(database_url, log_path=tmp_path / "webhook.log").start()
    acked: list[bytes] = []

    def one(client: httpx.Client, body: bytes) -> None:
        try:
            response = client.post(app.url + WEBHOOK_PATH, content=body, headers=signed(body))
        except httpx.HTTPError:
            return
        if response.status_code == 200:
            acked.append(body)

    with httpx.Client(timeout=10) as client, concurrent.futures.ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(one, client, b) for b in bodies]
        while len(acked) < 200:
            time.sleep(0.01)
        app.kill()  # SIGKILL, mid-load: no shutdown code, applier and journal cut off
        concurrent.futures.wait(futures)
    assert 200 <= len(acked) < len(bodies)
    acknowledged = journalled(engine)
    journal = {r["body_sha256"] for r in acknowledged}
    unapplied = sum(not r["applied"] for r in acknowledged)
    assert {hashlib.sha256(b).hexdigest() for b in acked} <= journal
    restarted = WebhookProcess(database_url, log_path=tmp_path / "webhook.log").start()
    try:
        assert restarted.wait_applied()["backlog"] == 0
    finally:
        restarted.stop()
    expected: dict[str, set[str]] = {}
    for body in acked:
        item = json.loads(body)["entry"][0]["changes"][0]["value"]["statuses"][0]
        expected.setdefault(item["id"], set()).add(item["status"])
    rows = {
        message_row(engine, mid)["whatsapp_message_id"]: message_row(engine, mid) for mid in ids
    }
    for wamid, words in expected.items():
        # A body committed just before the kill may have lost only its 200 (Meta would
        # send it again): it may be applied too, so `sent` acked can end `delivered`.
        allowed = {"delivered"} if "delivered" in words else {"sent", "delivered"}
        assert rows[wamid]["status"] in allowed, (wamid, words, unapplied)
        if "sent" in words:  # without it, `delivered` stands in for sent (its own time)
            assert rows[wamid]["sent_at"].timestamp() == T0, (wamid, timeline(engine, wamid))


# --- refused signatures are seen -----------------------------------------------------------


def _refused_signatures(health: dict[str, Any]) -> int:
    count: int = health["rejected_signatures"]["count"]
    return count


def _wait_for_health(app: WebhookProcess, status: str, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        health = app.health()
        if health["status"] == status or time.monotonic() > deadline:
            return health
        time.sleep(0.1)


def test_refused_signatures_turn_health_degraded_until_a_valid_delivery(
    database_url: str, engine: Engine
) -> None:
    """The real process refuses forged deliveries; health (its own route, and a reading
    from this other process) names the cause until a valid delivery overtakes them."""
    mid = add_message(engine, wamid=SAMPLE_WAMID, message_id=SAMPLE_MESSAGE_ID)
    body = sample("status_read.json")
    with WebhookProcess(database_url) as app:
        first = app.health()
        assert (first["status"], first["mode"], _refused_signatures(first)) == ("ok", "live", 0)
        forged = [*(sign(f"guess-{n}", body) for n in range(4)), sign(SANDBOX_APP_SECRET, body),
                  "sha256=" + "z" * 64]  # fmt: skip
        with httpx.Client(timeout=30) as client:
            for header in [*forged, None]:  # the unsigned one is not counted
                headers = {"Content-Type": "application/json"}
                if header is not None:
                    headers["X-Hub-Signature-256"] = header
                answer = client.post(app.url + WEBHOOK_PATH, content=body, headers=headers)
                assert answer.status_code == 401
        degraded = _wait_for_health(app, "degraded")
        assert degraded["status"] == "degraded"
        assert _refused_signatures(degraded) == len(forged)
        assert degraded["rejected_signatures"]["last_at"] is not None
        assert any("WHATSAPP_APP_SECRET" in cause for cause in degraded["causes"])
        elsewhere = read_health(engine)  # what `wanotify status` and the dashboard read
        assert elsewhere.status == "degraded" and elsewhere.rejected_signatures.count == 6

        assert post_all(app.url, [body]) == [200]
        assert app.wait_applied()["backlog"] == 0
        healed = _wait_for_health(app, "ok")
        assert (healed["status"], _refused_signatures(healed), healed["causes"]) == ("ok", 0, [])

        again = post_all(app.url, [body], secret="guess-again")
        assert again == [401]
        restarted = _wait_for_health(app, "degraded")
        assert _refused_signatures(restarted) == 1  # counted from the last valid delivery
    assert message_row(engine, mid)["status"] == "read"


def test_a_refused_signature_flood_writes_once_not_once_per_request(
    engine: Engine, production_env: None
) -> None:
    """The hot path only counts in memory: with the write interval longer than the flood,
    500 refusals cost no write while they arrive and one upsert when the app stops."""
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        if "webhook_rejections" in statement and statement.lstrip().upper().startswith("INSERT"):
            statements.append(statement)

    body = sample("status_read.json")
    headers = signed(body, "not-the-secret")
    event.listen(engine, "before_cursor_execute", seen)
    try:
        with TestClient(create_app(get_settings(), engine)) as client:
            client.app.state.rejections.interval = 3600.0  # type: ignore[attr-defined]
            codes = {client.post(WEBHOOK_PATH, content=body, headers=headers).status_code
                     for _ in range(500)}  # fmt: skip
            assert codes == {401}
            assert statements == []
            assert read_health(engine).rejected_signatures.count == 0  # not written yet
        assert len(statements) == 1  # the stop wrote the whole tally in one upsert
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert read_health(engine).rejected_signatures.count == 500
