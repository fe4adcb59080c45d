"""`wanotify status` lists the messages that wait for a person; `wanotify resend-attention`
resends them all, deliberately (confirmation asked), once.

Real CLI processes on a real SQLite file; the rows are as crash recovery leaves them.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, inspect, text, update

from core.db import get_engine
from core.models.messages import MessageStatus, WhatsAppMessage
from core.sender.recovery import INFLIGHT_LOST_CLASS, INFLIGHT_LOST_MESSAGE
from tests.core.sender.helpers import TENANT, enqueue_notices, phone, rows
from tests.test_cli import cli_env, wanotify

__all__ = ["cli_env"]  # tests.test_cli's fixture, used here

M = WhatsAppMessage.__table__  # type: ignore[attr-defined]
HOSTILE = "[bold red]Meta said[/] <b>no</b>"


def _allow_unrecorded_consent(engine: Engine, tenant: str) -> None:
    """Let the tenant send to suppliers without recorded consent (core.consent), so a
    resend is judged on its status alone: these test rows name no supplier."""
    if not inspect(engine).has_table("tenant_settings"):
        return
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO tenant_settings (tenant_id, key, value, updated_by, updated_at)"
                " VALUES (:t, 'consent.allow_unrecorded', 'true', 'test', CURRENT_TIMESTAMP)"
            ),
            {"t": tenant},
        )


def _lost(env: dict[str, str], tmp_path: Path, count: int) -> list[str]:
    """`count` messages in needs_attention, as recovery leaves an in-flight send; the
    last one carries a hostile reason (shown as text, never as markup)."""
    assert wanotify("db", "upgrade", env=env, cwd=tmp_path).returncode == 0
    engine = get_engine(env["DATABASE_URL"])
    ids = enqueue_notices(engine, [phone(i) for i in range(count)])
    _allow_unrecorded_consent(engine, TENANT)
    with engine.begin() as conn:
        conn.execute(
            update(M)
            .where(M.c.id.in_(ids))
            .values(
                status=MessageStatus.NEEDS_ATTENTION,
                error_class=INFLIGHT_LOST_CLASS,
                error_message=INFLIGHT_LOST_MESSAGE,
            )
        )
        conn.execute(update(M).where(M.c.id == ids[-1]).values(error_message=HOSTILE))
    engine.dispose()
    return ids


def test_status_lists_each_message_needing_attention_with_its_resend_command(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    ids = _lost(cli_env, tmp_path, 3)
    shown = wanotify("status", env=cli_env, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "Need attention: 3 message(s)" in shown.stdout
    for message_id in ids:
        assert f"wanotify resend {message_id}" in shown.stdout
    assert "wanotify resend-attention" in shown.stdout
    assert HOSTILE in shown.stdout  # outside text printed as it is


def test_resend_attention_asks_then_resends_each_once(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    ids = _lost(cli_env, tmp_path, 3)
    refused = wanotify("resend-attention", env=cli_env, cwd=tmp_path)  # no answer: no
    assert refused.returncode == 1
    engine = get_engine(cli_env["DATABASE_URL"])
    assert len(rows(engine)) == 3  # nothing queued

    done = wanotify("resend-attention", "--yes", "--by", "ops", env=cli_env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "3 resent, 0 refused." in done.stdout
    stored = rows(engine)
    copies = [m for m in stored.values() if m.id not in ids]
    assert len(copies) == 3
    assert {(m.meta or {}).get("resend_of") for m in copies} == set(ids)
    assert all(m.status == MessageStatus.PENDING and m.created_by == "ops" for m in copies)
    assert all(stored[i].status == MessageStatus.NEEDS_ATTENTION for i in ids)  # history kept

    again = wanotify("resend-attention", "--yes", env=cli_env, cwd=tmp_path)
    assert again.returncode == 0
    assert "No message needs attention." in again.stdout  # resent ones are settled
    assert len(rows(engine)) == 6
    status = wanotify("status", env=cli_env, cwd=tmp_path)
    assert "Need attention" not in status.stdout
    engine.dispose()


def test_resend_attention_keeps_to_the_tenant_asked(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    _lost(cli_env, tmp_path, 2)
    other = wanotify("resend-attention", "--yes", "--tenant", "nobody", env=cli_env, cwd=tmp_path)
    assert other.returncode == 0
    assert "No message needs attention." in other.stdout
