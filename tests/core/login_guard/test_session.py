"""core.login_guard.session on a real database: whether a session's user is still the same
active account (removed, re-created, disabled, new password, new role, demo) and what an
idle session says. The sessions themselves: test_server_sessions.py."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine

from core.login_guard.session import idle_text, user_still_valid
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


def check(engine: Engine, held: UserInfo, *, allow_demo: bool = False) -> UserInfo | None:
    return user_still_valid(engine, held.id, held.session_stamp, allow_demo=allow_demo)


def test_an_idle_session_says_after_how_long() -> None:
    assert idle_text(timedelta(minutes=60)) == (
        "Signed out after 60 min without activity: sign in again"
    )
    assert idle_text(timedelta(seconds=10)).startswith("Signed out after 1 min")


def test_role_and_grant_changes_take_effect_disabling_ends_it(engine: Engine) -> None:
    held = add_user(engine, "ana", PASSWORD, "buyer", "acme")
    set_role(engine, "ana", "manager")
    fresh = check(engine, held)
    assert fresh is not None and fresh.role is Role.MANAGER
    set_active(engine, "ana", False)
    assert check(engine, held) is None
    set_active(engine, "ana", True)
    assert check(engine, held) is not None
    assert user_still_valid(engine, held.id, "", allow_demo=False) is None  # no stamp


def test_a_new_password_or_a_re_created_user_ends_old_sessions(engine: Engine) -> None:
    held = add_user(engine, "ana", PASSWORD, "buyer", "acme")
    set_password(engine, "ana", "a brand new password")
    assert check(engine, held) is None
    newer = add_user(engine, "bo", PASSWORD, "admin", "acme")
    assert remove_user(engine, "bo")
    assert check(engine, newer) is None  # removed
    again = add_user(engine, "bo", PASSWORD, "admin", "acme")  # same name, maybe same id
    assert check(engine, newer) is None
    assert check(engine, again) is not None


def test_demo_sessions_end_outside_sandbox_mode(engine: Engine) -> None:
    held = add_user(engine, "demo", "demo-password", "buyer", "acme", is_demo=True)
    assert check(engine, held, allow_demo=True) is not None
    assert check(engine, held, allow_demo=False) is None
