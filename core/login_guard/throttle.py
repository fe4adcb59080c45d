"""Growing delays after failed logins, per username and per client address, never a lock.

Each attempt first *claims* a try with one atomic statement per key (`INSERT ... ON
CONFLICT DO UPDATE ... WHERE not blocked RETURNING failures`, on SQLite and PostgreSQL):
the count goes up before the password is checked, so N parallel guesses count N and a
burst cannot slip past a delay that has started. After `free` failures the key must wait
`base`, doubling with each further failure up to `cap`; attempts made while it waits are
refused without checking the password and do not extend the wait. A correct password
takes its own try back (and clears the username's count). Counts are forgotten after
`forget` without failures; rows idle for `PRUNE_AFTER` are deleted.

Why delays and not a lock: a lock lets anyone lock anyone out. The per-username delay is
short and capped (a minute), so an attacker spread over many addresses slows a user's
login by at most that; the per-client delay grows to a quarter of an hour and falls on
the guessing address only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import Connection, Engine, and_, case, delete, literal, or_, update
from sqlalchemy.dialects import postgresql, sqlite

from core.models.types import UTCDateTime
from core.models.users import LoginThrottle

TABLE = LoginThrottle.__table__  # type: ignore[attr-defined]
#: Rows with no failure for this long are deleted (they would count from zero anyway).
PRUNE_AFTER = timedelta(days=1)
#: Longest key stored: usernames are at most 120 characters, addresses far shorter.
MAX_KEY = 120


class Scope(StrEnum):
    """What a counter counts: the tries at one username, or the tries from one client."""

    ACCOUNT = "account"
    CLIENT = "client"


@dataclass(frozen=True)
class Policy:
    """How a scope's delays grow: `free` failures, then `base` doubling up to `cap`."""

    free: int
    base: timedelta
    cap: timedelta
    forget: timedelta

    def delay(self, failures: int) -> timedelta:
        """How long the key waits after its `failures`-th failure (zero while free)."""
        if failures < self.free:
            return timedelta(0)
        doublings = min(failures - self.free, 32)
        return min(self.base * (2**doublings), self.cap)


POLICIES: dict[Scope, Policy] = {
    # 5 free, then 2 s, 4 s, ... capped at 60 s: never a lock-out, slows spread-out guessing.
    Scope.ACCOUNT: Policy(
        free=5, base=timedelta(seconds=2), cap=timedelta(seconds=60), forget=timedelta(hours=1)
    ),
    # 10 free (an office behind one address), then 2 s doubling up to 15 minutes.
    Scope.CLIENT: Policy(
        free=10, base=timedelta(seconds=2), cap=timedelta(minutes=15), forget=timedelta(hours=1)
    ),
}


@dataclass(frozen=True)
class Claim:
    """A try taken on one key: its failure count including this try, or `wait` if refused."""

    scope: Scope
    key: str
    failures: int = 0
    wait: timedelta | None = None  # set when the key is waiting: the try was not taken

    @property
    def taken(self) -> bool:
        """True when this try may go on to check the password."""
        return self.wait is None


def claim(engine: Engine, scope: Scope, key: str, now: datetime, *, force: bool = False) -> Claim:
    """Take one try on `key` (counted at once, atomically), or say how long it must wait.

    `force` takes the try even while the key waits (the user's own address, see
    core.users.login); it is still counted.
    """
    policy = POLICIES[scope]
    key = key[:MAX_KEY]
    col = TABLE.c
    fresh = col.last_failed_at >= now - policy.forget
    counted = case((fresh, col.failures + 1), else_=1)
    # While a try at or past the free ones is in flight nobody else may start one: the
    # outcome sets the real wait; a process that dies mid-check leaves the cap (fail closed).
    provisional = literal(now + policy.cap, UTCDateTime())
    blocked = case((counted >= policy.free, provisional), else_=col.blocked_until)
    insert = _insert(engine).values(
        scope=scope.value,
        key=key,
        failures=1,
        last_failed_at=now,
        blocked_until=now + policy.cap if policy.free <= 1 else None,
    )
    waiting_over = or_(col.blocked_until.is_(None), col.blocked_until <= now)
    statement = insert.on_conflict_do_update(
        index_elements=[col.scope, col.key],
        set_={
            "failures": counted,
            "last_failed_at": now,
            "blocked_until": col.blocked_until if force else blocked,
        },
        where=None if force else waiting_over,
    ).returning(col.failures)
    with engine.begin() as conn:
        count = conn.execute(statement).scalar_one_or_none()
        if count is not None:
            return Claim(scope, key, int(count))
        until = conn.execute(
            TABLE.select()
            .with_only_columns(col.blocked_until)
            .where(col.scope == scope.value, col.key == key)
        ).scalar_one_or_none()
    wait = (until - now) if until is not None and until > now else timedelta(seconds=1)
    return Claim(scope, key, wait=wait)


def failed(engine: Engine, taken: Claim, now: datetime) -> None:
    """The try in `taken` failed: its key waits as the policy says; prune stale rows."""
    if not taken.taken:
        return
    policy = POLICIES[taken.scope]
    col = TABLE.c
    with engine.begin() as conn:
        if taken.failures >= policy.free:
            conn.execute(
                update(TABLE)
                .where(
                    col.scope == taken.scope.value,
                    col.key == taken.key,
                    col.failures == taken.failures,  # a later try has set its own wait
                )
                .values(blocked_until=now + policy.delay(taken.failures))
            )
        conn.execute(delete(TABLE).where(col.last_failed_at < now - PRUNE_AFTER))


def succeeded(engine: Engine, taken: Claim) -> None:
    """The try in `taken` succeeded: a username starts again from zero; a client gets
    its try back (and the wait this try had set, if any, is lifted)."""
    if not taken.taken:
        return
    col = TABLE.c
    mine = and_(col.scope == taken.scope.value, col.key == taken.key)
    with engine.begin() as conn:
        if taken.scope is Scope.ACCOUNT:
            conn.execute(delete(TABLE).where(mine))
            return
        values: dict[str, object] = {
            "failures": case((col.failures > 0, col.failures - 1), else_=0)
        }
        if taken.failures >= POLICIES[taken.scope].free:
            values["blocked_until"] = None
        conn.execute(update(TABLE).where(mine).values(**values))


def clear(engine: Engine, scope: Scope, key: str) -> bool:
    """Forget `key`'s failures and any wait (`wanotify users unlock`); True if there were any."""
    col = TABLE.c
    with engine.begin() as conn:
        done = conn.execute(delete(TABLE).where(col.scope == scope.value, col.key == key[:MAX_KEY]))
    return bool(done.rowcount)


def failures(conn: Connection, scope: Scope, key: str) -> int:
    """The current failure count of `key` (0 if none): for status displays and tests."""
    col = TABLE.c
    value = conn.execute(
        TABLE.select()
        .with_only_columns(col.failures)
        .where(col.scope == scope.value, col.key == key[:MAX_KEY])
    ).scalar_one_or_none()
    return int(value or 0)


def _insert(engine: Engine) -> postgresql.Insert | sqlite.Insert:
    if engine.dialect.name == "postgresql":
        return postgresql.insert(TABLE)
    return sqlite.insert(TABLE)
