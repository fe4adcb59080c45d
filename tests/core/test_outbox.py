"""The outbox on a real SQLite file: idempotency (also under races), validation, resends."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime

import pytest
from sqlalchemy import Engine, update

from core.models.messages import MessageStatus, WhatsAppMessage
from core.outbox import OutboxError, cancel, enqueue, enqueue_many, get_message, resend
from core.sandbox import SandboxServer
from tests.core.sender.helpers import notice, rows, run_drain
from tests.fixtures.consent import consenting_supplier

M = WhatsAppMessage.__table__  # type: ignore[attr-defined]


def _set_status(engine: Engine, message_id: str, status: str) -> None:
    with engine.begin() as conn:
        conn.execute(update(M).where(M.c.id == message_id).values(status=status))


def test_same_key_twice_is_one_row_and_one_send(
    sandbox_env: SandboxServer, engine: Engine
) -> None:
    first = enqueue(notice("+34612345678", "po:PO-1"), engine=engine)
    again = enqueue(notice("+34612345678", "po:PO-1"), engine=engine)
    assert first.created and not again.created
    assert again.message.id == first.message.id
    run_drain(engine)
    enqueue(notice("+34612345678", "po:PO-1"), engine=engine)  # after it was sent, too
    run_drain(engine)
    assert len(rows(engine)) == 1
    assert sandbox_env.stats()["accepted"] == 1


def test_same_key_in_another_tenant_is_another_message(engine: Engine) -> None:
    a = enqueue(notice("+34612345678", "po:PO-1"), engine=engine)
    b = enqueue(notice("+34612345678", "po:PO-1", tenant_id="t2"), engine=engine)
    assert a.created and b.created and a.message.id != b.message.id


def test_concurrent_enqueues_of_one_key_create_exactly_one_row(engine: Engine) -> None:
    threads = 8
    barrier = threading.Barrier(threads)

    def racer(_: int) -> tuple[str, bool]:
        barrier.wait()
        result = enqueue(notice("+34612345678", "po:RACE"), engine=engine)
        return result.message.id, result.created

    with ThreadPoolExecutor(threads) as pool:
        results = list(pool.map(racer, range(threads)))
    assert sum(created for _, created in results) == 1
    assert len({message_id for message_id, _ in results}) == 1
    assert len(rows(engine)) == 1


def test_enqueue_many_keeps_order_and_folds_repeated_keys(engine: Engine) -> None:
    earlier = enqueue(notice("+34612345670", "k-0"), engine=engine)
    batch = [notice(f"+3461234567{i}", f"k-{i}") for i in range(3)] + [
        notice("+34612345671", "k-1")
    ]
    results = enqueue_many(batch, engine=engine)
    assert [r.created for r in results] == [False, True, True, False]
    assert results[0].message.id == earlier.message.id
    assert results[3].message.id == results[1].message.id
    assert len(rows(engine)) == 3


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"tenant_id": ""}, "tenant_id is required"),
        ({"tenant_id": "t" * 65}, "tenant_id is required"),
        ({"idempotency_key": ""}, "idempotency_key is required"),
        ({"idempotency_key": "k" * 201}, "idempotency_key is required"),
        ({"idempotency_key": "po:\x00"}, "NUL characters"),
        ({"recipient_phone": "612345678"}, "must be E.164"),
        ({"recipient_phone": "+34 612 34 56 78"}, "must be E.164"),
        ({"recipient_phone": "+3461234567890123456"}, "must be E.164"),
        ({"recipient_phone": "+34612'; DROP TABLE x"}, "must be E.164"),
        ({"request_payload": {"to": "34612345678"}}, "with a type"),
        ({"request_payload": "not a dict"}, "with a type"),
        ({"request_payload": {"type": "text", "to": "34999999999"}}, "differs from recipient"),
        (
            {"request_payload": {"type": "text", "biz_opaque_callback_data": "x"}},
            "set by the sender",
        ),
        ({"not_before": datetime(2030, 1, 1)}, "timezone-aware"),
    ],
)
def test_malformed_messages_are_refused_with_the_reason_and_nothing_is_written(
    engine: Engine, change: dict[str, object], words: str
) -> None:
    bad = replace(notice("+34612345678", "k"), **change)  # type: ignore[arg-type]
    with pytest.raises(OutboxError, match=words):
        enqueue(bad, engine=engine)
    with pytest.raises(OutboxError, match=words):
        enqueue_many([notice("+34612345679", "fine"), bad], engine=engine)
    assert rows(engine) == {}  # the valid one of the batch was not written either


def test_hostile_keys_and_text_are_stored_verbatim(engine: Engine) -> None:
    key = "po:'; DROP TABLE whatsapp_messages; --\u202e"
    hostile = replace(notice("+34612345678", key), body_text="<script>x</script>")
    result = enqueue(hostile, engine=engine)
    stored = get_message(result.message.id, engine=engine)
    assert stored is not None and stored.idempotency_key == key
    assert stored.body_text == "<script>x</script>"
    assert not enqueue(notice("+34612345678", key), engine=engine).created


@pytest.mark.parametrize(
    "status",
    [MessageStatus.PENDING, MessageStatus.SENDING, MessageStatus.ACCEPTED, MessageStatus.DELIVERED],
)
def test_only_failed_unknown_or_cancelled_messages_may_be_resent(
    engine: Engine, status: str
) -> None:
    original = enqueue(notice("+34612345678", "k"), engine=engine).message
    _set_status(engine, original.id, status)
    with pytest.raises(OutboxError, match="can be resent"):
        resend(original.id, "buyer@example", engine=engine)
    assert len(rows(engine)) == 1


@pytest.mark.parametrize(
    "status", [MessageStatus.FAILED, MessageStatus.NEEDS_ATTENTION, MessageStatus.CANCELLED]
)
def test_resend_is_a_new_pending_message_linked_to_the_original(
    engine: Engine, status: str
) -> None:
    original = enqueue(notice("+34612345678", "k"), engine=engine).message
    _set_status(engine, original.id, status)
    consenting_supplier(engine, "+34612345678", tenant=original.tenant_id)
    first = resend(original.id, "buyer@example", engine=engine)
    second = resend(original.id, "buyer@example", engine=engine)
    assert first.idempotency_key == f"resend:{original.id}:1"
    assert second.idempotency_key == f"resend:{original.id}:2"
    assert first.status == MessageStatus.PENDING
    assert first.request_payload == original.request_payload
    assert first.meta is not None and first.meta["resend_of"] == original.id
    stored = rows(engine)
    assert stored[original.id].meta is not None
    assert stored[original.id].meta["resent_as"] == [first.id, second.id]


def test_resend_of_an_unknown_or_other_tenants_message_is_refused(engine: Engine) -> None:
    original = enqueue(notice("+34612345678", "k"), engine=engine).message
    _set_status(engine, original.id, MessageStatus.FAILED)
    with pytest.raises(OutboxError, match="no message"):
        resend("00000000-0000-0000-0000-000000000000", "x", engine=engine)
    with pytest.raises(OutboxError, match="no message"):
        resend(original.id, "x", engine=engine, tenant_id="someone-else")


def test_cancel_withdraws_only_pending_messages(engine: Engine) -> None:
    pending = enqueue(notice("+34612345678", "a"), engine=engine).message
    accepted = enqueue(notice("+34612345679", "b"), engine=engine).message
    _set_status(engine, accepted.id, MessageStatus.ACCEPTED)
    assert cancel(pending.id, engine=engine, tenant_id="other") is False
    assert cancel(pending.id, engine=engine) is True
    assert cancel(accepted.id, engine=engine) is False
    stored = rows(engine)
    assert stored[pending.id].status == MessageStatus.CANCELLED
    assert stored[accepted.id].status == MessageStatus.ACCEPTED
