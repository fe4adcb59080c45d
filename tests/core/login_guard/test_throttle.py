"""core.login_guard.throttle through core.users.login, on a real SQLite file and the real
PostgreSQL: equal bcrypt work for every kind of refusal, failures counted atomically by
parallel threads, growing capped delays per username and per client, never a lock."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import bcrypt
import pytest
from sqlalchemy import Engine

from core.login_guard import throttle
from core.login_guard.throttle import POLICIES, Scope
from core.users import (
    BCRYPT_ROUNDS,
    WRONG,
    add_user,
    client_key,
    login,
    password_cost,
    set_active,
    set_password,
    unlock,
    unlock_client,
)

PASSWORD = "correct horse battery"
T0 = datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC)  # the tests set every time they use
ADDRESS_CHARS = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ:.%_-?"
ACCOUNT = POLICIES[Scope.ACCOUNT]
CLIENT = POLICIES[Scope.CLIENT]


@pytest.fixture
def bcrypt_costs(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """The cost of every hash bcrypt checks a password against (the real check still runs)."""
    costs: list[int] = []
    real = bcrypt.checkpw
    lock = threading.Lock()

    def counted(password: bytes, hashed: bytes) -> bool:
        with lock:
            costs.append(password_cost(hashed.decode("ascii")))
        return real(password, hashed)

    monkeypatch.setattr(bcrypt, "checkpw", counted)
    yield costs


def count(engine: Engine, scope: Scope, key: str) -> int:
    with engine.connect() as conn:
        return throttle.failures(conn, scope, key)


def test_every_refusal_costs_one_bcrypt_check_at_the_real_cost(
    engine: Engine, bcrypt_costs: list[int]
) -> None:
    add_user(engine, "ana", PASSWORD, "buyer", "acme")
    add_user(engine, "off", PASSWORD, "buyer", "acme")
    set_active(engine, "off", False)
    add_user(engine, "demo", "demo-password", "buyer", "acme", is_demo=True)
    attempts: list[tuple[str, str, bool, str | None]] = [
        ("nobody", PASSWORD, True, WRONG),  # unknown user
        ("ana", "not the password", True, WRONG),  # wrong password
        ("off", PASSWORD, True, WRONG),  # disabled, right password: same answer
        ("x", PASSWORD, True, WRONG),  # not even a possible username
        ("demo", "demo-password", False, "Demo accounts only work in sandbox mode"),
        ("ana", PASSWORD, True, None),  # the one success
    ]
    for n, (name, password, allow_demo, error) in enumerate(attempts):
        result = login(engine, name, password, allow_demo=allow_demo, client=f"10.0.0.{n}", now=T0)
        assert result.error == error, name
        assert bcrypt_costs == [BCRYPT_ROUNDS], name  # one check, at the real cost
        bcrypt_costs.clear()
    assert count(engine, Scope.ACCOUNT, "nobody") == 1  # unknown names are counted too
    assert count(engine, Scope.ACCOUNT, "off") == 1  # and a disabled one like a wrong guess


@pytest.mark.parametrize("guesses", [ACCOUNT.free - 1, 12])
def test_parallel_wrong_guesses_are_each_counted(
    engine: Engine, bcrypt_costs: list[int], guesses: int
) -> None:
    """Real threads at once: every guess is counted (none lost to a read-then-write), and
    once the free tries are used the rest are refused without a password check."""
    add_user(engine, "ana", PASSWORD, "admin", "acme")
    start = threading.Barrier(guesses)
    answers: list[str | None] = []

    def guess(n: int) -> None:
        start.wait()
        answers.append(
            login(engine, "ana", f"guess number {n}", client=f"10.1.0.{n}", now=T0).error
        )

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(guesses)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    checked = min(guesses, ACCOUNT.free)
    assert answers.count(WRONG) == checked == len(bcrypt_costs)
    assert count(engine, Scope.ACCOUNT, "ana") == checked
    waits = [a for a in answers if a != WRONG]
    assert len(waits) == guesses - checked
    assert all(a is not None and a.startswith("Too many failed attempts for this") for a in waits)


def test_parallel_claims_on_one_client_are_all_counted(engine: Engine) -> None:
    """Twenty threads claim at once on one address: exactly the free tries are taken."""
    start = threading.Barrier(20)
    taken: list[bool] = []

    def claim() -> None:
        start.wait()
        taken.append(throttle.claim(engine, Scope.CLIENT, "192.0.2.7", T0).taken)

    threads = [threading.Thread(target=claim) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert taken.count(True) == CLIENT.free == count(engine, Scope.CLIENT, "192.0.2.7")


def test_delays_grow_double_and_are_capped_never_a_lock() -> None:
    assert [ACCOUNT.delay(n).total_seconds() for n in range(4, 12)] == [
        0, 2, 4, 8, 16, 32, 60, 60
    ]  # fmt: skip
    assert CLIENT.delay(CLIENT.free - 1) == timedelta(0)
    assert CLIENT.delay(10_000) == CLIENT.cap == timedelta(minutes=15)


def fail(engine: Engine, scope: Scope, key: str, times: int, now: datetime = T0) -> None:
    """`times` failed tries on `key`, through the same claim/failed calls a login makes
    (forced past any wait: the tests below need counts, not bcrypt's quarter second)."""
    for _ in range(times):
        throttle.failed(engine, throttle.claim(engine, scope, key, now, force=True), now)


def test_a_username_waits_after_failures_then_lets_the_right_password_in(
    engine: Engine,
) -> None:
    add_user(engine, "ana", PASSWORD, "buyer", "acme")
    fail(engine, Scope.ACCOUNT, "ana", ACCOUNT.free)
    waiting = login(engine, "ana", PASSWORD, client="10.2.9.9", now=T0 + timedelta(seconds=1))
    assert waiting.user is None and waiting.error == (
        "Too many failed attempts for this username: try again in 1 s"
    )
    assert count(engine, Scope.CLIENT, "10.2.9.9") == 0  # no password checked: no try used
    later = T0 + ACCOUNT.delay(ACCOUNT.free)
    assert login(engine, "ana", PASSWORD, client="10.2.9.9", now=later).user is not None
    assert count(engine, Scope.ACCOUNT, "ana") == 0  # a success starts the count again


def test_unknown_usernames_wait_exactly_like_real_ones(engine: Engine) -> None:
    add_user(engine, "ana", PASSWORD, "buyer", "acme")
    answers = {}
    for name in ("ana", "ghost"):
        fail(engine, Scope.ACCOUNT, name, ACCOUNT.free + 2)
        answers[name] = login(engine, name.upper(), "wrong guess!", client="10.3.9.9", now=T0).error
    assert (
        answers["ana"]
        == answers["ghost"]
        == ("Too many failed attempts for this username: try again in 8 s")
    )


def test_guessing_from_elsewhere_cannot_keep_the_user_out(engine: Engine) -> None:
    """The attacker has pushed the username's delay to its cap and their own address into
    a wait; the right password from a third address waits like any guess, but from the
    address the user last signed in from it opens at once."""
    add_user(engine, "ana", PASSWORD, "admin", "acme")
    assert login(engine, "ana", PASSWORD, client="203.0.113.5", now=T0).user is not None
    now = T0 + timedelta(minutes=5)
    fail(engine, Scope.ACCOUNT, "ana", 40, now)
    fail(engine, Scope.CLIENT, "198.51.100.1", CLIENT.free, now)
    soon = now + timedelta(seconds=1)
    refused = login(engine, "ana", PASSWORD, client="198.51.100.1", now=soon)
    assert refused.error == "Too many failed attempts from this address: try again in 1 s"
    other = login(engine, "ana", PASSWORD, client="192.0.2.200", now=soon)
    assert other.error == "Too many failed attempts for this username: try again in 59 s"
    own = login(engine, "ana", PASSWORD, client="203.0.113.5", now=soon)
    assert own.user is not None
    assert count(engine, Scope.ACCOUNT, "ana") == 0
    after_cap = now + ACCOUNT.cap  # and never longer than the cap, whatever the count
    assert login(engine, "ana", PASSWORD, client="192.0.2.200", now=after_cap).user is not None


def test_one_address_is_slowed_down_without_touching_others(engine: Engine) -> None:
    add_user(engine, "ana", PASSWORD, "buyer", "acme")
    fail(engine, Scope.CLIENT, "198.51.100.9", CLIENT.free + 30)
    blocked = login(engine, "ana", PASSWORD, client="198.51.100.9", now=T0)
    assert blocked.error == "Too many failed attempts from this address: try again in 15 min"
    assert login(engine, "ana", PASSWORD, client="198.51.100.10", now=T0).user is not None
    assert unlock_client(engine, "198.51.100.9")
    assert login(engine, "ana", PASSWORD, client="198.51.100.9", now=T0).user is not None


def test_unlock_and_a_new_password_lift_the_username_delay(engine: Engine) -> None:
    add_user(engine, "ana", PASSWORD, "buyer", "acme")
    fail(engine, Scope.ACCOUNT, "ana", ACCOUNT.free)
    assert login(engine, "ana", PASSWORD, client="10.4.1.1", now=T0).user is None
    assert unlock(engine, "ANA") and not unlock(engine, "ana")
    assert login(engine, "ana", PASSWORD, client="10.4.1.1", now=T0).user is not None
    fail(engine, Scope.ACCOUNT, "ana", ACCOUNT.free)
    set_password(engine, "ana", "a brand new password")
    assert count(engine, Scope.ACCOUNT, "ana") == 0


def test_old_counts_are_forgotten_and_stale_rows_pruned(engine: Engine) -> None:
    fail(engine, Scope.ACCOUNT, "ghost", ACCOUNT.free - 1)
    assert count(engine, Scope.ACCOUNT, "ghost") == ACCOUNT.free - 1
    later = T0 + ACCOUNT.forget + timedelta(seconds=1)
    fail(engine, Scope.ACCOUNT, "ghost", 1, later)
    assert count(engine, Scope.ACCOUNT, "ghost") == 1  # counting from zero again
    fail(engine, Scope.CLIENT, "10.5.1.2", 1, later + throttle.PRUNE_AFTER * 2)
    assert count(engine, Scope.ACCOUNT, "ghost") == 0  # pruned
    assert count(engine, Scope.CLIENT, "10.5.1.2") == 1


HOSTILE: list[tuple[str, str, str | None]] = [
    ("a" * 10_000, PASSWORD, "10.6.0.1"),
    ("ana\x00", PASSWORD, "10.6.0.2"),
    ("ana", "x" * 10_000, "10.6.0.3"),
    ("ana", "ñ" * 50, "10.6.0.4"),
    ("'; DROP TABLE users;--", "' OR 1=1 --", "10.6.0.5"),
    ("ana", PASSWORD + "\x00", "10.6.0.6"),
    ("", "", None),
]


def test_hostile_input_is_refused_cleanly(engine: Engine) -> None:
    add_user(engine, "ana", PASSWORD, "buyer", "acme")
    for username, password, client in HOSTILE:
        result = login(engine, username, password, client=client, now=T0)
        assert result.user is None and result.error == WRONG, (username[:20], password[:20])
    odd = "\u202e10.0.0.1\x00" + "x" * 5_000
    # an odd address is recorded cut short and defanged, never refused for its shape
    assert login(engine, "ana", PASSWORD, client=odd, now=T0).user is not None
    for address in (odd, "[evil](https://x)", "1.2.3.4; DROP TABLE users"):
        key = client_key(address)
        assert len(key) <= 64 and set(key) <= set(ADDRESS_CHARS)
    assert client_key("2001:db8::1") == "2001:db8::1" and client_key(None) == "local"
