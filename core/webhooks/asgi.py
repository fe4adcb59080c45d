"""The webhook POST as a plain ASGI endpoint: Meta's peak rate without a framework's cost.

At ~3,000 events a second, Starlette's routing, middleware and Request objects cost more
CPU than checking, journalling and acknowledging the event itself. So `receive_post`
speaks ASGI directly for this one route (every other route stays in Starlette): it
checks Content-Length, Content-Type and size while reading, hands the body and its
signature to `WebhookRuntime.receive`, and answers in plain text. It never answers 500:
an unexpected error is a 503, which Meta retries. A refused signature is also counted by
the process's `RejectionRecorder` (in memory; written about once a second) for health.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from core.webhooks.rejections import RejectionRecorder
from core.webhooks.runtime import Answer, WebhookRuntime

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

SIGNATURE_HEADER = b"x-hub-signature-256"
_TEXT = [(b"content-type", b"text/plain; charset=utf-8")]

log = logging.getLogger(__name__)


def is_json(content_type: bytes | None) -> bool:
    """True for `application/json`, with or without parameters (charset), in any case."""
    if not content_type:
        return False
    return content_type.split(b";", 1)[0].strip().lower() == b"application/json"


def _headers(scope: Scope) -> dict[bytes, bytes]:
    """The request headers (lowercase names, as ASGI gives them); the first of repeats."""
    found: dict[bytes, bytes] = {}
    for name, value in scope.get("headers") or ():
        found.setdefault(name, value)
    return found


async def _read_limited(receive: Receive, limit: int) -> bytes | None:
    """The body, or None as soon as it grows past `limit`; ConnectionError if the client
    went away first."""
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionError("client disconnected")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        parts.append(chunk)
        if not message.get("more_body", False):
            return b"".join(parts)


async def respond(send: Send, answer: Answer) -> None:
    """Send `answer` as a plain-text response."""
    body = answer.message.encode()
    headers = [*_TEXT, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": answer.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def check_and_receive(runtime: WebhookRuntime, scope: Scope, receive: Receive) -> Answer:
    """The answer to one webhook POST: HTTP-level checks, then the runtime's own."""
    headers = _headers(scope)
    limit = runtime.max_body_bytes
    length = headers.get(b"content-length")
    if length is not None and not length.strip().isdigit():
        return runtime.reject("bad_content_length", 400, "invalid Content-Length")
    if length is not None and int(length) > limit:
        return runtime.reject("too_large", 413, f"body over {limit} bytes")
    if not is_json(headers.get(b"content-type")):
        return runtime.reject("content_type", 415, "Content-Type must be application/json")
    try:
        body = await _read_limited(receive, limit)
    except ConnectionError:
        return runtime.reject("client_disconnected", 400, "client went away")
    if body is None:
        return runtime.reject("too_large", 413, f"body over {limit} bytes")
    signature = headers.get(SIGNATURE_HEADER)
    text = signature.decode("latin-1") if signature is not None else None
    return await runtime.receive(body, text)


async def receive_post(
    runtime: WebhookRuntime,
    scope: Scope,
    receive: Receive,
    send: Send,
    rejections: RejectionRecorder | None = None,
) -> None:
    """Serve one `POST /api/v1/whatsapp/webhook`; 200 only once the body is journalled.
    A signature refusal is noted in `rejections` (when given) so health can show it."""
    try:
        answer = await check_and_receive(runtime, scope, receive)
    except Exception:  # never a 500: Meta keeps the event and retries after a 503
        log.exception("webhook POST failed")
        answer = runtime.reject("internal_error", 503, "temporarily unavailable")
    if rejections is not None and answer.status_code == 401:
        rejections.note(answer.reason)
    await respond(send, answer)
