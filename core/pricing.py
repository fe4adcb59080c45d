"""The rate card: prices per delivered message, as data with effective dates.

Meta reports, in each status webhook, the pricing category (utility, marketing, ...) and
type (`regular` is charged; `free_customer_service` and `free_entry_point` are not) of a
message. What that costs depends on the recipient's market and the date, and Meta
changes its prices on the first day of a quarter; so the card is rows an admin edits,
each valid from one instant until the next row for the same market, category and type.

A new tenant gets an *example* card on demand (`ensure_default_rate_card`), flagged
`is_example` so every cost shown with it says "estimate with example rates".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from babel.numbers import is_currency
from sqlalchemy import Connection, Engine, bindparam, text
from sqlmodel import Session, col, select

from core.auth import Action, require, write_tenant
from core.db import session_scope
from core.i18n import N_, _
from core.models.pricing import ANY, RateCardEntry
from core.models.types import UTCDateTime, utcnow
from core.users import UserInfo

MICROS = 1_000_000
#: Pricing categories Meta reports (lower case, as in webhooks).
CATEGORIES = (
    "marketing",
    "marketing_lite",
    "utility",
    "authentication",
    "authentication_international",
    "service",
    "referral_conversion",
)
PRICING_TYPES = ("regular", "free_customer_service", "free_entry_point")
#: Types Meta reports as not charged: they cost nothing unless the card says otherwise.
FREE_PRICING_TYPES = frozenset({"free_customer_service", "free_entry_point"})
MAX_RATE = Decimal("100")  # per message; anything larger is a typing mistake

#: Example rates per message in USD, for illustration only: replace them with the rates
#: of your market from Meta's current rate card (Settings page or `set_rate`).
PMP_START = datetime(2025, 7, 1, tzinfo=UTC)
SERVICE_CHARGED_FROM = datetime(2026, 10, 1, tzinfo=UTC)
EXAMPLE_RATES: tuple[tuple[str, str, str, datetime], ...] = (
    # (market, category, rate, effective from)
    (ANY, "marketing", "0.0500", PMP_START),
    (ANY, "marketing_lite", "0.0500", PMP_START),
    (ANY, "utility", "0.0100", PMP_START),
    (ANY, "authentication", "0.0100", PMP_START),
    (ANY, "authentication_international", "0.0300", PMP_START),
    (ANY, "service", "0.0100", SERVICE_CHARGED_FROM),
    ("34", "marketing", "0.0615", PMP_START),
    ("34", "utility", "0.0200", PMP_START),
    ("34", "authentication", "0.0200", PMP_START),
    ("44", "marketing", "0.0529", PMP_START),
    ("44", "utility", "0.0220", PMP_START),
    ("44", "authentication", "0.0358", PMP_START),
)
EXAMPLE_CURRENCY = "USD"
EXAMPLE_NOTE = "Example rate: replace with your own from Meta's rate card"


class RateCardError(ValueError):
    """A rate that cannot be stored; the message says why."""


@dataclass(frozen=True)
class Rate:
    """One row of the card with the price as a Decimal."""

    id: int
    tenant_id: str
    market: str
    category: str
    pricing_type: str
    rate: Decimal
    currency: str
    effective_from: datetime
    effective_to: datetime | None
    is_example: bool
    note: str | None

    def applies(self, market: str | None, category: str, pricing_type: str, at: datetime) -> bool:
        """True when this row prices a message of that kind at instant `at`."""
        return (
            self.pricing_type == pricing_type
            and self.category in (category, ANY)
            and self.market in (market, ANY)
            and self.effective_from <= at
            and (self.effective_to is None or at < self.effective_to)
        )


def rate_to_micros(rate: Decimal | str | int) -> int:
    """A price per message as integer millionths; RateCardError for unusable values."""
    if isinstance(rate, float):
        raise RateCardError(_("Give the rate as text or Decimal, not a float"))
    try:
        value = Decimal(str(rate).strip().replace(",", ".")) if isinstance(rate, str) else (
            Decimal(rate)
        )
    except InvalidOperation:
        raise RateCardError(
            _("{value} is not a number").format(value=repr(str(rate)[:30]))
        ) from None
    if not value.is_finite() or value < 0:
        raise RateCardError(_("A rate must be zero or more"))
    if value > MAX_RATE:
        raise RateCardError(
            _("A rate above {limit} per message is surely a typing mistake").format(limit=MAX_RATE)
        )
    micros = value * MICROS
    if micros != micros.to_integral_value():
        raise RateCardError(_("A rate may have at most six decimals"))
    return int(micros)


def micros_to_decimal(micros: int) -> Decimal:
    """Integer millionths as an exact Decimal amount."""
    return Decimal(micros) / MICROS


def list_rates(engine: Engine, tenant_id: str, *, at: datetime | None = None) -> list[Rate]:
    """The tenant's card (only rows in force at `at` if given), by category and market."""
    with Session(engine) as session:
        query = select(RateCardEntry).where(col(RateCardEntry.tenant_id) == tenant_id)
        rows = session.exec(
            query.order_by(
                col(RateCardEntry.category),
                col(RateCardEntry.market),
                col(RateCardEntry.pricing_type),
                col(RateCardEntry.effective_from),
            )
        ).all()
    rates = [_rate(row) for row in rows]
    if at is not None:
        rates = [
            r
            for r in rates
            if r.effective_from <= at and (r.effective_to is None or at < r.effective_to)
        ]
    return rates


def card_currency(card: Sequence[Rate]) -> str:
    """The currency a new rate is entered in by default: the one most of the card's rates
    use (costs add up only within one currency), else the example card's (USD)."""
    counts: dict[str, int] = {}
    for rate in card:
        counts[rate.currency] = counts.get(rate.currency, 0) + 1
    if not counts:
        return EXAMPLE_CURRENCY
    return max(sorted(counts), key=lambda code: counts[code])


def set_rate(
    engine: Engine,
    tenant_id: str,
    *,
    market: str,
    category: str,
    rate: Decimal | str,
    currency: str,
    effective_from: datetime,
    pricing_type: str = "regular",
    note: str | None = None,
    created_by: str | None = None,
) -> Rate:
    """Put a rate in force from `effective_from` on, until a later row takes over.

    The row in force at `effective_from` for the same market, category and type is ended
    there; a later row (if any) bounds the new one. So the card never has two rows for
    the same thing at the same time, whatever order changes are entered in.
    """
    market = _market(market)
    category = _choice(category, (*CATEGORIES, ANY), N_("category"))
    pricing_type = _choice(pricing_type, PRICING_TYPES, N_("pricing type"))
    currency = _currency(currency)
    micros = rate_to_micros(rate)
    if effective_from.tzinfo is None:
        raise RateCardError("effective_from must be timezone-aware")
    if note is not None and len(note) > 255:
        raise RateCardError(_("A note must be at most 255 characters"))
    with session_scope(engine) as session:
        same = session.exec(
            select(RateCardEntry).where(
                col(RateCardEntry.tenant_id) == tenant_id,
                col(RateCardEntry.market) == market,
                col(RateCardEntry.category) == category,
                col(RateCardEntry.pricing_type) == pricing_type,
            )
        ).all()
        effective_to: datetime | None = None
        for row in same:
            if row.effective_from == effective_from:
                raise RateCardError(
                    _(
                        "A rate for that market, category and type already starts then: "
                        "delete it first or pick another date"
                    )
                )
            if row.effective_from < effective_from and (
                row.effective_to is None or row.effective_to > effective_from
            ):
                row.effective_to = effective_from
                row.updated_at = utcnow()
                session.add(row)
            elif row.effective_from > effective_from and (
                effective_to is None or row.effective_from < effective_to
            ):
                effective_to = row.effective_from
        entry = RateCardEntry(
            tenant_id=tenant_id,
            market=market,
            category=category,
            pricing_type=pricing_type,
            rate_micros=micros,
            currency=currency,
            effective_from=effective_from,
            effective_to=effective_to,
            note=note,
            created_by=created_by,
        )
        session.add(entry)
        session.flush()
        return _rate(entry)


def delete_rate(engine: Engine, tenant_id: str, rate_id: int) -> bool:
    """Remove one row of the tenant's card; the previous row does not grow back."""
    with session_scope(engine) as session:
        row = session.get(RateCardEntry, rate_id)
        if row is None or row.tenant_id != tenant_id:
            return False
        session.delete(row)
        return True


def ensure_default_rate_card(engine: Engine, tenant_id: str) -> int:
    """Give a tenant with no rates the example card; returns how many rows were added.

    Costs computed with it are flagged as estimates with example rates.
    """
    with session_scope(engine) as session:
        existing = session.exec(
            select(RateCardEntry.id).where(col(RateCardEntry.tenant_id) == tenant_id).limit(1)
        ).first()
        if existing is not None:
            return 0
        for market, category, rate, start in EXAMPLE_RATES:
            session.add(
                RateCardEntry(
                    tenant_id=tenant_id,
                    market=market,
                    category=category,
                    pricing_type="regular",
                    rate_micros=rate_to_micros(rate),
                    currency=EXAMPLE_CURRENCY,
                    effective_from=start,
                    is_example=True,
                    note=EXAMPLE_NOTE,
                )
            )
        return len(EXAMPLE_RATES)


def find_rate(
    rates: Sequence[Rate], market: str | None, category: str, pricing_type: str, at: datetime
) -> Rate | None:
    """The row pricing one message: exact market before "*", exact category before "*"."""
    matching = [r for r in rates if r.applies(market, category, pricing_type, at)]
    if not matching:
        return None
    return min(
        matching,
        key=lambda r: (r.market == ANY, r.category == ANY, -r.effective_from.timestamp(), -r.id),
    )


def message_cost(
    rates: Sequence[Rate],
    market: str | None,
    category: str | None,
    pricing_type: str | None,
    at: datetime,
) -> tuple[Decimal, str] | None:
    """The cost and currency of one delivered message; (0, "") for a free type without a
    rate; None when Meta reported no pricing or the card has no rate for it."""
    if not category or not pricing_type:
        return None
    rate = find_rate(rates, market, category.lower(), pricing_type.lower(), at)
    if rate is not None:
        return rate.rate, rate.currency
    if pricing_type.lower() in FREE_PRICING_TYPES:
        return Decimal(0), ""
    return None


def rate_change_instants(
    conn: Connection, tenant_ids: Sequence[str], start: datetime, end: datetime
) -> list[datetime]:
    """Every instant strictly inside (start, end) at which some tenant's rate changes."""
    query = text(
        """
        SELECT effective_from AS at FROM rate_cards
        WHERE tenant_id IN :tenants AND effective_from > :start AND effective_from < :end
        UNION
        SELECT effective_to FROM rate_cards
        WHERE tenant_id IN :tenants AND effective_to > :start AND effective_to < :end
        """
    ).bindparams(
        bindparam("tenants", list(tenant_ids), expanding=True),
        bindparam("start", start, type_=UTCDateTime()),
        bindparam("end", end, type_=UTCDateTime()),
    ).columns(at=UTCDateTime())
    return sorted({row.at for row in conn.execute(query)})


def uses_example_rates(engine: Engine, tenant_id: str) -> bool:
    """True while any example row is still in the tenant's card."""
    with Session(engine) as session:
        row = session.exec(
            select(RateCardEntry.id).where(
                col(RateCardEntry.tenant_id) == tenant_id, col(RateCardEntry.is_example)
            )
        ).first()
        return row is not None


def _rate(row: RateCardEntry) -> Rate:
    assert row.id is not None
    return Rate(
        id=row.id,
        tenant_id=row.tenant_id,
        market=row.market,
        category=row.category,
        pricing_type=row.pricing_type,
        rate=micros_to_decimal(row.rate_micros),
        currency=row.currency,
        effective_from=row.effective_from,
        effective_to=row.effective_to,
        is_example=row.is_example,
        note=row.note,
    )


def _market(market: str) -> str:
    value = (market or "").strip().lstrip("+")
    if value == ANY or (value.isdigit() and value.isascii() and 1 <= len(value) <= 3):
        return value
    raise RateCardError(
        _("A market is a calling code like 34 or '*', not {market}").format(
            market=repr(market[:10])
        )
    )


def _choice(value: str, allowed: Sequence[str], what: str) -> str:
    cleaned = (value or "").strip().lower()
    if cleaned not in allowed:
        raise RateCardError(
            _("Unknown {what} {value}: use one of {allowed}").format(
                what=_(what), value=repr(value[:40]), allowed=", ".join(allowed)
            )
        )
    return cleaned


def _currency(code: str) -> str:
    upper = (code or "").strip().upper()
    if len(upper) != 3 or not upper.isalpha() or not is_currency(upper):
        raise RateCardError(
            _("{code} is not an ISO currency code such as USD or EUR").format(code=repr(code[:10]))
        )
    return upper


# --- an admin's edits (role checked in the action) -------------------------------------


def set_rate_as(
    engine: Engine,
    user: UserInfo | None,
    *,
    market: str,
    category: str,
    rate: Decimal | str,
    currency: str,
    effective_from: datetime,
    pricing_type: str = "regular",
    note: str | None = None,
) -> Rate:
    """`set_rate` for the admin's home tenant, recording who entered it."""
    who = require(user, Action.MANAGE_SETTINGS)
    return set_rate(
        engine,
        write_tenant(who),
        market=market,
        category=category,
        rate=rate,
        currency=currency,
        effective_from=effective_from,
        pricing_type=pricing_type,
        note=note,
        created_by=who.username,
    )


def delete_rate_as(engine: Engine, user: UserInfo | None, rate_id: int) -> bool:
    """`delete_rate` for the admin's home tenant (False when the row is not theirs)."""
    who = require(user, Action.MANAGE_SETTINGS)
    return delete_rate(engine, write_tenant(who), rate_id)
