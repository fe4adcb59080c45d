"""The Cloud API client: parsing Meta's answers and errors, connections, and the sandbox.

Unit tests use httpx.MockTransport to feed one answer shape at a time; connection tests
use real loopback servers; integration tests talk to the running sandbox.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine
from sqlmodel import Session
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from core.cloud_api import CloudApiClient, SendResult
from core.errors import ErrorClass, GraphError
from core.sandbox import BackgroundServer, SandboxServer
from core.settings import SANDBOX_PHONE_NUMBER_ID, SANDBOX_WABA_ID, Settings, SettingsError
from core.templates import (
    TemplateDefinition,
    build_components,
    build_po_notice_params,
    build_template_payload,
    list_templates,
    sync_templates,
)
from tests.fixtures.live import live_env

TOKEN = "EAAG-very-secret-token-1234567890"  # a fake token, looked for in logs
PHONE_ID = "111222333444555"
WABA = "999888777666555"
ACCEPTED = {
    "messaging_product": "whatsapp",
    "contacts": [{"input": "+34612345678", "wa_id": "34612345678"}],
    "messages": [{"id": "wamid.HBgLMzQ2MTIzNDU2NzgVAgARGBI", "message_status": "accepted"}],
}


def meta_settings(**extra: Any) -> Settings:
    """Settings as in production (credentials present), pointing at a fake base URL."""
    values: dict[str, Any] = live_env(
        WHATSAPP_ACCESS_TOKEN=TOKEN,
        WHATSAPP_PHONE_NUMBER_ID=PHONE_ID,
        WHATSAPP_BUSINESS_ACCOUNT_ID=WABA,
        WHATSAPP_API_BASE_URL="https://graph.example.test",
    )
    values.update(extra)
    return Settings(**values)


def mock_client(
    handler: Callable[[httpx.Request], httpx.Response | Any], **settings: Any
) -> CloudApiClient:
    return CloudApiClient(meta_settings(**settings), transport=httpx.MockTransport(handler))


def answer(status: int, body: Any = None, *, raw: bytes | None = None) -> Callable[..., Any]:
    def handler(request: httpx.Request) -> httpx.Response:
        if raw is not None:
            return httpx.Response(status, content=raw)
        return httpx.Response(status, json=body) if body is not None else httpx.Response(status)

    return handler


def meta_error(code: int, message: str, details: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {
        "message": f"(#{code}) {message}",
        "type": "OAuthException",
        "code": code,
        "fbtrace_id": "AbCdEf",
    }
    if details:
        error["error_data"] = {"messaging_product": "whatsapp", "details": details}
    return {"error": error}


async def send_error(handler: Callable[..., Any]) -> GraphError:
    async with mock_client(handler) as client:
        with pytest.raises(GraphError) as caught:
            await client.send_message({"messaging_product": "whatsapp", "to": "34612345678"})
    return caught.value


# Success --------------------------------------------------------------------------------


async def test_send_message_posts_to_the_phone_number_and_parses_acceptance() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=ACCEPTED)

    payload = {"messaging_product": "whatsapp", "to": "34612345678", "type": "text"}
    async with mock_client(handler) as client:
        result = await client.send_message(payload)
    assert result == SendResult(
        wamid="wamid.HBgLMzQ2MTIzNDU2NzgVAgARGBI",
        wa_id="34612345678",
        input="+34612345678",
        message_status="accepted",
        raw=ACCEPTED,
    )
    (request,) = seen
    assert request.method == "POST"
    assert str(request.url) == f"https://graph.example.test/v25.0/{PHONE_ID}/messages"
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert json.loads(request.content) == payload


async def test_held_for_quality_assessment_and_missing_status() -> None:
    held = {"messages": [{"id": "wamid.X", "message_status": "held_for_quality_assessment"}]}
    async with mock_client(answer(200, held)) as client:
        result = await client.send_message({})
    assert result.message_status == "held_for_quality_assessment"
    assert result.wa_id is None and result.input is None
    async with mock_client(answer(200, {"messages": [{"id": "wamid.Y"}]})) as client:
        assert (await client.send_message({})).message_status == "accepted"


async def test_send_template_and_text_bodies() -> None:
    bodies: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return httpx.Response(200, json=ACCEPTED)

    components = [{"type": "body", "parameters": [{"type": "text", "text": "x"}]}]
    async with mock_client(handler) as client:
        await client.send_template(
            "34612345678", "po_notification", "es", components, biz_opaque_callback_data="m-1"
        )
        await client.send_template("34612345678", "hello", "en", [])
        await client.send_text("34612345678", "Gracias", preview_url=True)
        with pytest.raises(ValueError, match="512"):
            await client.send_text("34612345678", "x", biz_opaque_callback_data="x" * 513)
        with pytest.raises(ValueError, match="non-empty"):
            await client.send_text("34612345678", "  ")
        with pytest.raises(ValueError, match="4096"):
            await client.send_text("34612345678", "x" * 4097)
    assert bodies == [
        {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": "34612345678",
            "type": "template",
            "template": {
                "name": "po_notification",
                "language": {"code": "es"},
                "components": components,
            },
            "biz_opaque_callback_data": "m-1",
        },
        {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": "34612345678",
            "type": "template",
            "template": {"name": "hello", "language": {"code": "en"}},
        },
        {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": "34612345678",
            "type": "text",
            "text": {"body": "Gracias", "preview_url": True},
        },
    ]


# Error shapes ---------------------------------------------------------------------------


async def test_expired_token_401_190_pauses() -> None:
    error = await send_error(answer(401, meta_error(190, "Error validating access token")))
    assert (error.code, error.http_status, error.error_class) == (190, 401, ErrorClass.PAUSE)
    assert error.fbtrace_id == "AbCdEf" and error.error_type == "OAuthException"


async def test_throughput_130429_retries_and_slows_everything() -> None:
    error = await send_error(answer(400, meta_error(130429, "Rate limit hit", "Cloud API limit")))
    assert error.code == 130429 and error.error_class == ErrorClass.RETRY
    assert error.slows_dispatcher and not error.is_pair_limit
    assert error.details == "Cloud API limit"


async def test_pair_limit_131056_delays_one_recipient() -> None:
    body = meta_error(131056, "(Business Account, Consumer Account) pair rate limit hit", "pair")
    error = await send_error(answer(400, body))
    assert error.is_pair_limit and error.error_class == ErrorClass.RETRY
    assert not error.slows_dispatcher


async def test_gateway_429_with_meta_body() -> None:
    error = await send_error(answer(429, meta_error(4, "Application request limit reached")))
    assert (error.code, error.http_status, error.error_class) == (4, 429, ErrorClass.RETRY)


async def test_500_without_body_retries() -> None:
    error = await send_error(answer(500))
    assert (error.code, error.http_status, error.error_class) == (None, 500, ErrorClass.RETRY)
    assert error.details is None


async def test_html_error_page_from_a_proxy() -> None:
    page = b"<html><head><title>502 Bad Gateway</title></head>\n<body>nginx</body></html>"
    error = await send_error(answer(502, raw=page))
    assert (error.code, error.http_status, error.error_class) == (None, 502, ErrorClass.RETRY)
    assert error.details is not None and "502 Bad Gateway" in error.details


async def test_truncated_json_error_body() -> None:
    error = await send_error(answer(400, raw=b'{"error": {"message": "(#100) Inva'))
    assert (error.code, error.http_status) == (None, 400)
    assert error.error_class == ErrorClass.PERMANENT
    assert error.details == '{"error": {"message": "(#100) Inva'


async def test_huge_html_body_is_cut_in_details() -> None:
    error = await send_error(answer(503, raw=b"<p>" + b"x" * 100_000 + b"</p>"))
    assert error.details is not None and len(error.details) <= 201


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'{"messaging_product": "whats', "not a JSON object"),
        (b"[]", "not a JSON object"),
        (b"", "not a JSON object"),
        (b"{}", "without a message id"),
        (b'{"messages": []}', "without a message id"),
        (b'{"messages": [{"id": ""}]}', "without a message id"),
        (b'{"messages": [{"id": 5}]}', "without a message id"),
        (b'{"messages": "wamid.X"}', "without a message id"),
    ],
)
async def test_2xx_that_is_not_metas_shape(raw: bytes, reason: str) -> None:
    error = await send_error(answer(200, raw=raw))
    assert error.code is None and reason in error.message
    assert error.error_class == ErrorClass.PERMANENT  # may have been sent: never retried blindly


async def test_transport_failures_from_the_transport_layer() -> None:
    def connect_fails(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("Connection refused")

    def read_times_out(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out")

    def connection_drops(request: httpx.Request) -> httpx.Response:
        raise httpx.RemoteProtocolError("Server disconnected without sending a response.")

    assert (await send_error(connect_fails)).message.startswith("could not connect")
    timeout = await send_error(read_times_out)
    assert timeout.message == "timeout after 20s"  # WHATSAPP_REQUEST_TIMEOUT's default
    assert timeout.error_class == ErrorClass.RETRY and timeout.http_status == 599
    assert (await send_error(connection_drops)).message.startswith("connection lost")


async def test_overall_deadline_covers_a_stalled_answer() -> None:
    async def stalls(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(30)
        return httpx.Response(200, json=ACCEPTED)

    async with CloudApiClient(
        meta_settings(), timeout=0.2, transport=httpx.MockTransport(stalls)
    ) as client:
        with pytest.raises(GraphError) as caught:
            await client.send_message({})
    assert caught.value.message == "timeout after 0.2s"


async def test_the_token_never_appears_in_errors_logs_or_repr(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    errors = [
        await send_error(answer(401, meta_error(190, "Invalid OAuth access token"))),
        await send_error(answer(502, raw=b"<html>bad</html>")),
    ]

    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"cannot reach {request.url}")

    errors.append(await send_error(refused))
    client = mock_client(answer(200, ACCEPTED))
    texts = [str(e) for e in errors] + [repr(e) for e in errors] + [repr(client)]
    texts += [record.getMessage() for record in caplog.records]
    await client.aclose()
    assert all(TOKEN not in text for text in texts)


# Listing templates and phone health -------------------------------------------------------


async def test_list_templates_follows_cursors_until_no_next() -> None:
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        after = request.url.params.get("after")
        page = {None: ["a", "b"], "c1": ["c", "d"], "c2": ["e"]}[after]
        body: dict[str, Any] = {"data": [{"name": n} for n in page]}
        cursors = {None: "c1", "c1": "c2", "c2": "c3"}
        body["paging"] = {"cursors": {"before": "x", "after": cursors[after]}}
        if after != "c2":
            body["paging"]["next"] = f"https://graph.facebook.com/next?after={cursors[after]}"
        return httpx.Response(200, json=body)

    async with mock_client(handler) as client:
        templates = await client.list_templates(page_size=2)
    assert [t["name"] for t in templates] == ["a", "b", "c", "d", "e"]
    assert [r.url.params.get("after") for r in requests] == [None, "c1", "c2"]
    first = requests[0]
    assert first.url.path == f"/v25.0/{WABA}/message_templates"
    assert first.url.params["limit"] == "2"
    assert "components" in first.url.params["fields"]
    assert all(r.url.host == "graph.example.test" for r in requests)  # never the `next` host
    assert all("access_token" not in str(r.url) for r in requests)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"paging": {}}, "no 'data' list"),
        ({"data": ["x"]}, "no 'data' list"),
        ({"data": [], "paging": {"next": "https://x"}}, "no 'after' cursor"),
        ({"data": [], "paging": {"next": "https://x", "cursors": {"after": "same"}}}, "repeats"),
    ],
)
async def test_list_templates_refuses_malformed_pages(body: dict[str, Any], reason: str) -> None:
    async with mock_client(answer(200, body)) as client:
        with pytest.raises(GraphError, match=reason):
            await client.list_templates()


async def test_list_templates_needs_the_business_account() -> None:
    settings = meta_settings()
    settings.whatsapp_business_account_id = None
    async with CloudApiClient(settings, transport=httpx.MockTransport(answer(200, {}))) as client:
        with pytest.raises(SettingsError, match="WHATSAPP_BUSINESS_ACCOUNT_ID"):
            await client.list_templates()


async def test_phone_health() -> None:
    body = {
        "display_phone_number": "+34 910 00 00 00",
        "verified_name": "Compras",
        "quality_rating": "YELLOW",
        "throughput": {"level": "HIGH"},
        "status": "CONNECTED",
        "whatsapp_business_manager_messaging_limit": "TIER_10K",
        "id": PHONE_ID,
    }
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=body)

    async with mock_client(handler) as client:
        health = await client.phone_health()
    assert (health.quality_rating, health.throughput_level, health.messaging_limit) == (
        "YELLOW",
        "HIGH",
        "TIER_10K",
    )
    assert health.display_phone_number == "+34 910 00 00 00" and health.status == "CONNECTED"
    assert seen[0].url.path == f"/v25.0/{PHONE_ID}"
    legacy = {"messaging_limit_tier": "TIER_250", "throughput": "weird"}
    async with mock_client(answer(200, legacy)) as client:
        old = await client.phone_health()
    assert old.messaging_limit == "TIER_250" and old.throughput_level is None


def test_max_connections_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_connections"):
        CloudApiClient(meta_settings(), max_connections=0)


# Real connections -------------------------------------------------------------------------


class Probe:
    """A loopback server that answers like Meta after a delay and records concurrency."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.in_flight = 0
        self.peak = 0
        self.ports: set[int] = set()
        self.served = 0
        app = Starlette(routes=[Route("/{version}/{node}/messages", self.send, methods=["POST"])])
        self.server = BackgroundServer(app)

    async def send(self, request: Request) -> JSONResponse:
        self.in_flight += 1  # one event loop: no lock needed
        self.peak = max(self.peak, self.in_flight)
        if request.client:
            self.ports.add(request.client.port)
        try:
            await asyncio.sleep(self.delay)
        finally:
            self.in_flight -= 1
        self.served += 1
        return JSONResponse(ACCEPTED)


@pytest.fixture
def probe() -> Iterator[Callable[[float], Probe]]:
    started: list[Probe] = []

    def start(delay: float) -> Probe:
        server = Probe(delay)
        server.server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.server.stop()


async def burst(client: CloudApiClient, count: int) -> list[SendResult]:
    return await asyncio.gather(*(client.send_message({"to": str(i)}) for i in range(count)))


async def test_many_concurrent_connections_without_collapse(
    probe: Callable[[float], Probe],
) -> None:
    """300 sends at once, each held 0.5 s by the server: the pool opens them all at once
    (httpx's own pool would cap at 100), and every send succeeds."""
    server = probe(0.5)
    async with CloudApiClient(meta_settings(WHATSAPP_API_BASE_URL=server.server.url)) as client:
        results = await burst(client, 300)
    assert len(results) == 300 and all(r.wamid for r in results)
    assert server.served == 300
    assert server.peak > 150


async def test_connection_limit_is_respected(probe: Callable[[float], Probe]) -> None:
    server = probe(0.05)
    settings = meta_settings(WHATSAPP_API_BASE_URL=server.server.url)
    async with CloudApiClient(settings, max_connections=8) as client:
        await burst(client, 80)
    assert server.served == 80
    assert server.peak <= 8
    assert len(server.ports) <= 8  # connections were reused, not reopened per request


async def test_sequential_sends_reuse_one_kept_alive_connection(
    probe: Callable[[float], Probe],
) -> None:
    server = probe(0.0)
    async with CloudApiClient(meta_settings(WHATSAPP_API_BASE_URL=server.server.url)) as client:
        for i in range(30):
            await client.send_message({"to": str(i)})
    assert server.served == 30 and len(server.ports) == 1


async def test_on_written_fires_once_as_the_request_leaves_after_waiting_for_a_connection(
    probe: Callable[[float], Probe],
) -> None:
    """The limiter dates a send by this callback: with one connection, the second
    request is written (and reported) only once the first answer freed it."""
    server = probe(0.2)
    settings = meta_settings(WHATSAPP_API_BASE_URL=server.server.url)
    served_when_written: dict[int, list[int]] = {0: [], 1: []}
    async with CloudApiClient(settings, max_connections=1) as client:
        await asyncio.gather(
            *(
                client.send_message(
                    {"to": str(i)},
                    on_written=lambda i=i: served_when_written[i].append(server.served),  # type: ignore[misc]
                )
                for i in (0, 1)
            )
        )
    assert server.served == 2
    assert sorted(len(calls) for calls in served_when_written.values()) == [1, 1]  # once each
    assert sorted(calls[0] for calls in served_when_written.values()) == [0, 1]


async def test_on_written_is_not_called_when_no_connection_was_made() -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = meta_settings(WHATSAPP_API_BASE_URL=f"http://127.0.0.1:{port}")
    calls: list[int] = []
    async with CloudApiClient(settings, timeout=5) as client:
        with pytest.raises(GraphError):
            await client.send_message({}, on_written=lambda: calls.append(1))
    assert calls == []  # nothing left: the dispatcher dates it when it gives up


@pytest.fixture
async def raw_server() -> AsyncIterator[Callable[[Callable[..., Any]], Any]]:
    """A bare TCP server on loopback whose connection handler the test supplies."""
    servers: list[asyncio.Server] = []

    async def start(handle: Callable[..., Any]) -> str:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        servers.append(server)
        port = server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


async def test_real_connection_refused_is_could_not_connect() -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = meta_settings(WHATSAPP_API_BASE_URL=f"http://127.0.0.1:{port}")
    async with CloudApiClient(settings, timeout=5) as client:
        with pytest.raises(GraphError) as caught:
            await client.send_message({})
    assert caught.value.message.startswith("could not connect"), caught.value.message
    assert caught.value.error_class == ErrorClass.RETRY


async def test_real_disconnect_mid_request_is_connection_lost(
    raw_server: Callable[..., Any],
) -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    url = await raw_server(hang_up)
    async with CloudApiClient(meta_settings(WHATSAPP_API_BASE_URL=url), timeout=5) as client:
        with pytest.raises(GraphError) as caught:
            await client.send_message({})
    assert caught.value.message.startswith("connection lost"), caught.value.message


async def test_real_silent_server_times_out(raw_server: Callable[..., Any]) -> None:
    async def say_nothing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await reader.read()  # until the client gives up and closes
        writer.close()

    url = await raw_server(say_nothing)
    async with CloudApiClient(meta_settings(WHATSAPP_API_BASE_URL=url), timeout=0.3) as client:
        with pytest.raises(GraphError) as caught:
            await client.send_message({})
    assert caught.value.message == "timeout after 0.3s"


# Against the sandbox ----------------------------------------------------------------------


def po_payload(to: str) -> dict[str, Any]:
    from core.sandbox.catalog import DEFAULT_TEMPLATE_FIELDS, default_templates

    data = next(
        t.as_graph(DEFAULT_TEMPLATE_FIELDS)
        for t in default_templates()
        if (t.name, t.language) == ("po_notification", "es")
    )
    defn = TemplateDefinition.from_meta(data)
    params = build_po_notice_params(defn, "Harinas Martín", "PO-7", Decimal("1234.50"), "EUR")
    return build_template_payload(defn, to, params)


async def test_sandbox_accepts_a_po_notice_built_by_the_template_layer(
    sandbox_env: SandboxServer,
) -> None:
    async with CloudApiClient() as client:
        result = await client.send_message(
            {**po_payload("34612340001"), "biz_opaque_callback_data": "msg-1"}
        )
    assert result.wamid.startswith("wamid.") and result.wa_id == "34612340001"
    assert result.message_status == "accepted"
    (stored,) = sandbox_env.messages(to="34612340001")
    assert stored["id"] == result.wamid and stored["biz_opaque_callback_data"] == "msg-1"
    assert stored["body"]["template"] == po_payload("34612340001")["template"]
    assert "1.234,50 €" in json.dumps(stored, ensure_ascii=False)


@pytest.mark.parametrize(
    ("suffix", "code", "status", "error_class"),
    [
        ("0190", 190, 401, ErrorClass.PAUSE),
        ("0500", 131000, 500, ErrorClass.RETRY),
        ("0429", 130429, None, ErrorClass.RETRY),
        ("0368", 368, 400, ErrorClass.PAUSE),
    ],
)
async def test_sandbox_error_answers_are_parsed(
    sandbox_env: SandboxServer, suffix: str, code: int, status: int | None, error_class: ErrorClass
) -> None:
    async with CloudApiClient() as client:
        with pytest.raises(GraphError) as caught:
            await client.send_message(po_payload("3461234" + suffix))
    error = caught.value
    assert error.code == code and error.error_class == error_class
    if status is not None:
        assert error.http_status == status
    assert error.fbtrace_id


async def test_sandbox_refuses_a_parameter_meta_would_refuse(sandbox_env: SandboxServer) -> None:
    payload = po_payload("34612340002")
    payload["template"]["components"][0]["parameters"][0]["text"] = "line\nbreak"
    async with CloudApiClient() as client:
        with pytest.raises(GraphError) as caught:
            await client.send_message(payload)
    assert caught.value.code == 132018 and caught.value.error_class == ErrorClass.PERMANENT


async def test_sandbox_free_form_text_outside_the_window(sandbox_env: SandboxServer) -> None:
    async with CloudApiClient() as client:
        with pytest.raises(GraphError) as caught:
            await client.send_text("34612340047", "¿Nos confirma el pedido?")
    assert caught.value.code == 131047


async def test_sandbox_template_list_pages_and_health(sandbox_env: SandboxServer) -> None:
    async with CloudApiClient() as client:
        small_pages = await client.list_templates(page_size=2)
        one_page = await client.list_templates()
        health = await client.phone_health()
    keys = [(t["name"], t["language"]) for t in small_pages]
    assert keys == [(t["name"], t["language"]) for t in one_page]
    assert len(set(keys)) == len(keys) and ("po_notification", "es") in keys
    assert all("components" in t for t in small_pages)
    assert health.quality_rating and health.throughput_level and health.messaging_limit
    assert SANDBOX_PHONE_NUMBER_ID and SANDBOX_WABA_ID  # the sandbox's fixed ids were used


async def test_sandbox_sync_into_the_registry(sandbox_env: SandboxServer, engine: Engine) -> None:
    async with CloudApiClient() as client:
        first = await sync_templates(client, engine, "acme")
        again = await sync_templates(client, engine, "acme")
    assert first.added >= 10 and not first.skipped
    assert (again.added, again.updated, again.unchanged) == (0, 0, first.added)
    with Session(engine) as session:
        sendable = {row.template_key for row in list_templates(session, "acme", approved_only=True)}
    assert "po_notification:es" in sendable and "old_po_notice:es" not in sendable
    # The built components agree with what the sandbox validates.
    with Session(engine) as session:
        rows = {row.template_key: row for row in list_templates(session, "acme")}
        defn = TemplateDefinition.from_row(rows["po_notification:en"])
    params = build_po_notice_params(defn, "Green Valley", "PO-9", Decimal("450"), "GBP")
    async with CloudApiClient() as client:
        result = await client.send_template(
            "447911123456", defn.name, defn.language, build_components(defn, params)
        )
    assert result.wamid


# The direct send path (aiohttp) and the httpx path answer alike ---------------------------

ANSWERS: list[tuple[int, bytes]] = [
    (200, json.dumps(ACCEPTED).encode()),
    (400, json.dumps(meta_error(130429, "Rate limit hit", "throughput reached")).encode()),
    (401, json.dumps(meta_error(190, "Invalid OAuth access token")).encode()),
    (400, json.dumps(meta_error(131026, "Message undeliverable")).encode()),
    (429, json.dumps(meta_error(4, "Too many calls")).encode()),
    (502, b"<html><body>Bad gateway</body></html>"),
    (500, b""),
    (400, b'{"error": {"code": 131056, "message": "(#131056) pai'),
    (200, b"[1, 2, 3]"),
    (200, b'{"messages": []}'),
    (200, b'{"messages": [{"id": "wamid.X"}], "n": NaN}'),
]


class Echo:
    """A loopback server answering the next canned (status, body) and keeping requests."""

    def __init__(self) -> None:
        self.answer: tuple[int, bytes] = (200, b"{}")
        self.requests: list[tuple[dict[str, str], bytes]] = []
        app = Starlette(routes=[Route("/{version}/{node}/messages", self.send, methods=["POST"])])
        self.server = BackgroundServer(app)

    async def send(self, request: Request) -> Response:
        self.requests.append((dict(request.headers), await request.body()))
        status, body = self.answer
        return Response(body, status, media_type="application/json")


@pytest.fixture
def echo() -> Iterator[Echo]:
    server = Echo()
    server.server.start()
    yield server
    server.server.stop()


async def outcome(client: CloudApiClient, payload: dict[str, Any]) -> Any:
    try:
        result = await client.send_message(payload)
    except GraphError as error:
        return (
            "error",
            error.code,
            error.error_class,
            error.message,
            error.http_status,
            error.details,
            error.fbtrace_id,
            error.reason,
        )
    return ("ok", result.wamid, result.wa_id, result.input, result.message_status, result.raw)


@pytest.mark.parametrize(("status", "body"), ANSWERS)
async def test_direct_send_classifies_every_answer_as_the_httpx_path_does(
    echo: Echo, status: int, body: bytes
) -> None:
    """Over real HTTP (aiohttp) and through httpx (MockTransport): the same typed result."""
    echo.answer = (status, body)
    payload = {"messaging_product": "whatsapp", "to": "34612345678"}
    async with CloudApiClient(meta_settings(WHATSAPP_API_BASE_URL=echo.server.url)) as client:
        direct = await outcome(client, payload)
    async with mock_client(answer(status, raw=body)) as client:
        via_httpx = await outcome(client, payload)
    assert direct == via_httpx
    assert len(echo.requests) == 1


async def test_direct_send_body_and_headers(echo: Echo) -> None:
    """The body is the payload as JSON (UTF-8, not escaped), the token goes only in the
    Authorization header, and integers beyond 64 bits (orjson refuses them) still go."""
    echo.answer = (200, json.dumps(ACCEPTED).encode())
    payload = {"to": "34612345678", "text": {"body": "Pedido nº 7 — añadido"}, "n": 2**70}
    async with CloudApiClient(meta_settings(WHATSAPP_API_BASE_URL=echo.server.url)) as client:
        await client.send_message(payload)
        await client.send_message({"to": "34612345678"})
    headers, raw = echo.requests[0]
    assert json.loads(raw) == payload
    assert headers["authorization"] == f"Bearer {TOKEN}"
    assert headers["content-type"] == "application/json"
    assert TOKEN not in raw.decode()
    assert "añadido".encode() in raw or b"a\\u00f1adido" in raw


def test_environment_proxy_is_read_once_and_honours_no_proxy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    assert CloudApiClient(meta_settings())._send_proxy == "http://proxy.internal:3128"
    monkeypatch.setenv("NO_PROXY", "graph.example.test")
    assert CloudApiClient(meta_settings())._send_proxy is None
    monkeypatch.delenv("HTTPS_PROXY")
    monkeypatch.delenv("NO_PROXY")
    monkeypatch.delenv("https_proxy", raising=False)
    assert CloudApiClient(meta_settings())._send_proxy is None
