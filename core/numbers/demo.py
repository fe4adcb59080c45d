"""The demo's second business: a tenant with a number of its own (sandbox mode only).

The default tenant sends from the environment's number (the sandbox's own); the demo
adds a second tenant, `norte`, with its own number in its own WhatsApp Business Account,
so the Numbers page, the per-number health and the routing by number have something to
show. The running sandbox is told to play that number (`POST /_sandbox/numbers`), and
the number is stored without a token (in sandbox mode: the sandbox's public one).
Idempotent: a second call adds nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import httpx
from sqlalchemy import Engine

from core.numbers.admin import add_number, list_numbers
from core.numbers.errors import NumberError
from core.settings import Settings

log = logging.getLogger(__name__)

DEMO_SECOND_TENANT = "norte"


@dataclass(frozen=True)
class DemoNumber:
    """A number the demo registers, as the sandbox plays it."""

    tenant_id: str
    phone_number_id: str
    waba_id: str
    display_digits: str  # as Meta stores it: country code and number, digits only
    display_name: str
    max_mps: int = 80
    quality_rating: str = "GREEN"
    messaging_limit_tier: str = "TIER_2K"


DEMO_NUMBERS: tuple[DemoNumber, ...] = (
    DemoNumber(
        tenant_id=DEMO_SECOND_TENANT,
        phone_number_id="106540352242923",
        waba_id="102290129340399",
        display_digits="34910000001",
        display_name="Panadería Norte",
        quality_rating="YELLOW",
    ),
)


def seed_demo_numbers(engine: Engine, settings: Settings, *, timeout: float = 10.0) -> int:
    """Make the running sandbox play the demo numbers and store them; how many were new.

    Refused outside sandbox mode (a demo number must never be a live tenant's). A
    sandbox that cannot be reached is logged and the numbers are stored anyway (its
    health check then says why).
    """
    if not settings.sandbox_mode:
        raise NumberError("demo numbers exist only in sandbox mode")
    for number in DEMO_NUMBERS:
        try:
            httpx.post(
                f"{settings.api_base_url}/_sandbox/numbers",
                json={
                    "phone_number_id": number.phone_number_id, "waba_id": number.waba_id,
                    "display_phone_number": number.display_digits,
                    "verified_name": number.display_name, "mps": number.max_mps,
                    "quality_rating": number.quality_rating,
                    "messaging_limit_tier": number.messaging_limit_tier,
                },
                timeout=timeout,
            ).raise_for_status()  # fmt: skip
        except httpx.HTTPError as exc:
            log.warning("the sandbox did not take demo number %s: %s", number.phone_number_id, exc)
    known = {n.phone_number_id for n in list_numbers(engine, settings, include_removed=True)}
    added = 0
    for number in DEMO_NUMBERS:
        if number.phone_number_id in known:
            continue
        try:
            add_number(
                engine, settings, tenant_id=number.tenant_id,
                phone_number_id=number.phone_number_id, access_token=None,
                waba_id=number.waba_id, display_number=f"+{number.display_digits}",
                display_name=number.display_name, max_mps=number.max_mps,
            )  # fmt: skip
            added += 1
        except NumberError as exc:  # another process seeded it at the same moment
            log.info("demo number %s: %s", number.phone_number_id, exc)
    return added
