"""`wanotify api-keys add/list/revoke`, run as an administrator runs them (a real process)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from core.api_keys import check_key


def wanotify(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "core.cli", "api-keys", *args],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


@pytest.fixture
def env(database_url: str) -> dict[str, str]:
    drop = ("WHATSAPP_", "DATABASE_", "PO_EVENTS_", "WANOTIFY_DEFAULT_TENANT")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    root = str(Path(__file__).resolve().parents[1])
    return {**clean, "DATABASE_URL": database_url, "PYTHONPATH": root}


def tenant_of(engine: Engine, key: str) -> tuple[str, str | None]:
    verdict = check_key(key, env_key=None, default_tenant="default", engine=engine)
    return verdict.outcome, verdict.tenant_id


def test_keys_are_added_listed_and_revoked(
    env: dict[str, str], tmp_path: Path, engine: Engine
) -> None:
    added = wanotify("add", "--tenant", "acme", "--name", "SAP prod", env=env, cwd=tmp_path)
    assert added.returncode == 0, added.stderr
    [key] = added.stdout.split()  # the key alone on standard output, for scripts
    assert "not shown again" in added.stderr and key not in added.stderr
    assert tenant_of(engine, key) == ("ok", "acme")
    other = wanotify("add", "--tenant", "other", env=env, cwd=tmp_path).stdout.strip()
    with engine.connect() as connection:
        stored = " ".join(map(str, connection.execute(text("SELECT * FROM api_keys")).all()))
    assert key not in stored and other not in stored

    listed = wanotify("list", env={**env, "PO_EVENTS_API_KEY": "env-secret-123"}, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    header, *lines = listed.stdout.splitlines()
    assert header.split("\t") == [
        "id", "prefix", "name", "tenant", "created", "last_used", "revoked"]  # fmt: skip
    table = [line.split("\t") for line in lines]
    assert [(r[1], r[2], r[3], r[5], r[6]) for r in table] == [
        (key[:12], "SAP prod", "acme", r[5], "active") for r in table[:1]
    ] + [(other[:12], "ERP", "other", "never", "active")]
    assert table[0][5] != "never"  # the check above used the key
    assert key not in listed.stdout + listed.stderr and "env-secret-123" not in listed.stderr
    assert "PO_EVENTS_API_KEY is also set: it is the key of tenant default" in listed.stderr

    revoked = wanotify("revoke", key[:12], env=env, cwd=tmp_path)
    assert revoked.returncode == 0 and " revoked at " in revoked.stdout, revoked.stderr
    assert tenant_of(engine, key) == ("revoked", "acme")
    assert tenant_of(engine, other) == ("ok", "other")
    again = wanotify("revoke", table[0][0], env=env, cwd=tmp_path)
    assert again.returncode == 0 and "was already revoked" in again.stdout
    only_other = wanotify("list", "--tenant", "other", env=env, cwd=tmp_path).stdout
    assert len(only_other.splitlines()) == 2 and other[:12] in only_other


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["add", "--tenant", "../x"], "A tenant is"),
        (["add", "--tenant", "acme", "--name", "SAP\u202eetirw"], "invisible characters"),
        (["revoke", "wnk_nothing1"], "No API key with id or prefix 'wnk_nothing1'"),
    ],
)
def test_bad_input_is_one_clear_line_and_a_failure_status(
    env: dict[str, str], tmp_path: Path, args: list[str], reason: str
) -> None:
    done = wanotify(*args, env=env, cwd=tmp_path)
    assert done.returncode == 1
    assert reason in done.stderr and "Traceback" not in done.stderr
    assert done.stdout == ""
