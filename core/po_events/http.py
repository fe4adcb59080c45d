"""`POST /api/v1/po-events`: the "PO approved" event over HTTP, for ERPs without RabbitMQ.

Same validation, idempotency and outcomes as the RabbitMQ consumer (`handle_po_event`):

- new notice queued: 202 {"status": "enqueued", "message_id": ...}
- the PO was already notified (replay): 200 {"status": "duplicate", "message_id": ...}
- unusable event: 422 {"status": "rejected", "problems": [...]}
- body too large: 413, not JSON content: 415 (same body shape as 422)
- no, wrong or revoked API key, or two different keys: 401
  {"status": "unauthorized", "error": ...}
- an event for another tenant than the key's: 403 {"status": "forbidden", "error": ...};
  nothing is queued and no supplier is created
- no API key configured on the server: 503 {"status": "disabled", "error": ...}
- database unavailable: 503 {"status": "unavailable", ...} with Retry-After: retry later

Each key belongs to one tenant (`core.api_keys`): a stored key made with
`wanotify api-keys add --tenant T`, or `PO_EVENTS_API_KEY`, the default tenant's key. It
is sent as `Authorization: Bearer <key>` or `X-API-Key` (both only if they are equal).
The handler uses `request.app.state.engine` and `request.app.state.settings` when the app
sets them, else those of the webhook app's runtime (`app.state.webhooks`), else the
process defaults.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sqlalchemy import Engine
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from core.api_keys import KeyCheck, check_key
from core.po_events.intake import (
    TRANSIENT_DB_ERRORS,
    IntakeResult,
    handle_po_event,
    short_error,
)
from core.po_events.schema import MAX_EVENT_BYTES
from core.settings import Settings, get_settings

log = logging.getLogger(__name__)

DISABLED_MESSAGE = (
    "PO events API disabled: set PO_EVENTS_API_KEY or add a key with `wanotify api-keys add`"
)
_JSON_TYPES = ("application/json",)


async def handle_http_po_event(request: Request) -> Response:
    """Authenticate, read and enqueue one "PO approved" event; never 500 on bad input."""
    settings = _state(request, "settings", Settings) or get_settings()
    engine = _state(request, "engine", Engine)
    verdict = await _authenticate(request, settings, engine)
    if isinstance(verdict, Response):
        return verdict
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in _JSON_TYPES and not content_type.endswith("+json"):
        shown = content_type or "none"
        return _rejected(415, [f"send the event as application/json (got {shown})"])
    body = await _read_limited(request)
    if isinstance(body, Response):
        return body
    try:
        result = await asyncio.to_thread(
            handle_po_event, body, engine=engine, source="http", tenant_id=verdict.tenant_id
        )
    except TRANSIENT_DB_ERRORS as exc:
        log.warning("PO event over HTTP not processed: database unavailable (%s)", short_error(exc))
        return _unavailable()
    return _response(result)


async def _authenticate(
    request: Request, settings: Settings, engine: Engine | None
) -> KeyCheck | Response:
    """The verdict on the request's key when it is good; else the refusal to send."""
    presented = _presented_key(request)
    if isinstance(presented, Response):
        return presented
    configured = settings.po_events_api_key
    env_key = configured.get_secret_value() if configured is not None else None
    try:
        verdict = await asyncio.to_thread(
            check_key, presented, env_key=env_key, default_tenant=settings.default_tenant,
            engine=engine,
        )  # fmt: skip
    except TRANSIENT_DB_ERRORS as exc:
        log.warning("PO event over HTTP not checked: database unavailable (%s)", short_error(exc))
        return _unavailable()
    if verdict.outcome == "ok":
        return verdict
    if verdict.outcome == "disabled":
        return JSONResponse({"status": "disabled", "error": DISABLED_MESSAGE}, status_code=503)
    if verdict.outcome == "missing":
        return _unauthorized("missing API key: send Authorization: Bearer <key> or X-API-Key")
    if verdict.outcome == "revoked":
        log.warning(
            "PO event over HTTP refused: revoked API key %s... (from %s)",
            verdict.label, _client(request),
        )  # fmt: skip
        return _unauthorized("this API key was revoked")
    log.warning("PO event over HTTP refused: wrong API key (from %s)", _client(request))
    return _unauthorized("invalid API key")


def _presented_key(request: Request) -> str | Response | None:
    """The one key the request carries (None: none), or a 401 when it carries two.

    A key counts from `Authorization: Bearer <key>` or `X-API-Key`; the same key in both
    is fine, two different ones (or a header given twice) are refused rather than
    guessing which one a proxy or the ERP meant.
    """
    authorizations = request.headers.getlist("authorization")
    api_keys = request.headers.getlist("x-api-key")
    if len(authorizations) > 1 or len(api_keys) > 1:
        return _unauthorized("send one API key: a header was given more than once")
    scheme, _, token = (authorizations[0] if authorizations else "").strip().partition(" ")
    bearer = token.strip() if scheme.lower() == "bearer" else ""
    header_key = api_keys[0].strip() if api_keys else ""
    if bearer and header_key and bearer != header_key:  # both from the caller: no secret here
        return _unauthorized("send one API key: Authorization and X-API-Key differ")
    return bearer or header_key or None


def _unavailable() -> Response:
    return JSONResponse(
        {"status": "unavailable", "error": "the database is unavailable; retry later"},
        status_code=503,
        headers={"Retry-After": "5"},
    )


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
    if result.status == "forbidden":
        return JSONResponse({"status": "forbidden", "error": result.reason}, status_code=403)
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
