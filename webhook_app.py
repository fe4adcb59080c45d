"""The webhook app: Meta's webhook endpoints, a thin Starlette layer over `core.webhooks`.

- `GET  /api/v1/whatsapp/webhook`  Meta's subscription check (echoes `hub.challenge`).
- `POST /api/v1/whatsapp/webhook`  signed events; 200 once they are durably journalled.
- `GET  /api/v1/whatsapp/health`   database, last event, backlog, held statuses.
- `GET  /metrics`                  Prometheus text.
- `POST /api/v1/po-events`         the ERP's "PO approved" events (`core.po_events.http`).

Serve it with `wanotify webhook` (or `uvicorn webhook_app:app`). More routes join through
`create_app(extra_routes=...)`; they reach the database and settings through
`request.app.state.engine` / `.settings` (and the pipeline through `.webhooks`).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from core.po_events.http import handle_http_po_event
from core.settings import Settings, get_settings
from core.webhooks.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from core.webhooks.runtime import Answer, ApplierTuning, WebhookRuntime

WEBHOOK_PATH = "/api/v1/whatsapp/webhook"
HEALTH_PATH = "/api/v1/whatsapp/health"
METRICS_PATH = "/metrics"
PO_EVENTS_PATH = "/api/v1/po-events"
SIGNATURE_HEADER = "x-hub-signature-256"

log = logging.getLogger("wanotify.webhook_app")


def _runtime(request: Request) -> WebhookRuntime:
    runtime: WebhookRuntime = request.app.state.webhooks
    return runtime


def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return False
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == "application/json"


async def _read_limited(request: Request, limit: int) -> bytes | None:
    """The body, or None as soon as it grows past `limit` bytes."""
    parts: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        parts.append(chunk)
    return b"".join(parts)


def _respond(answer: Answer) -> Response:
    return PlainTextResponse(answer.message, status_code=answer.status_code)


async def verify_subscription(request: Request) -> Response:
    """Meta's verification GET: echo `hub.challenge` when the verify token matches."""
    query = request.query_params
    challenge = _runtime(request).verify_subscription(
        query.get("hub.mode"), query.get("hub.verify_token"), query.get("hub.challenge")
    )
    if challenge is None:
        return PlainTextResponse("Forbidden", status_code=403)
    return PlainTextResponse(challenge, headers={"X-Content-Type-Options": "nosniff"})


async def receive_events(request: Request) -> Response:
    """Signed events: size and type checks here, signature and journal in the runtime."""
    runtime = _runtime(request)
    limit = runtime.max_body_bytes
    length = request.headers.get("content-length")
    if length is not None and not length.strip().isdigit():
        return _respond(runtime.reject("bad_content_length", 400, "invalid Content-Length"))
    if length is not None and int(length) > limit:
        return _respond(runtime.reject("too_large", 413, f"body over {limit} bytes"))
    if not _is_json(request.headers.get("content-type")):
        return _respond(
            runtime.reject("content_type", 415, "Content-Type must be application/json")
        )
    try:
        body = await _read_limited(request, limit)
    except ClientDisconnect:
        return _respond(runtime.reject("client_disconnected", 400, "client went away"))
    if body is None:
        return _respond(runtime.reject("too_large", 413, f"body over {limit} bytes"))
    try:
        answer = await runtime.receive(body, request.headers.get(SIGNATURE_HEADER))
    except Exception:  # never a 500: Meta keeps the event and retries after a 503
        log.exception("webhook POST failed")
        return _respond(runtime.reject("internal_error", 503, "temporarily unavailable"))
    return _respond(answer)


async def health(request: Request) -> Response:
    """Database reachability, time of the last event, backlog and held statuses."""
    runtime = _runtime(request)
    report = await runtime.health()
    body = report.as_dict()
    body["sandbox_mode"] = runtime.settings.sandbox_mode
    body["accepting_events"] = runtime.settings.app_secret is not None
    return JSONResponse(body, status_code=200 if report.database_ok else 503)


async def metrics(request: Request) -> Response:
    """Prometheus metrics of this process."""
    return Response(await _runtime(request).metrics_text(), media_type=METRICS_CONTENT_TYPE)


def routes() -> list[BaseRoute]:
    """The webhook app's own routes."""
    return [
        Route(WEBHOOK_PATH, verify_subscription, methods=["GET"]),
        Route(WEBHOOK_PATH, receive_events, methods=["POST"]),
        Route(HEALTH_PATH, health, methods=["GET"]),
        Route(METRICS_PATH, metrics, methods=["GET"]),
        Route(PO_EVENTS_PATH, handle_http_po_event, methods=["POST"]),
    ]


def create_app(
    settings: Settings | None = None,
    engine: Engine | None = None,
    *,
    tuning: ApplierTuning | None = None,
    extra_routes: Sequence[BaseRoute] = (),
) -> Starlette:
    """A webhook app; settings are read at startup when not given (so importing is free)."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        runtime = WebhookRuntime(settings or get_settings(), engine, tuning)
        await runtime.start()
        app.state.webhooks = runtime
        app.state.engine = runtime.engine
        app.state.settings = runtime.settings
        try:
            yield
        finally:
            await runtime.stop()

    return Starlette(routes=[*routes(), *extra_routes], lifespan=lifespan)


app = create_app()
