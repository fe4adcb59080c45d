"""core.users on a real SQLite file: hashing, login, demo accounts, tenants.

Login throttling (delays, parallel guesses, equal work) is tested in
tests/core/login_guard/test_throttle.py.
"""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text

from core.models.users import Role
from core.users import (
    WRONG,
    UserError,
    add_user,
    authenticate,
    check_password,
    count_users,
    get_user,
    list_users,
    login,
    remove_user,
    set_active,
    set_password,
    verify_password,
)

PASSWORD = "correct horse battery"


def test_passwords_are_stored_only_as_bcrypt_hashes(engine: Engine) -> None:
    user = add_user(engine, "  Ana@Compras ", PASSWORD, "BUYER", "acme")
    assert user.username == "ana@compras" and user.role is Role.BUYER
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT password_hash FROM users")).scalar_one()
    assert stored.startswith("$2b$") and PASSWORD not in stored
    assert verify_password(PASSWORD, stored) and not verify_password("wrong one!!", stored)
    assert "password" not in repr(user).lower()


@pytest.mark.parametrize(
    ("password", "problem"),
    [("short", "at least 10"), ("x" * 73, "at most 72 bytes"), ("ñ" * 37, "at most 72 bytes"),
     ("0123456789\x00", "NUL")],
)  # fmt: skip
def test_unusable_passwords_are_refused(password: str, problem: str) -> None:
    with pytest.raises(UserError, match=problem):
        check_password(password)


@pytest.mark.parametrize(
    ("username", "role", "tenant", "problem"),
    [
        ("a", "buyer", "acme", "2 to 120"),
        ("ana'; DROP TABLE users;--", "buyer", "acme", "2 to 120"),
        ("ana", "owner", "acme", "Unknown role"),
        ("ana", "buyer", "../etc", "tenant"),
        ("ana", "buyer", "", "tenant"),
    ],
)
def test_unusable_users_are_refused(
    engine: Engine, username: str, role: str, tenant: str, problem: str
) -> None:
    with pytest.raises(UserError, match=problem):
        add_user(engine, username, PASSWORD, role, tenant)
    assert count_users(engine) == 0


def test_duplicate_usernames_are_refused_whatever_the_case(engine: Engine) -> None:
    add_user(engine, "ana", PASSWORD, "buyer", "acme")
    with pytest.raises(UserError, match="already exists"):
        add_user(engine, "ANA", PASSWORD, "admin", "acme")


def test_login_never_says_which_part_was_wrong(engine: Engine) -> None:
    add_user(engine, "ana", PASSWORD, "buyer", "acme")
    unknown = login(engine, "nobody", PASSWORD)
    wrong = login(engine, "ana", "not the password")
    assert unknown.user is None and wrong.user is None
    assert unknown.error == wrong.error == "Wrong username or password"
    ok = login(engine, "ANA", PASSWORD)
    assert ok.user is not None and ok.user.last_login_at is not None
    assert login(engine, "ana", "").user is None
    assert login(engine, "", "").user is None


def test_disabled_and_removed_users_cannot_log_in(engine: Engine) -> None:
    add_user(engine, "ana", PASSWORD, "buyer", "acme")
    set_active(engine, "ana", False)
    assert login(engine, "ana", PASSWORD).error == WRONG  # exactly like a wrong password
    set_active(engine, "ana", True)
    set_password(engine, "ana", "another long password")
    assert authenticate(engine, "ana", PASSWORD) is None
    assert authenticate(engine, "ana", "another long password") is not None
    assert remove_user(engine, "ana") and not remove_user(engine, "ana")
    assert get_user(engine, "ana") is None
    with pytest.raises(UserError):
        set_password(engine, "ana", "another long password")


def test_demo_accounts_are_refused_outside_sandbox_mode(engine: Engine) -> None:
    add_user(engine, "manager", "demo-password", "manager", "acme", is_demo=True)
    assert login(engine, "manager", "demo-password", allow_demo=True).user is not None
    refused = login(engine, "manager", "demo-password", allow_demo=False)
    assert refused.user is None and "sandbox" in (refused.error or "")
    assert count_users(engine, include_demo=False) == 0


def test_extra_tenants_are_read_grants_home_first(engine: Engine) -> None:
    extra = ["zeta", "acme", "beta"]
    user = add_user(engine, "pilar", PASSWORD, "manager", "acme", extra_tenants=extra)
    assert user.tenants == ("acme", "beta", "zeta")
    add_user(engine, "luis", PASSWORD, "buyer", "other")
    assert [u.username for u in list_users(engine, "acme")] == ["pilar"]
    assert [u.username for u in list_users(engine)] == ["luis", "pilar"]
