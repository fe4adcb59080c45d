"""What happens to a message after Meta accepts it: the webhooks it will cause, and when.

Pure functions: given the accepted message, the configuration and the seed, the plan
(statuses, their delays and faults, the supplier's reply) is always the same, whatever
the timing or order of other sends. `core.sandbox.webhook_poster` carries plans out.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal

from core.sandbox import magic
from core.sandbox.config import SandboxConfig, SandboxNumber
from core.sandbox.numbers import magic_suffix
from core.sandbox.validation import ValidatedMessage
from core.sandbox.wire import make_wamid, status_error

#: Names suppliers' WhatsApp profiles show in inbound webhooks (picked per number).
PROFILE_NAMES = (
    "Harinas Martín",
    "Lácteos Ruiz",
    "Frutas Hermanos López",
    "Distribuciones Vega",
    "Aceites del Sur",
    "Envases Norte",
    "Cárnicas Prieto",
    "Papelera Central",
)
_TEXT_REPLIES = {"es": "Recibido, gracias. Lo servimos esta semana.", "en": "Received, thanks."}
_RANDOM_FAILURES = ((131026, "Message Undeliverable."),)
_MARKETING_FAILURE = (
    131049,
    "This message was not delivered to maintain healthy ecosystem engagement.",
)


@dataclass(slots=True)
class PlannedEvent:
    """One webhook event, `delay` seconds after it was planned.

    `kind` "status" and "message" payloads are a status object and an inbound-message
    change value; "envelope" payloads are a whole webhook body (template updates).
    """

    delay: float
    kind: Literal["status", "message", "envelope"]
    payload: dict[str, Any]
    #: wa_id whose customer-service window opens when this (inbound) event happens
    opens_window: str | None = None
    duplicate: bool = False
    reordered: bool = False
    #: the business number the event is about (its metadata); None: the first number
    phone_number_id: str | None = None


def profile_name(wa_id: str) -> str:
    """The WhatsApp profile name the sandbox gives a number (stable per number)."""
    return PROFILE_NAMES[zlib.crc32(wa_id.encode()) % len(PROFILE_NAMES)]


def pricing_for(message: ValidatedMessage) -> dict[str, Any]:
    """The `pricing` object Meta puts on chargeable statuses of this message."""
    if message.template is None:
        return {
            "billable": False,
            "pricing_model": "PMP",
            "category": "service",
            "type": "free_customer_service",
        }
    return {
        "billable": True,
        "pricing_model": "PMP",
        "category": message.pricing_category,
        "type": "regular",
    }


def plan_events(
    message: ValidatedMessage,
    wamid: str,
    config: SandboxConfig,
    accepted_at: float,
    number: SandboxNumber | None = None,
) -> list[PlannedEvent]:
    """Every webhook an accepted message will cause (delays already multiplied by time_scale),
    each about `number` (the one it was sent from; default the first).

    Statuses follow sent -> delivered -> read (0.2-1 s, +1-5 s, +5-60 s before scaling);
    faults (failure, reordering, a skipped delivered, duplicates) and the supplier's reply
    are drawn from a generator seeded with the sandbox seed and the wamid.
    """
    number = number or config.primary_number()
    events = _plan(message, wamid, config, accepted_at, number.display_phone_number)
    for event in events:
        event.phone_number_id = number.phone_number_id
    return events


def _plan(
    message: ValidatedMessage,
    wamid: str,
    config: SandboxConfig,
    accepted_at: float,
    display_phone_number: str,
) -> list[PlannedEvent]:
    suffix = magic_suffix(message.digits)
    if suffix == magic.SILENT:
        return []
    rng = random.Random(f"{config.seed}:{wamid}")
    scale = config.time_scale

    def stamp(at: float) -> str:
        return str(int(accepted_at + at * scale))

    def status(kind: str, at: float, **extra: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": wamid,
            "status": kind,
            "timestamp": stamp(at),
            "recipient_id": message.wa_id,
        }
        if message.biz_opaque is not None:
            body["biz_opaque_callback_data"] = message.biz_opaque
        body.update(extra)
        return body

    t_sent = rng.uniform(0.2, 1.0)
    failure = _failure(message, suffix, rng, config)
    if failure is not None:
        code, details = failure
        failed = status("failed", t_sent, errors=[status_error(code, details)])
        return _with_duplicates([PlannedEvent(t_sent * scale, "status", failed)], rng, config)

    reply_button = magic.REPLIES.get(suffix, -1)
    replies = suffix in magic.REPLIES
    if not replies and message.template is not None and _quick_replies(message):
        replies = rng.random() < config.reply_rate
        reply_button = 0 if rng.random() < 0.8 else len(_quick_replies(message)) - 1
    reads = replies or rng.random() < config.read_rate
    t_delivered = t_sent + rng.uniform(1.0, 5.0)
    t_read = t_delivered + rng.uniform(5.0, 60.0)
    reorder_draw, mode_draw = rng.random(), rng.random()
    pricing = pricing_for(message)

    events = [PlannedEvent(t_sent * scale, "status", status("sent", t_sent, pricing=pricing))]
    delivered = PlannedEvent(
        t_delivered * scale, "status", status("delivered", t_delivered, pricing=pricing)
    )
    read = PlannedEvent(t_read * scale, "status", status("read", t_read))
    skip_delivered = False
    if reads and reorder_draw < config.reorder_rate:
        if mode_draw < 0.5:  # delivered is posted after read (its timestamp stays earlier)
            delivered.delay = (t_read + rng.uniform(0.1, 2.0)) * scale
            delivered.reordered = True
        else:  # delivered never comes; read carries the pricing
            skip_delivered = True
            read.payload["pricing"] = pricing
            read.reordered = True
    if not skip_delivered:
        events.append(delivered)
    if reads:
        events.append(read)
    if replies:
        t_reply = t_read + rng.uniform(1.0, 20.0)
        reply = _reply_event(message, wamid, reply_button, t_reply, rng, config, stamp)
        reply.payload["messages"][0]["context"]["from"] = display_phone_number
        events.append(reply)
    return _with_duplicates(events, rng, config)


def _failure(
    message: ValidatedMessage, suffix: str, rng: random.Random, config: SandboxConfig
) -> tuple[int, str] | None:
    draw = rng.random()
    if suffix in magic.FAILS_LATER:
        code = magic.FAILS_LATER[suffix]
        if code == 132015:
            return code, "Template was paused while the message was held for quality assessment."
        return code, "Message Undeliverable."
    if draw < config.fail_rate:
        if message.pricing_category == "marketing":
            return _MARKETING_FAILURE
        return _RANDOM_FAILURES[int(draw * 1000) % len(_RANDOM_FAILURES)]
    return None


def _quick_replies(message: ValidatedMessage) -> list[dict[str, Any]]:
    if message.template is None:
        return []
    return [b for b in message.template.buttons if b.get("type") == "QUICK_REPLY"]


def _reply_event(
    message: ValidatedMessage,
    wamid: str,
    button: int | None,
    at: float,
    rng: random.Random,
    config: SandboxConfig,
    stamp: Callable[[float], str],
) -> PlannedEvent:
    buttons = _quick_replies(message)
    inbound: dict[str, Any] = {
        "from": message.wa_id,
        "id": make_wamid(message.wa_id, rng.getrandbits(72), inbound=True),
        "timestamp": stamp(at),
    }
    if button is not None and 0 <= button < len(buttons):
        label = str(buttons[button]["text"])
        inbound["type"] = "button"
        inbound["button"] = {
            "payload": message.button_payloads.get(button, label),
            "text": label,
        }
    else:
        language = message.template.language if message.template else "es"
        inbound["type"] = "text"
        inbound["text"] = {"body": _TEXT_REPLIES.get(language[:2], _TEXT_REPLIES["es"])}
    inbound["context"] = {"from": config.display_phone_number, "id": wamid}
    return PlannedEvent(
        at * config.time_scale,
        "message",
        inbound_value(message.wa_id, inbound),
        opens_window=message.wa_id,
    )


def inbound_value(wa_id: str, inbound: dict[str, Any], name: str | None = None) -> dict[str, Any]:
    """The `value` of an inbound-message webhook: the sender's contact and the message."""
    return {
        "contacts": [{"profile": {"name": name or profile_name(wa_id)}, "wa_id": wa_id}],
        "messages": [inbound],
    }


def _with_duplicates(
    events: list[PlannedEvent], rng: random.Random, config: SandboxConfig
) -> list[PlannedEvent]:
    result = list(events)
    for event in events:
        gap = rng.uniform(0.5, 5.0)
        if rng.random() < config.duplicate_rate:
            result.append(
                replace(event, delay=event.delay + gap * config.time_scale, duplicate=True)
            )
    return result
