"""The sandbox plays several business numbers: each its own token, cap, pair limit,
quality, tier and name status, its own Graph reads, and webhooks with its metadata."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from core.numbers.admin import add_number
from core.numbers.secrets import new_key
from core.sandbox import SandboxServer
from core.sandbox.config import ConfigError, SandboxConfig, SandboxNumber
from core.sandbox.server import sandbox_numbers, with_registered_numbers
from core.settings import (
    SANDBOX_PHONE_NUMBER_ID,
    SANDBOX_TOKEN,
    SANDBOX_WABA_ID,
    get_settings,
    load_settings,
)
from tests.core.sandbox.helpers import VERSION, error_code, po_notification
from tests.fixtures.sandbox import WebhookReceiver

[B] = sandbox_numbers(1, mps=2)
B_ID, B_TOKEN = B["phone_number_id"], B["access_token"]
FAST = {"time_scale": 0.01, "duplicate_rate": 0.0, "reorder_rate": 0.0, "reply_rate": 0.0}


@pytest.fixture(scope="module")
def two_numbers() -> Any:
    """A sandbox playing the default number (cap 80) and B (cap 2, its own token)."""
    with SandboxServer(numbers=[B]) as server:
        yield server


@pytest.fixture
def sandbox2(two_numbers: SandboxServer) -> SandboxServer:
    """The two-number sandbox, reset to its starting configuration."""
    two_numbers.reset()
    return two_numbers


def _send(url: str, number: str, token: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(
        f"{url}/{VERSION}/{number}/messages",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )


def test_each_number_checks_its_own_token(sandbox2: SandboxServer) -> None:
    body = po_notification("+34600001111")
    assert _send(sandbox2.url, B_ID, SANDBOX_TOKEN, body).status_code == 401  # A's token
    assert _send(sandbox2.url, SANDBOX_PHONE_NUMBER_ID, B_TOKEN, body).status_code == 401
    assert _send(sandbox2.url, B_ID, B_TOKEN, body).status_code == 200
    unknown = _send(sandbox2.url, "999999", B_TOKEN, body)
    assert unknown.status_code == 400 and error_code(unknown) == 100
    assert _send(sandbox2.url, "999999", "nobody's", body).status_code == 401


def test_caps_and_counters_are_per_number(sandbox2: SandboxServer) -> None:
    codes = [
        _send(sandbox2.url, B_ID, B_TOKEN, po_notification(f"+3460000{i:04d}", opaque=f"b{i}"))
        for i in range(4)
    ]
    assert [c.status_code for c in codes[:2]] == [200, 200]
    assert error_code(codes[2]) == 130429  # B's cap of 2 a second is spent...
    a = _send(sandbox2.url, SANDBOX_PHONE_NUMBER_ID, SANDBOX_TOKEN, po_notification("+34600009999"))
    assert a.status_code == 200  # ...A's is not
    stats = sandbox2.stats(recipients=False)
    assert stats["numbers"][B_ID]["accepted"] == 2
    assert stats["numbers"][B_ID]["max_in_window"] == 2
    assert stats["numbers"][B_ID]["rejected"]["130429"] == 2
    assert stats["numbers"][SANDBOX_PHONE_NUMBER_ID]["accepted"] == 1
    assert stats["accepted"] == 3
    [from_b] = sandbox2.messages(phone_number_id=B_ID, limit=10)[:1]
    assert from_b["phone_number_id"] == B_ID


def test_pair_limit_is_per_business_number(sandbox2: SandboxServer) -> None:
    to = "+34600004444"
    assert _send(sandbox2.url, SANDBOX_PHONE_NUMBER_ID, SANDBOX_TOKEN, po_notification(to))
    second_a = _send(sandbox2.url, SANDBOX_PHONE_NUMBER_ID, SANDBOX_TOKEN, po_notification(to))
    assert error_code(second_a) == 131056
    assert _send(sandbox2.url, B_ID, B_TOKEN, po_notification(to)).status_code == 200


def test_graph_reads_per_number_and_runtime_changes(sandbox2: SandboxServer) -> None:
    fields = "quality_rating,whatsapp_business_manager_messaging_limit,name_status"
    with httpx.Client(base_url=sandbox2.url, timeout=30) as http:
        read_b = http.get(f"/{VERSION}/{B_ID}", params={"fields": fields, "access_token": B_TOKEN})
        assert read_b.json()["quality_rating"] == "GREEN"
        denied = http.get(f"/{VERSION}/{B_ID}", params={"access_token": SANDBOX_TOKEN})
        assert denied.status_code == 401
        sandbox2.set_number(
            B_ID, quality_rating="RED", messaging_limit_tier="TIER_250", name_status="DECLINED"
        )
        read_b = http.get(
            f"/{VERSION}/{B_ID}", params={"fields": fields, "access_token": B_TOKEN}
        ).json()
        assert read_b == {
            "quality_rating": "RED",
            "whatsapp_business_manager_messaging_limit": "TIER_250",
            "name_status": "DECLINED",
            "id": B_ID,
        }
        read_a = http.get(
            f"/{VERSION}/{SANDBOX_PHONE_NUMBER_ID}",
            params={"fields": fields, "access_token": SANDBOX_TOKEN},
        ).json()
        assert read_a["quality_rating"] == "GREEN"  # A keeps its own standing
        templates = http.get(
            f"/{VERSION}/{SANDBOX_WABA_ID}/message_templates", params={"access_token": B_TOKEN}
        )
        assert templates.status_code == 200  # B's WABA is the sandbox's
    numbers = {n["phone_number_id"]: n for n in sandbox2.numbers()}
    assert numbers[B_ID]["quality_rating"] == "RED"
    assert all("access_token" not in n for n in numbers.values())
    assert "access_token" not in str(sandbox2._call("GET", "config"))
    # a new number at runtime, with its own cap
    sandbox2.set_number("300000000000001", access_token="tok-c", mps=1)
    body = po_notification("+34600005555")
    assert _send(sandbox2.url, "300000000000001", "tok-c", body).status_code == 200


def test_hostile_number_changes_are_refused(sandbox2: SandboxServer) -> None:
    for bad in (
        {"phone_number_id": "12a"},
        {"phone_number_id": B_ID, "mps": 0},
        {"phone_number_id": B_ID, "quality_rating": "<b>PURPLE</b>"},
        {"phone_number_id": B_ID, "display_phone_number": "+34 910"},
        {"phone_number_id": B_ID, "unknown": 1},
        {"phone_number_id": B_ID, "mps": True},
    ):
        with pytest.raises(ValueError, match="sandbox numbers"):
            sandbox2._call("POST", "numbers", json=bad)
    with pytest.raises(ConfigError, match="own phone_number_id"):
        SandboxConfig(numbers=(SandboxNumber(SANDBOX_PHONE_NUMBER_ID),))
    with pytest.raises(ValueError, match="one of the sandbox's numbers"):
        sandbox2.inject(190, phone_number_id="424242")


def test_injection_for_one_number_spares_the_other(sandbox2: SandboxServer) -> None:
    sandbox2.inject(190, http_status=401, count=5, phone_number_id=B_ID)
    to = "+34600006666"
    assert error_code(_send(sandbox2.url, B_ID, B_TOKEN, po_notification(to))) == 190
    a = _send(sandbox2.url, SANDBOX_PHONE_NUMBER_ID, SANDBOX_TOKEN, po_notification(to))
    assert a.status_code == 200


def test_webhooks_carry_the_numbers_metadata(
    sandbox2: SandboxServer, webhook_receiver: WebhookReceiver
) -> None:
    sandbox2.configure(webhook_url=webhook_receiver.url, batch_rate=1.0, **FAST)
    wamids = {}
    for number, token, to in (
        (SANDBOX_PHONE_NUMBER_ID, SANDBOX_TOKEN, "+34600007771"),
        (B_ID, B_TOKEN, "+34600007772"),
    ):
        response = _send(sandbox2.url, number, token, po_notification(to, opaque=number))
        wamids[response.json()["messages"][0]["id"]] = number
    sandbox2.inbound("+34600007773", text="hola", phone_number_id=B_ID)
    assert webhook_receiver.wait_for(lambda r: len(r.statuses()) >= 6 and len(r.inbound()) >= 1)
    sandbox2.wait_for_webhooks()
    for post in webhook_receiver.received:
        [entry] = post.json["entry"]
        value = entry["changes"][0]["value"]
        number = value["metadata"]["phone_number_id"]
        display = "34910000000" if number == SANDBOX_PHONE_NUMBER_ID else B["display_phone_number"]
        assert value["metadata"]["display_phone_number"] == display
        for status in value.get("statuses", []):  # a POST never mixes numbers
            assert wamids[status["id"]] == number
            assert status["biz_opaque_callback_data"] == number
        if value.get("messages"):
            assert number == B_ID


def test_a_restarted_sandbox_plays_the_stored_numbers(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`wanotify sandbox` also plays every number stored in the database (the demo's
    second tenant's, `wanotify numbers add`'s), so a restart does not forget them."""
    monkeypatch.setenv("WANOTIFY_MODE", "sandbox")
    monkeypatch.setenv("WANOTIFY_SECRET_KEY", new_key())
    get_settings.cache_clear()
    settings = load_settings()
    add_number(
        engine, settings, tenant_id="norte", phone_number_id="106540352242923",
        access_token=None, display_number="+34 910 00 00 01", display_name="Panadería Norte",
        max_mps=40,
    )  # fmt: skip
    config = with_registered_numbers(SandboxConfig.from_settings(settings), settings)
    [norte] = config.numbers
    assert (norte.phone_number_id, norte.mps, norte.display_phone_number) == (
        "106540352242923",
        40,
        "34910000001",
    )
    assert norte.verified_name == "Panadería Norte"
    assert norte.access_token == SANDBOX_TOKEN  # stored without one: the sandbox's
    get_settings.cache_clear()
