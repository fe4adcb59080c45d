"""`core.webhooks.asgi`: the event POST over plain ASGI (HTTP-level checks, never a 500).

The full route runs over real HTTP in tests/test_webhook_app.py; these call the endpoint
with ASGI messages to reach the cases a well-behaved HTTP client cannot send.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import Engine

from core.settings import get_settings
from core.webhooks.asgi import is_json, receive_post
from core.webhooks.runtime import Answer, WebhookRuntime
from core.webhooks.signature import sign
from tests.core.webhooks.helpers import SECRET, T0, status, statuses_body
from tests.fixtures.live import set_live_env


@pytest.fixture
async def runtime(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[WebhookRuntime]:
    set_live_env(monkeypatch, WHATSAPP_APP_SECRET=SECRET)
    rt = WebhookRuntime(get_settings(), engine)
    await rt.start()
    yield rt
    await rt.stop()


async def call(runtime: WebhookRuntime, headers: list[tuple[bytes, bytes]],
               messages: list[dict[str, Any]]) -> tuple[int, bytes]:  # fmt: skip
    scope = {"type": "http", "method": "POST", "path": "/", "headers": headers}
    pending = list(messages)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return pending.pop(0) if pending else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await receive_post(runtime, scope, receive, send)
    assert sent[0]["type"] == "http.response.start"
    assert (b"content-type", b"text/plain; charset=utf-8") in sent[0]["headers"]
    return sent[0]["status"], sent[1]["body"]


def test_is_json() -> None:
    assert is_json(b"application/json")
    assert is_json(b"Application/JSON ; charset=UTF-8")
    assert not is_json(b"application/jsonx") and not is_json(b"text/json")
    assert not is_json(None) and not is_json(b"")


async def test_a_body_in_several_chunks_is_accepted(runtime: WebhookRuntime) -> None:
    body = statuses_body(status("wamid.CH", "sent", T0))
    headers = [(b"content-type", b"application/json"),
               (b"x-hub-signature-256", sign(SECRET, body).encode())]  # fmt: skip
    chunks = [body[i : i + 50] for i in range(0, len(body), 50)]
    messages = [{"type": "http.request", "body": c, "more_body": True} for c in chunks]
    messages[-1]["more_body"] = False
    assert await call(runtime, headers, messages) == (200, b"EVENT_RECEIVED")


async def test_a_client_gone_mid_body_is_400(runtime: WebhookRuntime) -> None:
    headers = [(b"content-type", b"application/json")]
    messages = [{"type": "http.request", "body": b'{"entry"', "more_body": True}]
    assert (await call(runtime, headers, messages))[0] == 400


async def test_repeated_headers_use_the_first(runtime: WebhookRuntime) -> None:
    body = statuses_body(status("wamid.RH", "sent", T0))
    headers = [(b"content-type", b"application/json"),
               (b"x-hub-signature-256", sign(SECRET, body).encode()),
               (b"x-hub-signature-256", b"sha256=" + b"0" * 64)]  # fmt: skip
    messages = [{"type": "http.request", "body": body}]
    assert (await call(runtime, headers, messages))[0] == 200


async def test_an_unexpected_error_is_503_not_500(runtime: WebhookRuntime) -> None:
    class Broken(WebhookRuntime):
        async def receive(self, body: bytes, signature: str | None) -> Answer:
            raise RuntimeError("unexpected")

    broken = Broken(runtime.settings, runtime.engine)
    headers = [(b"content-type", b"application/json")]
    status_, body = await call(broken, headers, [{"type": "http.request", "body": b"{}"}])
    assert status_ == 503 and body == b"temporarily unavailable"
