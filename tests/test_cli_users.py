"""`wanotify users add/remove/list`, run as an administrator runs them (a real process)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.users import authenticate


def wanotify(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "core.cli", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def env(database_url: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("WHATSAPP_", "DATABASE_"))}
    root = str(Path(__file__).resolve().parents[1])
    return {**clean, "DATABASE_URL": database_url, "PYTHONPATH": root}


def test_users_are_added_listed_and_removed(env: dict[str, str], tmp_path: Path, engine) -> None:  # type: ignore[no-untyped-def]
    added = wanotify(
        "users", "add", "Ana", "--role", "buyer", "--tenant", "acme",
        "--password", "a-long-password", env=env, cwd=tmp_path,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert "a-long-password" not in added.stdout + added.stderr
    user = authenticate(engine, "ana", "a-long-password")
    assert user is not None and user.role == "buyer" and user.tenant_id == "acme"
    listed = wanotify("users", "list", env=env, cwd=tmp_path)
    assert listed.stdout.split() == ["ana", "buyer", "acme"]
    removed = wanotify("users", "remove", "ana", env=env, cwd=tmp_path)
    assert removed.returncode == 0 and "removed" in removed.stdout
    assert authenticate(engine, "ana", "a-long-password") is None


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["add", "bo", "--role", "buyer", "--password", "short"], "at least 10 characters"),
        (["add", "bo", "--role", "boss", "--password", "long-enough-1"], "Unknown role 'boss'"),
        (["add", "b o", "--role", "buyer", "--password", "long-enough-1"], "A username is"),
        (["add", "bo", "--role", "buyer", "--tenant", "../x", "--password", "long-enough-1"],
         "A tenant is"),
        (["remove", "nobody"], "No user named 'nobody'"),
    ],
)  # fmt: skip
def test_bad_input_is_one_clear_line_and_a_failure_status(
    env: dict[str, str], tmp_path: Path, args: list[str], reason: str
) -> None:
    done = wanotify("users", *args, env=env, cwd=tmp_path)
    assert done.returncode == 1
    assert reason in done.stderr and "Traceback" not in done.stderr


def test_a_taken_username_is_refused(env: dict[str, str], tmp_path: Path) -> None:
    first = ["users", "add", "ana", "--role", "admin", "--password", "long-enough-1"]
    assert wanotify(*first, env=env, cwd=tmp_path).returncode == 0
    again = wanotify(*first, env=env, cwd=tmp_path)
    assert again.returncode == 1 and "already exists" in again.stderr


def test_unlock_disable_and_role(env: dict[str, str], tmp_path: Path, engine) -> None:  # type: ignore[no-untyped-def]
    from core import clock
    from core.login_guard import throttle
    from core.login_guard.throttle import POLICIES, Scope
    from core.users import add_user, get_user

    add_user(engine, "ana", "a-long-password", "buyer", "acme")
    now = clock.now()
    for _ in range(POLICIES[Scope.ACCOUNT].free):
        throttle.failed(engine, throttle.claim(engine, Scope.ACCOUNT, "ana", now, force=True), now)
    assert authenticate(engine, "ana", "a-long-password") is None  # waiting
    unlocked = wanotify("users", "unlock", "ana", env=env, cwd=tmp_path)
    assert unlocked.returncode == 0 and "Login delay on user ana lifted." in unlocked.stdout
    assert authenticate(engine, "ana", "a-long-password") is not None
    assert wanotify("users", "disable", "ana", env=env, cwd=tmp_path).returncode == 0
    assert authenticate(engine, "ana", "a-long-password") is None
    role = wanotify("users", "role", "ana", "manager", env=env, cwd=tmp_path)
    assert role.returncode == 0 and "ana is now manager" in role.stdout
    user = get_user(engine, "ana")
    assert user is not None and not user.is_active and user.role == "manager"
    nobody = wanotify("users", "unlock", "nobody", env=env, cwd=tmp_path)
    assert nobody.returncode == 1 and "No user named 'nobody'" in nobody.stderr
    assert "Traceback" not in nobody.stderr
