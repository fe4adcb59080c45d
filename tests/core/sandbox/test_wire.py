"""Wire-format helpers: Graph error bodies, wamids, signatures, recipient numbers."""

from __future__ import annotations

import base64
import hashlib
import hmac

import orjson
import pytest

from core.errors import GraphError
from core.sandbox.numbers import recipient_digits, wa_id_for
from core.sandbox.wire import IdFactory, SandboxError, expired_token, sign, unknown_object


def test_error_body_is_metas_shape_and_parses_with_our_error_type() -> None:
    error = SandboxError(132000, "body: number of localizable_params (2) does not match (3)")
    body = orjson.loads(error.body("Aabc"))
    assert body == {
        "error": {
            "message": (
                "(#132000) Number of parameters does not match the expected number of params"
            ),
            "type": "OAuthException",
            "code": 132000,
            "error_data": {
                "messaging_product": "whatsapp",
                "details": "body: number of localizable_params (2) does not match (3)",
            },
            "fbtrace_id": "Aabc",
        }
    }
    parsed = GraphError.from_response(error.http_status, body)
    assert parsed.code == 132000 and parsed.details and parsed.http_status == 400


def test_graph_level_errors_have_no_whatsapp_error_data() -> None:
    body = expired_token().payload("Ax")["error"]
    assert body["code"] == 190 and body["error_subcode"] == 463 and "error_data" not in body
    unknown = unknown_object("42").payload("Ax")["error"]
    assert unknown["type"] == "GraphMethodException" and unknown["error_subcode"] == 33


def test_wamids_look_like_metas_and_carry_the_wa_id() -> None:
    ids = IdFactory(seed=3)
    wamid = ids.wamid("34612345678")
    raw = base64.b64decode(wamid.removeprefix("wamid."))
    assert wamid.startswith("wamid.HBgL")  # like Meta's for an 11-digit number
    assert raw[3:14] == b"34612345678"
    assert IdFactory(seed=3).wamid("34612345678") == wamid
    assert ids.wamid("34612345678") != wamid
    assert ids.inbound_wamid("34612345678") != wamid
    trace = ids.fbtrace_id()
    assert trace.startswith("A") and len(trace) == 23


def test_signature_is_hmac_sha256_of_the_exact_bytes() -> None:
    body = b'{"object":"whatsapp_business_account"}'
    expected = hmac.new(b"secret", body, hashlib.sha256).hexdigest()
    assert sign("secret", body) == f"sha256={expected}"
    assert sign("secret", body + b" ") != sign("secret", body)


@pytest.mark.parametrize(
    ("to", "digits"), [("+34612345678", "34612345678"), ("34612345678", "34612345678")]
)
def test_recipient_digits_strip_only_the_plus(to: str, digits: str) -> None:
    assert recipient_digits(to) == digits


@pytest.mark.parametrize(
    "to",
    [
        "",
        "+",
        "1234567",
        "1234567890123456",
        "+34-612-345-678",
        "０６１２３４５６７８",
        "0034612345678",
        None,
        34612345678,
    ],
)
def test_recipient_digits_reject_what_meta_rejects(to: object) -> None:
    with pytest.raises(SandboxError) as caught:
        recipient_digits(to)
    assert caught.value.code in (100, 131009)


@pytest.mark.parametrize(
    ("digits", "wa_id"),
    [
        ("525512345678", "5215512345678"),
        ("5215512345678", "5215512345678"),
        ("541123456789", "5491123456789"),
        ("5491123456789", "5491123456789"),
        ("5531987654321", "553187654321"),
        ("553187654321", "553187654321"),
        ("551187654321", "5511987654321"),
        ("551132654321", "551132654321"),  # a São Paulo landline keeps its 8 digits
        ("5511987654321", "5511987654321"),
        ("14155550100", "14155550100"),
    ],
)
def test_wa_id_rules(digits: str, wa_id: str) -> None:
    assert wa_id_for(digits) == wa_id
