"""`wanotify users email`: linking the email a user signs in with through single sign-on."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from core.users import add_user, get_user
from tests.test_cli_users import env, wanotify

__all__ = ["env"]  # the fixture, shared with the other users commands' tests


def test_an_email_is_linked_listed_and_unlinked(
    env: dict[str, str], tmp_path: Path, engine: Engine
) -> None:
    add_user(engine, "ana", "a-long-password", "manager", "acme")
    linked = wanotify("users", "email", "ana", "Ana@Acme.example", env=env, cwd=tmp_path)
    assert linked.returncode == 0, linked.stderr
    assert "signs in as ana@acme.example" in linked.stdout
    user = get_user(engine, "ana")
    assert user is not None and user.email == "ana@acme.example"
    listed = wanotify("users", "list", env=env, cwd=tmp_path)
    assert listed.stdout.split() == ["ana", "manager", "acme", "ana@acme.example"]
    unlinked = wanotify("users", "email", "ana", "--remove", env=env, cwd=tmp_path)
    assert unlinked.returncode == 0, unlinked.stderr
    user = get_user(engine, "ana")
    assert user is not None and user.email is None


def test_a_bad_or_taken_email_is_refused_in_one_line(
    env: dict[str, str], tmp_path: Path, engine: Engine
) -> None:
    add_user(engine, "ana", "a-long-password", "buyer", "acme")
    add_user(engine, "luis", "a-long-password", "buyer", "acme")
    assert (
        wanotify("users", "email", "ana", "ana@acme.example", env=env, cwd=tmp_path).returncode == 0
    )
    for args, reason in [
        (["luis", "ANA@acme.example"], "already linked to user 'ana'"),
        (["luis", "[red]x"], "Not an email address"),
        (["nobody", "n@acme.example"], "No user named 'nobody'"),
        (["luis"], "Give an email to link, or --remove"),
        (["luis", "l@acme.example", "--remove"], "Give an email to link, or --remove"),
    ]:
        done = wanotify("users", "email", *args, env=env, cwd=tmp_path)
        assert done.returncode != 0, args
        assert reason in done.stderr + done.stdout, (args, done.stderr)
        assert "Traceback" not in done.stderr
