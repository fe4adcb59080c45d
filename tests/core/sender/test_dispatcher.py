"""The dispatcher end to end: real SQLite file, real Cloud API client, real sandbox over HTTP.

The sandbox is configured *above* our cap where a test measures our limiter, so what it
counts is what we sent, not what it refused.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from core.control import resume_sending, sending_state
from core.models.messages import MessageStatus
from core.outbox import OutboundMessage, enqueue
from core.sandbox import SandboxServer
from core.sender import store
from core.settings import SANDBOX_PHONE_NUMBER_ID, get_settings
from tests.core.sender.helpers import enqueue_notices, notice, phone, rows, run_drain

#: Meta's pair limit (6 s) shortened on both sides, the sandbox's limit and the
#: dispatcher's pacing, where a test retries one number and proves the retries, not the
#: pacing (test_second_message_to_a_supplier_waits_while_others_go_ahead proves that):
#: each retry waited out 6 idle seconds.
PAIR_SECONDS = 0.5


def test_cap_is_never_exceeded_and_each_send_carries_our_id(
    sandbox_env: SandboxServer, engine: Engine
) -> None:
    sandbox_env.configure(mps=10_000)  # the sandbox would accept more: we must not send more
    ids = enqueue_notices(engine, [phone(i) for i in range(60)])
    report = run_drain(engine, mps=20)
    stats = sandbox_env.stats()
    assert stats["accepted"] == 60
    assert stats["max_in_window"] <= 20  # counted from the sandbox's own accept times
    assert stats["duplicates"] == []
    assert report.accepted == 60 and report.queue.pending == 0
    by_opaque = {m["biz_opaque_callback_data"]: m for m in sandbox_env.messages(limit=100)}
    assert set(by_opaque) == set(ids)  # our message id went out in biz_opaque_callback_data
    for message in rows(engine).values():
        assert message.status == MessageStatus.ACCEPTED
        assert message.whatsapp_message_id == by_opaque[message.id]["id"]
        assert message.wa_id == by_opaque[message.id]["wa_id"]
        assert message.attempt_count == 0 and message.accepted_at is not None
        assert message.provider_response is not None  # Meta's answer, as received
        assert message.provider_response["messages"][0]["id"] == message.whatsapp_message_id


def test_wa_id_that_differs_from_the_dialled_number_is_stored(
    sandbox_env: SandboxServer, engine: Engine
) -> None:
    result = enqueue(notice("+525512345678", "mx"), engine=engine)
    run_drain(engine)
    stored = rows(engine)[result.message.id]
    assert stored.recipient_phone == "+525512345678"
    assert stored.wa_id == "5215512345678"  # Mexico's mobile prefix, as Meta answers


def test_second_message_to_a_supplier_waits_while_others_go_ahead(
    sandbox_env: SandboxServer, engine: Engine
) -> None:
    sandbox_env.configure(pair_interval_s=1.0)
    same = phone(0)
    first, second = enqueue_notices(engine, [same, same], prefix="same")
    others = enqueue_notices(engine, [phone(i) for i in range(1, 11)], prefix="other")
    report = run_drain(engine, pair_interval=1.0)
    stats = sandbox_env.stats()
    assert stats["rejected"] == {}  # never hit Meta's pair limit (131056)
    assert stats["accepted"] == 12 and report.stats.postponed >= 1
    at = {m["biz_opaque_callback_data"]: m["accepted_at"] for m in sandbox_env.messages()}
    assert at[second] - at[first] >= 1.0
    assert all(at[other] < at[second] for other in others)  # the others did not wait


def test_server_errors_are_retried_with_backoff_then_fail_with_the_reason(
    sandbox_env: SandboxServer, engine: Engine
) -> None:
    (always,) = enqueue_notices(engine, [phone(1, "0500")], prefix="always")
    (once,) = enqueue_notices(engine, [phone(2, "0501")], prefix="once")
    sandbox_env.configure(pair_interval_s=PAIR_SECONDS)
    report = run_drain(engine, pair_interval=PAIR_SECONDS)
    stored = rows(engine)
    assert stored[always].status == MessageStatus.FAILED
    assert stored[always].attempt_count == 3  # max_attempts in the test policy
    assert stored[always].error_code == 131000
    assert stored[always].error_class == "retry"
    assert stored[always].error_message == "Meta hit an internal error; retried"
    assert stored[once].status == MessageStatus.ACCEPTED
    assert stored[once].attempt_count == 1
    assert sandbox_env.stats()["rejected"] == {"131000": 4}
    assert report.stats.retried == 3


def test_throughput_error_slows_the_dispatcher_and_the_message_still_goes(
    sandbox_env: SandboxServer, engine: Engine
) -> None:
    (limited,) = enqueue_notices(engine, [phone(1, "0429")], prefix="limited")
    enqueue_notices(engine, [phone(i) for i in range(2, 6)])
    sandbox_env.configure(pair_interval_s=PAIR_SECONDS)
    report = run_drain(engine, pair_interval=PAIR_SECONDS)
    assert report.stats.throttled == 1
    assert report.stats.by_code == {"130429": 1}
    assert rows(engine)[limited].status == MessageStatus.ACCEPTED
    assert sandbox_env.stats()["accepted"] == 5


def test_pause_class_error_stops_the_queue_until_a_person_resumes(
    sandbox_env: SandboxServer, engine: Engine
) -> None:
    ids = enqueue_notices(engine, [phone(i) for i in range(5)])
    sandbox_env.inject(190, http_status=401, count=5)  # the token expired: every send fails
    report = run_drain(engine)
    assert report.paused and report.stats.paused_code == 190
    state = sending_state(engine, SANDBOX_PHONE_NUMBER_ID)
    assert state.paused and state.code == 190
    assert state.reason == "The access token has expired or is invalid"
    stored = rows(engine)
    assert sum(m.status == MessageStatus.PENDING for m in stored.values()) == 5  # none lost
    assert sandbox_env.stats()["accepted"] == 0

    again = run_drain(engine)  # still paused: nothing is sent
    assert again.paused and sandbox_env.stats()["accepted"] == 0

    sandbox_env.reset()  # a person renews the token...
    resume_sending(engine, SANDBOX_PHONE_NUMBER_ID, by="ops@example")  # ...and resumes
    run_drain(engine)
    assert {m.status for m in rows(engine).values()} == {MessageStatus.ACCEPTED}
    assert sorted(m["biz_opaque_callback_data"] for m in sandbox_env.messages()) == sorted(ids)


@pytest.mark.parametrize(
    ("event", "code", "words"), [("PAUSED", 132015, "paused"), ("DISABLED", 132016, "disabled")]
)
def test_held_template_fails_its_messages_and_others_go_on(
    sandbox_env: SandboxServer, engine: Engine, event: str, code: int, words: str
) -> None:
    held = enqueue_notices(engine, [phone(i) for i in range(3)], prefix="held")
    other_payload = {
        "messaging_product": "whatsapp",
        "to": "34612999001",
        "type": "template",
        "template": {
            "name": "delivery_reminder",
            "language": {"code": "es"},
            "components": [
                {
                    "type": "body",
                    "parameters": [
                        {"type": "text", "text": "PO-9"},
                        {"type": "text", "text": "lunes"},
                        {"type": "text", "text": "Almacén"},
                    ],
                }
            ],
        },
    }
    other = enqueue(
        OutboundMessage(
            tenant_id="t1",
            idempotency_key="other-template",
            recipient_phone="+34612999001",
            request_payload=other_payload,
            template_name="delivery_reminder",
            template_language="es",
        ),
        engine=engine,
    ).message.id
    sandbox_env.set_template_status("po_notification", "es", event)  # Meta holds it
    run_drain(engine)
    stored = rows(engine)
    assert {stored[i].status for i in held} == {MessageStatus.FAILED}
    assert {stored[i].error_class for i in held} == {"template"}
    reasons = [stored[i].error_message or "" for i in held]
    assert all(f"{words} by Meta" in reason for reason in reasons)
    assert any(stored[i].error_code == code for i in held)  # Meta's answer, kept
    assert stored[other].status == MessageStatus.ACCEPTED
    assert sandbox_env.stats()["accepted"] == 1  # only the other template's message


def test_permanent_error_fails_only_that_message_with_code_and_reason(
    sandbox_env: SandboxServer, engine: Engine
) -> None:
    bad, good = enqueue_notices(engine, [phone(1), phone(2)])
    sandbox_env.inject(131009, count=1, to=phone(1), details="Parameter value is not valid")
    run_drain(engine)
    stored = rows(engine)
    assert stored[bad].status == MessageStatus.FAILED
    assert stored[bad].error_code == 131009 and stored[bad].error_class == "permanent"
    assert stored[bad].error_message == "A parameter value is not valid"
    assert stored[bad].attempt_count == 1  # never retried
    assert "Parameter value is not valid" in str(stored[bad].provider_response)
    assert stored[good].status == MessageStatus.ACCEPTED


def test_a_send_whose_answer_never_came_is_never_resent_and_asks_a_person(
    sandbox_env: SandboxServer, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WHATSAPP_REQUEST_TIMEOUT", "0.3")
    get_settings.cache_clear()
    sandbox_env.configure(latency_ms=1500)  # Meta takes it, but answers too late
    (message_id,) = enqueue_notices(engine, [phone(1)])
    first = run_drain(engine, lease_seconds=0.5, grace_seconds=1.0)
    assert first.stats.unknown == 1
    waiting = rows(engine)[message_id]
    assert waiting.status == MessageStatus.SENDING  # waits for a webhook with our id
    assert "No answer from Meta" in (waiting.error_message or "")
    time.sleep(1.2)  # past the grace period, with no webhook
    run_drain(engine, lease_seconds=0.5, grace_seconds=1.0)
    final = rows(engine)[message_id]
    assert final.status == MessageStatus.NEEDS_ATTENTION
    assert "Check WhatsApp before resending" in (final.error_message or "")
    assert sandbox_env.stats()["accepted"] == 1  # sent once, never again


def test_every_send_is_dated_once_by_the_limiter_when_its_request_left(
    sandbox_env: SandboxServer, engine: Engine
) -> None:
    import asyncio

    from core.sender import SlidingWindowLimiter, drain
    from core.settings import load_settings
    from tests.core.sender.helpers import fast_options

    sandbox_env.configure(latency_ms=100)
    ids = enqueue_notices(engine, [phone(i) for i in range(8)])
    limiter = SlidingWindowLimiter(1000)
    before = time.monotonic()
    report = asyncio.run(
        drain(load_settings(), engine, timeout=60, limiter=limiter, options=fast_options())
    )
    assert report.accepted == len(ids)
    assert limiter.pending == 0  # no admitted send left undated
    dated = list(limiter._starts)
    assert len(dated) == len(ids)  # one date per send, none twice
    assert all(before <= at for at in dated)
    stats = sandbox_env.stats()  # the sandbox's monotonic clock is this machine's too
    # dated as the requests left: before the sandbox accepted them, not at the answers
    # (100 ms after), nor when the limiter admitted them. An answered send is re-dated at
    # its estimated arrival (half its round trip): an answer read late on a loaded host
    # moves it a few ms past the real one, never to the answer's time.
    assert min(dated) <= stats["first_accept_monotonic"]
    assert max(dated) <= stats["last_accept_monotonic"] + 0.05


@pytest.mark.parametrize(
    ("error", "logged_with_trace"),
    [
        (sqlite3.OperationalError("database is locked"), False),
        (sqlite3.IntegrityError("CHECK constraint failed: status"), True),
    ],
    ids=["busy-database", "anything-else"],
)
def test_outcomes_the_database_refused_once_are_recorded_again_and_said_in_proportion(
    sandbox_env: SandboxServer,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    error: Exception,
    logged_with_trace: bool,
) -> None:
    """A busy database (a lock, a deadlock PostgreSQL broke) is a line in the log, not a
    traceback: it happens under load and the writer simply tries again. Anything else
    keeps its traceback. Either way nothing is lost and nothing is sent twice."""
    real = store.apply_outcomes
    refused: list[int] = []

    def apply_outcomes(*args: Any, **kwargs: Any) -> Any:
        if not refused:
            refused.append(1)
            raise DBAPIError.instance("UPDATE whatsapp_messages", {}, error, sqlite3.Error)
        return real(*args, **kwargs)

    monkeypatch.setattr(store, "apply_outcomes", apply_outcomes)
    ids = enqueue_notices(engine, [phone(i) for i in range(5)])
    with caplog.at_level(logging.INFO, logger="core.sender.dispatcher"):
        report = run_drain(engine)
    assert refused and report.accepted == 5
    assert {m.id: m.status for m in rows(engine).values()} == dict.fromkeys(
        ids, MessageStatus.ACCEPTED
    )
    assert sandbox_env.stats()["accepted"] == 5 and sandbox_env.stats()["duplicates"] == []
    (said,) = [r for r in caplog.records if "recording" in r.getMessage()]
    assert str(error) in said.getMessage() or logged_with_trace
    assert (said.exc_info is not None) is logged_with_trace
    assert said.levelno == (logging.ERROR if logged_with_trace else logging.WARNING)
