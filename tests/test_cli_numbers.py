"""`wanotify numbers add/list/test/default/remove/rotate-key`, run as an admin runs them:
real processes, a real sandbox, a real SQLite file. The token never reaches argv, the
output or the database in clear."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from core.db import get_engine
from core.numbers.secrets import new_key
from core.sandbox import SandboxServer

TOKEN = "EAAG-cli-acme-token-000111"


def wanotify(
    *args: str, env: dict[str, str], cwd: Path, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "core.cli", "numbers", *args], input=stdin,
        env=env, cwd=cwd, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


@pytest.fixture
def env(sandbox: SandboxServer, tmp_path: Path) -> dict[str, str]:
    drop = ("WHATSAPP_", "SANDBOX_", "WEBHOOK_", "DATABASE_URL", "WANOTIFY_")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env = {
        **clean, "WHATSAPP_API_BASE_URL": sandbox.url, "WANOTIFY_MODE": "sandbox",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}", "WANOTIFY_SECRET_KEY": new_key(),
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
    }  # fmt: skip
    subprocess.run([sys.executable, "-m", "core.cli", "db", "upgrade"], env=env, cwd=tmp_path,
                   check=True, capture_output=True, timeout=120)  # fmt: skip
    httpx.post(f"{sandbox.url}/_sandbox/numbers", timeout=10, json={
        "phone_number_id": "2000001", "access_token": TOKEN, "waba_id": "3000001",
        "quality_rating": "RED", "messaging_limit_tier": "TIER_250",
    }).raise_for_status()  # fmt: skip
    return env


@pytest.mark.slow
def test_an_admin_adds_tests_lists_and_removes_a_number(
    env: dict[str, str], tmp_path: Path
) -> None:
    added = wanotify("add", "2000001", "--tenant", "acme", "--waba", "3000001",
                     "--name", "Acme", "--max-mps", "40", env=env, cwd=tmp_path,
                     stdin=f"  {TOKEN}\n")  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert "added for tenant acme, as its default" in added.stdout
    tested = wanotify("test", "2000001", env=env, cwd=tmp_path)
    assert tested.returncode == 0, tested.stderr
    assert "Quality: RED" in tested.stdout and "Messaging limit: TIER_250" in tested.stdout
    listed = wanotify("list", env=env, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "2000001" in listed.stdout and "RED" in listed.stdout and "environment" in listed.stdout
    # A second key in front, rotate, then the first key alone is not needed any more.
    rotated_env = {**env, "WANOTIFY_SECRET_KEY": f"{new_key()},{env['WANOTIFY_SECRET_KEY']}"}
    rotated = wanotify("rotate-key", env=rotated_env, cwd=tmp_path)
    assert rotated.returncode == 0 and "1 access token re-encrypted" in rotated.stdout
    new_only = {**env, "WANOTIFY_SECRET_KEY": rotated_env["WANOTIFY_SECRET_KEY"].split(",")[0]}
    assert wanotify("test", "2000001", env=new_only, cwd=tmp_path).returncode == 0
    # The old key alone: one line naming the variable, exit 1.
    stale = wanotify("test", "2000001", env=env, cwd=tmp_path)
    assert stale.returncode == 1
    (line,) = errors(stale)
    assert "WANOTIFY_SECRET_KEY" in line
    removed = wanotify("remove", "2000001", "--tenant", "acme", env=new_only, cwd=tmp_path)
    assert removed.returncode == 0, removed.stderr
    for run in (added, tested, listed, rotated, stale, removed):
        assert TOKEN not in run.stdout + run.stderr
    with get_engine(env["DATABASE_URL"]).connect() as connection:
        rows = " ".join(map(str, connection.execute(text("SELECT * FROM sender_numbers")).all()))
    assert TOKEN not in rows


#: (arguments, standard input, words the one error line must hold)
BAD_INPUT = [
    (("add", "+34600000000", "--tenant", "acme"), TOKEN, "is not a Graph id"),
    (("add", "2000001", "--tenant", "acme"), "EAAG with spaces", "spaces or line breaks"),
    (("add", "2000001", "--tenant", "acme", "--token-env", "NOPE_UNSET"), None,
     "NOPE_UNSET is not set"),
    (("test", "2000009"), None, "is not a sending number"),
    (("remove", "2000009"), None, "not one of tenant default's numbers"),
]  # fmt: skip


def errors(run: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in run.stderr.splitlines() if not line.startswith("WARNING")]


@pytest.mark.slow
def test_bad_input_is_one_line_and_exit_1(env: dict[str, str], tmp_path: Path) -> None:
    for args, stdin, words in BAD_INPUT:
        run = wanotify(*args, env=env, cwd=tmp_path, stdin=stdin or "")
        assert run.returncode == 1, (args, run.stdout + run.stderr)
        (line,) = errors(run)
        assert words in line, (args, line)
        assert "EAAG" not in line


def test_a_duplicate_is_refused_and_the_token_env_is_read(
    env: dict[str, str], tmp_path: Path
) -> None:
    with_token = {**env, "ACME_TOKEN": TOKEN}
    first = wanotify("add", "2000001", "--tenant", "acme", "--token-env", "ACME_TOKEN",
                     env=with_token, cwd=tmp_path)  # fmt: skip
    assert first.returncode == 0, first.stderr
    again = wanotify("add", "2000001", "--tenant", "bolt", "--token-env", "ACME_TOKEN",
                     env=with_token, cwd=tmp_path)  # fmt: skip
    assert again.returncode == 1 and "already registered (tenant acme)" in again.stderr
