"""The sandbox's Starlette app: Meta's Cloud API routes plus the `/_sandbox/` controls.

`create_app(config)` is the ASGI factory (`uvicorn --factory core.sandbox.app:create_app`
works too: with no config it reads wanotify's settings).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.types import Receive, Scope, Send

from core.sandbox.admin import AdminError, admin_routes, json_response
from core.sandbox.config import SandboxConfig
from core.sandbox.graph_reads import list_templates, read_node
from core.sandbox.latency import draw_delay
from core.sandbox.planner import plan_events
from core.sandbox.send import (
    SendOutcome,
    bearer_token,
    check_token,
    check_version,
    decide_send,
)
from core.sandbox.state import SandboxState
from core.sandbox.template_create import create_template
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


#: The send route's path, matched by the fast path before Starlette's routing.
SEND_PATH = re.compile(r"/(?P<version>[^/]+)/(?P<phone_number_id>[^/]+)/messages")


async def _asgi_body(receive: Receive, limit: int, length: bytes | None) -> bytes | None:
    """The request body from ASGI messages, or None once it is known to exceed `limit`."""
    if length is not None and length.isdigit() and int(length) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()  # as Starlette's Request.stream(): nothing is decided
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _fast_send(sandbox: Sandbox, scope: Scope, receive: Receive, send: Send) -> None:
    """`POST .../messages` in plain ASGI: the same decision and bytes as `send_message`,
    without Starlette's request objects and middleware (the sandbox shares the CPU with
    the sender it measures: at 1,000 sends a second those cost as much as the decision)."""
    match = SEND_PATH.fullmatch(scope["path"])
    assert match is not None
    state = sandbox.state
    config = state.config
    headers: dict[bytes, bytes] = {}
    for name, value in scope["headers"]:
        headers.setdefault(name, value)  # the first of repeated headers, as Starlette reads
    try:
        raw = await _asgi_body(receive, config.max_body_bytes, headers.get(b"content-length"))
    except ClientDisconnect:
        return  # the client hung up mid-body: no answer, no send
    auth_header = headers.get(b"authorization")
    authorization = auth_header.decode("latin-1") if auth_header is not None else None
    query_token = None
    if not authorization and scope.get("query_string"):
        query_token = parse_qs(scope["query_string"].decode("latin-1")).get("access_token", [None])[
            0
        ]
    delay = draw_delay(config, state.latency_rng)
    if delay.before_arrival > 0:  # on its way: Meta counts the send when it arrives
        await asyncio.sleep(delay.before_arrival)
    wall = time.time()
    now = time.monotonic()
    outcome = decide_send(
        state,
        version=match["version"],
        phone_number_id=match["phone_number_id"],
        token=bearer_token(authorization, query_token),
        raw=raw,
        now=now,
        wall=wall,
    )
    _schedule_webhooks(sandbox, outcome, wall, now)
    if delay.after_arrival > 0:
        await asyncio.sleep(delay.after_arrival)
    response_headers = [
        (b"content-length", str(len(outcome.body)).encode()),
        (b"content-type", _JSON.encode()),
    ]
    if outcome.www_authenticate:
        response_headers.append(
            (b"www-authenticate", _WWW_AUTHENTICATE["WWW-Authenticate"].encode())
        )
    await send(
        {"type": "http.response.start", "status": outcome.status, "headers": response_headers}
    )
    await send({"type": "http.response.body", "body": outcome.body})


def _schedule_webhooks(sandbox: Sandbox, outcome: SendOutcome, wall: float, now: float) -> None:
    """Plan the accepted message's status webhooks, when the sandbox posts them."""
    config = sandbox.state.config
    accepted, message = outcome.accepted, outcome.message
    posting = config.webhooks_enabled and bool(config.webhook_url)
    if posting and accepted is not None and message is not None:
        number = sandbox.state.numbers.get(accepted.phone_number_id)
        profile = number.profile if number is not None else None
        sandbox.poster.schedule(plan_events(message, accepted.wamid, config, wall, profile), now)


class _SendEndpoint:
    """`send_message` as an ASGI app (Starlette's Route wraps plain functions as
    request/response handlers)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send_message(scope, receive, send)


class SandboxApp(Starlette):
    """Starlette for every route, except that a send POST takes the plain-ASGI fast path."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and SEND_PATH.fullmatch(scope["path"])
        ):
            scope["app"] = self
            await send_message(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


async def send_message(scope: Scope, receive: Receive, send: Send) -> None:
    """`POST /{version}/{phone_number_id}/messages` (ASGI): Meta's send, with latency and
    limits. `SandboxApp` calls it before Starlette's middleware; the route keeps Meta's
    answer to other methods on the path."""
    await _fast_send(scope["app"].state.sandbox, scope, receive, send)


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


async def create_message_template(request: Request) -> Response:
    """`POST /{version}/{waba_id}/message_templates`: a template submitted for review."""
    sandbox: Sandbox = request.app.state.sandbox
    state = sandbox.state
    try:
        check_version(request.path_params["version"], request.url.path)
        check_token(
            state,
            bearer_token(
                request.headers.get("authorization"), request.query_params.get("access_token")
            ),
        )
        raw = await request.body()
        if len(raw) > state.config.max_body_bytes:
            raise SandboxError(100, message="(#100) The request body is too large")
        body = create_template(sandbox, request.path_params["waba_id"], raw)
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
        node_id = request.path_params["node_id"]
        check_token(
            state,
            bearer_token(request.headers.get("authorization"), query.get("access_token")),
            state.numbers.get(node_id),  # a number's own token reads it
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

    app = SandboxApp(
        routes=[
            Mount("/_sandbox", routes=admin_routes()),
            Route("/{version}/{phone_number_id}/messages", _SendEndpoint(), methods=["POST"]),
            Route("/{version}/{waba_id}/message_templates", message_templates, methods=["GET"]),
            Route(
                "/{version}/{waba_id}/message_templates",
                create_message_template,
                methods=["POST"],
            ),
            Route("/{version}/{node_id}", graph_node, methods=["GET"]),
        ],
        exception_handlers={HTTPException: _http_error, AdminError: _admin_error},
        lifespan=lifespan,
    )
    app.state.sandbox = sandbox
    return app
