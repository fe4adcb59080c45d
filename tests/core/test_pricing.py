"""core.pricing on a real SQLite file: exact money, effective dates, lookups, admin edits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import Engine

from core.auth import PermissionDenied
from core.pricing import (
    EXAMPLE_RATES,
    RateCardError,
    delete_rate_as,
    ensure_default_rate_card,
    find_rate,
    list_rates,
    message_cost,
    micros_to_decimal,
    rate_to_micros,
    set_rate,
    set_rate_as,
    uses_example_rates,
)
from tests.dashboard.pages import person

pytestmark = pytest.mark.clock  # decides by dates or ages: also run a year ahead

Q3 = datetime(2026, 7, 1, tzinfo=UTC)
Q4 = datetime(2026, 10, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "micros"),
    [("0.0200", 20_000), ("0,0185", 18_500), (Decimal("0.000001"), 1), (0, 0),
     (" 1.5 ", 1_500_000)],
)  # fmt: skip
def test_rates_are_exact_millionths(raw: Decimal | str | int, micros: int) -> None:
    assert rate_to_micros(raw) == micros
    assert micros_to_decimal(micros) == Decimal(str(raw).strip().replace(",", "."))


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("abc", "not a number"),
        ("-0.01", "zero or more"),
        ("NaN", "zero or more"),
        ("Infinity", "zero or more"),
        ("101", "typing mistake"),
        ("0.0000001", "six decimals"),
        (0.02, "not a float"),
    ],
)
def test_unusable_rates_are_refused(raw: object, problem: str) -> None:
    with pytest.raises(RateCardError, match=problem):
        rate_to_micros(raw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("market", "ES", "calling code"),
        ("market", "1234", "calling code"),
        ("category", "spam", "Unknown category"),
        ("currency", "EURO", "ISO currency"),
        ("currency", "XYZ", "ISO currency"),
        ("pricing_type", "free", "Unknown pricing type"),
    ],
)
def test_bad_card_rows_are_refused(engine: Engine, field: str, value: str, problem: str) -> None:
    values = {"market": "34", "category": "utility", "rate": "0.02", "currency": "EUR",
              "effective_from": Q3, "pricing_type": "regular", field: value}  # fmt: skip
    with pytest.raises(RateCardError, match=problem):
        set_rate(engine, "acme", **values)  # type: ignore[arg-type]
    assert list_rates(engine, "acme") == []


def test_naive_start_times_are_refused(engine: Engine) -> None:
    with pytest.raises(RateCardError, match="timezone-aware"):
        set_rate(engine, "acme", market="34", category="utility", rate="0.02", currency="EUR",
                 effective_from=datetime(2026, 7, 1))  # fmt: skip


def test_a_new_rate_ends_the_previous_one_in_any_order(engine: Engine) -> None:
    later = set_rate(engine, "acme", market="34", category="utility", rate="0.03",
                     currency="EUR", effective_from=Q4)  # fmt: skip
    earlier = set_rate(engine, "acme", market="34", category="utility", rate="0.02",
                       currency="EUR", effective_from=Q3)  # fmt: skip
    assert earlier.effective_to == Q4  # bounded by the later row entered first
    assert later.effective_to is None
    with pytest.raises(RateCardError, match="already starts then"):
        set_rate(engine, "acme", market="34", category="utility", rate="0.04", currency="EUR",
                 effective_from=Q4)  # fmt: skip
    middle = Q3 + timedelta(days=30)
    set_rate(engine, "acme", market="34", category="utility", rate="0.025", currency="EUR",
             effective_from=middle)  # fmt: skip
    rows = {r.effective_from: r for r in list_rates(engine, "acme")}
    assert rows[Q3].effective_to == middle and rows[middle].effective_to == Q4
    in_force = list_rates(engine, "acme", at=Q3 + timedelta(days=40))
    assert [r.rate for r in in_force] == [Decimal("0.025")]


def test_the_most_specific_rate_wins_and_free_types_cost_nothing(engine: Engine) -> None:
    ensure_default_rate_card(engine, "acme")
    rates = list_rates(engine, "acme")
    at = Q3
    spain = find_rate(rates, "34", "utility", "regular", at)
    anywhere = find_rate(rates, "91", "utility", "regular", at)
    assert spain is not None and spain.rate == Decimal("0.0200")
    assert anywhere is not None and anywhere.market == "*"
    assert message_cost(rates, "34", "UTILITY", "REGULAR", at) == (Decimal("0.0200"), "USD")
    assert message_cost(rates, "34", "utility", "free_customer_service", at) == (Decimal(0), "")
    assert message_cost(rates, "34", None, "regular", at) is None
    assert message_cost(rates, "34", "referral_conversion", "regular", at) is None
    # Service messages are charged only from 1 October 2026 in the example card.
    assert message_cost(rates, "34", "service", "regular", Q3) is None
    assert message_cost(rates, "34", "service", "regular", Q4) == (Decimal("0.0100"), "USD")


def test_the_example_card_is_added_once_and_flagged(engine: Engine) -> None:
    assert ensure_default_rate_card(engine, "acme") == len(EXAMPLE_RATES)
    assert ensure_default_rate_card(engine, "acme") == 0
    assert uses_example_rates(engine, "acme") and not uses_example_rates(engine, "other")


def test_only_admins_edit_and_only_their_tenants_card(engine: Engine) -> None:
    admin = person("admin", "acme", name="pilar")
    with pytest.raises(PermissionDenied):
        set_rate_as(engine, person("manager", "acme"), market="34", category="utility",
                    rate="0.02", currency="EUR", effective_from=Q3)  # fmt: skip
    rate = set_rate_as(engine, admin, market="34", category="utility", rate="0.02",
                       currency="EUR", effective_from=Q3)  # fmt: skip
    assert rate.tenant_id == "acme"
    assert not delete_rate_as(engine, person("admin", "other"), rate.id)
    with pytest.raises(PermissionDenied):
        delete_rate_as(engine, person("buyer", "acme"), rate.id)
    assert delete_rate_as(engine, admin, rate.id)
    assert list_rates(engine, "acme") == []
