"""The webhook app: Meta's webhook endpoints, a thin ASGI layer over `core.webhooks`.

It lives in `core` so an installed wanotify can serve or embed it; the top-level
`webhook_app.py` is the module uvicorn serves (`webhook_app:app`).

- `GET  /api/v1/whatsapp/webhook`  Meta's subscription check (echoes `hub.challenge`).
- `POST /api/v1/whatsapp/webhook`  signed events; 200 once they are durably journalled.
- `GET  /api/v1/whatsapp/health`   mode, database, last event, backlog, held statuses,
                                   signatures refused since the last valid delivery.
- `GET  /metrics`                  Prometheus text.
- `POST /api/v1/po-events`         the ERP's "PO approved" events (`core.po_events.http`).

Serve it with `wanotify webhook` (or `uvicorn webhook_app:app`). The event POST is served
by `core.webhooks.asgi` directly (at Meta's peak a framework's routing costs more than
the event); every other route is Starlette's. More routes join through
`create_app(extra_routes=...)`; they reach the database and settings through
`request.app.state.engine` / `.settings` (and the pipeline through `.webhooks`).
`embedded_app()` gives the same routes to mount inside another Starlette/FastAPI app.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.datastructures import State
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from core import heap
from core.po_events.http import handle_http_po_event
from core.settings import Settings, get_settings
from core.webhooks.asgi import Receive, Scope, Send, receive_post, respond
from core.webhooks.health import last_delivery_at
from core.webhooks.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from core.webhooks.rejections import RejectionRecorder
from core.webhooks.runtime import Answer, ApplierTuning, WebhookRuntime

WEBHOOK_PATH = "/api/v1/whatsapp/webhook"
HEALTH_PATH = "/api/v1/whatsapp/health"
METRICS_PATH = "/metrics"
PO_EVENTS_PATH = "/api/v1/po-events"

log = logging.getLogger("wanotify.webhook_app")


def _runtime(request: Request) -> WebhookRuntime:
    runtime: WebhookRuntime = request.app.state.webhooks
    return runtime


async def verify_subscription(request: Request) -> Response:
    """Meta's verification GET: echo `hub.challenge` when the verify token matches."""
    query = request.query_params
    challenge = _runtime(request).verify_subscription(
        query.get("hub.mode"), query.get("hub.verify_token"), query.get("hub.challenge")
    )
    if challenge is None:
        return PlainTextResponse("Forbidden", status_code=403)
    return PlainTextResponse(challenge, headers={"X-Content-Type-Options": "nosniff"})


async def health(request: Request) -> Response:
    """Mode, database reachability, time of the last event, backlog, held statuses and
    refused signatures (`degraded`, with the cause, while no valid delivery followed)."""
    runtime = _runtime(request)
    report = await runtime.health()
    body = {"mode": runtime.settings.mode, **report.as_dict()}
    body["sandbox_mode"] = runtime.settings.sandbox_mode
    body["accepting_events"] = runtime.settings.app_secret is not None
    return JSONResponse(body, status_code=200 if report.database_ok else 503)


async def metrics(request: Request) -> Response:
    """Prometheus metrics of this process."""
    return Response(await _runtime(request).metrics_text(), media_type=METRICS_CONTENT_TYPE)


def routes() -> list[BaseRoute]:
    """The Starlette routes (the event POST is served before them, by `WebhookApp`)."""
    return [
        Route(WEBHOOK_PATH, verify_subscription, methods=["GET"]),
        Route(HEALTH_PATH, health, methods=["GET"]),
        Route(METRICS_PATH, metrics, methods=["GET"]),
        Route(PO_EVENTS_PATH, handle_http_po_event, methods=["POST"]),
    ]


class WebhookApp:
    """The ASGI app: the event POST straight to `core.webhooks.asgi`, the rest to Starlette."""

    def __init__(self, starlette: Starlette) -> None:
        self.starlette = starlette

    @property
    def state(self) -> State:
        """The Starlette app's state (`webhooks`, `engine`, `settings` once started)."""
        return self.starlette.state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Dispatch one ASGI connection."""
        if scope["type"] == "http" and scope["method"] == "POST" and _path(scope) == WEBHOOK_PATH:
            runtime = getattr(self.starlette.state, "webhooks", None)
            if runtime is None:  # not started (or stopping): Meta retries a 503
                await respond(send, Answer(503, "not_started", "webhook app is not running"))
                return
            rejections = getattr(self.starlette.state, "rejections", None)
            await receive_post(runtime, scope, receive, send, rejections)
            return
        await self.starlette(scope, receive, send)


def _path(scope: Scope) -> str:
    """The request's path inside this app (below a host's `Mount`, its `root_path` off)."""
    path: str = scope["path"]
    root = scope.get("root_path", "")
    if root and path.startswith(root) and path[len(root) : len(root) + 1] in ("", "/"):
        return path[len(root) :]
    return path


def create_app(
    settings: Settings | None = None,
    engine: Engine | None = None,
    *,
    tuning: ApplierTuning | None = None,
    extra_routes: Sequence[BaseRoute] = (),
) -> WebhookApp:
    """A webhook app; settings are read at startup when not given (so importing is free)."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        runtime = WebhookRuntime(settings or get_settings(), engine, tuning)
        await runtime.start()
        heap.freeze_start_up_heap()  # full collections walk only what requests create
        app.state.rejections = RejectionRecorder(runtime.engine, last_delivery_at)
        app.state.webhooks = runtime
        app.state.engine = runtime.engine
        app.state.settings = runtime.settings
        try:
            yield
        finally:
            await runtime.stop()
            del app.state.webhooks
            await app.state.rejections.close()

    return WebhookApp(Starlette(routes=[*routes(), *extra_routes], lifespan=lifespan))


class EmbeddedWebhooks:
    """wanotify's webhook and PO-event routes inside another Starlette or FastAPI app.

    Mount `app` (or `mount(path)`) under the host, and run `lifespan` for as long as the
    host runs: the same signature checks, journal (200 only once an event is durable) and
    applier as `wanotify webhook`. README: "Embedding wanotify in a Python service".
    """

    def __init__(self, app: WebhookApp) -> None:
        self.app = app

    def lifespan(self, _host: object = None) -> AbstractAsyncContextManager[Any]:
        """Start the pipeline on entry and stop it (finishing journalled work) on exit.
        Pass it as the host's `lifespan=`, or enter it inside the host's own lifespan."""
        return self.app.starlette.router.lifespan_context(self.app.starlette)

    def mount(self, path: str = "/wanotify") -> Mount:
        """A route mounting the webhook app at `path` (Meta's callback URL is then
        `{host}{path}/api/v1/whatsapp/webhook`)."""
        return Mount(path, app=self.app)


def embedded_app(
    settings: Settings | None = None,
    engine: Engine | None = None,
    *,
    tuning: ApplierTuning | None = None,
) -> EmbeddedWebhooks:
    """The webhook and PO-event routes as an ASGI app for a host to mount, with the
    lifespan the host must run (a mounted app's own lifespan is never started)."""
    return EmbeddedWebhooks(create_app(settings, engine, tuning=tuning))

