"""`core.webhooks.fold`: a join over status facts (order, grouping and repeats never matter)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from core.webhooks.fold import MessageState, StatusFact, describe_error, fold
from core.webhooks.parse import Conversation, EventError, Pricing

T = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
START = MessageState(id="m1", status="accepted")

FACTS = st.builds(
    StatusFact,
    key=st.text(min_size=1, max_size=4),
    status=st.sampled_from(["sent", "delivered", "read", "failed", "deleted", "warped"]),
    at=st.integers(0, 120).map(lambda s: T + timedelta(seconds=s)),
    recipient_id=st.sampled_from([None, "34611", "34622"]),
    error=st.sampled_from(
        [
            None,
            EventError(131026, "Undeliverable", None, "d"),
            EventError(131049, None, None, None),
            EventError(None, "No code", None, None),
        ]
    ),
    pricing=st.sampled_from(
        [None, Pricing(True, "PMP", "utility", "regular"), Pricing(None, None, "marketing", None)]
    ),
    conversation=st.sampled_from([None, Conversation("c1", "utility", None)]),
)


@given(st.lists(FACTS, max_size=8), st.randoms(use_true_random=False), st.integers(0, 8))
def test_order_grouping_and_repeats_do_not_matter(facts, rng, cut) -> None:
    reference = fold(START, facts)
    shuffled = facts + facts[: len(facts) // 2]
    rng.shuffle(shuffled)
    stepwise = fold(fold(START, shuffled[:cut]), shuffled[cut:])
    assert stepwise == reference
    assert fold(reference, facts) == reference  # idempotent


def test_read_implies_delivered_and_sent() -> None:
    state = fold(START, [StatusFact("k", "read", T)])
    assert (state.status, state.sent_at, state.delivered_at, state.read_at) == ("read", T, T, T)


def test_failed_counts_only_before_delivered() -> None:
    failed = StatusFact("f", "failed", T, error=EventError(131026, "Undeliverable", None, "x"))
    assert fold(START, [failed]).status == "failed"
    assert fold(START, [failed, StatusFact("d", "delivered", T)]).status == "delivered"


def test_describe_error_keeps_metas_details() -> None:
    text = describe_error(EventError(131026, "Message undeliverable", None, "Receiver offline"))
    assert "Receiver offline" in text
