"""The shared throughput budget on a real database: shares never sum above the cap."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select

from core.models.control import SenderBudgetMember
from core.sender import budget

pytestmark = pytest.mark.clock  # decides by dates or ages: also run a year ahead

PHONE = "106540352242922"
WINDOW = 1.02
T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
BM = SenderBudgetMember.__table__  # type: ignore[attr-defined]


def _refresh(engine: Engine, worker: str, at: float, cap: int = 80) -> int:
    return budget.refresh(
        engine,
        worker_id=worker,
        phone_number_id=PHONE,
        cap=cap,
        window_seconds=WINDOW,
        now=T0 + timedelta(seconds=at),
    ).share


def _reserved(engine: Engine, at: float) -> int:
    """What the members may still have in their windows at time `at` (the invariant's sum)."""
    now = T0 + timedelta(seconds=at)
    with engine.connect() as conn:
        members = conn.execute(select(BM).where(BM.c.phone_number_id == PHONE)).all()
    return sum(max(m.share, m.previous_share) if m.settled_at > now else m.share for m in members)


def test_a_lone_worker_gets_the_whole_cap(engine: Engine) -> None:
    assert _refresh(engine, "a", 0) == 80
    assert _refresh(engine, "a", 0.25) == 80
    assert budget.members(engine, PHONE) == [("a", 80)]


def test_a_joining_worker_waits_until_the_others_made_room(engine: Engine) -> None:
    assert _refresh(engine, "a", 0) == 80
    assert _refresh(engine, "b", 0.1) == 0  # a still uses everything
    assert _refresh(engine, "a", 0.25) == 40  # a lowers at once...
    assert _refresh(engine, "b", 0.5) == 0  # ...but its window still holds the old starts
    assert _reserved(engine, 0.5) <= 80
    assert _refresh(engine, "b", 0.25 + WINDOW + budget.SETTLE_SLACK_SECONDS + 0.01) == 40
    assert budget.total_share(engine, PHONE) == 80


def test_the_remainder_goes_to_the_first_workers(engine: Engine) -> None:
    at = 0.0
    for _ in range(12):
        for worker in ("a", "b", "c"):
            _refresh(engine, worker, at)
            assert _reserved(engine, at) <= 80
        at += 0.5
    assert budget.members(engine, PHONE) == [("a", 27), ("b", 27), ("c", 26)]


def test_a_silent_worker_is_forgotten_after_the_lease(engine: Engine) -> None:
    for at in (0.0, 2.0, 4.0):
        _refresh(engine, "a", at)
        _refresh(engine, "b", at)
    assert budget.members(engine, PHONE) == [("a", 40), ("b", 40)]
    # b stops refreshing at 4.0 (its own limiter stops it at 4.0 + STOP_AFTER_SECONDS)
    assert _refresh(engine, "a", 4.0 + budget.LEASE_SECONDS - 0.1) == 40  # not yet
    assert _refresh(engine, "a", 4.0 + budget.LEASE_SECONDS + 0.1) == 80
    assert budget.members(engine, PHONE) == [("a", 80)]
    assert budget.STOP_AFTER_SECONDS + WINDOW < budget.LEASE_SECONDS  # silent before forgotten


def test_a_leaving_worker_frees_its_share_only_once_its_window_drained(engine: Engine) -> None:
    for at in (0.0, 2.0, 4.0):
        _refresh(engine, "a", at)
        _refresh(engine, "b", at)
    budget.leave(engine, worker_id="b", window_seconds=WINDOW)
    with engine.connect() as conn:
        row = conn.execute(select(BM).where(BM.c.worker_id == "b")).one()
    assert row.share == 0 and row.previous_share == 40
    settled = (row.settled_at - T0).total_seconds()
    assert _refresh(engine, "a", settled - 0.1) == 40  # b's last starts still count
    assert _refresh(engine, "a", settled + 0.1) == 80


def test_random_joins_refreshes_and_leaves_never_reserve_more_than_the_cap(
    engine: Engine,
) -> None:
    rng = random.Random(5)
    workers = [f"w{n}" for n in range(5)]
    at = 0.0
    for _ in range(300):
        at += rng.uniform(0.0, 0.4)
        worker = rng.choice(workers)
        if rng.random() < 0.1:
            budget.leave(engine, worker_id=worker, window_seconds=WINDOW)
        else:
            _refresh(engine, worker, at, cap=50)
        assert _reserved(engine, at) <= 50
        assert budget.total_share(engine, PHONE) <= 50


def test_a_negative_cap_is_refused(engine: Engine) -> None:
    try:
        _refresh(engine, "a", 0, cap=-1)
    except ValueError as exc:
        assert "cap" in str(exc)
    else:
        raise AssertionError("a negative cap was accepted")
