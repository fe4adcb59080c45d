"""The "PO approved" event schema: what it accepts, what it refuses, and how it says why."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.po_events.schema import (
    EVENT_TYPE,
    MAX_EVENT_BYTES,
    InvalidPoEvent,
    PoApprovedEvent,
    parse_po_event,
)


def event(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "event_id": "evt-1",
        "event_type": "po.approved",
        "tenant_id": "acme",
        "po": {"id": "98121", "number": "4500012345"},
        "supplier": {"name": "Aceros del Norte", "phone": "+34 612 345 678", "language": "es"},
        "total": {"amount": "1234.50", "currency": "EUR"},
    }
    base.update(overrides)
    return base


def problems_of(raw: Any) -> list[str]:
    with pytest.raises(InvalidPoEvent) as caught:
        parse_po_event(raw)
    assert caught.value.problems, "a rejection always says why"
    return caught.value.problems


def test_a_complete_event_is_read_with_exact_values() -> None:
    raw = event(
        approved_at="2025-03-04T10:30:00+01:00",
        document_url="https://erp.example.com/po/4500012345.pdf",
        extra_field={"ignored": True},
    )
    raw["supplier"]["id"] = 42
    parsed = parse_po_event(json.dumps(raw).encode())
    assert isinstance(parsed, PoApprovedEvent)
    assert parsed.event_type == EVENT_TYPE
    assert parsed.po.number == "4500012345" and parsed.po.id == "98121"
    assert parsed.supplier.id == "42"  # numeric ERP ids are read as text
    assert parsed.total.amount == Decimal("1234.50")
    assert parsed.total.currency == "EUR"
    assert parsed.approved_at == datetime(2025, 3, 4, 9, 30, tzinfo=UTC)
    assert parsed.document_url == "https://erp.example.com/po/4500012345.pdf"


def test_json_numbers_stay_exact_decimals() -> None:
    body = json.dumps(event()).replace('"1234.50"', "1234.10").encode()
    assert parse_po_event(body).total.amount == Decimal("1234.10")
    assert parse_po_event(event(total={"amount": 0.1, "currency": "usd"})).total == (
        parse_po_event(event(total={"amount": "0.1", "currency": "USD"})).total
    )
    assert parse_po_event(event(total={"amount": 318, "currency": "JPY"})).total.amount == 318


@pytest.mark.parametrize("alias", ["PO_APPROVED", "po.approved", "Po-Approved", "po_approved"])
def test_event_type_aliases(alias: str) -> None:
    assert parse_po_event(event(event_type=alias)).event_type == "po.approved"


def test_event_type_defaults_to_po_approved_and_numbers_are_accepted_as_ids() -> None:
    raw = event(event_id=777)
    del raw["event_type"]
    raw["po"] = {"number": 4500012345}
    parsed = parse_po_event(raw)
    assert parsed.event_id == "777" and parsed.po.number == "4500012345" and parsed.po.id is None


def test_whitespace_that_whatsapp_refuses_in_parameters_is_collapsed() -> None:
    raw = event()
    raw["supplier"]["name"] = "  Aceros\tdel\n\nNorte     S.L. "
    raw["po"]["number"] = " PO  2025/7 "
    parsed = parse_po_event(raw)
    assert parsed.supplier.name == "Aceros del Norte S.L."
    assert parsed.po.number == "PO 2025/7"


def test_blank_optional_fields_mean_absent() -> None:
    raw = event(approved_at="", document_url="")
    raw["supplier"].update(language="", id="")
    raw["po"]["id"] = ""
    parsed = parse_po_event(raw)
    assert parsed.supplier.language is None and parsed.supplier.id is None
    assert parsed.po.id is None and parsed.approved_at is None and parsed.document_url is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"not json", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object, not a list"),
        (b'"po"', "must be a JSON object, not a str"),
        (b"", "empty"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b'{"total": NaN}', "NaN is not a JSON number"),
        (b"[" * 5000 + b"]" * 5000, "nested too deeply"),
        (b" " * (MAX_EVENT_BYTES + 1), "limit is 65,536"),
    ],
)
def test_unreadable_bodies_say_why(raw: bytes, expected: str) -> None:
    assert any(expected in p for p in problems_of(raw)), problems_of(raw)


def test_every_missing_field_is_listed() -> None:
    assert problems_of({}) == [
        "event_id is missing",
        "tenant_id is missing",
        "po is missing",
        "supplier is missing",
        "total is missing",
    ]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"supplier": {"name": "X"}}, "supplier.phone is missing"),
        ({"supplier": {"name": "X", "phone": "call me"}}, "supplier.phone: must contain digits"),
        ({"supplier": {"name": "", "phone": "+34612345678"}}, "supplier.name is empty"),
        ({"supplier": "Aceros"}, "supplier must be an object"),
        ({"supplier": {"name": "X", "phone": "+34612345678", "language": "spanish"}},
         "supplier.language: 'spanish' is not a language code"),
        ({"total": {"amount": "abc", "currency": "EUR"}}, "total.amount: 'abc' is not a number"),
        ({"total": {"amount": "1.234,50", "currency": "EUR"}}, "no thousands separators"),
        ({"total": {"amount": True, "currency": "EUR"}}, "total.amount: must be a number"),
        ({"total": {"amount": "10", "currency": "EURO"}}, "'EURO' is not a currency code"),
        ({"total": {"amount": "10", "currency": 978}}, "total.currency: must be an ISO 4217"),
        ({"total": {"amount": "1.005", "currency": "EUR"}}, "more decimals than EUR allows (2)"),
        ({"total": {"amount": "5.5", "currency": "JPY"}}, "more decimals than JPY allows (0)"),
        ({"total": {"amount": "-3", "currency": "EUR"}}, "negative"),
        ({"total": {"amount": "1e3", "currency": "EUR"}}, "not a number"),
        ({"total": {"amount": "99999999999999", "currency": "EUR"}}, "larger than"),
        ({"event_type": "po.cancelled"}, "'po.cancelled' is not handled here"),
        ({"event_type": 3}, "event_type: must be 'po.approved'"),
        ({"tenant_id": "acme corp"}, "tenant_id: must be letters"),
        ({"tenant_id": "x" * 65}, "tenant_id is too long (at most 64 characters)"),
        ({"po": {"number": "45\x00001"}}, "po.number: must not contain control characters"),
        ({"po": {"number": 4.5}}, "po.number must be text"),
        ({"approved_at": "yesterday"}, "approved_at:"),
        ({"document_url": "file:///etc/passwd"}, "document_url: must be an http(s) URL"),
    ],
)  # fmt: skip
def test_bad_fields_are_named_in_plain_words(change: dict[str, Any], expected: str) -> None:
    problems = problems_of(event(**change))
    assert any(expected in p for p in problems), problems


def test_a_float_amount_in_an_already_decoded_event_is_read_as_written() -> None:
    assert parse_po_event(event(total={"amount": 1234.5, "currency": "EUR"})).total.amount == (
        Decimal("1234.5")
    )


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=20,
)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_give_an_event_or_a_listed_problem(raw: bytes) -> None:
    try:
        parse_po_event(raw)
    except InvalidPoEvent as exc:
        assert exc.problems and all(isinstance(p, str) and p for p in exc.problems)


@settings(max_examples=200, deadline=None)
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "event_id": JSON_VALUES, "tenant_id": JSON_VALUES, "po": JSON_VALUES,
            "supplier": JSON_VALUES, "total": JSON_VALUES, "event_type": JSON_VALUES,
            "approved_at": JSON_VALUES, "document_url": JSON_VALUES,
        },
    )
)  # fmt: skip
def test_any_json_shape_gives_an_event_or_a_listed_problem(raw: dict[str, Any]) -> None:
    for candidate in (raw, json.dumps(raw, allow_nan=False).encode() if _finite(raw) else b"{"):
        try:
            parse_po_event(candidate)
        except InvalidPoEvent as exc:
            assert exc.problems


def _finite(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except ValueError:
        return False
    return True
