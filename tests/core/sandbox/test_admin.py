"""`/_sandbox/` controls and the magic recipients' synchronous outcomes."""

from __future__ import annotations

import httpx
import pytest

from core.sandbox import SandboxServer
from tests.core.sandbox.helpers import MESSAGES_PATH, client, error_code, po_notification, text


def _post(sandbox: SandboxServer, body: dict) -> httpx.Response:
    with client(sandbox.url) as http:
        return http.post(MESSAGES_PATH, json=body)


def test_inject_fails_the_next_sends_then_stops(sandbox: SandboxServer) -> None:
    sandbox.inject(131000, count=2, http_status=503, details="injected by a test")
    first = _post(sandbox, po_notification("+34612345601"))
    second = _post(sandbox, po_notification("+34612345602"))
    third = _post(sandbox, po_notification("+34612345603"))
    assert first.status_code == second.status_code == 503
    assert error_code(first) == error_code(second) == 131000
    assert first.json()["error"]["error_data"]["details"] == "injected by a test"
    assert third.status_code == 200
    assert sandbox.stats()["rejected"] == {"131000": 2}


def test_inject_for_one_recipient_leaves_others_alone(sandbox: SandboxServer) -> None:
    sandbox.inject(131026, to="+34612345678")
    assert _post(sandbox, po_notification("+34612345679")).status_code == 200
    response = _post(sandbox, po_notification("34612345678"))
    assert response.status_code == 400
    assert error_code(response) == 131026
    assert _post(sandbox, po_notification("+34612345670")).status_code == 200


def test_inject_uses_metas_http_status_by_default(sandbox: SandboxServer) -> None:
    sandbox.inject(190)
    response = _post(sandbox, po_notification())
    assert response.status_code == 401 and error_code(response) == 190


def test_injections_do_not_fire_on_invalid_requests(sandbox: SandboxServer) -> None:
    sandbox.inject(368)
    assert error_code(_post(sandbox, po_notification(to="12"))) == 131009
    assert error_code(_post(sandbox, po_notification())) == 368


@pytest.mark.parametrize(
    ("number", "statuses", "code"),
    [
        ("+34600000190", (401, 401), 190),
        ("+34600000368", (400, 400), 368),
        ("+34600000500", (500, 500), 131000),
        ("+34600000501", (500, 200), 131000),
        ("+34600000429", (400, 200), 130429),
    ],
)
def test_magic_numbers_fail_synchronously(
    sandbox: SandboxServer, number: str, statuses: tuple[int, int], code: int
) -> None:
    sandbox.configure(pair_burst=10)
    first = _post(sandbox, po_notification(number))
    second = _post(sandbox, po_notification(number))
    assert (first.status_code, second.status_code) == statuses
    assert error_code(first) == code
    if code == 190:
        assert first.json()["error"]["error_subcode"] == 463


def test_magic_0047_closes_the_window_even_after_a_reply(sandbox: SandboxServer) -> None:
    sandbox.inbound("+34600000047", text="hola")
    assert error_code(_post(sandbox, text("+34600000047"))) == 131047
    assert _post(sandbox, po_notification("+34600000047")).status_code == 200


def test_message_to_the_business_number_itself_is_131021(sandbox: SandboxServer) -> None:
    assert error_code(_post(sandbox, po_notification("+34910000000"))) == 131021


def test_stats_list_duplicate_callback_data(sandbox: SandboxServer) -> None:
    for number in ("+34612345601", "+34612345602", "+34612345603"):
        assert _post(sandbox, po_notification(number, opaque="same-outbox-row")).status_code == 200
    assert _post(sandbox, po_notification("+34612345604", opaque="other")).status_code == 200
    stats = sandbox.stats()
    assert stats["duplicates"] == [{"biz_opaque_callback_data": "same-outbox-row", "count": 3}]
    assert stats["accepted"] == 4 and stats["recipients"] == 4
    assert stats["first_accept_monotonic"] <= stats["last_accept_monotonic"]
    assert "accepted_per_recipient" not in sandbox.stats(recipients=False)


def test_messages_can_be_filtered_and_paged(sandbox: SandboxServer) -> None:
    for i in range(5):
        _post(sandbox, po_notification(f"+3461234560{i}", opaque=f"row-{i}"))
    assert [m["biz_opaque_callback_data"] for m in sandbox.messages(to="+34612345603")] == ["row-3"]
    assert [m["to"] for m in sandbox.messages(biz_opaque="row-1")] == ["+34612345601"]
    page = sandbox.messages(offset=1, limit=2)
    assert [m["biz_opaque_callback_data"] for m in page] == ["row-1", "row-2"]


def test_reset_forgets_everything_and_restores_config(sandbox: SandboxServer) -> None:
    sandbox.configure(mps=3, latency_ms=5)
    _post(sandbox, po_notification())
    sandbox.inject(100, count=5)
    sandbox.reset()
    stats = sandbox.stats()
    assert stats["accepted"] == 0 and stats["rejected"] == {}
    assert stats["mps"] == 80
    assert _post(sandbox, po_notification()).status_code == 200  # no injection, no pair limit
    sandbox.configure(mps=3)
    sandbox.reset(keep_config=True)
    assert sandbox.stats()["mps"] == 3


def test_config_refuses_bad_values_and_hides_secrets(sandbox: SandboxServer) -> None:
    with httpx.Client(base_url=sandbox.url) as http:
        shown = http.get("/_sandbox/config").json()
        assert "access_token" not in shown and "app_secret" not in shown
        for change in (
            {"mps": 0},
            {"mps": "fast"},
            {"mps": True},
            {"duplicate_rate": 1.5},
            {"webhook_url": "ftp://example.org"},
            {"webhooks_enabled": "yes"},
            {"access_token": "steal"},
            {"seed": 3},
        ):
            response = http.post("/_sandbox/config", json=change)
            assert response.status_code == 400, change
            assert response.json()["error"]
        assert http.post("/_sandbox/config", content=b"[1]").status_code == 400
        assert http.post("/_sandbox/config", content=b"{oops").status_code == 400
    updated = sandbox.configure(mps=1000, latency_ms=150, webhook_url=None, time_scale=0.5)
    assert updated["mps"] == 1000 and updated["latency_ms"] == 150


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("inject", {}),
        ("inject", {"code": "131000"}),
        ("inject", {"code": 131000, "count": 0}),
        ("inject", {"code": 131000, "http_status": 99}),
        ("inject", {"code": 131000, "to": "not a number"}),
        ("inbound", {"from": "+34612345678"}),
        ("inbound", {"from": "nobody", "text": "hi"}),
        ("inbound", {"from": "+34612345678", "text": ""}),
        ("inbound", {"from": "+34612345678", "button": "Confirmar"}),
        ("inbound", {"from": "+34612345678", "button_index": 0, "context_id": "wamid.unknown"}),
        ("reset", {"seed": "one"}),
        ("templates/status", {"name": "po_notification", "language": "es", "event": "GONE"}),
        ("templates/status", {"name": "nope", "language": "es", "event": "PAUSED"}),
    ],
)
def test_admin_rejects_malformed_requests(sandbox: SandboxServer, path: str, body: dict) -> None:
    with httpx.Client(base_url=sandbox.url) as http:
        response = http.post(f"/_sandbox/{path}", json=body)
    assert response.status_code == 400
    assert isinstance(response.json()["error"], str)


def test_unknown_admin_path_is_404_json(sandbox: SandboxServer) -> None:
    with httpx.Client(base_url=sandbox.url) as http:
        response = http.get("/_sandbox/nothing")
    assert response.status_code == 404
    assert "error" in response.json()


def test_latency_delays_the_answer_but_the_send_counts(sandbox: SandboxServer) -> None:
    assert sandbox.configure(latency_ms=1500)["latency_ms"] == 1500
    with client(sandbox.url) as http, pytest.raises(httpx.ReadTimeout):
        # the answer is held 1.5 s: a client that gives up earlier never sees the wamid,
        # although Meta (the sandbox) accepted the message, like a real timeout
        http.post(MESSAGES_PATH, json=po_notification(), timeout=0.3)
    assert sandbox.stats()["accepted"] == 1
