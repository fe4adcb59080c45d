"""The decision for one `POST /{version}/{phone_number_id}/messages`: accept or which error.

Checks run in Meta's order: token, path object, body, message validation, then the
faults a test asked for (injections, magic numbers), the customer-service window, the
throughput cap and the pair limit. Limits are committed only for accepted sends.
Synchronous and free of I/O so the hot path stays lean.
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass

import orjson

from core.sandbox import magic
from core.sandbox.numbers import magic_suffix
from core.sandbox.state import AcceptedMessage, NumberState, SandboxState
from core.sandbox.validation import ValidatedMessage, validate_message
from core.sandbox.wire import (
    SandboxError,
    expired_token,
    invalid_token,
    success_body,
    unknown_object,
    unknown_path,
)

VERSION = re.compile(r"v\d{1,3}\.\d{1,2}")


@dataclass(slots=True)
class SendOutcome:
    """The HTTP answer to a send, and the accepted message (None when rejected)."""

    status: int
    body: bytes
    accepted: AcceptedMessage | None = None
    message: ValidatedMessage | None = None
    www_authenticate: bool = False


def bearer_token(authorization: str | None, query_token: str | None) -> str | None:
    """The access token from `Authorization: Bearer ...` or the `access_token` query."""
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() in ("bearer", "oauth"):
            return token.strip()
        return None
    return query_token


def check_token(state: SandboxState, token: str | None, number: NumberState | None = None) -> None:
    """SandboxError 190 unless `token` is `number`'s access token (without a number: any
    number's), compared in constant time. Each number has its own token."""
    if number is None:
        if not state.known_token(token):
            raise invalid_token()
        return
    expected = (number.profile.access_token or state.config.access_token).encode()
    if token is None or not hmac.compare_digest(token.encode(), expected):
        raise invalid_token()


def check_version(version: str, path: str) -> None:
    """SandboxError unless `version` looks like a Graph version (vNN.N)."""
    if not VERSION.fullmatch(version):
        raise unknown_path(path)


def decide_send(
    state: SandboxState,
    *,
    version: str,
    phone_number_id: str,
    token: str | None,
    raw: bytes | None,
    now: float,
    wall: float,
) -> SendOutcome:
    """Accept the message or return Meta's error; `raw` None means the body was too big.

    The path's number decides the token, the cap, the pair limit and the counters."""
    number = state.numbers.get(phone_number_id)
    try:
        check_version(version, f"/{version}/{phone_number_id}/messages")
        check_token(state, token, number)
        if number is None:
            raise unknown_object(phone_number_id)
        if raw is None:
            raise SandboxError(
                100,
                f"The request body exceeds {state.config.max_body_bytes} bytes.",
                http_status=413,
            )
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise SandboxError(100, "The request body is not valid JSON.") from None
        message = validate_message(body, state.catalog)
        message_status = _check_faults(state, number, message, now)
    except SandboxError as error:
        state.rejected[error.code] += 1
        if number is not None:
            number.rejected[error.code] += 1
        return SendOutcome(
            error.http_status,
            error.body(state.ids.fbtrace_id()),
            www_authenticate=error.code == 190,
        )
    number.throughput.commit(now)
    number.pairs.commit(message.wa_id, now)
    wamid = state.ids.wamid(message.wa_id)
    template = message.template
    accepted = AcceptedMessage(
        wamid=wamid,
        to=message.to,
        wa_id=message.wa_id,
        type=message.type,
        template_name=template.name if template else None,
        language=template.language if template else None,
        category=message.pricing_category,
        biz_opaque=message.biz_opaque,
        message_status=message_status,
        raw_body=raw,
        accepted_at=wall,
        accepted_monotonic=now,
        phone_number_id=phone_number_id,
    )
    state.record_accept(accepted)
    return SendOutcome(
        200, success_body(message.to, message.wa_id, wamid, message_status), accepted, message
    )


def _check_faults(
    state: SandboxState, number: NumberState, message: ValidatedMessage, now: float
) -> str:
    """Raise the fault this send meets, if any; else the `message_status` to answer."""
    ident = number.profile.phone_number_id
    injection = state.take_injection(message.wa_id, ident) if state.injections else None
    if injection is not None:
        raise SandboxError(injection.code, injection.details, http_status=injection.http_status)
    suffix = magic_suffix(message.digits)
    if suffix == magic.TOKEN_EXPIRED:
        raise expired_token()
    if suffix in magic.ALWAYS:
        code, http_status = magic.ALWAYS[suffix]
        raise SandboxError(code, http_status=http_status)
    if suffix in magic.ONCE and (suffix, message.wa_id) not in state.once_used:
        state.once_used.add((suffix, message.wa_id))
        code = magic.ONCE[suffix]
        details = "Cloud API message throughput has been reached." if code == 130429 else None
        raise SandboxError(code, details)
    if message.free_form and (
        suffix == magic.WINDOW_CLOSED or not state.window_open(message.wa_id, now, ident)
    ):
        raise SandboxError(
            131047,
            "Message failed to send because more than 24 hours have passed since the "
            "customer last replied to this number.",
        )
    if message.digits == number.profile.display_phone_number:
        raise SandboxError(131021, "Recipient phone number is the sender's own number.")
    if not number.throughput.available(now):
        raise SandboxError(130429, "Cloud API message throughput has been reached.")
    if not number.pairs.available(message.wa_id, now):
        raise SandboxError(
            131056,
            "Message failed to send because there were too many messages sent from "
            "this phone number to the same phone number in a short period of time.",
        )
    return "held_for_quality_assessment" if suffix == magic.TEMPLATE_PAUSED else "accepted"
