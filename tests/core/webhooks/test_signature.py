"""`core.webhooks.signature`: HMAC-SHA256 of the raw bytes, compared in constant time."""

from __future__ import annotations

import hashlib
import hmac

from hypothesis import given
from hypothesis import strategies as st

from core.webhooks.signature import SignatureCheck, check_signature, sign
from tests.core.webhooks.helpers import SECRET, sample


def test_sign_is_metas_header_format() -> None:
    body = sample("status_sent.json")
    expected = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert sign(SECRET, body) == f"sha256={expected}"


def test_a_correct_signature_passes_in_any_case() -> None:
    body = sample("status_read.json")
    header = sign(SECRET, body)
    assert check_signature(SECRET, body, header) is SignatureCheck.OK
    assert check_signature(SECRET, body, header.upper().replace("SHA256=", "sha256=")) is (
        SignatureCheck.OK
    )
    assert check_signature(SECRET, body, f"  {header} ") is SignatureCheck.OK


def test_missing_and_blank_headers_are_missing() -> None:
    body = b"{}"
    assert check_signature(SECRET, body, None) is SignatureCheck.MISSING
    assert check_signature(SECRET, body, "   ") is SignatureCheck.MISSING


def test_malformed_headers() -> None:
    body = b"{}"
    good = sign(SECRET, body)
    for header in (
        good[len("sha256=") :],  # no prefix
        "sha1=" + good[7:],
        good[:-1],  # 63 digits
        good + "0",
        good[:-1] + "g",  # not hex
        "sha256=" + "é" * 64,
    ):
        assert check_signature(SECRET, body, header) is SignatureCheck.MALFORMED, header


def test_signature_is_over_the_exact_bytes() -> None:
    body = sample("status_sent.json")
    header = sign(SECRET, body)
    reserialised = body.replace(b"\n", b"").replace(b"  ", b"")
    assert check_signature(SECRET, reserialised, header) is SignatureCheck.MISMATCH
    assert check_signature(SECRET, body + b" ", header) is SignatureCheck.MISMATCH
    assert check_signature("another-secret", body, header) is SignatureCheck.MISMATCH


def test_the_comparison_is_constant_time(monkeypatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    body = b'{"entry": []}'
    assert check_signature(SECRET, body, sign(SECRET, body)) is SignatureCheck.OK
    assert check_signature(SECRET, body, "sha256=" + "0" * 64) is SignatureCheck.MISMATCH
    assert len(calls) == 2


@given(st.binary(max_size=2048), st.text(min_size=1, max_size=40))
def test_any_body_signed_with_the_secret_passes_and_any_change_fails(
    body: bytes, secret: str
) -> None:
    header = sign(secret, body)
    assert check_signature(secret, body, header) is SignatureCheck.OK
    assert check_signature(secret, body + b"x", header) is SignatureCheck.MISMATCH
