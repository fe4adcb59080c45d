"""Graph reads the product makes: the template list (cursor paging) and node fields.

`GET /{version}/{waba_id}/message_templates` and `GET /{version}/{node_id}?fields=...`
answer like Graph: only the requested fields plus `id`, `paging.next` as a full URL
only when there is a next page, Graph errors for unknown fields, ids and cursors.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from core.sandbox.catalog import (
    DEFAULT_TEMPLATE_FIELDS,
    TEMPLATE_FIELDS,
    decode_cursor,
    encode_cursor,
)
from core.sandbox.config import SandboxNumber
from core.sandbox.state import SandboxState
from core.sandbox.wire import SandboxError, unknown_object

DEFAULT_LIMIT = 25
MAX_LIMIT = 1000
_FILTERS = ("name", "status", "category", "language")


def parse_fields(
    raw: str | None, allowed: frozenset[str], default: tuple[str, ...], node: str
) -> tuple[str, ...]:
    """The requested `fields`, in order, without duplicates; Graph's error for unknown ones."""
    if raw is None or not raw.strip():
        return default
    fields: list[str] = []
    for name in (part.strip() for part in raw.split(",")):
        if not name:
            continue
        if name not in allowed:
            raise SandboxError(
                100,
                message=f"(#100) Tried accessing nonexisting field ({name}) on node type ({node})",
            )
        if name not in fields:
            fields.append(name)
    return tuple(fields) or default


def list_templates(
    state: SandboxState, version: str, waba_id: str, query: dict[str, str], base_url: str
) -> dict[str, Any]:
    """One page of the WABA's templates, Graph-shaped, with cursors and `next`/`previous`."""
    if waba_id not in _wabas(state):
        raise unknown_object(waba_id)
    fields = parse_fields(
        query.get("fields"), TEMPLATE_FIELDS, DEFAULT_TEMPLATE_FIELDS, "MessageTemplate"
    )
    limit = _limit(query.get("limit"))
    templates = state.catalog.filtered({k: query[k] for k in _FILTERS if k in query})
    start = 0
    if "after" in query:
        start = _cursor(query["after"]) + 1
    elif "before" in query:
        start = max(0, _cursor(query["before"]) - limit)
    page = templates[start : start + limit]
    result: dict[str, Any] = {"data": [t.as_graph(fields) for t in page]}
    if not page:
        return result
    end = start + len(page) - 1
    paging: dict[str, Any] = {
        "cursors": {"before": encode_cursor(start), "after": encode_cursor(end)}
    }
    path = f"{base_url.rstrip('/')}/{version}/{waba_id}/message_templates"
    kept = {k: v for k, v in query.items() if k not in ("after", "before")}
    if end + 1 < len(templates):
        paging["next"] = f"{path}?{urlencode({**kept, 'after': encode_cursor(end)})}"
    if start > 0:
        paging["previous"] = f"{path}?{urlencode({**kept, 'before': encode_cursor(start)})}"
    result["paging"] = paging
    return result


def _limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_LIMIT
    if not raw.isdigit() or int(raw) < 1:
        raise SandboxError(100, message="(#100) Param limit must be a positive integer")
    return min(int(raw), MAX_LIMIT)


def _cursor(raw: str) -> int:
    position = decode_cursor(raw)
    if position is None:
        raise SandboxError(100, message="(#100) Invalid cursor")
    return position


def read_node(
    state: SandboxState, version: str, node_id: str, raw_fields: str | None
) -> dict[str, Any]:
    """A phone number's health fields or a WABA's fields, as Graph returns them."""
    config = state.config
    default: tuple[str, ...]
    number = state.numbers.get(node_id)
    if number is not None:
        values = _phone_number_fields(number.profile, version)
        node, default = "WhatsAppBusinessPhoneNumber", PHONE_DEFAULT_FIELDS
    elif node_id in _wabas(state):
        values = {
            "name": f"{config.verified_name} WABA",
            "timezone_id": "1",
            "message_template_namespace": "6f0d8d4e_2b1a_4c9e_9d1e_sandbox000000",
            "currency": "EUR",
            "account_review_status": "APPROVED",
            "business_verification_status": "verified",
        }
        node, default = (
            "WhatsAppBusinessAccount",
            ("name", "timezone_id", "message_template_namespace"),
        )
    else:
        raise unknown_object(node_id)
    fields = parse_fields(raw_fields, frozenset(values) | {"id"}, default, node)
    result = {name: values[name] for name in fields if name != "id"}
    result["id"] = node_id
    return result


PHONE_DEFAULT_FIELDS = (
    "verified_name",
    "code_verification_status",
    "display_phone_number",
    "quality_rating",
    "platform_type",
    "throughput",
)


def _wabas(state: SandboxState) -> set[str]:
    """The WABA ids of every number the sandbox plays."""
    return {n.profile.waba_id or state.config.waba_id for n in state.numbers.values()}


def _phone_number_fields(number: SandboxNumber, version: str) -> dict[str, Any]:
    values: dict[str, Any] = {
        "display_phone_number": _display(number.display_phone_number),
        "verified_name": number.verified_name,
        "code_verification_status": "VERIFIED",
        "quality_rating": number.quality_rating,
        "platform_type": "CLOUD_API",
        "throughput": {"level": number.throughput_level},
        "status": "CONNECTED",
        "name_status": number.name_status,
        "account_mode": "LIVE",
        "is_official_business_account": False,
        "messaging_limit_tier": number.messaging_limit_tier,
        "whatsapp_business_manager_messaging_limit": number.messaging_limit_tier,
    }
    if _major(version) >= 24:  # the old name is gone from v24
        del values["messaging_limit_tier"]
    return values


def _major(version: str) -> int:
    return int(version[1:].split(".", 1)[0])


def _display(digits: str) -> str:
    """Meta's display form of the business number, e.g. '+34 910 00 00 00'."""
    if digits.startswith("34") and len(digits) == 11:
        national = digits[2:]
        return f"+34 {national[:3]} {national[3:5]} {national[5:7]} {national[7:]}"
    return f"+{digits}"
