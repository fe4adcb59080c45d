"""`wanotify send` never calls a failure success; `resend`; `send --text`; dry-run results.

Issue 11 item 4, run as a user runs it: the real CLI process against the real sandbox.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from core.db import get_engine
from core.sandbox import SandboxServer
from tests.test_cli import cli_env, ready_env, wanotify

NOT_SENT = 3  # the documented exit status for a failed, cancelled or unknown message
__all__ = ["cli_env", "ready_env"]  # tests.test_cli's fixtures, used here


@pytest.fixture
def env(ready_env: dict[str, str]) -> dict[str, str]:
    """A migrated database with the sandbox's templates, the CLI pointed at the sandbox."""
    return ready_env


def notice(po: str, phone: str = "612 34 56 01") -> tuple[str, ...]:
    return ("send", "--to", phone, "--supplier-name", "Harinas Martín",
            "--po-number", po, "--amount", "10", "--lang", "es")  # fmt: skip


def sql(env: dict[str, str], statement: str, **params: object) -> list[tuple[object, ...]]:
    engine = get_engine(env["DATABASE_URL"])
    with engine.begin() as conn:
        result = conn.execute(text(statement), params)
        rows = [tuple(r) for r in result] if result.returns_rows else []
    engine.dispose()
    return rows


def message_ids(env: dict[str, str]) -> list[str]:
    return [str(r[0]) for r in sql(env, "SELECT id FROM whatsapp_messages ORDER BY created_at")]


def test_a_failed_notice_sent_again_exits_non_zero_with_the_reason_and_the_resend_command(
    env: dict[str, str], sandbox: SandboxServer, tmp_path: Path
) -> None:
    """The issue's run: a send fails (the emulator refused the API version), the same
    send again must not say "Already queued" and exit 0; `resend` is the way."""
    sandbox.inject(100, http_status=400, details="Unsupported API version v99.0")
    first = wanotify(*notice("PO-F1"), env=env, cwd=tmp_path)
    assert first.returncode == NOT_SENT, first.stdout + first.stderr
    (failed_id,) = message_ids(env)
    assert "Status: failed" in first.stdout
    assert f"wanotify resend {failed_id}" in first.stderr
    assert "Unsupported API version" in first.stderr

    again = wanotify(*notice("PO-F1"), env=env, cwd=tmp_path)
    assert again.returncode == NOT_SENT
    assert "Already queued" not in again.stdout
    assert f"Message {failed_id} is failed" in again.stderr
    assert "Unsupported API version" in again.stderr  # the reason
    assert f"wanotify resend {failed_id}" in again.stderr
    assert sandbox.messages() == []  # nothing was sent

    resent = wanotify("resend", failed_id, "--by", "ops", env=env, cwd=tmp_path)
    assert resent.returncode == 0, resent.stdout + resent.stderr
    assert "Status: accepted" in resent.stdout
    assert len(sandbox.messages()) == 1
    ids = message_ids(env)
    assert len(ids) == 2 and ids[0] == failed_id
    copy = sql(env, "SELECT created_by, po_number FROM whatsapp_messages WHERE id = :i", i=ids[1])
    assert copy == [("ops", "PO-F1")]  # recorded as a deliberate resend, by whom

    third = wanotify(*notice("PO-F1"), env=env, cwd=tmp_path)
    assert third.returncode == 0, third.stderr  # the notice's latest attempt went out
    assert f"resent as {ids[1]}" in third.stdout and "status accepted" in third.stdout
    assert len(sandbox.messages()) == 1


def test_a_notice_that_keeps_failing_points_at_its_latest_attempt(
    env: dict[str, str], sandbox: SandboxServer, tmp_path: Path
) -> None:
    sandbox.inject(100, count=2, http_status=400, details="Unsupported API version v99.0")
    assert wanotify(*notice("PO-B1"), env=env, cwd=tmp_path).returncode == NOT_SENT
    (original,) = message_ids(env)
    resent = wanotify("resend", original, env=env, cwd=tmp_path)
    assert resent.returncode == NOT_SENT
    latest = message_ids(env)[-1]
    assert latest != original and f"wanotify resend {latest}" in resent.stderr
    again = wanotify(*notice("PO-B1"), env=env, cwd=tmp_path)
    assert again.returncode == NOT_SENT
    assert f"resent as {latest}" in again.stderr and f"wanotify resend {latest}" in again.stderr
    assert sandbox.messages() == []


def test_only_a_queued_or_sent_notice_sent_again_is_success(
    env: dict[str, str], tmp_path: Path
) -> None:
    """Queued: 0. Cancelled, or unknown after an interruption: 3, with the resend command."""
    for po in ("PO-Q1", "PO-C1", "PO-N1"):
        queued = wanotify(*notice(po), "--no-wait", env=env, cwd=tmp_path)
        assert queued.returncode == 0, queued.stderr
    pending, cancelled, unknown = message_ids(env)
    sql(env, "UPDATE whatsapp_messages SET status = 'cancelled' WHERE id = :i", i=cancelled)
    sql(env, "UPDATE whatsapp_messages SET status = 'needs_attention' WHERE id = :i", i=unknown)
    again = wanotify(*notice("PO-Q1"), "--no-wait", env=env, cwd=tmp_path)
    assert again.returncode == 0
    assert f"Already queued before as message {pending} (status pending)." in again.stdout
    for po, mid, status in (("PO-C1", cancelled, "cancelled"),
                            ("PO-N1", unknown, "needs_attention")):  # fmt: skip
        again = wanotify(*notice(po), "--no-wait", env=env, cwd=tmp_path)
        assert again.returncode == NOT_SENT
        assert f"is {status}" in again.stderr and f"wanotify resend {mid}" in again.stderr


def test_resend_refuses_unknown_messages_and_one_that_reached_meta(
    env: dict[str, str], sandbox: SandboxServer, tmp_path: Path
) -> None:
    for args, words in ((("resend", "no-such-id"), "no message no-such-id"),
                        (("resend", "x" * 5000), "no message xxx")):  # fmt: skip
        result = wanotify(*args, env=env, cwd=tmp_path)
        assert result.returncode == 1
        assert result.stderr.strip().splitlines()[-1].startswith("error: ")
        assert words in result.stderr and "Traceback" not in result.stderr
    assert sandbox.messages() == []
    assert wanotify(*notice("PO-R1"), env=env, cwd=tmp_path).returncode == 0
    (mid,) = message_ids(env)
    result = wanotify("resend", mid, env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert "only failed, needs-attention or cancelled messages can be resent" in result.stderr
    assert len(sandbox.messages()) == 1


def _wrote_to_us(env: dict[str, str], sandbox: SandboxServer, ago: timedelta) -> None:
    """The supplier wrote `ago` (the applier's record; the sandbox opens its window too)."""
    sandbox.inbound("34612345601", text="hola")
    sql(env, "UPDATE suppliers SET last_inbound_at = :at WHERE phone_e164 = '+34612345601'",
        at=datetime.now(UTC) - ago)  # fmt: skip


def test_send_text_only_inside_the_24_hour_window(
    env: dict[str, str], sandbox: SandboxServer, tmp_path: Path
) -> None:
    assert wanotify(*notice("PO-T1"), env=env, cwd=tmp_path).returncode == 0
    mixed = wanotify("send", "--text", "hola", "--to", "612345601", "--po-number", "P",
                     env=env, cwd=tmp_path)  # fmt: skip
    assert mixed.returncode == 1 and "--text sends a free-form text" in mixed.stderr
    for ago in (None, timedelta(hours=25)):
        if ago is not None:
            _wrote_to_us(env, sandbox, ago)
        refused = wanotify("send", "--text", "hola", "--to", "612 34 56 01", env=env, cwd=tmp_path)
        assert refused.returncode == 1
        last = refused.stderr.strip().splitlines()[-1]
        assert last.startswith("error: Free-form text is only allowed within 24 hours")
        assert ("never written" in last) == (ago is None)
    assert len(sandbox.messages()) == 1 and len(message_ids(env)) == 1  # the notice only
    _wrote_to_us(env, sandbox, timedelta(hours=2))
    sent = wanotify("send", "--text", "¿Lo servís el jueves?", "--to", "+34 (0)612 34 56 01",
                    env=env, cwd=tmp_path)  # fmt: skip
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert "Status: accepted" in sent.stdout
    (text_message,) = [m["body"] for m in sandbox.messages() if m["body"].get("type") == "text"]
    assert text_message["to"] == "34612345601"
    assert text_message["text"]["body"] == "¿Lo servís el jueves?"


def unquoted(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """Cells without the apostrophe that keeps `+34 ...` from being read as a formula."""
    return [{k: v.removeprefix("'") for k, v in row.items()} for row in rows]


def test_send_csv_dry_run_writes_the_results_file_and_sends_nothing(
    env: dict[str, str], sandbox: SandboxServer, tmp_path: Path
) -> None:
    source = tmp_path / "pos.csv"
    source.write_text(
        "supplier_name;phone;po_number;amount\n"
        "Harinas Martín;+34 (0)612 34 56 01;PO-D1;10\n"
        "Aceites Sur;0034.612.345.602;PO-D2;20\n"
        "Nadie;+34 (0)12;PO-D3;5\n",
        "utf-8",
    )
    results = tmp_path / "dry.csv"
    run = wanotify("send-csv", str(source), "--dry-run", "--results", str(results),
                   env=env, cwd=tmp_path)  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "2 rows valid, 1 refused" in run.stdout and "nothing sent" in run.stdout
    rows = list(csv.DictReader(io.StringIO(results.read_text("utf-8-sig")), delimiter=";"))
    assert [(r["phone"], r["phone_e164"], r["outcome"]) for r in unquoted(rows)] == [
        ("+34 (0)612 34 56 01", "+34612345601", "ready"),
        ("0034.612.345.602", "+34612345602", "ready"),
        ("+34 (0)12", "", "refused"),
    ]
    assert rows[2]["error"] and not rows[0]["error"]
    assert sandbox.messages() == [] and message_ids(env) == []
    sent = wanotify("send-csv", str(source), "--results", str(results), env=env, cwd=tmp_path)
    assert sent.returncode == 0, sent.stderr
    rows = list(csv.DictReader(io.StringIO(results.read_text("utf-8-sig")), delimiter=";"))
    assert [(r["phone"], r["phone_e164"], r["outcome"]) for r in unquoted(rows)] == [
        ("+34 (0)612 34 56 01", "+34612345601", "sent"),
        ("0034.612.345.602", "+34612345602", "sent"),
        ("+34 (0)12", "", "refused"),
    ]


def test_exit_codes_are_documented_in_help(env: dict[str, str], tmp_path: Path) -> None:
    for command in ((), ("send",), ("resend",)):
        shown = wanotify(*command, "--help", env=env, cwd=tmp_path)
        assert shown.returncode == 0
        flat = " ".join(shown.stdout.split())
        assert "Exit codes: 0" in flat and "3" in flat and "cancelled" in flat, command
