"""Which number a tenant sends from: the read API.

(Whose number an event or a pause names is one rule too, stated once:
`core.webhooks.numbers.number_book`.)

The numbers are the rows of `sender_numbers` (core.models.sender_numbers) not removed,
plus the environment's number: `WHATSAPP_PHONE_NUMBER_ID` with `WHATSAPP_ACCESS_TOKEN`,
`WHATSAPP_BUSINESS_ACCOUNT_ID` and `WHATSAPP_MAX_MPS` (in sandbox mode the sandbox's
number and public token). The environment's number belongs to the default tenant
(`WANOTIFY_DEFAULT_TENANT`) unless a row with its phone number id exists; then the row
says whose it is and how it is used. With no rows at all, everything goes through the
environment's number exactly as before numbers were data.

Rules (fail closed: never send one business's purchase order from another's number):

- a tenant's default is its row marked default; the default tenant with none of its own
  marked default uses the environment's number;
- only the default tenant falls back to the environment's number: another tenant with
  no number of its own gets `NumberError`;
- an explicitly chosen number must be one of that tenant's (else `NumberError`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import SecretStr
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from core.models.sender_numbers import SenderNumberRow
from core.numbers.errors import NumberError, SecretKeyError
from core.numbers.secrets import decrypt_token
from core.settings import SANDBOX_TOKEN, Settings

__all__ = [
    "NumberError",
    "SecretKeyError",
    "SenderNumber",
    "choose_number",
    "environment_number",
    "number_for",
    "sending_numbers",
    "shared_environment_number",
    "valid_phone_number_id",
]

_GRAPH_ID = re.compile(r"[0-9]{5,32}")


@dataclass(frozen=True)
class SenderNumber:
    """One number messages can go out from, with everything a client needs to use it.

    `access_token` is None only for a number stored without a token in live mode (added
    while in sandbox mode): it cannot send, and `number_for` refuses it. In sandbox mode
    a number stored without a token uses the sandbox's public token.
    """

    phone_number_id: str
    tenant_id: str
    waba_id: str | None
    access_token: SecretStr | None
    max_mps: int
    is_default: bool
    display_number: str | None
    display_name: str | None
    from_environment: bool


def valid_phone_number_id(value: str) -> bool:
    """True for the shape of a Graph node id (digits only, 5 to 32 of them)."""
    return bool(_GRAPH_ID.fullmatch(value))


def environment_number(settings: Settings, *, is_default: bool = True) -> SenderNumber:
    """The environment's WHATSAPP_* number as the default tenant's (the sandbox's in
    sandbox mode)."""
    token = SecretStr(settings.access_token)
    return SenderNumber(
        phone_number_id=settings.phone_number_id,
        tenant_id=settings.default_tenant,
        waba_id=settings.business_account_id,
        access_token=token,
        max_mps=settings.whatsapp_max_mps,
        is_default=is_default,
        display_number=None,
        display_name=None,
        from_environment=True,
    )


def sending_numbers(engine: Engine, settings: Settings) -> list[SenderNumber]:
    """Every number that can send now: the rows not removed, then the environment's.

    Ordered by tenant, default first, then phone number id. A stored token no key opens
    raises `SecretKeyError` (fail closed: the whole configuration is wrong, not one
    number). A number stored without a token in live mode is listed with
    `access_token=None`, so the sender can hold that number alone.
    """
    rows = _active_rows(engine)
    numbers = [_from_row(row, settings) for row in rows]
    env_id = settings.phone_number_id
    if all(row.phone_number_id != env_id for row in rows):
        has_default = any(
            row.tenant_id == settings.default_tenant and row.is_default for row in rows
        )
        numbers.append(environment_number(settings, is_default=not has_default))
    return sorted(numbers, key=lambda n: (n.tenant_id, not n.is_default, n.phone_number_id))


def shared_environment_number(numbers: Sequence[SenderNumber]) -> SenderNumber | None:
    """The environment's number when it is the only one (`sending_numbers`' list), else None.

    While no number is registered at all, every tenant shares the environment's WHATSAPP_*
    number, as all of them did before numbers were data: routing sends from it and the
    template sync gives every tenant its WABA's templates (one rule, so a tenant that can
    send also has templates to send). Once any number is registered, a tenant without a
    number of its own has none.
    """
    if len(numbers) == 1 and numbers[0].from_environment:
        return numbers[0]
    return None


def number_for(
    engine: Engine, settings: Settings, tenant_id: str, phone_number_id: str | None = None
) -> SenderNumber:
    """The number `tenant_id` sends from: its default, or `phone_number_id` if given.

    `NumberError` (one line, what to do) when the chosen number is not this tenant's,
    when a tenant other than the default tenant has no number, or when the number has
    no usable token.
    """
    return choose_number(sending_numbers(engine, settings), tenant_id, phone_number_id)


def choose_number(
    numbers: Sequence[SenderNumber], tenant_id: str, phone_number_id: str | None = None
) -> SenderNumber:
    """`number_for` on a list `sending_numbers` already read (a caller that needs the
    list for more than this choice reads it once)."""
    numbers = [n for n in numbers if n.tenant_id == tenant_id]
    if phone_number_id is not None:
        chosen = next((n for n in numbers if n.phone_number_id == phone_number_id), None)
        if chosen is None:
            raise NumberError(
                f"number {_shown(phone_number_id)} is not one of tenant {tenant_id}'s numbers "
                "(`wanotify numbers list` shows them)"
            )
        return _usable(chosen)
    default = next((n for n in numbers if n.is_default), None)
    if default is None and numbers:
        raise NumberError(
            f"tenant {tenant_id} has numbers but none is its default: "
            "choose one with `wanotify numbers default`"
        )
    if default is None:
        raise NumberError(
            f"tenant {tenant_id} has no WhatsApp number: add one with `wanotify numbers add` "
            "(only the default tenant sends from the environment's number)"
        )
    return _usable(default)


def _active_rows(engine: Engine) -> list[SenderNumberRow]:
    with Session(engine) as session:
        return list(
            session.exec(
                select(SenderNumberRow)
                .where(col(SenderNumberRow.removed_at).is_(None))
                .order_by(col(SenderNumberRow.id))
            ).all()
        )


def _from_row(row: SenderNumberRow, settings: Settings) -> SenderNumber:
    token: SecretStr | None
    if row.token_ciphertext is not None:
        token = decrypt_token(settings, row.token_ciphertext, phone_number_id=row.phone_number_id)
    elif settings.sandbox_mode:
        token = SecretStr(SANDBOX_TOKEN)
    else:
        token = None
    return SenderNumber(
        phone_number_id=row.phone_number_id,
        tenant_id=row.tenant_id,
        waba_id=row.waba_id,
        access_token=token,
        max_mps=row.max_mps,
        is_default=row.is_default,
        display_number=row.display_number,
        display_name=row.display_name,
        from_environment=False,
    )


def _usable(number: SenderNumber) -> SenderNumber:
    if number.access_token is None:
        raise NumberError(
            f"number {number.phone_number_id} of tenant {number.tenant_id} has no access "
            "token: set one with `wanotify numbers add` (it was stored in sandbox mode)"
        )
    return number


def _shown(value: str) -> str:
    """An outside id as safe text for a one-line message (quoted, cut at 40 characters)."""
    return repr(value[:40])
