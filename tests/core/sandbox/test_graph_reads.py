"""Template list with Graph cursor paging, and the phone number's health fields."""

from __future__ import annotations

import pytest

from core.sandbox import SandboxServer
from core.sandbox.catalog import default_templates
from core.settings import SANDBOX_PHONE_NUMBER_ID, SANDBOX_WABA_ID
from tests.core.sandbox.helpers import TEMPLATES_PATH, client, error_code

FIELDS = "name,language,status,category,components,parameter_format"


def test_paging_walk_with_limit_2_visits_every_template_once(sandbox: SandboxServer) -> None:
    seen: list[tuple[str, str]] = []
    pages = 0
    with client(sandbox.url) as http:
        response = http.get(TEMPLATES_PATH, params={"fields": FIELDS, "limit": 2})
        while True:
            assert response.status_code == 200, response.text
            page = response.json()
            pages += 1
            assert 1 <= len(page["data"]) <= 2
            seen.extend((t["name"], t["language"]) for t in page["data"])
            cursors = page["paging"]["cursors"]
            assert cursors["before"] and cursors["after"]
            if pages > 1:
                assert page["paging"]["previous"].startswith(sandbox.url)
            if "next" not in page["paging"]:
                break
            next_url = page["paging"]["next"]
            assert next_url.startswith(f"{sandbox.url}/v25.0/{SANDBOX_WABA_ID}/message_templates?")
            assert f"after={cursors['after']}" in next_url
            response = http.get(next_url)
    templates = default_templates()
    assert pages == (len(templates) + 1) // 2 >= 4
    assert sorted(seen) == sorted((t.name, t.language) for t in templates)
    assert len(set(seen)) == len(seen)


def test_previous_link_goes_back_one_page(sandbox: SandboxServer) -> None:
    with client(sandbox.url) as http:
        first = http.get(TEMPLATES_PATH, params={"limit": 3}).json()
        second = http.get(first["paging"]["next"]).json()
        back = http.get(second["paging"]["previous"]).json()
    assert [t["id"] for t in back["data"]] == [t["id"] for t in first["data"]]
    assert "previous" not in first["paging"]


def test_template_json_is_metas_component_shape(sandbox: SandboxServer) -> None:
    with client(sandbox.url) as http:
        data = http.get(TEMPLATES_PATH, params={"fields": FIELDS, "limit": 100}).json()["data"]
    po = next(t for t in data if t["name"] == "po_notification" and t["language"] == "es")
    assert set(po) == {*FIELDS.split(","), "id"}
    assert po["parameter_format"] == "NAMED"
    assert po["category"] == "UTILITY" and po["status"] == "APPROVED"
    kinds = [c["type"] for c in po["components"]]
    assert kinds == ["HEADER", "BODY", "FOOTER", "BUTTONS"]
    body = po["components"][1]
    assert "{{supplier_name}}" in body["text"] and "{{po_number}}" in body["text"]
    assert {p["param_name"] for p in body["example"]["body_text_named_params"]} == {
        "supplier_name",
        "po_number",
        "total_amount",
    }
    assert po["components"][3]["buttons"] == [
        {"type": "QUICK_REPLY", "text": "Confirmar pedido"},
        {"type": "QUICK_REPLY", "text": "Rechazar"},
    ]
    document = next(t for t in data if t["name"] == "po_document")
    assert document["components"][0] == {
        "type": "HEADER",
        "format": "DOCUMENT",
        "example": {"header_handle": [document["components"][0]["example"]["header_handle"][0]]},
    }
    assert document["parameter_format"] == "POSITIONAL"
    statuses = {t["name"]: t["status"] for t in data}
    assert statuses["old_po_notice"] == "PAUSED"
    assert statuses["spring_promo"] == "REJECTED"


def test_only_requested_fields_plus_id(sandbox: SandboxServer) -> None:
    with client(sandbox.url) as http:
        data = http.get(TEMPLATES_PATH, params={"fields": "name,rejected_reason"}).json()["data"]
        defaults = http.get(TEMPLATES_PATH).json()["data"]
    assert all(set(t) == {"name", "rejected_reason", "id"} for t in data)
    assert set(defaults[0]) == {
        "name",
        "parameter_format",
        "components",
        "language",
        "status",
        "category",
        "id",
    }


def test_filters_by_status_and_name(sandbox: SandboxServer) -> None:
    with client(sandbox.url) as http:
        approved = http.get(TEMPLATES_PATH, params={"status": "APPROVED", "limit": 100}).json()
        po = http.get(TEMPLATES_PATH, params={"name": "po_no", "limit": 100}).json()
    assert {t["status"] for t in approved["data"]} == {"APPROVED"}
    assert "next" not in approved["paging"]
    assert {t["name"] for t in po["data"]} == {"po_notification", "old_po_notice"}


@pytest.mark.parametrize(
    ("path", "params", "code"),
    [
        (TEMPLATES_PATH, {"fields": "name,secret_field"}, 100),
        (TEMPLATES_PATH, {"after": "not-a-cursor"}, 100),
        (TEMPLATES_PATH, {"limit": "-3"}, 100),
        (TEMPLATES_PATH, {"limit": "lots"}, 100),
        ("/v25.0/123456/message_templates", {}, 100),
        (f"/v25.0/{SANDBOX_PHONE_NUMBER_ID}", {"fields": "messaging_limit_tier"}, 100),
        ("/v25.0/987654321", {}, 100),
    ],
)
def test_bad_reads_get_graph_errors(
    sandbox: SandboxServer, path: str, params: dict, code: int
) -> None:
    with client(sandbox.url) as http:
        response = http.get(path, params=params)
    assert response.status_code == 400
    assert error_code(response) == code


def test_reads_need_the_token(sandbox: SandboxServer) -> None:
    with client(sandbox.url) as http:
        http.headers.pop("Authorization")
        templates = http.get(TEMPLATES_PATH)
        health = http.get(f"/v25.0/{SANDBOX_PHONE_NUMBER_ID}")
    assert templates.status_code == health.status_code == 401
    assert error_code(templates) == error_code(health) == 190


def test_phone_number_health_returns_requested_fields_and_id(sandbox: SandboxServer) -> None:
    fields = (
        "display_phone_number,verified_name,quality_rating,throughput,status,"
        "whatsapp_business_manager_messaging_limit"
    )
    with client(sandbox.url) as http:
        health = http.get(f"/v25.0/{SANDBOX_PHONE_NUMBER_ID}", params={"fields": fields}).json()
        one = http.get(
            f"/v25.0/{SANDBOX_PHONE_NUMBER_ID}", params={"fields": "quality_rating"}
        ).json()
        old = http.get(
            f"/v23.0/{SANDBOX_PHONE_NUMBER_ID}", params={"fields": "messaging_limit_tier"}
        ).json()
    assert health == {
        "display_phone_number": "+34 910 00 00 00",
        "verified_name": "Compras Demo",
        "quality_rating": "GREEN",
        "throughput": {"level": "STANDARD"},
        "status": "CONNECTED",
        "whatsapp_business_manager_messaging_limit": "TIER_2K",
        "id": SANDBOX_PHONE_NUMBER_ID,
    }
    assert one == {"quality_rating": "GREEN", "id": SANDBOX_PHONE_NUMBER_ID}
    assert old == {"messaging_limit_tier": "TIER_2K", "id": SANDBOX_PHONE_NUMBER_ID}


def test_health_follows_runtime_config(sandbox: SandboxServer) -> None:
    sandbox.configure(quality_rating="YELLOW", throughput_level="HIGH")
    with client(sandbox.url) as http:
        health = http.get(
            f"/v25.0/{SANDBOX_PHONE_NUMBER_ID}", params={"fields": "quality_rating,throughput"}
        ).json()
    assert health["quality_rating"] == "YELLOW"
    assert health["throughput"] == {"level": "HIGH"}


def test_waba_node_answers_its_fields(sandbox: SandboxServer) -> None:
    with client(sandbox.url) as http:
        waba = http.get(f"/v25.0/{SANDBOX_WABA_ID}", params={"fields": "name,currency"}).json()
    assert set(waba) == {"name", "currency", "id"}
    assert waba["id"] == SANDBOX_WABA_ID
