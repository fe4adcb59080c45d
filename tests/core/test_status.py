"""The status state machine: order-independent, monotonic, earliest timestamps."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from core.models.messages import MessageStatus
from core.status import Progress, apply_stage, may_move

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
EVENTS = [
    ("sent", T0),
    ("delivered", T0 + timedelta(seconds=4)),
    ("read", T0 + timedelta(seconds=60)),
]


def fold(events: list[tuple[str, datetime]]) -> Progress:
    progress = Progress(status=MessageStatus.ACCEPTED)
    for stage, at in events:
        progress = apply_stage(progress, stage, at)
    return progress


def test_every_order_of_sent_delivered_read_ends_read_with_each_time() -> None:
    results = {fold(list(order)) for order in itertools.permutations(EVENTS)}
    assert len(results) == 1
    (final,) = results
    assert final.status == MessageStatus.READ
    assert (final.sent_at, final.delivered_at, final.read_at) == tuple(at for _, at in EVENTS)


def test_read_alone_implies_delivered_and_sent() -> None:
    final = fold([("read", T0)])
    assert final.status == MessageStatus.READ
    assert final.delivered_at == final.sent_at == T0


def test_failed_after_sent_fails_but_delivered_wins_over_failed() -> None:
    assert fold([("sent", T0), ("failed", T0)]).status == MessageStatus.FAILED
    assert fold([("failed", T0), ("delivered", T0)]).status == MessageStatus.DELIVERED


def test_unknown_stage_changes_nothing() -> None:
    before = fold([("sent", T0)])
    assert apply_stage(before, "played", T0) == before
    assert apply_stage(before, "deleted", T0) == before


def test_sender_moves_only_forward() -> None:
    assert may_move(MessageStatus.PENDING, MessageStatus.SENDING)
    assert may_move(MessageStatus.SENDING, MessageStatus.ACCEPTED)
    assert not may_move(MessageStatus.DELIVERED, MessageStatus.ACCEPTED)
    assert not may_move(MessageStatus.READ, MessageStatus.FAILED)
    assert may_move(MessageStatus.SENT, MessageStatus.FAILED)


stage_events = st.lists(
    st.tuples(
        st.sampled_from(["sent", "delivered", "read", "failed", "played"]),
        st.integers(min_value=0, max_value=1000).map(lambda s: T0 + timedelta(seconds=s)),
    ),
    max_size=8,
)


@given(stage_events, st.randoms())
def test_final_state_depends_only_on_the_set_of_events(events, rnd) -> None:
    shuffled = list(events) + list(events[: len(events) // 2])  # duplicates too
    rnd.shuffle(shuffled)
    assert fold(shuffled) == fold(sorted(set(events)))
