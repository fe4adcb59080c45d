"""core.login_guard.session.recheck on a real database: idle time, and every change to the
user in the database (removed, re-created, disabled, new password, new role) at once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from core.login_guard.session import ENDED, Verdict, idle_text, recheck
from core.models.users import Role
from core.users import (
    UserInfo,
    add_user,
    remove_user,
    set_active,
    set_password,
    set_role,
)

PASSWORD = "correct horse battery"
T0 = datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC)
IDLE = timedelta(minutes=60)


def check(
    engine: Engine, held: UserInfo, at: datetime = T0, *, allow_demo: bool = False
) -> Verdict:
    return recheck(engine, held, T0, now=at, idle=IDLE, allow_demo=allow_demo)


def test_a_session_stands_until_it_has_been_idle_for_the_set_time(engine: Engine) -> None:
    held = add_user(engine, "ana", PASSWORD, "buyer", "acme")
    assert check(engine, held, T0 + IDLE - timedelta(seconds=1)).user == held
    ended = check(engine, held, T0 + IDLE)
    assert ended.user is None and ended.reason == idle_text(IDLE)
    assert ended.reason == "Signed out after 60 min without activity: sign in again"


def test_role_and_grant_changes_take_effect_disabling_ends_it(engine: Engine) -> None:
    held = add_user(engine, "ana", PASSWORD, "buyer", "acme")
    set_role(engine, "ana", "manager")
    verdict = check(engine, held)
    assert verdict.user is not None and verdict.user.role is Role.MANAGER
    set_active(engine, "ana", False)
    assert check(engine, held) == Verdict(None, ENDED)
    set_active(engine, "ana", True)
    assert check(engine, held).user is not None


def test_a_new_password_or_a_re_created_user_ends_old_sessions(engine: Engine) -> None:
    held = add_user(engine, "ana", PASSWORD, "buyer", "acme")
    set_password(engine, "ana", "a brand new password")
    assert check(engine, held).reason == ENDED
    newer = add_user(engine, "bo", PASSWORD, "admin", "acme")
    assert remove_user(engine, "bo")
    assert check(engine, newer).reason == ENDED  # removed
    again = add_user(engine, "bo", PASSWORD, "admin", "acme")  # same name, maybe same id
    assert check(engine, newer).reason == ENDED
    assert check(engine, again).user is not None


def test_demo_sessions_end_outside_sandbox_mode(engine: Engine) -> None:
    held = add_user(engine, "demo", "demo-password", "buyer", "acme", is_demo=True)
    assert check(engine, held, allow_demo=True).user is not None
    assert check(engine, held, allow_demo=False).reason == ENDED
