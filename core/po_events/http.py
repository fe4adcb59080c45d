"""`POST /api/v1/po-events`: the "PO approved" event over HTTP, for ERPs without RabbitMQ.

Same validation, idempotency and outcomes as the RabbitMQ consumer (`handle_po_event`):

- new notice queued: 202 {"status": "enqueued", "message_id": ...}
- the PO was already notified (replay): 200 {"status": "duplicate", "message_id": ...}
- unusable event: 422 {"status": "rejected", "problems": [...]}
- body too large: 413, not JSON content: 415 (same body shape as 422)
- no or wrong API key: 401 {"status": "unauthorized", "error": ...}
- no API key configured on the server: 503 {"status": "disabled", "error": ...}
- database unavailable: 503 {"status": "unavailable", ...} with Retry-After: retry later

The key is `PO_EVENTS_API_KEY`, sent as `Authorization: Bearer <key>` or `X-API-Key`.
The handler uses `request.app.state.engine` and `request.app.state.settings` when the app
sets them, else those of the webhook app's runtime (`app.state.webhooks`), else the
process defaults.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from typing import Any

from sqlalchemy import Engine
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from core.po_events.intake import (
    TRANSIENT_DB_ERRORS,
    IntakeResult,
    handle_po_event,
    short_error,
)
from core.po_events.schema import MAX_EVENT_BYTES
from core.settings import Settings, get_settings

log = logging.getLogger(__name__)

DISABLED_MESSAGE = "PO events API disabled: set PO_EVENTS_API_KEY"
_JSON_TYPES = ("application/json",)


async def handle_http_po_event(request: Request) -> Response:
    """Authenticate, read and enqueue one "PO approved" event; never 500 on bad input."""
    settings = _state(request, "settings", Settings) or get_settings()
    refusal = _authenticate(request, settings)
    if refusal is not None:
        return refusal
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in _JSON_TYPES and not content_type.endswith("+json"):
        shown = content_type or "none"
        return _rejected(415, [f"send the event as application/json (got {shown})"])
    body = await _read_limited(request)
    if isinstance(body, Response):
        return body
    engine = _state(request, "engine", Engine)
    try:
        result = await asyncio.to_thread(handle_po_event, body, engine=engine, source="http")
    except TRANSIENT_DB_ERRORS as exc:
        log.warning("PO event over HTTP not processed: database unavailable (%s)", short_error(exc))
        return JSONResponse(
            {"status": "unavailable", "error": "the database is unavailable; retry later"},
            status_code=503,
            headers={"Retry-After": "5"},
        )
    return _response(result)


def _authenticate(request: Request, settings: Settings) -> Response | None:
    """None when the request carries the configured key; else the refusal to send."""
    configured = settings.po_events_api_key
    expected = configured.get_secret_value() if configured is not None else ""
    if not expected:
        return JSONResponse({"status": "disabled", "error": DISABLED_MESSAGE}, status_code=503)
    presented = _presented_key(request)
    if presented is None:
        return _unauthorized("missing API key: send Authorization: Bearer <key> or X-API-Key")
    if not hmac.compare_digest(presented.encode("utf-8"), expected.encode("utf-8")):
        log.warning("PO event over HTTP refused: wrong API key (from %s)", _client(request))
        return _unauthorized("invalid API key")
    return None


def _presented_key(request: Request) -> str | None:
    authorization = request.headers.get("authorization", "")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    key = request.headers.get("x-api-key", "").strip()
    return key or None


def _unauthorized(error: str) -> Response:
    return JSONResponse(
        {"status": "unauthorized", "error": error},
        status_code=401,
        headers={"WWW-Authenticate": 'Bearer realm="wanotify po-events"'},
    )


async def _read_limited(request: Request) -> bytes | Response:
    """The body, or a 413 as soon as it is known to exceed the event size limit."""
    too_large = _rejected(413, [f"the event is larger than the limit of {MAX_EVENT_BYTES:,} bytes"])
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_EVENT_BYTES:
        return too_large
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_EVENT_BYTES:
                return too_large
            chunks.append(chunk)
    except ClientDisconnect:
        return _rejected(400, ["the client disconnected before the event was read"])
    return b"".join(chunks)


def _response(result: IntakeResult) -> Response:
    if result.status == "rejected":
        return _rejected(422, list(result.problems))
    body: dict[str, Any] = {
        "status": result.status,
        "message_id": result.message_id,
        "event_id": result.event_id,
        "po_number": result.po_number,
    }
    if result.reason:
        body["reason"] = result.reason
    return JSONResponse(body, status_code=202 if result.status == "enqueued" else 200)


def _rejected(status_code: int, problems: list[str]) -> Response:
    return JSONResponse({"status": "rejected", "problems": problems}, status_code=status_code)


def _state(request: Request, name: str, kind: type[Any]) -> Any:
    """`app.state.<name>`, or the webhook runtime's `<name>`, if it is a `kind`."""
    for holder in (request.app.state, getattr(request.app.state, "webhooks", None)):
        value = getattr(holder, name, None)
        if isinstance(value, kind):
            return value
    return None


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"
