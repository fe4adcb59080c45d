"""Phone numbers as buyers type them, turned into the E.164 form WhatsApp addresses.

Buyers paste numbers from spreadsheets, ERPs and e-mail signatures: spaces, dots,
dashes, brackets (`(+34) ...`), a `00` international prefix, a trunk prefix in brackets
after the country code (`+34 (0)612 34 56 78`), national numbers of the default region,
non-breaking spaces, full-width or Arabic-Indic digits. All of that is accepted. What is
refused gets a reason the buyer can act on (empty, letters, too short for the country,
not a valid number there). Numbers of any type are accepted as long as they are valid:
WhatsApp also runs on some landlines.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import phonenumbers
from babel import Locale
from phonenumbers import NumberParseException, PhoneMetadata, PhoneNumber, PhoneNumberFormat
from phonenumbers import ValidationResult as Possible
from phonenumbers import phonenumberutil as _util
from phonenumbers.re_util import re_compile

from core.i18n import _, current_language
from core.settings import get_settings

#: Longer input is not a phone number, whatever it contains (E.164 has at most 15
#: digits; formatting rarely doubles that).
MAX_INPUT_CHARS = 40
#: Punctuation people put in phone numbers; everything else that is not a digit is refused.
_SEPARATORS = frozenset(" -.()/")
#: ASCII characters `_clean` keeps as they are: a cell made only of them needs no
#: per-character look-up.
_PLAIN_ASCII = frozenset("0123456789+") | _SEPARATORS
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
_ASCII_DIGIT = re.compile(r"[0-9]")  # what str.isdigit finds in ASCII text
#: A trunk prefix in brackets, `(0)`, as written in `+44 (0)20 ...` or `+34 (0)612 ...`.
_TRUNK_ZERO = re.compile(r"\(\s*0\s*\)")
#: A cleaned cell `_read` reads itself (with three digits or more): ASCII digits in
#: groups split by single spaces (no '+', brackets or other separators).
_DIGIT_GROUPS = re.compile(r"[0-9]+(?: [0-9]+)*")


class InvalidPhoneNumber(ValueError):
    """A phone number that cannot be used; the message says why in plain words."""


def normalize_phone(raw: str, region: str | None = None) -> str:
    """The E.164 form (`+34612345678`) of a number as typed, or InvalidPhoneNumber.

    Numbers without a `+` or `00` prefix are read as national numbers of `region`
    (two letters, default: the WHATSAPP_DEFAULT_REGION setting).
    """
    region = _region(region)
    text = _clean(raw)
    number, valid = _parse(text, region)
    possible = _possible(number)
    if valid and possible == Possible.IS_POSSIBLE:  # the usual case, checked once
        return phonenumbers.format_number(number, PhoneNumberFormat.E164)
    shown = text  # at most MAX_INPUT_CHARS, no control characters
    where = _country_of(number)
    if possible == Possible.TOO_SHORT:
        raise InvalidPhoneNumber(_("{number} is too short for {where}").format(
            number=shown, where=where))  # fmt: skip
    if possible == Possible.INVALID_LENGTH:
        raise InvalidPhoneNumber(_("{number} has the wrong number of digits for {where}").format(
            number=shown, where=where))  # fmt: skip
    if possible == Possible.TOO_LONG:
        raise InvalidPhoneNumber(_("{number} is too long for {where}").format(
            number=shown, where=where))  # fmt: skip
    if possible == Possible.INVALID_COUNTRY_CODE:
        raise InvalidPhoneNumber(_("{number} starts with an unknown country code").format(
            number=shown))  # fmt: skip
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhoneNumber(_("{number} is not a valid phone number in {where}").format(
            number=shown, where=where))  # fmt: skip
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def wa_digits(e164: str) -> str:
    """The `to` form the Cloud API takes: the E.164 digits without the `+`."""
    return _checked_e164(e164)[1:]


def country_calling_code(e164: str) -> str:
    """The country calling code of an E.164 number, as text ("34" for Spain)."""
    digits = _checked_e164(e164)[1:]
    return _calling_code(digits[:3]) or str(phonenumbers.parse(e164, None).country_code)


@lru_cache(maxsize=1024)
def _calling_code(prefix: str) -> str | None:
    """The calling code a number starting with these digits has, as phonenumbers
    reads it (codes are prefix-free: the shortest known one is it), else None."""
    for size in (1, 2, 3):
        if int(prefix[:size]) in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            return prefix[:size]
    return None


def display_phone(e164: str) -> str:
    """An E.164 number grouped for people to read: `+34 612 34 56 78`."""
    number = phonenumbers.parse(_checked_e164(e164), None)
    return phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL)


def checked_e164(e164: str) -> str:
    """`e164` itself when it has the E.164 form (`+` and 7 to 15 digits), else
    InvalidPhoneNumber: for numbers `normalize_phone` already produced."""
    return _checked_e164(e164)


def _checked_e164(e164: str) -> str:
    if not isinstance(e164, str) or not _E164.fullmatch(e164):
        raise InvalidPhoneNumber(f"{str(e164)[:MAX_INPUT_CHARS]!r} is not an E.164 number")
    return e164


def _region(region: str | None) -> str:
    code = (region or get_settings().whatsapp_default_region).strip().upper()
    if code not in phonenumbers.SUPPORTED_REGIONS:
        raise InvalidPhoneNumber(f"{code[:10]!r} is not a known country code (use e.g. ES)")
    return code


def _clean(raw: object) -> str:
    """The input with unicode digits made ASCII, spacing unified and junk refused."""
    if raw is None:
        raise InvalidPhoneNumber(_("The phone number is empty"))
    if not isinstance(raw, str):
        raise InvalidPhoneNumber(_("The phone number must be text"))
    if len(raw) > 4 * MAX_INPUT_CHARS:
        raise InvalidPhoneNumber(_("The phone number is too long"))
    if raw.isascii() and _PLAIN_ASCII.issuperset(raw):
        # The usual cell (ASCII digits, spaces, separators, '+'): the loop below would
        # keep every character as it is (NFKC leaves ASCII alone), so skip it.
        return _checked_clean(raw)
    out: list[str] = []
    for char in unicodedata.normalize("NFKC", raw):
        category = unicodedata.category(char)
        if char.isdecimal():
            out.append(str(unicodedata.decimal(char)))
        elif category == "Zs" or char in _SEPARATORS:
            out.append(" " if category == "Zs" else char)
        elif category == "Cf":  # zero-width and direction marks from copy and paste
            continue
        elif char == "+":
            out.append(char)
        elif category.startswith("C"):
            raise InvalidPhoneNumber(
                _("The phone number contains a line break or another invisible character")
            )
        elif char.isalpha():
            raise InvalidPhoneNumber(
                _("The phone number {number} contains letters").format(
                    number=repr(raw.strip()[:MAX_INPUT_CHARS])
                )
            )
        else:
            raise InvalidPhoneNumber(
                _("The phone number contains the character {char}").format(char=repr(char))
            )
    return _checked_clean("".join(out))


def _checked_clean(kept: str) -> str:
    """`_clean`'s end: the kept characters with spacing unified, or why they are no number."""
    text = " ".join(kept.split())
    if not (_ASCII_DIGIT.search(text) if text.isascii() else any(c.isdigit() for c in text)):
        raise InvalidPhoneNumber(
            _("The phone number is empty")
            if not text.strip(" -.()/")
            else _("{number} has no digits").format(number=repr(text))
        )
    if len(text) > MAX_INPUT_CHARS:
        raise InvalidPhoneNumber(_("The phone number is too long"))
    if "+" in text.lstrip("(")[1:]:
        raise InvalidPhoneNumber(_("{number} has a '+' in the middle").format(number=text))
    return text


def _parse(text: str, region: str) -> tuple[PhoneNumber, bool]:
    """Parse with the region's rules and, for a `00` prefix, also as `+` (the usual IDD);
    a `(0)` (the trunk prefix some write after the country code, `+34 (0)612 34 56 78`)
    is also read as absent. Returns the reading and whether it is a valid number.

    The first valid reading wins, as written before without the `(0)` (in Italy the 0
    is part of the number); with none, the last reading explains the problem best (a
    number starting with 00 was almost certainly meant as international).
    """
    bases = [text]
    if len(_TRUNK_ZERO.findall(text)) == 1:
        bases.append(" ".join(_TRUNK_ZERO.sub(" ", text).split()))
    candidates: list[str] = []
    for base in bases:
        candidates.append(base)
        if base.startswith("00"):
            candidates.append("+" + base[2:].lstrip())
    readings: list[PhoneNumber] = []
    first_error: NumberParseException | None = None
    for candidate in candidates:
        try:
            readings.append(_read(candidate, region))
        except NumberParseException as exc:
            first_error = first_error or exc
    for number in readings:
        if _is_valid(number):
            return number, True
    if readings:
        return readings[-1], False
    assert first_error is not None
    raise InvalidPhoneNumber(_parse_reason(text, first_error)) from None


def _read(text: str, region: str) -> PhoneNumber:
    """`phonenumbers.parse(text, region)`, with the usual cell read directly.

    A cell of digits in space-separated groups (`612 34 56 78`), neither starting
    with the region's international prefix nor with its country code, is a national
    number: `_read_national` takes parse's steps for it without what cannot apply to
    such a text (finding the number among other text, extensions, letters, Unicode
    digits, a country code), and the patterns compiled once. Anything else, or
    anything parse would refuse, goes to parse itself; tests compare both on generated
    numbers of every region.
    """
    if _DIGIT_GROUPS.fullmatch(text):
        digits = text.replace(" ", "")
        number = _read_national(digits, region) if len(digits) >= 3 else None
        if number is not None:
            return number
    return phonenumbers.parse(text, region)


def _read_national(digits: str, region: str) -> PhoneNumber | None:
    """parse's reading of `digits` (ASCII, three or more) as a national number of
    `region` (a supported region), or None where parse would do more or refuse."""
    rules = _region_rules(region)
    if rules is None:
        return None
    metadata, idd, country_code, code_digits = rules
    if idd.match(digits) or digits.startswith(code_digits):
        return None  # maybe an international prefix or the country code: parse decides
    _carrier, national, _stripped = _util._maybe_strip_national_prefix_carrier_code(
        digits, metadata
    )
    if _util._test_number_length(national, metadata) in (
        Possible.TOO_SHORT,
        Possible.IS_POSSIBLE_LOCAL_ONLY,
        Possible.INVALID_LENGTH,
    ):
        national = digits
    if not _util._MIN_LENGTH_FOR_NSN <= len(national) <= _util._MAX_LENGTH_FOR_NSN:
        return None
    number = PhoneNumber(country_code=country_code)
    _util._set_italian_leading_zeros_for_phone_number(national, number)
    number.national_number = int(national)
    return number


@lru_cache(maxsize=512)
def _region_rules(region: str) -> tuple[PhoneMetadata, re.Pattern[str], int, str] | None:
    """A region's metadata, its international prefix compiled and its country code (also
    as digits)."""
    metadata = PhoneMetadata.metadata_for_region(region.upper(), None)
    if metadata is None or metadata.country_code is None:
        return None
    if region not in phonenumbers.SUPPORTED_REGIONS:
        return None
    idd = re_compile(metadata.international_prefix or "NonMatch")
    return metadata, idd, metadata.country_code, str(metadata.country_code)


def _is_valid(number: PhoneNumber) -> bool:
    """`phonenumbers.is_valid_number(number)`, for a country code of one region with
    the number types' patterns compiled once (any type matching makes it valid; its
    order does not matter); other numbers are left to phonenumbers."""
    descs = _number_types(number.country_code)
    if descs is None:
        return phonenumbers.is_valid_number(number)
    national = _util.national_significant_number(number)
    size = len(national)
    for index, (lengths, pattern) in enumerate(descs):
        if (lengths is None or size in lengths) and pattern.fullmatch(national) is not None:
            if index:
                return True  # a number type matches (the general description did)
        elif not index:
            return False  # not even the general description
    return False


def _possible(number: PhoneNumber) -> int:
    """`phonenumbers.is_possible_number_with_reason(number)`: the number's length judged
    by its country code's main region (every region of a shared code, as phonenumbers
    does), that region's metadata looked up once."""
    metadata = _main_metadata(number.country_code)
    if metadata is None:
        return phonenumbers.is_possible_number_with_reason(number)
    return _util._test_number_length(_util.national_significant_number(number), metadata)


@lru_cache(maxsize=512)
def _main_metadata(country_code: int | None) -> PhoneMetadata | None:
    """The metadata phonenumbers judges a number's length by, for a known country code."""
    if country_code not in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
        return None
    region = phonenumbers.region_code_for_country_code(country_code)
    return PhoneMetadata.metadata_for_region_or_calling_code(country_code, region)


_Desc = tuple[frozenset[int] | None, re.Pattern[str]]


@lru_cache(maxsize=512)
def _number_types(country_code: int | None) -> tuple[_Desc, ...] | None:
    """The general description of a one-region country code's numbers, then those of
    every number type a valid number matches (`_number_type_helper`: mobile only when
    its pattern differs from fixed lines'), or None for phonenumbers to judge."""
    if country_code is None:
        return None
    regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(country_code)
    if (
        regions is None
        or len(regions) != 1
        or regions[0] == phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY
    ):
        return None
    region = regions[0]
    metadata = PhoneMetadata.metadata_for_region_or_calling_code(country_code, region.upper())
    if metadata is None or country_code != phonenumbers.country_code_for_valid_region(region):
        return None
    kinds = [metadata.fixed_line]  # the usual numbers first: the answer is any type's match
    if not metadata.same_mobile_and_fixed_line_pattern:
        kinds.append(metadata.mobile)
    kinds += [metadata.premium_rate, metadata.toll_free, metadata.shared_cost,
              metadata.voip, metadata.personal_number, metadata.pager, metadata.uan,
              metadata.voicemail]  # fmt: skip

    def desc(kind: object) -> _Desc | None:
        pattern = getattr(kind, "national_number_pattern", None)
        if kind is None or not pattern:
            return None  # matches nothing
        lengths = getattr(kind, "possible_length", ())
        return (frozenset(lengths) if len(lengths) > 0 else None), re_compile(pattern)

    general = desc(metadata.general_desc)
    if general is None:
        return None
    return (general, *(d for d in map(desc, kinds) if d is not None))


def _parse_reason(text: str, error: NumberParseException) -> str:
    kind = error.error_type
    if kind == NumberParseException.INVALID_COUNTRY_CODE:
        return f"{text} starts with an unknown country code"
    if kind in (NumberParseException.TOO_SHORT_NSN, NumberParseException.TOO_SHORT_AFTER_IDD):
        return f"{text} is too short to be a phone number"
    if kind == NumberParseException.TOO_LONG:
        return f"{text} is too long to be a phone number"
    return f"{text} is not a phone number"


def _country_of(number: PhoneNumber) -> str:
    code = number.country_code or 0
    region = phonenumbers.region_code_for_number(number) or (
        phonenumbers.region_code_for_country_code(code)
    )
    if region and region not in (phonenumbers.UNKNOWN_REGION, "001"):
        return _country_name(region, current_language())
    return _("country code +{code}").format(code=code)


@lru_cache(maxsize=512)
def _country_name(region: str, language: str = "en") -> str:
    """The country's name in `language` ("Spain", "España")."""
    name = Locale(language).territories.get(region)
    return str(name) if name else region
