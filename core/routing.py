"""Which business number a message goes out from: decided once, when it is queued.

Every message names its sending number (`whatsapp_messages.phone_number_id`); each
sending number has a dispatcher of its own that claims only that number's messages
(`core.sender.worker`), and webhooks are matched by the number they name. The number
is the tenant's default, or one of that tenant's numbers chosen explicitly
(`core.numbers.registry.number_for`: never another tenant's).

One exception keeps single-number installs working as before numbers were data: while
no number is registered at all (only the environment's WHATSAPP_* number exists),
every tenant sends from the environment's number, as all of them always did (and the
template sync gives each tenant that number's WABA's templates: the same rule,
`core.numbers.registry.shared_environment_number`).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine
from sqlmodel import Session

from core.i18n import _
from core.numbers.registry import (
    NumberError,
    SenderNumber,
    choose_number,
    sending_numbers,
    shared_environment_number,
)
from core.settings import Settings

__all__ = [
    "NumberChoice",
    "NumberError",
    "SenderNumber",
    "engine_of",
    "number_choices",
    "route",
    "route_id",
]


@dataclass(frozen=True)
class NumberChoice:
    """One of a tenant's numbers as a person picks it: never its token."""

    phone_number_id: str
    display_name: str | None
    display_number: str | None
    is_default: bool
    from_environment: bool = False  # the WHATSAPP_* number, no row of its own

    @property
    def label(self) -> str:
        """Display name and display number (the phone number id when neither is known,
        named as the environment's number when it is that one)."""
        shown = " · ".join(part for part in (self.display_name, self.display_number) if part)
        if shown:
            return shown
        if self.from_environment:
            return _("Environment number · {id}").format(id=self.phone_number_id)
        return self.phone_number_id


def route(
    engine: Engine, settings: Settings, tenant_id: str, phone_number_id: str | None = None
) -> SenderNumber:
    """The number `tenant_id`'s message goes out from: its default, or `phone_number_id`
    when given and one of the tenant's; NumberError (one line, what to do) otherwise."""
    numbers = sending_numbers(engine, settings)
    try:
        return choose_number(numbers, tenant_id, phone_number_id)
    except NumberError:
        if phone_number_id in (None, settings.phone_number_id):
            shared = shared_environment_number(numbers)
            if shared is not None:
                return shared  # nothing registered: one shared number, as before
        raise


def number_choices(engine: Engine, settings: Settings, tenant_id: str) -> list[NumberChoice]:
    """The numbers `tenant_id`'s messages may be sent from, its default first.

    What the send pages offer (and only when there are two or more): the tenant's own
    numbers that can send (a live number stored without a token cannot). No token is
    read. A tenant sharing the environment's number (nothing registered) has no choice
    to make: the list is empty and `route` picks the shared number.
    """
    from core.numbers.admin import list_numbers

    return [
        NumberChoice(
            n.phone_number_id, n.display_name, n.display_number, n.is_default, n.from_environment
        )
        for n in list_numbers(engine, settings, tenant_id)
        if n.tenant_id == tenant_id and (n.has_token or settings.sandbox_mode)
    ]


def route_id(
    engine: Engine, settings: Settings, tenant_id: str, phone_number_id: str | None = None
) -> str:
    """`route(...)`'s phone number id (what a queued message stores)."""
    return route(engine, settings, tenant_id, phone_number_id).phone_number_id


def engine_of(session: Session) -> Engine:
    """The engine a session is bound to (routing reads the numbers beside its work)."""
    bind = session.get_bind()
    return bind if isinstance(bind, Engine) else bind.engine
