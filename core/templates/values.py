"""Template parameter values: what callers pass, what the supplier sees, what Meta receives.

`TemplateParams` is a plain dict so it can be stored as JSON with the message:

- body parameters keyed by name (NAMED templates) or "1", "2", ... (POSITIONAL); each a
  text, or `{"type": "currency", "amount": "1234.50", "currency": "EUR"}`, or
  `{"type": "date_time", "fallback_value": "25 March 2026"}`;
- "header": the text of a text header's parameter, or a media header
  `{"type": "document", "link": "https://…/PO-1.pdf", "filename": "PO-1.pdf"}`;
- "buttons": `{"0": "ack:PO-1", "1": "reject:PO-1"}`: per button index, a quick-reply
  payload, a URL suffix or a copy code.

Resolving a value checks it (plain-language `ParamValueError`) and yields both the text
shown to the supplier and Meta's send-time parameter object.

`clean_text` is the one hygiene rule for every text a template parameter carries,
whichever road it came by (CSV rows, the dashboard form, ERP events, the seed API):
direction overrides and zero-width characters are refused (they make a text read
differently from what it is: `A\u202eLIAME` shows as "AEMAIL"), runs of non-breaking or
other odd spaces become one plain space, and a text starting like a spreadsheet formula
is refused (it ends up in buyers' result files and in suppliers' spreadsheets).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from core.i18n import N_, _
from core.money import InvalidAmount, amount_1000, check_amount, format_amount, normalize_currency

TemplateParams = dict[str, Any]

HEADER_KEY = "header"
BUTTONS_KEY = "buttons"
#: Meta's limits (see the team's facts sheet).
MAX_URL = 2000
MAX_COUPON_CODE = 15
#: Meta documents no limit for a template quick-reply payload; this is a conservative
#: cap (our own payloads, "reject:" plus a PO number, stay under 80).
MAX_PAYLOAD = 128
#: The longest value examined at all: beyond this a value cannot fit any component.
MAX_VALUE_CHARS = 32_768
_MANY_SPACES = re.compile(r" {5,}")
#: Unicode's control characters (category Cc: C0, DEL and C1), as one search.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
#: Characters that change how the text around them is shown without being seen
#: themselves: bidirectional embeddings, overrides, isolates and marks, and zero-width
#: characters (U+FEFF is a byte order mark only at the start of a file, never in a value).
HIDDEN_CHARS: dict[str, str] = {
    "\u061c": N_("an Arabic letter mark"),
    "\u200b": N_("a zero-width space"),
    "\u200c": N_("a zero-width non-joiner"),
    "\u200d": N_("a zero-width joiner"),
    "\u200e": N_("a left-to-right mark"),
    "\u200f": N_("a right-to-left mark"),
    "\u202a": N_("a left-to-right embedding"),
    "\u202b": N_("a right-to-left embedding"),
    "\u202c": N_("a pop directional formatting"),
    "\u202d": N_("a left-to-right override"),
    "\u202e": N_("a right-to-left override"),
    "\u2060": N_("a word joiner"),
    "\u2066": N_("a left-to-right isolate"),
    "\u2067": N_("a right-to-left isolate"),
    "\u2068": N_("a first strong isolate"),
    "\u2069": N_("a pop directional isolate"),
    "\ufeff": N_("a zero-width no-break space (byte order mark)"),
}
_HIDDEN = re.compile("[" + "".join(HIDDEN_CHARS) + "]")
#: Spaces other than U+0020 (no-break, narrow no-break, figure, en/em, ideographic, ...).
_ODD_SPACE = "\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000"
#: A run of spaces holding at least one odd space: shown as one plain space.
_ODD_SPACE_RUN = re.compile(f"[ {_ODD_SPACE}]*[{_ODD_SPACE}][ {_ODD_SPACE}]*")
#: A text in which `check_text` finds nothing to refuse or change but maybe its spaces
#: and first character: no control character (line breaks and tabs among them), no
#: hidden character, no space but U+0020 (so `str.strip` strips only those), no U+2028/9.
_PLAIN_TEXT = re.compile(
    "[^\x00-\x1f\x7f-\x9f" + "".join(HIDDEN_CHARS) + _ODD_SPACE + "\u2028\u2029]+"
)
#: First characters that make a spreadsheet evaluate a cell.
FORMULA_STARTS = ("=", "+", "-", "@")
#: "+34 612 345 678", "-5" or "(+1) 555-0100": signs before a number, not formulas.
_NUMERIC_LOOKING = re.compile(r"[+-][0-9 .,()/-]*")


class ParamValueError(ValueError):
    """A parameter value that cannot be sent; the message says why in plain words."""


@dataclass(frozen=True, slots=True)  # slots: a CSV check resolves several per row
class Resolved:
    """A checked value: the text the supplier sees and Meta's parameter object."""

    text: str
    parameter: dict[str, Any]


def resolve_text(value: object, language: str) -> Resolved:
    """Check a body parameter value (text, number, currency or date_time) and resolve it."""
    if type(value) is str:  # the usual value: no Mapping look (an ABC check) needed
        text = check_text(value)
        return Resolved(text, {"type": "text", "text": text})
    if isinstance(value, Mapping):
        kind = value.get("type")
        if kind == "currency":
            return _currency(value, language)
        if kind == "date_time":
            fallback = check_text(value.get("fallback_value"))
            return Resolved(
                fallback, {"type": "date_time", "date_time": {"fallback_value": fallback}}
            )
        if kind == "text":
            value = value.get("text")
        else:
            raise ParamValueError(
                _("has an unknown value type {kind}").format(kind=repr(str(kind)[:30]))
            )
    text = check_text(value)
    return Resolved(text, {"type": "text", "text": text})


def check_text(value: object) -> str:
    """A parameter text Meta will accept: non-empty, no line breaks, tabs or runs of spaces,
    and clean by `clean_text` (which it returns).

    Integers and finite Decimals are written as text; floats, booleans, None and other
    objects are refused (a float would lose cents).
    """
    if (
        type(value) is str
        and len(value) <= MAX_VALUE_CHARS
        and ((value.isascii() and value.isprintable()) or _PLAIN_TEXT.fullmatch(value))
    ):
        # The usual cell: `_check_text` would return it as it is unless it is blank,
        # starts like a formula or has a run of spaces (tests compare both on hostile text).
        start = value.lstrip(" ")
        if start and "     " not in value and not looks_like_formula(start):
            return value
    return _check_text(value)


def _check_text(value: object) -> str:
    """`check_text` step by step, for every value."""
    if value is None:
        raise ParamValueError(_("has no value"))
    if isinstance(value, bool | float):
        raise ParamValueError(_("must be text"))
    if isinstance(value, int) or (isinstance(value, Decimal) and value.is_finite()):
        value = str(value)
    if not isinstance(value, str):
        raise ParamValueError(_("must be text"))
    if len(value) > MAX_VALUE_CHARS:
        raise ParamValueError(
            _("is {n} characters long; far too long for WhatsApp").format(n=f"{len(value):,}")
        )
    if not value.strip():
        raise ParamValueError(_("is empty"))
    if "\n" in value or "\r" in value or "\u2028" in value or "\u2029" in value:
        raise ParamValueError(
            _("contains a line break; WhatsApp refuses line breaks in parameters")
        )
    if "\t" in value:
        raise ParamValueError(_("contains a tab; WhatsApp refuses tabs in parameters"))
    if _CONTROL.search(value):
        raise ParamValueError(_("contains invisible control characters"))
    text = clean_text(value)
    if _MANY_SPACES.search(text):
        raise ParamValueError(_("contains more than 4 spaces in a row; WhatsApp refuses that"))
    return text


def clean_text(value: str) -> str:
    """`value` with runs of odd spaces as one plain space; ParamValueError when it holds a
    direction or zero-width character (naming it and its 1-based position) or starts like
    a spreadsheet formula.

    The one rule every template parameter text passes (see the module docstring), so a
    value is judged the same whether it came from a CSV, the form, an ERP or the seed API.
    """
    if (hidden := _HIDDEN.search(value)) is not None:
        char = hidden.group()
        raise ParamValueError(
            _(
                "contains {name} ({code}) at position {position}: invisible characters that "
                "change how a text reads are refused; type the text again without it"
            ).format(
                name=_(HIDDEN_CHARS[char]), code=f"U+{ord(char):04X}", position=hidden.start() + 1
            )
        )
    text = _ODD_SPACE_RUN.sub(" ", value)
    if looks_like_formula(text.lstrip()):
        raise ParamValueError(
            _(
                "starts with {char} like a spreadsheet formula; it is refused rather than sent. "
                "Keep only the text."
            ).format(char=repr(text.lstrip()[0]))
        )
    return text


def looks_like_formula(value: str) -> bool:
    """True for a text a spreadsheet would run: =…, @…, and +/- not followed by a number."""
    if not value or value[0] not in FORMULA_STARTS:
        return False
    return not (value[0] in "+-" and _NUMERIC_LOOKING.fullmatch(value) is not None)


def _currency(value: Mapping[str, Any], language: str) -> Resolved:
    try:
        code = normalize_currency(value.get("currency") or value.get("code"))
        amount = check_amount(value.get("amount"), code)
        scaled = amount_1000(amount)
    except InvalidAmount as exc:
        raise ParamValueError(str(exc)) from None
    fallback = value.get("fallback_value")
    text = check_text(fallback) if fallback is not None else format_amount(amount, code, language)
    parameter = {
        "type": "currency",
        "currency": {"fallback_value": text, "code": code, "amount_1000": scaled},
    }
    return Resolved(text, parameter)


def resolve_media(value: object, header_format: str) -> Resolved:
    """Check a media header value (`{"type", "link", "filename"}`) against the header format.

    Documents must be PDFs and every link https; `text` is the file name (or link) shown
    in a preview.
    """
    kind = header_format.lower()
    if not isinstance(value, Mapping):
        raise ParamValueError(_("must be a {kind} given by link").format(kind=_media(kind)))
    if value.get("type", kind) != kind:
        raise ParamValueError(
            _("must be a {kind}, not {other}").format(
                kind=_media(kind), other=repr(str(value.get("type"))[:20])
            )
        )
    link = value.get("link")
    if not isinstance(link, str) or not link.strip():
        raise ParamValueError(_("needs the link of the {kind}").format(kind=_media(kind)))
    if len(link) > MAX_URL:
        raise ParamValueError(_("has a link longer than {n} characters").format(n=MAX_URL))
    parts = urlsplit(link.strip())
    if parts.scheme != "https" or not parts.hostname:
        raise ParamValueError(_("must be an https:// link to the {kind}").format(kind=_media(kind)))
    media: dict[str, Any] = {"link": link.strip()}
    filename = value.get("filename")
    if kind == "document":
        if filename is not None:
            filename = check_text(filename)
        shown_name = filename or parts.path.rsplit("/", 1)[-1]
        if not shown_name.lower().endswith(".pdf"):
            raise ParamValueError(_("must be a PDF document (a link or file name ending in .pdf)"))
        if filename:
            media["filename"] = filename
    text = filename if isinstance(filename, str) and filename else media["link"]
    return Resolved(text, {"type": kind, kind: media})


def resolve_button(value: object, button_type: str) -> Resolved:
    """Check a button value: a quick-reply payload, a URL suffix or a copy code."""
    text = check_text(value)
    if button_type == "QUICK_REPLY":
        if len(text) > MAX_PAYLOAD:
            raise ParamValueError(_("is longer than {n} characters").format(n=MAX_PAYLOAD))
        return Resolved(text, {"type": "payload", "payload": text})
    if button_type == "URL":
        if len(text) > MAX_URL:
            raise ParamValueError(_("is longer than {n} characters").format(n=MAX_URL))
        return Resolved(text, {"type": "text", "text": text})
    if button_type == "COPY_CODE":
        if len(text) > MAX_COUPON_CODE:
            raise ParamValueError(_("is longer than {n} characters").format(n=MAX_COUPON_CODE))
        return Resolved(text, {"type": "coupon_code", "coupon_code": text})
    raise ParamValueError(
        _("belongs to a {kind} button, which takes no value").format(kind=button_type.lower())
    )


#: A media header's kind as a refusal names it (Meta's header formats).
_MEDIA = {"document": N_("document"), "image": N_("image"), "video": N_("video")}


def _media(kind: str) -> str:
    known = _MEDIA.get(kind)
    return _(known) if known else kind
