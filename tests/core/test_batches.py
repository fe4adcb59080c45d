"""Batches on a real SQLite file, sent through the real dispatcher to the sandbox."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from core.batches import (
    BatchError,
    BatchInput,
    batch_progress,
    batch_results,
    create_batch,
    pause_batch,
    resume_batch,
    retry_failed,
)
from core.db import get_engine
from core.models.messages import MessageStatus
from core.models.templates import WhatsAppTemplate
from core.notify import sync_templates_now
from core.sandbox import SandboxServer
from tests.core.sender.helpers import notice, phone, rows, run_drain
from tests.fixtures.consent import allow_unrecorded

TENANT = "default"
#: Meta's pair limit (one message per recipient per 6 s) shortened on both sides, the
#: sandbox's limit and the dispatcher's pacing, for the tests that send one number
#: several times (retries, a resend): they prove what is retried and counted, not the
#: pacing (tests/core/sender/test_dispatcher.py proves that), and each 6 s wait was idle.
PAIR_SECONDS = 0.5


def _inputs(count: int, failing: set[int] | None = None) -> list[BatchInput]:
    """`count` valid rows (rows in `failing` go to an always-500 number) and one refused row."""
    bad = failing or set()
    numbers = {n: phone(n, "0500") if n in bad else phone(n) for n in range(1, count + 1)}
    rows_in = [
        BatchInput(n, {"phone": to}, message=notice(to, f"b-{n}", tenant_id=TENANT))
        for n, to in numbers.items()
    ]
    return [*rows_in, BatchInput(count + 1, {"phone": "12"}, error="The phone number is too short")]


def _sent_count(engine: Engine) -> int:
    with Session(engine) as session:
        template = session.exec(
            select(WhatsAppTemplate).where(
                WhatsAppTemplate.tenant_id == TENANT,
                WhatsAppTemplate.template_name == "po_notification",
                WhatsAppTemplate.language == "es",
            )
        ).one()
        return template.sent_count


def test_batch_progress_is_counted_from_the_database_and_survives_a_restart(
    sandbox_env: SandboxServer, engine: Engine, database_url: str
) -> None:
    batch = create_batch(engine, TENANT, "march.csv", "po_notification", "es", _inputs(4), "b")
    before = batch_progress(engine, batch.id)
    assert (before.total_rows, before.invalid_rows, before.queued) == (5, 1, 4)
    assert not before.done and before.percent == 0.0
    run_drain(engine)
    engine.dispose()  # a restart: a new engine, nothing kept in memory
    get_engine.cache_clear()
    after = batch_progress(get_engine(database_url), batch.id)
    assert after.reached_meta == 4 and after.queued == 0
    assert after.done and after.percent == 100.0


def test_paused_batch_is_not_sent_until_resumed(sandbox_env: SandboxServer, engine: Engine) -> None:
    batch = create_batch(engine, TENANT, "paused.csv", "po_notification", "es", _inputs(3), "b")
    other = create_batch(engine, TENANT, "other.csv", "po_notification", "es", [
        BatchInput(1, {}, message=notice(phone(50), "other", tenant_id=TENANT))
    ], "b")  # fmt: skip
    assert pause_batch(engine, batch.id) is True
    assert pause_batch(engine, batch.id) is False  # already paused
    run_drain(engine)
    paused = batch_progress(engine, batch.id)
    assert paused.status == "paused" and paused.queued == 3 and not paused.done
    assert batch_progress(engine, other.id).reached_meta == 1  # other batches go on
    assert sandbox_env.stats()["accepted"] == 1
    assert resume_batch(engine, batch.id) is True
    run_drain(engine)
    assert batch_progress(engine, batch.id).reached_meta == 3
    assert sandbox_env.stats()["duplicates"] == []


def test_retry_failed_resends_only_failed_or_unknown_never_accepted(
    sandbox_env: SandboxServer, engine: Engine
) -> None:
    batch = create_batch(engine, TENANT, "retry.csv", "po_notification", "es", _inputs(4), "b")
    allow_unrecorded(engine, TENANT)  # the retry is a resend: consent is checked again
    sandbox_env.configure(pair_interval_s=PAIR_SECONDS)
    sandbox_env.inject(131000, http_status=500, count=3, to=phone(2))  # every attempt fails
    run_drain(engine, pair_interval=PAIR_SECONDS)
    progress = batch_progress(engine, batch.id)
    assert progress.failed == 1 and progress.reached_meta == 3
    accepted_before = {m.id for m in rows(engine).values() if m.status == MessageStatus.ACCEPTED}
    sandbox_env.reset(keep_config=True)  # Meta works again
    assert retry_failed(engine, batch.id, "buyer@example") == 1
    run_drain(engine, pair_interval=PAIR_SECONDS)
    final = batch_progress(engine, batch.id)
    assert final.reached_meta == 4 and final.failed == 0
    (resent,) = sandbox_env.messages()  # only the failed row went out again
    assert resent["to"] == phone(2).lstrip("+")
    assert accepted_before <= {m.id for m in rows(engine).values()}
    assert retry_failed(engine, batch.id, "buyer@example") == 0  # nothing left to retry
    results = batch_results(engine, batch.id)
    assert [r["row_number"] for r in results] == [1, 2, 3, 4, 5]
    assert [r["outcome"] for r in results] == ["sent"] * 4 + ["refused"]


def test_template_sent_count_is_kept(sandbox_env: SandboxServer, engine: Engine) -> None:
    sync_templates_now(TENANT, engine=engine)
    assert _sent_count(engine) == 0
    create_batch(engine, TENANT, "count.csv", "po_notification", "es", _inputs(3, {3}), "b")
    sandbox_env.configure(pair_interval_s=PAIR_SECONDS)  # row 3's retries go out sooner
    run_drain(engine, pair_interval=PAIR_SECONDS)
    assert _sent_count(engine) == 2  # the failed one is not counted
    assert sandbox_env.stats()["rejected"] == {"131000": 3}  # its 3 attempts, no pair limit


def test_a_row_already_sent_elsewhere_is_refused_not_sent_again(
    sandbox_env: SandboxServer, engine: Engine
) -> None:
    first = create_batch(engine, TENANT, "a.csv", "po_notification", "es", _inputs(2), "b")
    again = create_batch(engine, TENANT, "b.csv", "po_notification", "es", _inputs(2), "b")
    run_drain(engine)
    assert batch_progress(engine, first.id).reached_meta == 2
    repeat = batch_progress(engine, again.id)
    assert repeat.invalid_rows == 3 and repeat.enqueued == 0
    assert all("already sent as message" in r["error"] for r in batch_results(engine, again.id)[:2])
    assert sandbox_env.stats()["accepted"] == 2


@pytest.mark.parametrize(
    ("rows_in", "words"),
    [
        ([BatchInput(1, {}), BatchInput(1, {}, error="x")], "unique"),
        ([BatchInput(1, {})], "give a message or an error"),
        ([BatchInput(1, {}, message=notice("+34612345678", "k", tenant_id="evil"))], "tenant"),
    ],
)
def test_malformed_batches_are_refused(
    engine: Engine, rows_in: list[BatchInput], words: str
) -> None:
    with pytest.raises(BatchError, match=words):
        create_batch(engine, TENANT, "bad.csv", "po_notification", "es", rows_in, "b")
    assert rows(engine) == {}


def test_unknown_batch_is_a_clear_error(engine: Engine) -> None:
    with pytest.raises(BatchError, match="no batch"):
        batch_progress(engine, "nope")
    with pytest.raises(BatchError, match="no batch"):
        pause_batch(engine, "nope")
