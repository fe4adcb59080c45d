"""One reading of the whole system's health for the dashboard's health page.

Sandbox or live; whether the Cloud API answers and accepts the token; the business
number's quality rating and messaging tier; whether sending is paused (and why) with
the queue's depth (for the tenant's own number: a pause of another tenant's number is
not theirs, `core.sender.fleet`); the webhook pipeline (last event received, backlog, held statuses,
signatures refused since the last valid delivery); the local template registry.
Each probe reports its failure instead of raising, so the page always renders, and
nothing secret (token, app secret) is ever part of a reading. `status_lines` is the same
reading without the API probe, for `wanotify status`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, func, select

from core.auth import Action, require
from core.cloud_api import CloudApiClient, PhoneHealth
from core.control import ControlState, resume_sending, sending_state
from core.errors import GraphError
from core.models.control import SenderControl
from core.models.templates import WhatsAppTemplate
from core.routing import NumberError, SenderNumber, route
from core.settings import Settings
from core.users import UserInfo
from core.webhooks.health import WebhookHealth, read_health

#: Codes meaning "the token is wrong or lacks permission" rather than "Meta is down".
TOKEN_CODES = frozenset({190, 10, 200, 3})
API_TIMEOUT_SECONDS = 8.0


@dataclass(frozen=True)
class ApiCheck:
    """Did the Cloud API answer a read of the phone number, and what it said."""

    reachable: bool
    token_ok: bool
    phone: PhoneHealth | None = None
    problem: str | None = None  # plain words, never the token

    @property
    def ok(self) -> bool:
        """True when the API answered and accepted the token."""
        return self.reachable and self.token_ok


@dataclass(frozen=True)
class TemplateRegistryState:
    """How many templates the tenant has locally, and when they were last synced."""

    total: int
    approved: int
    held: int
    last_synced_at: datetime | None


@dataclass(frozen=True)
class HealthReport:
    """Everything the health page shows."""

    sandbox_mode: bool
    mode: str  # "sandbox" or "live", as core.settings decided it
    api_base_url: str
    api_version: str
    phone_number_id: str
    api: ApiCheck
    sending: ControlState
    webhooks: WebhookHealth
    templates: TemplateRegistryState


def tenant_number(engine: Engine, settings: Settings, tenant_id: str) -> SenderNumber | None:
    """The number the tenant sends from (`core.routing`), or None when it has none usable
    (its health then reads the environment's number)."""
    try:
        return route(engine, settings, tenant_id)
    except NumberError:
        return None


async def check_api(
    settings: Settings,
    within: float = API_TIMEOUT_SECONDS,
    *,
    number: SenderNumber | None = None,
) -> ApiCheck:
    """Read the business number (the settings', or `number` with its own token) from the
    Cloud API (or the sandbox) to prove access."""
    token = number.access_token if number is not None else None
    client = CloudApiClient(
        settings,
        max_connections=1,
        phone_number_id=number.phone_number_id if number is not None else None,
        access_token=token.get_secret_value() if token is not None else None,
    )
    try:
        async with asyncio.timeout(within), client:
            phone = await client.phone_health()
    except TimeoutError:
        return ApiCheck(False, False, problem=f"No answer within {within:.0f} s")
    except GraphError as exc:
        if exc.http_status == 599 or (exc.code is None and (exc.http_status or 500) >= 500):
            return ApiCheck(False, False, problem=f"Cannot reach the API: {exc.message}")
        if exc.code in TOKEN_CODES or exc.http_status == 401:
            return ApiCheck(True, False, problem=f"The access token was refused: {exc.reason}")
        return ApiCheck(True, True, problem=f"The API answered with an error: {exc.reason}")
    return ApiCheck(True, True, phone=phone)


def template_registry_state(engine: Engine, tenant_id: str) -> TemplateRegistryState:
    """Counts of the tenant's active templates (approved, held) and the last sync time."""
    t = WhatsAppTemplate.__table__.c  # type: ignore[attr-defined]
    query = select(
        func.count(),
        func.count().filter(t.status == "APPROVED"),
        func.count().filter(t.held_reason.is_not(None)),
        func.max(t.synced_at),
    ).where(t.tenant_id == tenant_id, t.is_active.is_(True))
    with engine.connect() as conn:
        total, approved, held, synced = conn.execute(query).one()
    return TemplateRegistryState(int(total), int(approved), int(held), synced)


def read_system_health(
    engine: Engine, settings: Settings, tenant_id: str, *, api: ApiCheck | None = None
) -> HealthReport:
    """A full reading of the tenant's number (its default: `core.routing`); the API probe
    runs here unless one is passed in (it is the slow part)."""
    number = tenant_number(engine, settings, tenant_id)
    phone_number_id = number.phone_number_id if number is not None else settings.phone_number_id
    if api is None:
        api = asyncio.run(check_api(settings, number=number))
    return HealthReport(
        sandbox_mode=settings.sandbox_mode,
        mode=settings.mode,
        api_base_url=settings.api_base_url,
        api_version=settings.whatsapp_api_version,
        phone_number_id=phone_number_id,
        api=api,
        sending=sending_state(engine, phone_number_id, tenant_id),
        webhooks=read_health(engine),
        templates=template_registry_state(engine, tenant_id),
    )


def resume(engine: Engine, settings: Settings, user: UserInfo | None) -> ControlState:
    """Lift a pause on the user's tenant's number, on an admin's word (role checked here)."""
    who = require(user, Action.RESUME_SENDING)
    number = tenant_number(engine, settings, who.tenant_id)
    phone_number_id = number.phone_number_id if number is not None else settings.phone_number_id
    return resume_sending(engine, phone_number_id, who.username)


def mode_line(settings: Settings) -> str:
    """The mode in one line of words: why sandbox, or where live sends go."""
    if settings.sandbox_mode:
        why = "WANOTIFY_MODE=sandbox" if settings.wanotify_mode else "no WhatsApp credentials set"
        return (
            f"Mode: sandbox ({why}): messages go to the sandbox at {settings.api_base_url}, "
            "nothing reaches Meta; demo logins work"
        )
    return (
        f"Mode: live: sending through {settings.api_base_url} ({settings.whatsapp_api_version}) "
        f"from phone number id {settings.phone_number_id}"
    )


def webhook_lines(health: WebhookHealth) -> list[str]:
    """The webhook pipeline's state for a terminal: its status, then each cause."""
    head = f"Webhooks: {health.status}"
    if health.database_ok:
        last = health.last_event_at
        head += f" (last valid delivery {last:%Y-%m-%d %H:%M:%S} UTC" if last else " (none yet"
        head += f", {health.backlog:,} waiting to be applied)"
    return [head, *(f"  - {cause}" for cause in health.causes())]


def status_lines(engine: Engine, settings: Settings) -> list[str]:
    """What `wanotify status` prints: mode, sending state and queue, webhook pipeline."""
    state = sending_state(engine, settings.phone_number_id)
    hooks = webhook_lines(read_health(engine))
    others = paused_number_lines(engine, exclude=settings.phone_number_id)
    return [mode_line(settings), *state.describe().splitlines(), *others, *hooks]


def paused_number_lines(engine: Engine, *, exclude: str | None = None) -> list[str]:
    """One line per other paused number (each number pauses on its own: a 190 on one
    tenant's token stops that tenant's number only)."""
    c = SenderControl.__table__.c  # type: ignore[attr-defined]
    with engine.connect() as conn:
        rows = conn.execute(
            select(c.phone_number_id, c.pause_reason, c.pause_code, c.paused_at)
            .where(c.paused.is_(True), c.phone_number_id != (exclude or ""))
            .order_by(c.phone_number_id)
        ).all()
    lines = []
    for row in rows:
        code = f" (Meta error {row.pause_code})" if row.pause_code is not None else ""
        since = f" since {row.paused_at:%Y-%m-%d %H:%M} UTC" if row.paused_at else ""
        lines.append(
            f"Sending from number {row.phone_number_id} is PAUSED{since}: "
            f"{row.pause_reason or 'no reason given'}{code}. Fix the cause, then "
            f"resume (wanotify resume --number {row.phone_number_id})."
        )
    return lines

