"""Meta's webhook signature: `X-Hub-Signature-256: sha256=<hex>`, HMAC-SHA256 of the raw body.

The check runs over the exact bytes received (never a re-serialised JSON) and compares
in constant time, so neither a forged body nor timing reveals anything about the secret.
"""

from __future__ import annotations

import hashlib
import hmac
from enum import StrEnum

PREFIX = "sha256="
_HEX_LENGTH = 64


class SignatureCheck(StrEnum):
    """The result of checking one request's signature header."""

    OK = "ok"
    MISSING = "missing_signature"  # no header at all
    MALFORMED = "malformed_signature"  # not `sha256=` followed by 64 hex digits
    MISMATCH = "bad_signature"  # well formed, but not this body signed with our secret


def sign(secret: str, body: bytes) -> str:
    """The header value Meta would send for `body`: `sha256=` and the lowercase hex HMAC."""
    return PREFIX + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def check_signature(secret: str, body: bytes, header: str | None) -> SignatureCheck:
    """Check `header` against `body` signed with `secret`, in constant time."""
    if header is None or not header.strip():
        return SignatureCheck.MISSING
    value = header.strip()
    if value[: len(PREFIX)].lower() != PREFIX:
        return SignatureCheck.MALFORMED
    provided = value[len(PREFIX) :].lower()
    if len(provided) != _HEX_LENGTH or not _is_hex(provided):
        return SignatureCheck.MALFORMED
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    if hmac.compare_digest(expected.encode(), provided.encode()):
        return SignatureCheck.OK
    return SignatureCheck.MISMATCH


_HEX = frozenset("0123456789abcdef")


def _is_hex(value: str) -> bool:
    return _HEX.issuperset(value)
