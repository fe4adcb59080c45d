"""`core.webhooks.runtime`: check, journal, acknowledge; then apply in the background."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import Engine

from core.settings import SANDBOX_APP_SECRET, SANDBOX_VERIFY_TOKEN, get_settings
from core.webhooks.runtime import ApplierTuning, WebhookRuntime
from core.webhooks.signature import sign
from tests.core.webhooks.helpers import (
    SECRET,
    T0,
    UTILITY,
    VERIFY_TOKEN,
    add_message,
    journalled,
    message_row,
    status,
    statuses_body,
)
from tests.fixtures.live import set_live_env


def receipt_count(engine: Engine) -> int:
    return len(journalled(engine))


@pytest.fixture
def production_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Meta credentials, app secret and verify token: not sandbox mode."""
    set_live_env(
        monkeypatch, WHATSAPP_APP_SECRET=SECRET, WHATSAPP_WEBHOOK_VERIFY_TOKEN=VERIFY_TOKEN
    )


async def started(engine: Engine) -> WebhookRuntime:
    runtime = WebhookRuntime(get_settings(), engine, ApplierTuning(idle_poll=0.05))
    await runtime.start()
    return runtime


@pytest.fixture
async def runtime(engine: Engine, production_env: None) -> AsyncIterator[WebhookRuntime]:
    rt = await started(engine)
    yield rt
    await rt.stop()


async def test_a_signed_body_is_durable_when_acknowledged_then_applied(
    engine: Engine, runtime: WebhookRuntime
) -> None:
    mid = add_message(engine, wamid="wamid.RT")
    body = statuses_body(status("wamid.RT", "delivered", T0))
    answer = await runtime.receive(body, sign(SECRET, body))
    assert (answer.status_code, answer.reason) == (200, "accepted")
    assert receipt_count(engine) == 1  # committed before the answer was given
    assert await runtime.wait_until_applied(within=30)
    assert message_row(engine, mid)["status"] == "delivered"


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, "missing_signature"),
        ("sha256=nothex", "malformed_signature"),
        ("sha256=" + "0" * 64, "bad_signature"),
    ],
)
async def test_bad_signatures_are_401_and_store_nothing(
    engine: Engine, runtime: WebhookRuntime, header: str | None, reason: str
) -> None:
    answer = await runtime.receive(statuses_body(status("wamid.X", "sent", T0)), header)
    assert (answer.status_code, answer.reason) == (401, reason)
    assert receipt_count(engine) == 0
    assert f'reason="{reason}"' in (await runtime.metrics_text()).decode()


async def test_signed_but_not_a_webhook_is_400_and_stores_nothing(
    engine: Engine, runtime: WebhookRuntime
) -> None:
    for body in (b"{not json", b"[1, 2]", b'{"object": "whatsapp_business_account"}'):
        answer = await runtime.receive(body, sign(SECRET, body))
        assert answer.status_code == 400, body
    assert receipt_count(engine) == 0


async def test_a_large_body_is_decoded_off_the_loop_and_accepted(
    engine: Engine, runtime: WebhookRuntime
) -> None:
    items = [status(f"wamid.BIG{n:05d}", "sent", T0, pricing=UTILITY) for n in range(1000)]
    for item in items:
        item["biz_opaque_callback_data"] = "c" * 200
    body = statuses_body(*items)
    assert len(body) > 256 * 1024  # Meta's up-to-1,000-update bodies
    answer = await runtime.receive(body, sign(SECRET, body))
    assert answer.status_code == 200
    assert [r["event_count"] for r in journalled(engine)] == [1000]


async def test_without_an_app_secret_outside_sandbox_events_are_refused(
    engine: Engine, production_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Settings refuse to load without it; a copy made past their checks still fails closed.
    settings = get_settings().model_copy(update={"whatsapp_app_secret": None})
    runtime = WebhookRuntime(settings, engine)
    await runtime.start()
    try:
        body = statuses_body(status("wamid.X", "sent", T0))
        answer = await runtime.receive(body, sign(SANDBOX_APP_SECRET, body))
        assert (answer.status_code, answer.reason) == (503, "no_app_secret")
        assert receipt_count(engine) == 0
    finally:
        await runtime.stop()


async def test_sandbox_mode_checks_the_sandbox_secret(engine: Engine) -> None:
    assert get_settings().sandbox_mode
    runtime = await started(engine)
    try:
        body = statuses_body(status("wamid.X", "sent", T0))
        assert (await runtime.receive(body, sign(SANDBOX_APP_SECRET, body))).status_code == 200
        assert (await runtime.receive(body, sign("guess", body))).status_code == 401
        assert runtime.verify_subscription("subscribe", SANDBOX_VERIFY_TOKEN, "c1") == "c1"
    finally:
        await runtime.stop()


def test_verify_subscription(engine: Engine, production_env: None) -> None:
    runtime = WebhookRuntime(get_settings(), engine)
    assert runtime.verify_subscription("subscribe", VERIFY_TOKEN, "1158201444") == "1158201444"
    assert runtime.verify_subscription("subscribe", "wrong", "1158201444") is None
    assert runtime.verify_subscription("unsubscribe", VERIFY_TOKEN, "x") is None
    assert runtime.verify_subscription(None, None, None) is None
    assert runtime.verify_subscription("subscribe", VERIFY_TOKEN, None) is None
    assert runtime.verify_subscription("subscribe", VERIFY_TOKEN, "x" * 513) is None


async def test_stop_finishes_commits_in_flight(engine: Engine, production_env: None) -> None:
    import asyncio

    runtime = await started(engine)
    bodies = [statuses_body(status(f"wamid.S{n}", "sent", T0)) for n in range(50)]
    answers = asyncio.gather(*(runtime.receive(b, sign(SECRET, b)) for b in bodies))
    done = await answers
    await runtime.stop()
    assert {a.status_code for a in done} == {200}
    assert receipt_count(engine) == 50
