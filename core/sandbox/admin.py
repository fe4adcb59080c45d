"""Test and benchmark controls under `/_sandbox/` (no auth: the sandbox is loopback-only).

stats, config, inject, reset, messages, inbound (a supplier writes or taps a button),
numbers (the business numbers it plays) and template status changes (which post
Meta's `message_template_status_update` webhook).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from core.sandbox.config import ConfigError, SandboxNumber
from core.sandbox.numbers import recipient_digits, wa_id_for
from core.sandbox.planner import PlannedEvent, inbound_value
from core.sandbox.state import Injection
from core.sandbox.wire import SandboxError, default_http_status, template_status_envelope

if TYPE_CHECKING:
    from core.sandbox.app import Sandbox

MAX_ADMIN_BODY = 1024 * 1024
TEMPLATE_EVENTS = {
    "APPROVED": "APPROVED",
    "REJECTED": "REJECTED",
    "PENDING": "PENDING",
    "PAUSED": "PAUSED",
    "DISABLED": "DISABLED",
    "FLAGGED": "FLAGGED",
    "REINSTATED": "APPROVED",
}


class AdminError(ValueError):
    """A malformed admin request: answered 400 with the message."""


def json_response(data: Any, status: int = 200) -> Response:
    """A JSON response serialized with orjson."""
    return Response(orjson.dumps(data), status, media_type="application/json")


def _sandbox(request: Request) -> Sandbox:
    sandbox: Sandbox = request.app.state.sandbox
    return sandbox


async def _json_object(request: Request, *, optional: bool = False) -> dict[str, Any]:
    raw = await request.body()
    if len(raw) > MAX_ADMIN_BODY:
        raise AdminError("request body too large")
    if not raw.strip() and optional:
        return {}
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise AdminError("request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise AdminError("request body must be a JSON object")
    return data


def _int(data: dict[str, Any], name: str, default: int | None, low: int, high: int) -> int:
    value = data.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise AdminError(f"{name} must be an integer from {low} to {high}")
    return value


def _optional_str(data: dict[str, Any], name: str, max_len: int = 4096) -> str | None:
    value = data.get(name)
    if value is not None and (not isinstance(value, str) or not value or len(value) > max_len):
        raise AdminError(f"{name} must be a non-empty string of at most {max_len} characters")
    return value


def _wa_id(value: Any, name: str) -> str:
    try:
        return wa_id_for(recipient_digits(value))
    except SandboxError as exc:
        raise AdminError(f"{name}: {exc.details}") from None


async def health(request: Request) -> Response:
    """Liveness for `SandboxServer` and scripts."""
    return json_response({"ok": True})


async def stats(request: Request) -> Response:
    """Counters, the exact max accepted sends in any 1 s window, webhook progress."""
    sandbox = _sandbox(request)
    recipients = request.query_params.get("recipients", "1").lower() not in ("0", "false")
    result = sandbox.state.stats(recipients=recipients)
    result["webhooks"]["pending"] = sandbox.poster.pending
    return json_response(result)


async def config(request: Request) -> Response:
    """GET: the configuration (no secrets). POST: change runtime fields."""
    sandbox = _sandbox(request)
    if request.method == "POST":
        changes = await _json_object(request)
        try:
            sandbox.state.configure(changes)
        except ConfigError as exc:
            raise AdminError(str(exc)) from None
    return json_response(sandbox.state.config.public())


async def inject(request: Request) -> Response:
    """Make the next `count` sends (optionally only to `to`) fail with `code`."""
    sandbox = _sandbox(request)
    data = await _json_object(request)
    code = _int(data, "code", None, 0, 10_000_000)
    http_status = _int(data, "http_status", default_http_status(code), 200, 599)
    count = _int(data, "count", 1, 1, 10_000_000)
    to = data.get("to")
    wa_id = _wa_id(to, "to") if to is not None else None
    details = _optional_str(data, "details")
    number = _number_id(sandbox, data, required=False)
    sandbox.state.injections.append(Injection(code, http_status, count, wa_id, details, number))
    return json_response(
        {
            "code": code,
            "http_status": http_status,
            "count": count,
            "wa_id": wa_id,
            "phone_number_id": number,
            "injections": len(sandbox.state.injections),
        }
    )


async def reset(request: Request) -> Response:
    """Forget everything (and restore the initial config unless `keep_config`)."""
    sandbox = _sandbox(request)
    data = await _json_object(request, optional=True)
    seed = data.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise AdminError("seed must be an integer")
    keep = data.get("keep_config", False)
    if not isinstance(keep, bool):
        raise AdminError("keep_config must be true or false")
    sandbox.reset(seed=seed, keep_config=keep)
    return json_response({"ok": True, "generation": sandbox.state.generation})


async def messages(request: Request) -> Response:
    """The accepted messages (request bodies included), filtered by `to` or `biz_opaque`."""
    state = _sandbox(request).state
    query = request.query_params
    selected = list(state.messages)
    if "to" in query:
        wa_id = _wa_id(query["to"], "to")
        selected = [m for m in selected if m.wa_id == wa_id]
    if "biz_opaque" in query:
        selected = [m for m in selected if m.biz_opaque == query["biz_opaque"]]
    if "phone_number_id" in query:
        selected = [m for m in selected if m.phone_number_id == query["phone_number_id"]]
    limits = {
        name: query.get(name, default) for name, default in (("offset", "0"), ("limit", "1000"))
    }
    if not all(v.isdigit() for v in limits.values()):
        raise AdminError("offset and limit must be non-negative integers")
    offset, limit = int(limits["offset"]), int(limits["limit"])
    page = selected[offset : offset + limit]
    return json_response({"total": len(selected), "data": [m.public() for m in page]})


async def inbound(request: Request) -> Response:
    """A supplier writes: post a signed inbound webhook now and open their 24 h window.

    Body: `from` and one of `text`, `button` {text, payload?}, or `button_index` (with
    `context_id`, the wamid of our template message: label and payload are taken from
    it); optional `context_id`, `name` (the WhatsApp profile name) and
    `phone_number_id` (the business number written to; default: the first).
    """
    sandbox = _sandbox(request)
    state = sandbox.state
    data = await _json_object(request)
    number = state.numbers[_number_id(sandbox, data, required=True) or ""].profile
    wa_id = _wa_id(data.get("from"), "from")
    context_id = _optional_str(data, "context_id", 512)
    name = _optional_str(data, "name", 256)
    message: dict[str, Any] = {
        "from": wa_id,
        "id": state.ids.inbound_wamid(wa_id),
        "timestamp": str(int(time.time())),
    }
    if "button_index" in data:
        message["type"] = "button"
        message["button"] = _button_from_context(sandbox, data, context_id)
    elif "button" in data:
        button = data["button"]
        label = button.get("text") if isinstance(button, dict) else None
        payload = button.get("payload", label) if isinstance(button, dict) else None
        if not isinstance(label, str) or not label or not isinstance(payload, str):
            raise AdminError("button must be an object with a text (and optional payload)")
        message["type"] = "button"
        message["button"] = {"payload": payload, "text": label}
    elif "text" in data:
        message["type"] = "text"
        message["text"] = {"body": _optional_str(data, "text")}
    else:
        raise AdminError("give one of text, button or button_index")
    if context_id is not None:
        message["context"] = {"from": number.display_phone_number, "id": context_id}
    value = inbound_value(wa_id, message, name)
    now = time.monotonic()
    state.open_window(wa_id, now, number.phone_number_id)
    state.inbound_count += 1
    event = PlannedEvent(0.0, "message", value, phone_number_id=number.phone_number_id)
    sandbox.poster.schedule([event], now)
    config = state.config
    return json_response(
        {
            "id": message["id"],
            "wa_id": wa_id,
            "value": value,
            "posting": bool(config.webhooks_enabled and config.webhook_url),
        }
    )


def _number_id(sandbox: Sandbox, data: dict[str, Any], *, required: bool) -> str | None:
    """The request's `phone_number_id` (one the sandbox plays); without one, the first
    number when `required`, else None (any number)."""
    ident = data.get("phone_number_id")
    if ident is None:
        return sandbox.state.config.phone_number_id if required else None
    if not isinstance(ident, str) or ident not in sandbox.state.numbers:
        raise AdminError("phone_number_id must be one of the sandbox's numbers")
    return ident


async def numbers(request: Request) -> Response:
    """GET: every business number (no tokens) with its counters. POST: add a number or
    change one (`phone_number_id` plus the fields to set: mps, pair_burst, quality_rating,
    messaging_limit_tier, name_status, access_token...); its limits follow at once."""
    sandbox = _sandbox(request)
    state = sandbox.state
    if request.method == "POST":
        data = await _json_object(request)
        ident = data.get("phone_number_id")
        try:
            known = state.numbers.get(ident) if isinstance(ident, str) else None
            number = known.profile.merged(data) if known is not None else SandboxNumber.parse(data)
            state.set_number(number)
        except ConfigError as exc:
            raise AdminError(str(exc)) from None
    return json_response(
        {"data": [{**n.profile.public(), "stats": n.stats()} for n in state.numbers.values()]}
    )


def _button_from_context(
    sandbox: Sandbox, data: dict[str, Any], context_id: str | None
) -> dict[str, str]:
    index = _int(data, "button_index", None, 0, 9)
    original = sandbox.state.by_wamid.get(context_id or "")
    if original is None or original.template_name is None or original.language is None:
        raise AdminError("button_index needs context_id: the wamid of an accepted template")
    template = sandbox.state.catalog.get(original.template_name, original.language)
    buttons = [b for b in (template.buttons if template else []) if b.get("type") == "QUICK_REPLY"]
    if index >= len(buttons):
        raise AdminError(f"the template has no quick-reply button {index}")
    label = str(buttons[index]["text"])
    payload = label
    for component in original.body.get("template", {}).get("components", []):
        if component.get("type", "").lower() == "button" and str(component.get("index")) == str(
            index
        ):
            for param in component.get("parameters", []):
                if param.get("type") == "payload":
                    payload = str(param.get("payload"))
    return {"payload": payload, "text": label}


async def template_status(request: Request) -> Response:
    """Change a template's status and post the `message_template_status_update` webhook."""
    sandbox = _sandbox(request)
    state = sandbox.state
    data = await _json_object(request)
    name = _optional_str(data, "name", 512)
    language = _optional_str(data, "language", 15)
    event = data.get("event") or data.get("status")
    if name is None or language is None or event not in TEMPLATE_EVENTS:
        raise AdminError(f"give name, language and event (one of {', '.join(TEMPLATE_EVENTS)})")
    template = state.catalog.get(name, language)
    if template is None:
        raise AdminError(f"no template {name} in {language}")
    template.status = TEMPLATE_EVENTS[event]
    value = {
        "event": event,
        "message_template_id": int(template.id),
        "message_template_name": name,
        "message_template_language": language,
        "reason": _optional_str(data, "reason", 256) or "NONE",
    }
    envelope = template_status_envelope(state.config.waba_id, int(time.time()), value)
    sandbox.poster.schedule([PlannedEvent(0.0, "envelope", envelope)])
    return json_response(
        {"template": template.as_graph(("name", "language", "status")), "webhook": envelope}
    )


def admin_routes() -> list[Route]:
    """The `/_sandbox/*` routes (mounted by `create_app`)."""
    return [
        Route("/health", health, methods=["GET"]),
        Route("/stats", stats, methods=["GET"]),
        Route("/config", config, methods=["GET", "POST"]),
        Route("/inject", inject, methods=["POST"]),
        Route("/reset", reset, methods=["POST"]),
        Route("/messages", messages, methods=["GET"]),
        Route("/inbound", inbound, methods=["POST"]),
        Route("/numbers", numbers, methods=["GET", "POST"]),
        Route("/templates/status", template_status, methods=["POST"]),
    ]
