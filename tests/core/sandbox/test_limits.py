"""Throughput cap (130429) and pair limit (131056): the limiters, then over real HTTP."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from core.sandbox import SandboxServer
from core.sandbox.limits import PairLimiter, SlidingWindowLimiter, max_in_window
from tests.core.sandbox.helpers import AUTH, MESSAGES_PATH, client, error_code, po_notification


def test_sliding_window_admits_at_most_limit_in_any_second() -> None:
    limiter = SlidingWindowLimiter(limit=3)
    admitted = []
    for at in (0.0, 0.1, 0.2, 0.3, 0.99, 1.0, 1.05, 1.15, 1.25, 2.5):
        if limiter.available(at):
            limiter.commit(at)
            admitted.append(at)
    assert admitted == [0.0, 0.1, 0.2, 1.0, 1.15, 1.25, 2.5]
    assert max_in_window(admitted) == 3


def test_sliding_window_follows_a_new_limit_at_once() -> None:
    limiter = SlidingWindowLimiter(limit=1)
    limiter.commit(0.0)
    assert not limiter.available(0.5)
    limiter.limit = 2
    assert limiter.available(0.5)


@pytest.mark.parametrize(
    ("times", "expected"),
    [
        ([], 0),
        ([5.0], 1),
        ([0.0, 1.0], 1),  # exactly one second apart: not in the same window
        ([0.0, 0.999, 1.0], 2),
        ([0.0, 0.1, 0.2, 0.3, 1.35, 1.36, 1.37, 1.38, 1.39], 5),
        ([i / 16 for i in range(100)], 16),  # exact binary fractions: no rounding at edges
    ],
)
def test_max_in_window_is_exact(times: list[float], expected: int) -> None:
    assert max_in_window(times) == expected


def test_pair_limiter_refills_one_token_per_interval() -> None:
    pairs = PairLimiter(capacity=1, interval=6.0)
    assert pairs.available("a", 0.0)
    pairs.commit("a", 0.0)
    assert not pairs.available("a", 5.9)
    assert pairs.available("b", 1.0)  # other recipients are independent
    assert pairs.available("a", 6.0)


def test_pair_limiter_burst_borrows_future_quota() -> None:
    pairs = PairLimiter(capacity=45, interval=6.0)
    for _ in range(45):
        assert pairs.available("a", 0.0)
        pairs.commit("a", 0.0)
    assert not pairs.available("a", 0.0)
    assert not pairs.available("a", 5.0)
    assert pairs.available("a", 6.0)  # one token back after 6 s
    pairs.commit("a", 6.0)
    assert not pairs.available("a", 6.1)


async def _blast(url: str, count: int) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=100)
    async with httpx.AsyncClient(base_url=url, headers=AUTH, limits=limits, timeout=60) as http:
        return await asyncio.gather(
            *(
                http.post(MESSAGES_PATH, json=po_notification(f"+346{i:08d}", opaque=f"m{i}"))
                for i in range(1, count + 1)
            )
        )


def test_throughput_cap_holds_in_every_sliding_second(sandbox: SandboxServer) -> None:
    sandbox.configure(mps=10)
    responses = asyncio.run(_blast(sandbox.url, 150))
    accepted = [r for r in responses if r.status_code == 200]
    rejected = [r for r in responses if r.status_code != 200]
    assert rejected, "150 concurrent sends at 10/s must hit the cap"
    for response in rejected:
        assert response.status_code == 400
        assert error_code(response) == 130429
        assert response.json()["error"]["message"] == "(#130429) Rate limit hit"
    stats = sandbox.stats()
    assert stats["accepted"] == len(accepted)
    assert stats["rejected"] == {"130429": len(rejected)}
    assert 1 <= stats["max_in_window"] <= 10
    # the stats' window count agrees with the accept times of the messages themselves
    times = sorted(m["accepted_at"] for m in sandbox.messages())
    assert stats["first_accept_at"] == times[0] and stats["last_accept_at"] == times[-1]


def test_throughput_cap_can_be_raised_at_runtime(sandbox: SandboxServer) -> None:
    sandbox.configure(mps=5000)
    responses = asyncio.run(_blast(sandbox.url, 100))
    assert all(r.status_code == 200 for r in responses)
    assert sandbox.stats()["max_in_window"] <= 5000


def test_rejected_sends_do_not_use_up_the_cap(sandbox: SandboxServer) -> None:
    sandbox.configure(mps=2)
    with client(sandbox.url) as http:
        for _ in range(5):
            bad = po_notification("+34612345678")
            bad["template"]["name"] = "no_such_template"
            assert error_code(http.post(MESSAGES_PATH, json=bad)) == 132001
        assert http.post(MESSAGES_PATH, json=po_notification("+34612345601")).status_code == 200
        assert http.post(MESSAGES_PATH, json=po_notification("+34612345602")).status_code == 200
    assert sandbox.stats()["rejected"] == {"132001": 5}


def test_second_message_to_the_same_supplier_hits_the_pair_limit(sandbox: SandboxServer) -> None:
    with client(sandbox.url) as http:
        assert http.post(MESSAGES_PATH, json=po_notification("+34612345678")).status_code == 200
        second = http.post(MESSAGES_PATH, json=po_notification("+34612345678"))
        assert http.post(MESSAGES_PATH, json=po_notification("+34612345679")).status_code == 200
    assert second.status_code == 400
    assert error_code(second) == 131056
    assert second.json()["error"]["message"] == (
        "(#131056) (Business Account, Consumer Account) pair rate limit hit"
    )
    assert sandbox.stats()["accepted_per_recipient"] == {"34612345678": 1, "34612345679": 1}


def test_pair_limit_counts_by_wa_id_not_by_how_the_number_was_dialled(
    sandbox: SandboxServer,
) -> None:
    with client(sandbox.url) as http:
        assert http.post(MESSAGES_PATH, json=po_notification("+525512345678")).status_code == 200
        assert (
            error_code(http.post(MESSAGES_PATH, json=po_notification("+5215512345678"))) == 131056
        )


def test_pair_burst_allows_borrowing_then_refills(sandbox: SandboxServer) -> None:
    sandbox.configure(pair_burst=3, pair_interval_s=600)
    with client(sandbox.url) as http:
        codes = []
        for _ in range(4):
            response = http.post(MESSAGES_PATH, json=po_notification("+34612345678"))
            codes.append(200 if response.status_code == 200 else error_code(response))
        assert codes == [200, 200, 200, 131056]
        sandbox.configure(pair_interval_s=0.05)  # the bucket now refills quickly
        deadline = time.monotonic() + 20
        while http.post(MESSAGES_PATH, json=po_notification("+34612345678")).status_code != 200:
            assert time.monotonic() < deadline, "the bucket never refilled"
            time.sleep(0.05)
    assert sandbox.stats()["accepted_per_recipient"] == {"34612345678": 4}
