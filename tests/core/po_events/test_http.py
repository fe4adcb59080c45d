"""`POST /api/v1/po-events`: authentication, one tenant per key, limits and outcomes,
over real HTTP."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import Engine, event, func
from sqlmodel import Session, select
from starlette.applications import Starlette
from starlette.routing import Route

from core.api_keys import add_key, revoke_key
from core.db import is_sqlite
from core.models import Supplier, WhatsAppMessage
from core.po_events.http import DISABLED_MESSAGE, handle_http_po_event
from core.po_events.schema import MAX_EVENT_BYTES
from core.sandbox.catalog import DEFAULT_TEMPLATE_FIELDS, default_templates
from core.settings import get_settings
from core.templates import upsert_templates
from tests.core.po_events.conftest import TENANT, outbox, po_event

KEY = "k-7d0c3f2a9b1e4c58"
REPO = Path(__file__).resolve().parents[3]
PATH = "/api/v1/po-events"


def make_app(engine: Engine) -> Starlette:
    app = Starlette(routes=[Route(PATH, handle_http_po_event, methods=["POST"])])
    app.state.engine = engine
    return app


@pytest.fixture
def api_key(monkeypatch: pytest.MonkeyPatch) -> str:
    """`PO_EVENTS_API_KEY`, the default tenant's key; the test tenant is the default one."""
    monkeypatch.setenv("PO_EVENTS_API_KEY", KEY)
    monkeypatch.setenv("WANOTIFY_DEFAULT_TENANT", TENANT)
    get_settings.cache_clear()
    return KEY


@pytest.fixture
def two_tenants(po_templates: Engine) -> Engine:
    """The test tenant and "other", both able to send PO notices (so an event for either
    would be queued if the key let it through)."""
    definitions = [t.as_graph(DEFAULT_TEMPLATE_FIELDS) for t in default_templates()]
    upsert_templates(po_templates, "other", definitions)
    return po_templates


def rows(engine: Engine) -> tuple[int, int]:
    """(messages, suppliers) of every tenant: what an event could have written."""
    with Session(engine) as session:
        messages = session.exec(select(func.count()).select_from(WhatsAppMessage)).one()
        suppliers = session.exec(select(func.count()).select_from(Supplier)).one()
    return int(messages), int(suppliers)


def asgi_client(engine: Engine) -> httpx.AsyncClient:
    """A client calling the app in-process (ASGI); one test below uses real uvicorn."""
    transport = httpx.ASGITransport(app=make_app(engine), raise_app_exceptions=True)
    return httpx.AsyncClient(transport=transport, base_url="http://wanotify.test")


@pytest.fixture
async def client(po_templates: Engine, api_key: str) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(po_templates) as test_client:
        yield test_client


async def post(client: httpx.AsyncClient, body: Any, **headers: str) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return await client.post(
        PATH, content=content, headers={"Content-Type": "application/json", **headers}
    )


async def test_without_a_configured_key_the_api_is_disabled(po_templates: Engine) -> None:
    async with asgi_client(po_templates) as client:
        response = await post(client, po_event(), Authorization="Bearer anything")
    assert response.status_code == 503
    assert response.json() == {"status": "disabled", "error": DISABLED_MESSAGE}
    assert outbox(po_templates) == []


@pytest.mark.parametrize(
    ("headers", "error"),
    [
        ({}, "missing API key"),
        ({"Authorization": "Bearer "}, "missing API key"),
        ({"Authorization": "Basic " + KEY}, "missing API key"),
        ({"Authorization": "Bearer wrong"}, "invalid API key"),
        ({"X-API-Key": KEY + "x"}, "invalid API key"),
        ({"X-API-Key": "ключ".encode()}, "invalid API key"),  # non-ASCII must not crash the compare
    ],
)
async def test_a_missing_or_wrong_key_is_401(
    client: httpx.AsyncClient, po_templates: Engine, headers: dict[str, Any], error: str
) -> None:
    response = await client.post(
        PATH, content=json.dumps(po_event()).encode(),
        headers={"Content-Type": "application/json", **headers},
    )  # fmt: skip
    assert response.status_code == 401
    assert response.json()["error"].startswith(error)
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert outbox(po_templates) == []


async def test_enqueued_then_duplicate(client: httpx.AsyncClient, po_templates: Engine) -> None:
    event_ = po_event()
    first = await post(client, event_, Authorization=f"Bearer {KEY}")
    assert first.status_code == 202, first.text
    body = first.json()
    assert body["status"] == "enqueued" and body["message_id"]
    assert body["event_id"] == event_["event_id"] and body["po_number"] == "4500012345"
    replay = await post(client, po_event(event_id="evt-again"), **{"X-API-Key": KEY})
    assert replay.status_code == 200
    assert replay.json()["status"] == "duplicate"
    assert replay.json()["message_id"] == body["message_id"]
    assert "already notified" in replay.json()["reason"]
    [row] = outbox(po_templates)
    assert row.id == body["message_id"]


async def test_a_stored_key_sends_for_its_own_tenant_only(two_tenants: Engine) -> None:
    """The hole this closes: one tenant's ERP queuing notices (and creating suppliers) in
    another tenant. A wrong-tenant event is 403 and writes nothing, in either direction."""
    acme = add_key(two_tenants, TENANT, "SAP").key
    other = add_key(two_tenants, "other", "Navision").key
    async with asgi_client(two_tenants) as client:
        into_other = await post(client, po_event(tenant_id="other"), Authorization=f"Bearer {acme}")
        assert into_other.status_code == 403
        assert into_other.json() == {
            "status": "forbidden",
            "error": "this API key may send events for tenant 'acme' only;"
            " the event is for tenant 'other'",
        }
        assert rows(two_tenants) == (0, 0)
        into_acme = await post(client, po_event(), **{"X-API-Key": other})
        assert into_acme.status_code == 403 and into_acme.json()["status"] == "forbidden"
        assert rows(two_tenants) == (0, 0)
        own = await post(client, po_event(), Authorization=f"Bearer {acme}")
        others_own = await post(client, po_event(tenant_id="other"), **{"X-API-Key": other})
    assert own.status_code == others_own.status_code == 202
    assert [r.id for r in outbox(two_tenants)] == [own.json()["message_id"]]
    assert [r.id for r in outbox(two_tenants, "other")] == [others_own.json()["message_id"]]
    assert rows(two_tenants) == (2, 2)


async def test_the_environment_key_is_the_default_tenants_key(
    two_tenants: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PO_EVENTS_API_KEY", KEY)
    monkeypatch.setenv("WANOTIFY_DEFAULT_TENANT", "other")
    get_settings.cache_clear()
    async with asgi_client(two_tenants) as client:
        refused = await post(client, po_event(), Authorization=f"Bearer {KEY}")
        assert refused.status_code == 403 and "tenant 'other' only" in refused.json()["error"]
        assert rows(two_tenants) == (0, 0)
        accepted = await post(client, po_event(tenant_id="other"), Authorization=f"Bearer {KEY}")
    assert accepted.status_code == 202
    assert len(outbox(two_tenants, "other")) == 1 and outbox(two_tenants) == []


async def test_a_revoked_key_is_401_and_the_others_still_work(po_templates: Engine) -> None:
    old = add_key(po_templates, TENANT, "old ERP")
    new = add_key(po_templates, TENANT, "new ERP")
    revoke_key(po_templates, old.info.prefix)
    async with asgi_client(po_templates) as client:
        revoked = await post(client, po_event(), Authorization=f"Bearer {old.key}")
        assert revoked.status_code == 401
        assert revoked.json() == {"status": "unauthorized", "error": "this API key was revoked"}
        assert rows(po_templates) == (0, 0)
        assert (await post(client, po_event(), **{"X-API-Key": new.key})).status_code == 202
        revoke_key(po_templates, str(new.info.id))
        # No key left that opens anything (none in the environment either): the endpoint
        # is off for a guess, and a revoked key still hears that it was revoked.
        guess = await post(client, po_event(), Authorization="Bearer wnk_guess")
        again = await post(client, po_event(), Authorization=f"Bearer {new.key}")
    assert guess.status_code == 503 and guess.json()["status"] == "disabled"
    assert again.status_code == 401 and again.json()["error"] == "this API key was revoked"
    assert len(outbox(po_templates)) == 1


#: Hostile ways to present a key ({STORED}: a real stored key of the tenant, {UPPER}: the
#: same upper-cased), each with the start of the 401's error.
HOSTILE_KEYS: list[tuple[list[tuple[str, str]], str]] = [
    ([("X-API-Key", "x" * 600)], "invalid API key"),
    ([("X-API-Key", "{STORED}" + "x" * 20_000)], "invalid API key"),
    ([("Authorization", "Bearer {STORED}\u200b")], "invalid API key"),  # zero-width space
    ([("X-API-Key", "\u202e{STORED}")], "invalid API key"),  # right-to-left override
    ([("X-API-Key", "{STORED}\u0301")], "invalid API key"),  # combining accent
    ([("X-API-Key", "{UPPER}")], "invalid API key"),
    ([("X-API-Key", "\U0001f511" * 40)], "invalid API key"),
    ([("Authorization", "Bearer {STORED}"), ("X-API-Key", KEY)], "send one API key"),
    ([("Authorization", "Bearer {STORED}"), ("X-API-Key", "wrong")], "send one API key"),
    ([("X-API-Key", "{STORED}"), ("X-API-Key", "{STORED}")], "send one API key"),
    ([("Authorization", "Bearer {STORED}"), ("Authorization", f"Bearer {KEY}")],
     "send one API key"),
]  # fmt: skip


async def test_hostile_keys_are_401_and_write_nothing(
    client: httpx.AsyncClient, po_templates: Engine
) -> None:
    """Huge keys, odd Unicode around a real key, and two keys at once (even two good
    ones): each refused, none crashes the compare, nothing is written. The same real
    key in both headers is then accepted (so the refusals were the hostile parts')."""
    stored = add_key(po_templates, TENANT).key

    def fill(value: str) -> bytes:
        return value.replace("{STORED}", stored).replace("{UPPER}", stored.upper()).encode()

    for headers, error in HOSTILE_KEYS:
        response = await client.post(
            PATH, content=json.dumps(po_event()).encode(),
            headers=[("Content-Type", b"application/json"),
                     *[(name, fill(value)) for name, value in headers]],
        )  # fmt: skip
        assert response.status_code == 401, (headers[0][1][:60], response.text)
        assert response.json()["error"].startswith(error), headers[0][1][:60]
        assert rows(po_templates) == (0, 0)
    both = await post(client, po_event(), Authorization=f"Bearer {stored}", **{
        "X-API-Key": stored})  # fmt: skip
    assert both.status_code == 202, both.text


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"{not json", "not valid JSON"),
        (b"[]", "must be a JSON object, not a list"),
        ({"event_id": "e"}, "tenant_id is missing"),
        (po_event(total={"amount": "abc", "currency": "EURO"}), "'EURO' is not a currency code"),
        (po_event(event_type="po.rejected"), "not handled here"),
    ],
)
async def test_malformed_events_are_422_with_problems(
    client: httpx.AsyncClient, po_templates: Engine, body: Any, expected: str
) -> None:
    response = await post(client, body, Authorization=f"Bearer {KEY}")
    assert response.status_code == 422
    assert response.json()["status"] == "rejected"
    assert any(expected in problem for problem in response.json()["problems"])
    assert outbox(po_templates) == []


async def test_an_invalid_phone_is_422(client: httpx.AsyncClient, po_templates: Engine) -> None:
    event_ = po_event()
    event_["supplier"]["phone"] = "+34 12"
    response = await post(client, event_, Authorization=f"Bearer {KEY}")
    assert response.status_code == 422
    assert response.json() == {"status": "rejected", "problems": ["+34 12 is too short for Spain"]}
    assert outbox(po_templates) == []


async def test_a_body_that_is_not_json_content_is_415(client: httpx.AsyncClient) -> None:
    response = await client.post(
        PATH, content=b"a=1", headers={"Authorization": f"Bearer {KEY}",
                                        "Content-Type": "application/x-www-form-urlencoded"},
    )  # fmt: skip
    assert response.status_code == 415
    assert "application/json" in response.json()["problems"][0]


async def test_an_oversized_body_is_413_declared_or_streamed(client: httpx.AsyncClient) -> None:
    big = b'{"pad": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    declared = await post(client, big, Authorization=f"Bearer {KEY}")
    assert declared.status_code == 413
    assert "65,536" in declared.json()["problems"][0]

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: streamed body
        for _ in range(40):
            yield b"x" * 4096

    streamed = await client.post(
        PATH, content=chunks(),
        headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
    )  # fmt: skip
    assert streamed.status_code == 413
    assert MAX_EVENT_BYTES < 40 * 4096


@pytest.mark.parametrize("which", ["environment key", "stored key"])
async def test_a_database_outage_is_503_retry_later(
    client: httpx.AsyncClient, po_templates: Engine, which: str
) -> None:
    """Read-only database: 503 with Retry-After, whether the key is checked against the
    database (a stored key, whose first use is recorded) or not (the environment's)."""
    key = KEY if which == "environment key" else add_key(po_templates, TENANT).key

    def read_only(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        if is_sqlite(po_templates):
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA query_only = 1")
            cursor.close()
        else:
            dbapi_connection.read_only = True

    def writable(dbapi_connection: Any, _record: Any) -> None:
        if is_sqlite(po_templates):
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA query_only = 0")
            cursor.close()
        else:
            dbapi_connection.read_only = False

    event.listen(po_templates, "checkout", read_only)
    event.listen(po_templates, "checkin", writable)
    try:
        response = await post(client, po_event(), Authorization=f"Bearer {key}")
    finally:
        event.remove(po_templates, "checkout", read_only)
        event.remove(po_templates, "checkin", writable)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert response.json()["status"] == "unavailable"
    assert (await post(client, po_event(), Authorization=f"Bearer {key}")).status_code == 202


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def live_url(po_templates: Engine, api_key: str) -> AsyncIterator[str]:
    """The app served by uvicorn on a free loopback port."""
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(make_app(po_templates), host="127.0.0.1", port=port, log_level="warning",
                       lifespan="off")
    )  # fmt: skip
    task = asyncio.create_task(server.serve())
    for _ in range(300):
        if server.started or task.done():
            break
        await asyncio.sleep(0.05)
    assert server.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await asyncio.wait_for(task, 30)


async def test_over_real_http(live_url: str, po_templates: Engine) -> None:
    event_ = po_event()
    auth = {"Authorization": f"Bearer {KEY}"}
    async with httpx.AsyncClient(base_url=live_url, timeout=30) as http:
        assert (await http.post(PATH, json=event_)).status_code == 401
        created = await http.post(PATH, json=event_, headers=auth)
        duplicate = await http.post(PATH, json=event_, headers=auth)
        rejected = await http.post(PATH, content=b"[1]", headers={
            **auth, "Content-Type": "application/json"})  # fmt: skip
        assert (await http.get(PATH, headers=auth)).status_code == 405
    assert created.status_code == 202 and created.json()["status"] == "enqueued"
    assert duplicate.status_code == 200 and duplicate.json()["status"] == "duplicate"
    assert duplicate.json()["message_id"] == created.json()["message_id"]
    assert rejected.status_code == 422 and rejected.json()["problems"]
    assert len(outbox(po_templates)) == 1


def _wait_healthy(base_url: str, process: subprocess.Popen[str], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the webhook app exited: {process.communicate()[1]}")
        try:
            if httpx.get(f"{base_url}/api/v1/whatsapp/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError("the webhook app did not become healthy")


@pytest.fixture
def webhook_process(po_templates: Engine, database_url: str, tmp_path: Path) -> Iterator[str]:
    """`wanotify webhook` as a real process on a free port, with the PO events API key."""
    port = _free_port()
    env = {
        **os.environ, "DATABASE_URL": database_url, "WEBHOOK_PORT": str(port),
        "PO_EVENTS_API_KEY": KEY, "WANOTIFY_DEFAULT_TENANT": TENANT,
        "WANOTIFY_LOG_LEVEL": "WARNING",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, "-m", "core.cli", "webhook"],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(base_url, process)
        yield base_url
    finally:
        process.terminate()
        try:
            process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


def test_the_webhook_app_serves_po_events(webhook_process: str, two_tenants: Engine) -> None:
    """The route as deployed: `wanotify webhook`, the default tenant's key from the
    environment, a stored key of another tenant, the database from DATABASE_URL; the same
    event twice is one notice, and neither key writes into the other's tenant."""
    event_ = po_event()
    url = f"{webhook_process}{PATH}"
    other = add_key(two_tenants, "other", "Navision").key
    with httpx.Client(timeout=30) as http:
        cross = [
            http.post(url, json=event_, headers={"Authorization": f"Bearer {other}"}),
            http.post(url, json=po_event(tenant_id="other"), headers={"X-API-Key": KEY}),
        ]
        assert [r.status_code for r in cross] == [403, 403], [r.text for r in cross]
        assert rows(two_tenants) == (0, 0)
        refused = http.post(url, json=event_, headers={"Authorization": "Bearer nope"})
        created = http.post(url, json=event_, headers={"Authorization": f"Bearer {KEY}"})
        replayed = http.post(url, json=event_, headers={"X-API-Key": KEY})
        hostile = http.post(
            url, content=b'{"event_id": {"$gt": ""}, "tenant_id": "acme\'; --"}',
            headers={"X-API-Key": KEY, "Content-Type": "application/json"},
        )  # fmt: skip
    assert refused.status_code == 401
    assert created.status_code == 202, created.text
    assert replayed.status_code == 200 and replayed.json()["status"] == "duplicate"
    assert replayed.json()["message_id"] == created.json()["message_id"]
    assert hostile.status_code == 422
    assert "event_id must be text" in hostile.json()["problems"]
    [row] = outbox(two_tenants)
    assert row.id == created.json()["message_id"]
    assert (row.meta or {}).get("source") == "http"
    assert rows(two_tenants) == (1, 1)
