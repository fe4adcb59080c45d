"""The sandbox's Starlette app: Meta's Cloud API routes plus the `/_sandbox/` controls.

`create_app(config)` is the ASGI factory (`uvicorn --factory core.sandbox.app:create_app`
works too: with no config it reads wanotify's settings).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from core.sandbox.admin import AdminError, admin_routes, json_response
from core.sandbox.config import SandboxConfig
from core.sandbox.graph_reads import list_templates, read_node
from core.sandbox.planner import plan_events
from core.sandbox.send import bearer_token, check_token, check_version, decide_send
from core.sandbox.state import SandboxState
from core.sandbox.webhook_poster import WebhookPoster
from core.sandbox.wire import SandboxError, unknown_path
from core.settings import get_settings

_JSON = "application/json"
_WWW_AUTHENTICATE = {
    "WWW-Authenticate": 'OAuth "Facebook Platform" "invalid_token" "Invalid OAuth access token"'
}


class Sandbox:
    """The running sandbox: its state and its webhook poster (one per app)."""

    def __init__(self, config: SandboxConfig) -> None:
        self.state = SandboxState(config)
        self.poster = WebhookPoster(self.state)

    def reset(self, *, seed: int | None = None, keep_config: bool = False) -> None:
        """Forget everything and drop webhooks not yet posted."""
        self.state.reset(seed=seed, keep_config=keep_config)
        self.poster.clear()


async def _read_body(request: Request, limit: int) -> bytes | None:
    """The request body, or None as soon as it is known to exceed `limit` bytes."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def send_message(request: Request) -> Response:
    """`POST /{version}/{phone_number_id}/messages`: Meta's send, with latency and limits."""
    sandbox: Sandbox = request.app.state.sandbox
    state = sandbox.state
    config = state.config
    raw = await _read_body(request, config.max_body_bytes)
    authorization = request.headers.get("authorization")
    query_token = None if authorization else request.query_params.get("access_token")
    wall = time.time()
    now = time.monotonic()
    outcome = decide_send(
        state,
        version=request.path_params["version"],
        phone_number_id=request.path_params["phone_number_id"],
        token=bearer_token(authorization, query_token),
        raw=raw,
        now=now,
        wall=wall,
    )
    accepted, message = outcome.accepted, outcome.message
    posting = config.webhooks_enabled and bool(config.webhook_url)
    if posting and accepted is not None and message is not None:
        sandbox.poster.schedule(plan_events(message, accepted.wamid, config, wall), now)
    if config.latency_ms > 0:
        await asyncio.sleep(config.latency_ms / 1000.0)
    headers = _WWW_AUTHENTICATE if outcome.www_authenticate else None
    return Response(outcome.body, outcome.status, headers=headers, media_type=_JSON)


def _graph_error(state: SandboxState, error: SandboxError) -> Response:
    headers = _WWW_AUTHENTICATE if error.code == 190 else None
    return Response(
        error.body(state.ids.fbtrace_id()), error.http_status, headers=headers, media_type=_JSON
    )


async def message_templates(request: Request) -> Response:
    """`GET /{version}/{waba_id}/message_templates`: the template list, cursor-paged."""
    sandbox: Sandbox = request.app.state.sandbox
    state = sandbox.state
    version = request.path_params["version"]
    waba_id = request.path_params["waba_id"]
    query = dict(request.query_params)
    try:
        check_version(version, request.url.path)
        check_token(
            state, bearer_token(request.headers.get("authorization"), query.get("access_token"))
        )
        body = list_templates(state, version, waba_id, query, str(request.base_url))
    except SandboxError as error:
        return _graph_error(state, error)
    return json_response(body)


async def graph_node(request: Request) -> Response:
    """`GET /{version}/{node_id}?fields=...`: phone number health or WABA fields."""
    sandbox: Sandbox = request.app.state.sandbox
    state = sandbox.state
    version = request.path_params["version"]
    query = request.query_params
    try:
        check_version(version, request.url.path)
        check_token(
            state, bearer_token(request.headers.get("authorization"), query.get("access_token"))
        )
        body = read_node(state, version, request.path_params["node_id"], query.get("fields"))
    except SandboxError as error:
        return _graph_error(state, error)
    return json_response(body)


async def _http_error(request: Request, exc: Exception) -> Response:
    sandbox: Sandbox = request.app.state.sandbox
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    if request.url.path.startswith("/_sandbox/"):
        return json_response({"error": getattr(exc, "detail", "error")}, status)
    if status == 405:
        error = SandboxError(
            100, message="(#100) Unsupported method for this path", http_status=405
        )
    else:
        error = unknown_path(request.url.path)
    return _graph_error(sandbox.state, error)


async def _admin_error(request: Request, exc: Exception) -> Response:
    return json_response({"error": str(exc)}, 400)


def create_app(config: SandboxConfig | None = None) -> Starlette:
    """A new sandbox app (its own state and webhook poster) for `config`."""
    sandbox = Sandbox(config or SandboxConfig.from_settings(get_settings()))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await sandbox.poster.start()
        try:
            yield
        finally:
            await sandbox.poster.stop()

    app = Starlette(
        routes=[
            Mount("/_sandbox", routes=admin_routes()),
            Route("/{version}/{phone_number_id}/messages", send_message, methods=["POST"]),
            Route("/{version}/{waba_id}/message_templates", message_templates, methods=["GET"]),
            Route("/{version}/{node_id}", graph_node, methods=["GET"]),
        ],
        exception_handlers={HTTPException: _http_error, AdminError: _admin_error},
        lifespan=lifespan,
    )
    app.state.sandbox = sandbox
    return app
