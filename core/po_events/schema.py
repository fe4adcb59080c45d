"""The ERP's "PO approved" event: its shape, its limits, and problems in plain words.

One model serves both intakes (RabbitMQ and HTTP), so an event is judged the same way
whichever road it came by. Parsing never raises anything but `InvalidPoEvent`, whose
`problems` say what is wrong in words an ERP integrator can act on.

`supplier.whatsapp_consent` (optional, a JSON boolean): true when the ERP holds the
supplier's agreement to WhatsApp messages, recorded as consent (source `erp`); absent or
false records nothing, and the notice goes only to a supplier whose consent is already
recorded (or when the tenant allows sends without it). Text such as "true" is refused.

`sender_phone_number_id` (optional, text or a JSON integer): the phone number ID of the
tenant's WhatsApp number the notice goes out from, when the tenant has several
(`wanotify numbers list`); absent, the tenant's default number. A number that is not
one of the event's tenant's numbers rejects the event (nothing is written).

Example event (unknown fields are allowed and ignored)::

    {
      "event_id": "evt-7f3c",
      "event_type": "po.approved",
      "tenant_id": "acme",
      "po": {"id": "98121", "number": "4500012345"},
      "supplier": {"name": "Aceros del Norte", "phone": "+34 612 345 678",
                   "language": "es", "id": "S-0042", "whatsapp_consent": true},
      "total": {"amount": "1234.50", "currency": "EUR"},
      "approved_at": "2025-03-04T09:30:00Z",
      "document_url": "https://erp.example.com/po/4500012345.pdf",
      "sender_phone_number_id": "106540352242922"
    }
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from core.money import MAX_AMOUNT_CHARS, check_amount, normalize_currency
from core.numbers.registry import valid_phone_number_id
from core.templates.values import clean_text

#: The largest event accepted, in bytes. A PO event is well under 2 KiB; anything near
#: this limit is a mistake (an attached PDF, a whole PO with lines) or hostile.
MAX_EVENT_BYTES = 64 * 1024

#: The one event type this intake handles, and the spellings ERPs use for it.
EVENT_TYPE = "po.approved"
EVENT_TYPE_ALIASES = frozenset({"po.approved", "po_approved", "purchase_order.approved"})

_IDENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@/-]*$")
_LANGUAGE = re.compile(r"^[a-z]{2,3}([_-][A-Za-z]{2}|[_-][A-Za-z]{4})?$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_AMOUNT_TEXT = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")


class InvalidPoEvent(ValueError):
    """The event cannot be used; `problems` lists every reason, one plain sentence each."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


def _text_id(value: Any) -> Any:
    """ERPs send numeric ids as JSON numbers: accept integers as text (never bools/floats)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def _blank_none(value: Any) -> Any:
    """ERPs write an absent optional value as "" as often as null: read both as absent."""
    if isinstance(value, str) and not value.strip():
        return None
    return value


def _one_line(value: Any) -> Any:
    """Collapse runs of whitespace (newlines, tabs) to one space: WhatsApp template
    parameters may not hold newlines, tabs or more than four spaces in a row (132018)."""
    if isinstance(value, str):
        return " ".join(value.split())
    return value


def _no_control(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters")
    return value


TextId = Annotated[str, BeforeValidator(_text_id)]
OptionalId = Annotated[str | None, BeforeValidator(_text_id), BeforeValidator(_blank_none)]
OneLine = Annotated[str, BeforeValidator(_one_line)]


class _Part(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, str_strip_whitespace=True)


class PoRef(_Part):
    """Which purchase order: the ERP's internal id (optional) and its printed number."""

    id: OptionalId = Field(default=None, max_length=64)
    number: Annotated[TextId, BeforeValidator(_one_line)] = Field(min_length=1, max_length=64)

    @field_validator("id", "number")
    @classmethod
    def _clean(cls, value: str | None) -> str | None:
        return None if value is None else _no_control(value)

    @field_validator("number")
    @classmethod
    def _shown_text(cls, value: str) -> str:
        return clean_text(value)  # a template parameter: the rule every parameter passes


class SupplierRef(_Part):
    """Who receives the notice: a name, a phone as the ERP has it, optionally a language."""

    name: OneLine = Field(min_length=1, max_length=200)
    phone: str = Field(min_length=3, max_length=32)
    language: Annotated[str | None, BeforeValidator(_blank_none)] = Field(
        default=None, max_length=15
    )
    id: OptionalId = Field(default=None, max_length=64)
    whatsapp_consent: bool | None = None

    @field_validator("whatsapp_consent", mode="before")
    @classmethod
    def _json_boolean(cls, value: Any) -> Any:
        if value is None or isinstance(value, bool):
            return value
        raise ValueError(
            f"must be true or false (a JSON boolean), not {type(value).__name__} "
            f"{str(value)[:20]!r}"
        )

    @field_validator("name", "phone", "id")
    @classmethod
    def _clean(cls, value: str | None) -> str | None:
        return None if value is None else _no_control(value)

    @field_validator("name")
    @classmethod
    def _shown_text(cls, value: str) -> str:
        return clean_text(value)  # a template parameter: the rule every parameter passes

    @field_validator("phone")
    @classmethod
    def _phone_chars(cls, value: str) -> str:
        if not any(ch.isdigit() for ch in value):
            raise ValueError("must contain digits, such as +34 612 345 678")
        return value

    @field_validator("language")
    @classmethod
    def _language_code(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not _LANGUAGE.match(value):
            raise ValueError(f"{value!r} is not a language code such as es, en or pt_BR")
        return value


class Money(_Part):
    """The PO total: an exact decimal amount and its ISO 4217 currency."""

    amount: Decimal
    currency: str

    @field_validator("amount", mode="before")
    @classmethod
    def _exact_amount(cls, value: Any) -> Decimal:
        if isinstance(value, bool) or value is None:
            raise ValueError("must be a number such as 1234.50")
        if isinstance(value, Decimal | int):
            return Decimal(value)
        if isinstance(value, float):
            return Decimal(repr(value))  # the shortest text that reads back as this float
        if isinstance(value, str):
            text = value.strip()
            if len(text) > MAX_AMOUNT_CHARS:
                raise ValueError(f"is {len(text):,} characters long; that is not an amount")
            if not _AMOUNT_TEXT.match(text):
                raise ValueError(
                    f"{value[:40]!r} is not a number; write it like 1234.50 "
                    "(a dot for decimals, no thousands separators)"
                )
            return Decimal(text)
        raise ValueError("must be a number such as 1234.50")

    @field_validator("currency", mode="before")
    @classmethod
    def _iso_currency(cls, value: Any) -> str:
        if not isinstance(value, str):
            raise ValueError("must be an ISO 4217 code such as EUR or USD")
        return normalize_currency(value)

    @model_validator(mode="after")
    def _fits_currency(self) -> Money:
        check_amount(self.amount, self.currency)  # finite, >= 0, plausible, whole cents
        return self


class PoApprovedEvent(_Part):
    """A purchase order was approved in the ERP: notify its supplier once."""

    event_id: TextId = Field(min_length=1, max_length=128)
    event_type: str = Field(default=EVENT_TYPE, max_length=64)
    tenant_id: str = Field(min_length=1, max_length=64)
    po: PoRef
    supplier: SupplierRef
    total: Money
    approved_at: Annotated[datetime | None, BeforeValidator(_blank_none)] = None
    document_url: Annotated[str | None, BeforeValidator(_blank_none)] = Field(
        default=None, max_length=2048
    )
    #: one of the tenant's numbers to send from (None: its default; `core.routing`)
    sender_phone_number_id: OptionalId = Field(default=None, max_length=32)

    @field_validator("event_id")
    @classmethod
    def _event_id(cls, value: str) -> str:
        return _no_control(value)

    @field_validator("event_type", mode="before")
    @classmethod
    def _known_type(cls, value: Any) -> str:
        if not isinstance(value, str):
            raise ValueError(f"must be {EVENT_TYPE!r}")
        normal = value.strip().lower().replace("-", "_")
        if normal not in EVENT_TYPE_ALIASES:
            raise ValueError(f"{value[:64]!r} is not handled here (only {EVENT_TYPE!r})")
        return EVENT_TYPE

    @field_validator("tenant_id")
    @classmethod
    def _tenant(cls, value: str) -> str:
        if not _IDENT.match(value):
            raise ValueError(
                "must be letters, digits and . _ - : @ / only, starting with a letter or digit"
            )
        return value

    @field_validator("sender_phone_number_id")
    @classmethod
    def _phone_number_id(cls, value: str | None) -> str | None:
        if value is not None and not valid_phone_number_id(value):
            raise ValueError(
                "must be the phone number ID (5 to 32 digits) of one of the tenant's "
                "WhatsApp numbers, not a phone number"
            )
        return value

    @field_validator("approved_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)  # ERPs often omit the offset; UTC is the norm
        return value.astimezone(UTC)

    @field_validator("document_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.lower().startswith(("https://", "http://")) or _CONTROL.search(value):
            raise ValueError("must be an http(s) URL")
        return value


def parse_po_event(raw: bytes | bytearray | str | Mapping[str, Any]) -> PoApprovedEvent:
    """Decode and validate one event from its wire bytes (or an already decoded object).

    JSON numbers are read as `Decimal`, so an amount of 1234.10 stays exactly that.
    Raises `InvalidPoEvent` listing every problem; never any other exception.
    """
    if isinstance(raw, Mapping):
        data: Any = raw
    else:
        data = _decode(raw)
    if not isinstance(data, Mapping):
        kind = "a list" if isinstance(data, list) else f"a {type(data).__name__}"
        raise InvalidPoEvent([f"the event must be a JSON object, not {kind}"])
    try:
        return PoApprovedEvent.model_validate(data)
    except ValidationError as exc:
        raise InvalidPoEvent(describe_errors(exc)) from None
    except (TypeError, ValueError, RecursionError) as exc:  # hostile shapes in a Mapping
        raise InvalidPoEvent([f"the event could not be read: {type(exc).__name__}"]) from None


def _decode(raw: bytes | bytearray | str) -> Any:
    size = len(raw.encode("utf-8", "surrogatepass")) if isinstance(raw, str) else len(raw)
    if size == 0:
        raise InvalidPoEvent(["the event is empty"])
    if size > MAX_EVENT_BYTES:
        raise InvalidPoEvent([f"the event is {size:,} bytes; the limit is {MAX_EVENT_BYTES:,}"])
    if isinstance(raw, bytes | bytearray):
        try:
            text = bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidPoEvent(["the event is not UTF-8 text"]) from None
    else:
        text = raw
    try:
        return json.loads(text, parse_float=Decimal, parse_constant=_no_constant)
    except RecursionError:
        raise InvalidPoEvent(["the event is nested too deeply"]) from None
    except json.JSONDecodeError as exc:
        where = f" (line {exc.lineno}, column {exc.colno})"
        raise InvalidPoEvent([f"the event is not valid JSON: {exc.msg}{where}"]) from None
    except ValueError as exc:  # NaN/Infinity, or a number too long to convert
        raise InvalidPoEvent([f"the event is not valid JSON: {exc}"]) from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def describe_errors(exc: ValidationError) -> list[str]:
    """Turn pydantic's errors into one plain sentence per problem, naming the field."""
    problems: list[str] = []
    for error in exc.errors(include_url=False, include_input=False):
        where = ".".join(str(part) for part in error["loc"]) or "event"
        kind = error["type"]
        message = error["msg"]
        if kind == "missing":
            problems.append(f"{where} is missing")
        elif kind in ("model_type", "model_attributes_type", "dict_type"):
            problems.append(f"{where} must be an object")
        elif kind == "string_type":
            problems.append(f"{where} must be text")
        elif kind == "string_too_short":
            problems.append(f"{where} is empty")
        elif kind == "string_too_long":
            limit = (error.get("ctx") or {}).get("max_length")
            problems.append(f"{where} is too long (at most {limit} characters)")
        else:
            if message.startswith("Value error, "):
                message = message[len("Value error, ") :]
            problems.append(f"{where}: {message}")
    return problems
