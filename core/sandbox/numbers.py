"""Recipient numbers: validating `to`, the wa_id WhatsApp knows the user by, magic suffixes.

WhatsApp identifies some users by a different number than the one dialled, and the send
response's `contacts[0].wa_id` (and every later webhook) uses WhatsApp's form:

- Mexico (52): mobile accounts are kept in the pre-2019 form with a `1` after the
  country code, so `52` + 10 digits and `521` + 10 digits both give wa_id `521` + 10
  digits (WhatsApp's FAQ on Mexican numbers; integrators see inbound `521...`).
- Argentina (54): mobiles carry a `9` after the country code: `54` + 10 digits gives
  `549` + 10 digits.
- Brazil (55): the ninth digit added to mobiles in 2012-2016 is present in accounts
  from area codes 11-28 and absent in the others: `55 DD 9XXXXXXXX` with DD >= 31 gives
  `55 DD XXXXXXXX`; `55 DD XXXXXXXX` (a mobile, first digit 6-9) with DD <= 28 gives
  `55 DD 9XXXXXXXX`.
"""

from __future__ import annotations

from core.sandbox.wire import SandboxError

MIN_DIGITS = 8
MAX_DIGITS = 15


def recipient_digits(to: object) -> str:
    """The digits of `to` (an optional leading `+` removed); SandboxError if not a number."""
    if not isinstance(to, str) or not to:
        raise SandboxError(100, "The parameter to is required and must be a string.")
    digits = to[1:] if to.startswith("+") else to
    if not (MIN_DIGITS <= len(digits) <= MAX_DIGITS and digits.isascii() and digits.isdigit()):
        raise SandboxError(
            131009,
            "The 'to' phone number is not valid: use the international format, "
            f"{MIN_DIGITS} to {MAX_DIGITS} digits with an optional leading '+'.",
        )
    if digits[0] == "0":
        raise SandboxError(131009, "The 'to' phone number is not valid: no country code.")
    return digits


def wa_id_for(digits: str) -> str:
    """The wa_id WhatsApp reports for a number dialled as `digits` (see module doc)."""
    if digits.startswith("52"):
        if len(digits) == 12:
            return "521" + digits[2:]
        return digits
    if digits.startswith("54"):
        if len(digits) == 12 and digits[2] != "9":
            return "549" + digits[2:]
        return digits
    if digits.startswith("55"):
        area = int(digits[2:4]) if len(digits) >= 4 else 0
        if len(digits) == 13 and digits[4] == "9" and area >= 31:
            return digits[:4] + digits[5:]
        if len(digits) == 12 and digits[4] in "6789" and 11 <= area <= 28:
            return digits[:4] + "9" + digits[4:]
    return digits


def magic_suffix(digits: str) -> str:
    """The last four digits: the sandbox's magic recipients are chosen by them."""
    return digits[-4:]
