"""Adding, listing, choosing the default of and removing sender numbers (admins only).

Every input is checked before anything is stored: phone number and WABA ids are Graph
ids (digits), the tenant an id, the access token one printable word (whitespace around
a pasted token is dropped; whitespace or control characters inside refuse it). The
token is encrypted at once (core.numbers.secrets) and never returned: `NumberInfo`
says only whether a number has one.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import Engine, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from core import clock
from core.models.sender_numbers import SenderNumberRow
from core.numbers.errors import NumberError
from core.numbers.registry import valid_phone_number_id
from core.numbers.secrets import encrypt_token
from core.settings import Settings

log = logging.getLogger(__name__)

MAX_MPS = 10_000
_TENANT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")
#: Meta's tokens are base64-ish words; allow the URL-safe and standard alphabets.
_TOKEN = re.compile(r"[A-Za-z0-9_\-.~+/=|]{8,2048}")


@dataclass(frozen=True)
class NumberInfo:
    """A number as admins see it: everything but the token (only whether there is one)."""

    phone_number_id: str
    tenant_id: str
    waba_id: str | None
    display_number: str | None
    display_name: str | None
    max_mps: int
    is_default: bool
    has_token: bool
    from_environment: bool
    quality_rating: str | None = None
    messaging_tier: str | None = None
    name_status: str | None = None
    status: str | None = None
    throughput_level: str | None = None
    last_checked_at: datetime | None = None
    last_error: str | None = None
    created_at: datetime | None = None
    removed_at: datetime | None = None
    #: webhook events held while the number was unknown, applied when it was added
    held_applied: int = 0


@dataclass(frozen=True)
class NumberHealth:
    """What Meta reported about a number (core.numbers.health reads it)."""

    display_number: str | None
    display_name: str | None
    quality_rating: str | None
    messaging_tier: str | None
    name_status: str | None
    status: str | None
    throughput_level: str | None


def clean_token(token: str) -> str:
    """`token` without surrounding whitespace; `NumberError` if it is not one clean word.

    The message never repeats the token (it may be a real one pasted wrongly).
    """
    cleaned = token.strip()
    if not cleaned:
        raise NumberError("the access token is empty")
    if any(ch.isspace() for ch in cleaned):
        raise NumberError("the access token has spaces or line breaks inside: paste it again")
    if not _TOKEN.fullmatch(cleaned):
        raise NumberError(
            "the access token is not a Meta access token (8 to 2,048 letters, digits and -_.~+/=|)"
        )
    return cleaned


def check_ids(tenant_id: str, phone_number_id: str, waba_id: str | None) -> None:
    """`NumberError` naming the first malformed id (tenant, phone number id, WABA id)."""
    if not _TENANT.fullmatch(tenant_id):
        raise NumberError(
            f"tenant {tenant_id[:40]!r} is not a tenant id (letters, digits, _ . -, at most 64)"
        )
    if not valid_phone_number_id(phone_number_id):
        raise NumberError(
            f"phone number id {phone_number_id[:40]!r} is not a Graph id: the digits of "
            "'Phone number ID' in Meta's WhatsApp Manager (not the phone number itself)"
        )
    if waba_id is not None and not valid_phone_number_id(waba_id):
        raise NumberError(
            f"WABA id {waba_id[:40]!r} is not a Graph id: the digits of 'WhatsApp Business "
            "Account ID' in Meta's WhatsApp Manager"
        )


def add_number(
    engine: Engine,
    settings: Settings,
    *,
    tenant_id: str,
    phone_number_id: str,
    access_token: str | None,
    waba_id: str | None = None,
    display_number: str | None = None,
    display_name: str | None = None,
    max_mps: int = 80,
    make_default: bool | None = None,
) -> NumberInfo:
    """Store a new number for `tenant_id`, its token encrypted; the stored number.

    `make_default` None makes it the default when the tenant has no default yet (the
    default tenant's is the environment's number while no row claims that number). A
    number already in use (any tenant) is refused; a removed one is brought back with
    these values. In live mode a token is required; in sandbox mode none means the
    sandbox's public token.

    Webhook events held because they named this number while nobody had registered it
    are applied once it is stored (`core.webhooks.release`; `held_applied` says how
    many); if that fails the number stays added, the events stay held and health still
    counts them (`wanotify numbers apply-held` takes them up again).
    """
    phone_number_id = phone_number_id.strip()
    waba_id = (waba_id or "").strip() or None
    check_ids(tenant_id, phone_number_id, waba_id)
    if not 1 <= max_mps <= MAX_MPS:
        raise NumberError(f"the throughput cap must be 1 to {MAX_MPS:,} messages a second")
    if access_token is None or not access_token.strip():
        if not settings.sandbox_mode:
            raise NumberError("an access token is required for a live number")
        ciphertext = None
    else:
        ciphertext = encrypt_token(settings, clean_token(access_token))
    now = clock.now()
    with Session(engine) as session:
        row = _row(session, phone_number_id)
        if row is not None and row.removed_at is None:
            raise NumberError(
                f"number {phone_number_id} is already registered (tenant {row.tenant_id}); "
                "remove it first to register it again"
            )
        has_default = _default_of(session, tenant_id) is not None or (
            # the default tenant's default is the environment's number until a row
            # takes it over (adding that very number takes its place)
            tenant_id == settings.default_tenant
            and phone_number_id != settings.phone_number_id
            and not _claimed(session, settings.phone_number_id)
        )
        default = (not has_default) if make_default is None else make_default
        if default:
            _clear_default(session, tenant_id, now)
        row = row or SenderNumberRow(tenant_id=tenant_id, phone_number_id=phone_number_id)
        row.tenant_id = tenant_id
        row.waba_id = waba_id
        row.display_number = _short(display_number, 32)
        row.display_name = _short(display_name, 120)
        row.token_ciphertext = ciphertext
        row.max_mps = max_mps
        row.is_default = default
        row.removed_at = None
        row.quality_rating = row.messaging_tier = row.name_status = None
        row.status = row.throughput_level = row.last_error = None
        row.last_checked_at = None
        row.created_at = now
        row.updated_at = now
        session.add(row)
        try:
            session.commit()
        except IntegrityError:  # another admin added it (or a default) at the same moment
            raise NumberError(
                f"number {phone_number_id} was registered by someone else meanwhile"
            ) from None
        session.refresh(row)
        info = _info(row)
    return replace(info, held_applied=apply_held_events(engine, settings))


def apply_held_events(engine: Engine, settings: Settings) -> int:
    """Apply the webhook events held for numbers we know now; how many (0 when that
    fails: logged, and the events stay held for another try)."""
    from core.webhooks.release import release_held_numbers  # webhooks import alerts, numbers

    try:
        released = release_held_numbers(engine, default_tenant=settings.default_tenant)
    except Exception:  # the number is added all the same; health still shows the events
        log.exception("held webhook events could not be applied")
        return 0
    return released.total


def list_numbers(
    engine: Engine,
    settings: Settings,
    tenant_id: str | None = None,
    *,
    include_removed: bool = False,
) -> list[NumberInfo]:
    """The stored numbers (of `tenant_id`, or all), plus the environment's number when
    no row claims it, by tenant, default first. No token is read or decrypted."""
    with Session(engine) as session:
        query = select(SenderNumberRow)
        if tenant_id is not None:
            query = query.where(col(SenderNumberRow.tenant_id) == tenant_id)
        if not include_removed:
            query = query.where(col(SenderNumberRow.removed_at).is_(None))
        rows = list(session.exec(query).all())
        claimed = session.exec(
            select(SenderNumberRow.id).where(
                col(SenderNumberRow.phone_number_id) == settings.phone_number_id,
                col(SenderNumberRow.removed_at).is_(None),
            )
        ).first()
        env_default = (
            _default_of(session, settings.default_tenant) is None if claimed is None else False
        )
    infos = [_info(row) for row in rows]
    if claimed is None and tenant_id in (None, settings.default_tenant):
        infos.append(
            NumberInfo(
                phone_number_id=settings.phone_number_id,
                tenant_id=settings.default_tenant,
                waba_id=settings.business_account_id,
                display_number=None,
                display_name=None,
                max_mps=settings.whatsapp_max_mps,
                is_default=env_default,
                has_token=True,
                from_environment=True,
            )
        )
    return sorted(
        infos,
        key=lambda n: (n.tenant_id, n.removed_at is not None, not n.is_default, n.phone_number_id),
    )


def set_default(engine: Engine, tenant_id: str, phone_number_id: str) -> None:
    """Make `phone_number_id` the tenant's default number (it must be one of its own)."""
    now = clock.now()
    with Session(engine) as session:
        row = _row(session, phone_number_id)
        if row is None or row.removed_at is not None or row.tenant_id != tenant_id:
            raise NumberError(
                f"number {phone_number_id[:40]!r} is not one of tenant {tenant_id}'s numbers"
            )
        _clear_default(session, tenant_id, now)
        row.is_default = True
        row.updated_at = now
        session.add(row)
        session.commit()


def remove_number(engine: Engine, tenant_id: str, phone_number_id: str) -> str | None:
    """Remove the tenant's number (kept for history, token erased); the tenant's new
    default if the removed one was the default and another remains (the oldest)."""
    now = clock.now()
    with Session(engine) as session:
        row = _row(session, phone_number_id)
        if row is None or row.removed_at is not None or row.tenant_id != tenant_id:
            raise NumberError(
                f"number {phone_number_id[:40]!r} is not one of tenant {tenant_id}'s numbers"
            )
        was_default = row.is_default
        row.removed_at = now
        row.updated_at = now
        row.is_default = False
        row.token_ciphertext = None  # a removed number's token is of no further use
        session.add(row)
        session.flush()
        successor = None
        if was_default:
            other = session.exec(
                select(SenderNumberRow)
                .where(
                    col(SenderNumberRow.tenant_id) == tenant_id,
                    col(SenderNumberRow.removed_at).is_(None),
                )
                .order_by(col(SenderNumberRow.created_at), col(SenderNumberRow.id))
            ).first()
            if other is not None:
                other.is_default = True
                other.updated_at = now
                session.add(other)
                successor = other.phone_number_id
        session.commit()
        return successor


def record_health(
    engine: Engine,
    phone_number_id: str,
    health: NumberHealth | None,
    *,
    error: str | None = None,
) -> None:
    """Store what Meta reported about a stored number (or why asking failed), now.

    A failed check keeps the last good report and records the error beside it.
    """
    now = clock.now()
    with Session(engine) as session:
        row = _row(session, phone_number_id)
        if row is None:
            return  # the environment's number: nothing stored to update
        row.last_checked_at = now
        row.last_error = _short(error, 500)
        if health is not None:
            row.display_number = _short(health.display_number, 32) or row.display_number
            row.display_name = _short(health.display_name, 120) or row.display_name
            row.quality_rating = _short(health.quality_rating, 20)
            row.messaging_tier = _short(health.messaging_tier, 40)
            row.name_status = _short(health.name_status, 40)
            row.status = _short(health.status, 30)
            row.throughput_level = _short(health.throughput_level, 20)
        row.updated_at = now
        session.add(row)
        session.commit()


def _row(session: Session, phone_number_id: str) -> SenderNumberRow | None:
    return session.exec(
        select(SenderNumberRow).where(col(SenderNumberRow.phone_number_id) == phone_number_id)
    ).first()


def _claimed(session: Session, phone_number_id: str) -> bool:
    """True when a number not removed has this id."""
    row = _row(session, phone_number_id)
    return row is not None and row.removed_at is None


def _default_of(session: Session, tenant_id: str) -> SenderNumberRow | None:
    return session.exec(
        select(SenderNumberRow).where(
            col(SenderNumberRow.tenant_id) == tenant_id,
            col(SenderNumberRow.is_default),
            col(SenderNumberRow.removed_at).is_(None),
        )
    ).first()


def _clear_default(session: Session, tenant_id: str, now: datetime) -> None:
    session.execute(
        update(SenderNumberRow)
        .where(
            col(SenderNumberRow.tenant_id) == tenant_id,
            col(SenderNumberRow.is_default),
        )
        .values(is_default=False, updated_at=now)
    )


def _short(value: str | None, limit: int) -> str | None:
    if value is None:
        return None
    text = " ".join(value.split())[:limit]
    return text or None


def _info(row: SenderNumberRow) -> NumberInfo:
    return NumberInfo(
        phone_number_id=row.phone_number_id,
        tenant_id=row.tenant_id,
        waba_id=row.waba_id,
        display_number=row.display_number,
        display_name=row.display_name,
        max_mps=row.max_mps,
        is_default=row.is_default,
        has_token=row.token_ciphertext is not None,
        from_environment=False,
        quality_rating=row.quality_rating,
        messaging_tier=row.messaging_tier,
        name_status=row.name_status,
        status=row.status,
        throughput_level=row.throughput_level,
        last_checked_at=row.last_checked_at,
        last_error=row.last_error,
        created_at=row.created_at,
        removed_at=row.removed_at,
    )
