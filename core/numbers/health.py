"""Asking Meta how a number stands: `GET /{phone_number_id}` with the health fields.

`check_number` reads the number's display number, verified name, quality rating,
messaging limit, name status, status and throughput level with the number's own token,
and stores the answer (or why there was none) on its row (`core.numbers.admin`), so the
Numbers page shows each number's health without asking Meta on every rerun. The token
travels only in the Authorization header; no answer or error repeats it.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import Engine

from core.errors import GraphError
from core.numbers.admin import NumberHealth, record_health
from core.numbers.errors import NumberError
from core.numbers.registry import sending_numbers
from core.settings import Settings

#: The fields asked for, but the messaging limit's (see `number_fields`).
NUMBER_FIELDS = "display_phone_number,verified_name,quality_rating,throughput,status,name_status"


def number_fields(api_version: str) -> str:
    """The fields for a Graph version: v24 and later name the messaging limit
    `whatsapp_business_manager_messaging_limit`, earlier ones `messaging_limit_tier`."""
    major = int(api_version[1:].split(".", 1)[0])
    limit = "whatsapp_business_manager_messaging_limit" if major >= 24 else "messaging_limit_tier"
    return f"{NUMBER_FIELDS},{limit}"


@dataclass(frozen=True)
class CheckOutcome:
    """The result of checking one number: Meta's report, or the error in one line."""

    phone_number_id: str
    health: NumberHealth | None
    error: str | None

    @property
    def ok(self) -> bool:
        """True when Meta answered with the number's fields."""
        return self.health is not None


def parse_health(body: dict[str, Any]) -> NumberHealth:
    """Meta's answer for a phone number node as a `NumberHealth` (unknown shapes → None)."""
    limit = body.get("whatsapp_business_manager_messaging_limit")
    if isinstance(limit, dict):
        limit = limit.get("current_limit") or limit.get("tier")
    throughput = body.get("throughput")
    return NumberHealth(
        display_number=_text(body.get("display_phone_number")),
        display_name=_text(body.get("verified_name")),
        quality_rating=_text(body.get("quality_rating")),
        messaging_tier=_text(limit) or _text(body.get("messaging_limit_tier")),
        name_status=_text(body.get("name_status")),
        status=_text(body.get("status")),
        throughput_level=_text(throughput.get("level")) if isinstance(throughput, dict) else None,
    )


async def read_health(
    settings: Settings,
    phone_number_id: str,
    access_token: str,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
) -> NumberHealth:
    """One Graph read of the number's health; a `GraphError` when Meta says no."""
    url = f"{settings.api_base_url}/{settings.whatsapp_api_version}/{phone_number_id}"
    timeout = min(settings.whatsapp_request_timeout, 20.0)
    async with httpx.AsyncClient(
        transport=transport, timeout=timeout, follow_redirects=False, trust_env=transport is None
    ) as client:
        try:
            response = await client.get(
                url,
                params={"fields": number_fields(settings.whatsapp_api_version)},
                headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"},
            )
        except httpx.TimeoutException:
            raise GraphError.transport(f"timeout after {timeout:g}s") from None
        except httpx.TransportError as exc:
            raise GraphError.transport(f"could not connect: {type(exc).__name__}") from None
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    if not response.is_success:
        raise GraphError.from_response(response.status_code, body)
    if not isinstance(body, dict):
        raise GraphError(
            code=None, message="Meta's answer is not a JSON object",
            http_status=response.status_code,
        )  # fmt: skip
    return parse_health(body)


def check_number(
    engine: Engine,
    settings: Settings,
    phone_number_id: str,
    *,
    tenant_id: str | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> CheckOutcome:
    """Ask Meta about a number that can send (of `tenant_id` if given) and store the answer.

    `NumberError` when the number is not known (or not that tenant's) or has no token;
    Meta's refusal (e.g. #190 token expired, #100 unknown id) is recorded on the row
    and returned as the outcome's error, never raised.
    """
    number = next(
        (n for n in sending_numbers(engine, settings) if n.phone_number_id == phone_number_id),
        None,
    )
    if number is None or (tenant_id is not None and number.tenant_id != tenant_id):
        owner = f" of tenant {tenant_id}" if tenant_id is not None else ""
        raise NumberError(f"number {phone_number_id[:40]!r} is not a sending number{owner}")
    if number.access_token is None:
        raise NumberError(f"number {phone_number_id} has no access token: add it again with one")
    token = number.access_token.get_secret_value()
    try:
        health = asyncio.run(read_health(settings, phone_number_id, token, transport=transport))
    except GraphError as exc:
        message = str(exc).replace(token, "***")[:500]
        record_health(engine, phone_number_id, None, error=message)
        return CheckOutcome(phone_number_id, None, message)
    record_health(engine, phone_number_id, health)
    return CheckOutcome(phone_number_id, health, None)


def _text(value: Any) -> str | None:
    return value[:120] if isinstance(value, str) and value else None
