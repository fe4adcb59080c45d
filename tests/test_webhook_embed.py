"""`core.webhooks.app.embedded_app`: the webhook routes mounted in a host Starlette app.

The host app (its own route, its own lifespan running wanotify's) is served by a real
uvicorn; a signed delivery posted under the mount path is journalled, applied to its
message and reported by the mounted health route.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import httpx
import pytest
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from core.sandbox import BackgroundServer
from core.settings import get_settings
from core.webhooks.app import embedded_app
from tests.core.webhooks.helpers import (
    T0,
    add_message,
    message_row,
    signed,
    status,
    statuses_body,
)

PREFIX = "/wanotify"


async def host_home(request: Request) -> PlainTextResponse:
    return PlainTextResponse("host")


@pytest.fixture
def host_url(engine: Engine) -> Iterator[str]:
    """A host app mounting wanotify at /wanotify (sandbox-mode secrets), under uvicorn."""
    webhooks = embedded_app(get_settings(), engine)
    started: list[str] = []

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with webhooks.lifespan(app):  # the host's own start-up work goes beside it
            started.append("wanotify")
            yield

    host = Starlette(routes=[Route("/", host_home), webhooks.mount(PREFIX)], lifespan=lifespan)
    server = BackgroundServer(host)
    url = server.start()
    assert started == ["wanotify"]
    yield url
    server.stop()


@pytest.mark.slow
def test_a_signed_delivery_through_the_mounted_routes_reaches_its_message(
    engine: Engine, host_url: str
) -> None:
    settings = get_settings()
    secret, verify = settings.app_secret, settings.verify_token
    assert secret and verify
    hook = f"{PREFIX}/api/v1/whatsapp/webhook"
    message = add_message(engine, wamid="wamid.EMBED1")
    body = statuses_body(status("wamid.EMBED1", "delivered", T0, callback=message))
    with httpx.Client(base_url=host_url, timeout=10) as http:
        assert http.get("/").text == "host"
        query = {"hub.mode": "subscribe", "hub.verify_token": verify, "hub.challenge": "42"}
        challenge = http.get(hook, params=query)
        assert challenge.status_code == 200 and challenge.text == "42"
        forged = http.post(hook, content=body, headers=signed(body, "wrong"))
        assert forged.status_code == 401
        accepted = http.post(hook, content=body, headers=signed(body, secret))
        assert accepted.status_code == 200 and accepted.text == "EVENT_RECEIVED"
        deadline = time.monotonic() + 30
        while message_row(engine, message)["status"] != "delivered":
            assert time.monotonic() < deadline, "the delivery was never applied"
            time.sleep(0.05)
        health = http.get(f"{PREFIX}/api/v1/whatsapp/health")
        assert health.status_code == 200 and health.json()["database"] == "ok"
        unsigned_event = http.post(f"{PREFIX}/api/v1/po-events", json={})
        assert unsigned_event.status_code in (401, 503)  # the ERP route is mounted, keyed
        assert http.post("/api/v1/whatsapp/webhook", content=body).status_code == 404
