"""Sends over real HTTP: token, path, success shape, wa_id, every validation error code."""

from __future__ import annotations

import base64

import pytest

from core.sandbox import SandboxServer
from tests.core.sandbox.helpers import (
    MESSAGES_PATH,
    changed,
    client,
    error_code,
    po_document,
    po_notification,
    text,
)


def test_accepted_template_has_metas_success_shape(sandbox: SandboxServer) -> None:
    with client(sandbox.url) as http:
        response = http.post(MESSAGES_PATH, json=po_notification("+34612345678"))
    assert response.status_code == 200
    body = response.json()
    assert body["messaging_product"] == "whatsapp"
    assert body["contacts"] == [{"input": "+34612345678", "wa_id": "34612345678"}]
    [message] = body["messages"]
    assert message["message_status"] == "accepted"
    assert message["id"].startswith("wamid.")
    raw = base64.b64decode(message["id"].removeprefix("wamid."))
    assert b"34612345678" in raw  # Meta's wamids carry the recipient
    [stored] = sandbox.messages()
    assert stored["id"] == message["id"]
    assert stored["biz_opaque_callback_data"] == "msg-1"
    assert stored["body"] == po_notification("+34612345678")
    assert stored["category"] == "utility"


def test_wamids_are_deterministic_per_seed(sandbox: SandboxServer) -> None:
    def three_ids() -> list[str]:
        with client(sandbox.url) as http:
            return [
                http.post(MESSAGES_PATH, json=po_notification(f"+3461234567{i}")).json()[
                    "messages"
                ][0]["id"]
                for i in range(3)
            ]

    sandbox.reset(seed=7)
    first = three_ids()
    sandbox.reset(seed=7)
    assert three_ids() == first
    sandbox.reset(seed=8)
    assert set(three_ids()).isdisjoint(first)
    assert len(set(first)) == 3


@pytest.mark.parametrize(
    ("dialled", "wa_id"),
    [
        ("+525512345678", "5215512345678"),  # Mexico: WhatsApp keeps the mobile 1
        ("5215512345678", "5215512345678"),
        ("+541123456789", "5491123456789"),  # Argentina: mobile 9
        ("+5531987654321", "553187654321"),  # Brazil DDD 31: no ninth digit
        ("+551187654321", "5511987654321"),  # Brazil DDD 11: ninth digit added
        ("+5511987654321", "5511987654321"),
        ("+34612345678", "34612345678"),
    ],
)
def test_wa_id_is_whatsapps_form_of_the_number(
    sandbox: SandboxServer, dialled: str, wa_id: str
) -> None:
    with client(sandbox.url) as http:
        response = http.post(MESSAGES_PATH, json=po_notification(dialled))
    assert response.status_code == 200
    assert response.json()["contacts"] == [{"input": dialled, "wa_id": wa_id}]


@pytest.mark.parametrize(
    "header", [None, "Bearer wrong-token", "Basic c2FuZGJveA==", "Bearer", "sandbox-token"]
)
def test_wrong_or_missing_token_is_401_code_190(sandbox: SandboxServer, header: str | None) -> None:
    with client(sandbox.url) as http:
        http.headers.pop("Authorization")
        headers = {"Authorization": header} if header else {}
        response = http.post(MESSAGES_PATH, json=po_notification(), headers=headers)
    assert response.status_code == 401
    assert error_code(response) == 190
    assert response.json()["error"]["type"] == "OAuthException"
    assert "www-authenticate" in response.headers
    assert sandbox.stats()["rejected"] == {"190": 1}


def test_token_in_query_string_is_accepted_like_graph(sandbox: SandboxServer) -> None:
    with client(sandbox.url) as http:
        http.headers.pop("Authorization")
        response = http.post(
            MESSAGES_PATH, params={"access_token": "sandbox-token"}, json=po_notification()
        )
    assert response.status_code == 200


def test_unknown_phone_number_id_is_code_100(sandbox: SandboxServer) -> None:
    with client(sandbox.url) as http:
        response = http.post("/v24.0/999999999/messages", json=po_notification())
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == 100
    assert error["type"] == "GraphMethodException"
    assert "999999999" in error["message"]


def test_any_graph_version_works_but_not_garbage(sandbox: SandboxServer) -> None:
    with client(sandbox.url) as http:
        assert (
            http.post("/v26.0/106540352242922/messages", json=po_notification()).status_code == 200
        )
        response = http.post("/latest/106540352242922/messages", json=po_notification())
    assert response.status_code == 404
    assert response.json()["error"]["code"] == 2500


NAMED_BODY = ("template", "components", 0, "parameters")


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (changed(po_notification(), ("template", "name"), "no_such_template"), 132001),
        (changed(po_notification(), ("template", "language", "code"), "fr"), 132001),
        (changed(po_notification(), ("template", "name"), "spring_promo"), 132001),  # REJECTED
        (changed(po_notification(), (*NAMED_BODY, 2), ...), 132000),  # a parameter missing
        (changed(po_notification(), (*NAMED_BODY, 0, "parameter_name"), "proveedor"), 132000),
        (changed(po_notification(), (*NAMED_BODY, 0, "parameter_name"), ...), 100),
        (changed(po_notification(), (*NAMED_BODY, 1, "parameter_name"), "supplier_name"), 132000),
        (changed(po_notification(), (*NAMED_BODY, 0, "text"), "Harinas\nMartín"), 132018),
        (changed(po_notification(), (*NAMED_BODY, 0, "text"), "Harinas\tMartín"), 132018),
        (changed(po_notification(), (*NAMED_BODY, 0, "text"), "Harinas     Martín"), 132018),
        (changed(po_notification(), (*NAMED_BODY, 0, "text"), ""), 131008),
        (changed(po_notification(), (*NAMED_BODY, 2, "currency", "code"), ...), 131009),
        (changed(po_notification(), (*NAMED_BODY, 2, "currency", "fallback_value"), ...), 131009),
        (changed(po_notification(), (*NAMED_BODY, 2, "currency", "amount_1000"), "12"), 131009),
        (changed(po_notification(), (*NAMED_BODY, 2, "currency", "code"), "euro"), 131009),
        (changed(po_notification(), (*NAMED_BODY, 0, "text"), "x" * 1100), 132005),
        (changed(po_notification(), ("template", "components", 1, "index"), "5"), 131009),
        (changed(po_notification(), ("template", "components", 1, "sub_type"), "url"), 131009),
        (po_notification(to="12345"), 131009),
        (po_notification(to="+34 612 345 678"), 131009),
        (po_notification(to="+3461234567890123"), 131009),
        (changed(po_notification(), ("to",), ...), 100),
        (changed(po_notification(), ("messaging_product",), "sms"), 100),
        (changed(po_notification(), ("recipient_type",), "group"), 100),
        (changed(po_notification(), ("type",), "carrier_pigeon"), 100),
        (po_notification(opaque="x" * 513), 100),
        (changed(po_document(), ("template", "components", 0), {"type": "header"}), 132012),
        (
            changed(po_document(), ("template", "components", 0, "parameters", 0, "document"), {}),
            132012,
        ),
        (
            changed(po_document(), ("template", "components", 0, "parameters", 0, "type"), "image"),
            132012,
        ),
        (po_document(filename="PO-1.docx"), 131053),
        (changed(po_document(), ("template", "components", 1, "parameters", 1), ...), 132000),
        (changed(po_document(), ("template", "components"), []), 132012),
        (changed(po_notification(), ("template", "name"), "old_po_notice"), 132015),
        (changed(po_notification(), ("template", "name"), "legacy_order_alert"), 132016),
        (text(), 131047),  # nobody wrote to us: the 24 h window is closed
        (changed(text(), ("text", "body"), ""), 100),
        (changed(text(), ("text", "body"), "x" * 4097), 100),
    ],
)
def test_validation_errors_use_metas_codes(sandbox: SandboxServer, body: dict, code: int) -> None:
    with client(sandbox.url) as http:
        response = http.post(MESSAGES_PATH, json=body)
    assert response.status_code in (400, 404), response.text
    assert error_code(response) == code, response.text
    stats = sandbox.stats()
    assert stats["accepted"] == 0
    assert stats["rejected"] == {str(code): 1}


def test_positional_templates_with_date_time_and_text_header(sandbox: SandboxServer) -> None:
    reminder = {
        "messaging_product": "whatsapp",
        "to": "+34612345670",
        "type": "template",
        "template": {
            "name": "delivery_reminder",
            "language": {"code": "es"},
            "components": [
                {
                    "type": "body",
                    "parameters": [
                        {"type": "text", "text": "PO-7"},
                        {"type": "date_time", "date_time": {"fallback_value": "12 de enero"}},
                        {"type": "text", "text": "Almacén"},
                    ],
                }
            ],
        },
    }
    payment = {
        "messaging_product": "whatsapp",
        "to": "+34612345671",
        "type": "template",
        "template": {
            "name": "payment_notice",
            "language": {"code": "en"},
            "components": [
                {"type": "header", "parameters": [{"type": "text", "text": "PAY-9"}]},
                {
                    "type": "body",
                    "parameters": [
                        {
                            "type": "currency",
                            "currency": {
                                "fallback_value": "€10.00",
                                "code": "EUR",
                                "amount_1000": 10000,
                            },
                        },
                        {"type": "text", "text": "F-1"},
                    ],
                },
            ],
        },
    }
    with client(sandbox.url) as http:
        assert http.post(MESSAGES_PATH, json=reminder).status_code == 200
        assert http.post(MESSAGES_PATH, json=payment).status_code == 200
        long_header = changed(
            payment, ("template", "components", 0, "parameters", 0, "text"), "P" * 60
        )
        long_header["to"] = "+34612345672"
        assert error_code(http.post(MESSAGES_PATH, json=long_header)) == 132005
        no_date = changed(reminder, ("template", "components", 0, "parameters", 1, "date_time"), {})
        assert error_code(http.post(MESSAGES_PATH, json=no_date)) == 131008
    assert sandbox.stats()["accepted"] == 2


def test_text_is_accepted_inside_the_window_as_free_service(sandbox: SandboxServer) -> None:
    sandbox.inbound("+34612345678", text="Hola, ¿me reenvía el pedido?")
    with client(sandbox.url) as http:
        response = http.post(MESSAGES_PATH, json=text("+34612345678"))
        other = http.post(MESSAGES_PATH, json=text("+34612345679"))
    assert response.status_code == 200
    assert error_code(other) == 131047
    [stored] = sandbox.messages()
    assert stored["type"] == "text"
    assert stored["category"] == "service"


def test_biz_opaque_of_512_characters_is_accepted(sandbox: SandboxServer) -> None:
    with client(sandbox.url) as http:
        response = http.post(MESSAGES_PATH, json=po_notification(opaque="x" * 512))
    assert response.status_code == 200


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b"",
        b"[1, 2, 3]",
        b'"a string"',
        b"null",
        b"[" * 5000 + b"]" * 5000,
        b'{"messaging_product": "whatsapp", "to": "+34612345678", "text": "\xed\xb3\xbf"}',
    ],
)
def test_non_json_or_non_object_bodies_are_code_100(sandbox: SandboxServer, content: bytes) -> None:
    with client(sandbox.url) as http:
        response = http.post(
            MESSAGES_PATH, content=content, headers={"Content-Type": "application/json"}
        )
    assert response.status_code == 400
    assert error_code(response) == 100


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("to",), 34612345678),
        (("template",), "po_notification"),
        (("template", "language"), "es"),
        (("template", "components"), {"type": "body"}),
        (("template", "components", 0, "parameters"), "Harinas"),
        (("template", "components", 0, "parameters", 0), "Harinas"),
        (("template", "components", 0, "type"), 7),
        (("template", "components", 1, "index"), True),
        (("biz_opaque_callback_data",), {"id": 1}),
        (("context",), "wamid.x"),
    ],
)
def test_wrong_types_are_rejected_not_crashing(
    sandbox: SandboxServer, path: tuple, value: object
) -> None:
    with client(sandbox.url) as http:
        response = http.post(MESSAGES_PATH, json=changed(po_notification(), path, value))
    assert response.status_code == 400
    assert error_code(response) in (100, 131008, 131009, 132000)


def test_huge_body_is_refused_without_reading_it_all(sandbox: SandboxServer) -> None:
    body = po_notification(supplier="x" * 2_000_000)
    with client(sandbox.url) as http:
        response = http.post(MESSAGES_PATH, json=body)
        assert response.status_code == 413
        assert error_code(response) == 100
        # the server is still healthy afterwards
        assert http.post(MESSAGES_PATH, json=po_notification()).status_code == 200


def test_huge_chunked_body_without_length_is_refused(sandbox: SandboxServer) -> None:
    def chunks():
        yield b'{"messaging_product": "whatsapp", "to": "'
        for _ in range(300):
            yield b"9" * 8192
        yield b'"}'

    with client(sandbox.url) as http:
        response = http.post(MESSAGES_PATH, content=chunks())
    assert response.status_code == 413
    assert error_code(response) == 100


def test_a_client_hanging_up_mid_body_sends_nothing(sandbox: SandboxServer) -> None:
    """Half a body then a closed connection: no answer is owed and nothing is accepted."""
    import json
    import socket
    from urllib.parse import urlsplit

    from tests.core.sandbox.helpers import AUTH

    body = json.dumps(po_notification()).encode()
    url = urlsplit(sandbox.url)
    head = (
        f"POST {MESSAGES_PATH} HTTP/1.1\r\nHost: {url.netloc}\r\n"
        f"Authorization: {AUTH['Authorization']}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection((url.hostname, url.port)) as sock:
        sock.sendall(head + body[: len(body) // 2])
    with client(sandbox.url) as http:  # the server is still healthy, and counted nothing
        assert http.post(MESSAGES_PATH, json=po_notification("+34612345679")).status_code == 200
    assert [m["to"] for m in sandbox.messages()] == ["+34612345679"]


def test_other_methods_on_the_send_path_get_metas_answer(sandbox: SandboxServer) -> None:
    with client(sandbox.url) as http:
        response = http.get(MESSAGES_PATH)
    assert response.status_code == 405
    assert error_code(response) == 100
    assert sandbox.messages() == []


def test_the_first_of_repeated_authorization_headers_counts(sandbox: SandboxServer) -> None:
    import httpx

    from tests.core.sandbox.helpers import AUTH

    headers = httpx.Headers([("Authorization", AUTH["Authorization"]), ("Authorization", "x")])
    with httpx.Client(base_url=sandbox.url, timeout=30.0) as http:
        ok = http.post(MESSAGES_PATH, json=po_notification(), headers=headers)
        reversed_headers = httpx.Headers(list(reversed(headers.multi_items())))
        refused = http.post(
            MESSAGES_PATH, json=po_notification("+34612345679"), headers=reversed_headers
        )
    assert ok.status_code == 200
    assert refused.status_code == 401 and error_code(refused) == 190
