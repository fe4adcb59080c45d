"""Consent on the command line (issue 12 item 1), run as a user runs it: `send` refuses a
supplier without recorded consent unless `--consent`, and an opted-out one always;
`resend` and `send-csv` too. Refusals are one line, exit 1, nothing queued."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from sqlmodel import Session, select

from core.consent import withdraw
from core.db import get_engine
from core.models.suppliers import Supplier
from tests.test_cli import cli_env, wanotify

__all__ = ["cli_env"]


@pytest.fixture
def env(cli_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """Migrated, templates synced, and the tenant's default rule: refuse without consent."""
    assert wanotify("db", "upgrade", env=cli_env, cwd=tmp_path).returncode == 0
    assert wanotify("templates", "sync", env=cli_env, cwd=tmp_path).returncode == 0
    return cli_env


def send(po: str, *extra: str) -> tuple[str, ...]:
    return ("send", "--to", "612 34 56 01", "--supplier-name", "Harinas", "--po-number", po,
            "--amount", "10", "--no-wait", *extra)  # fmt: skip


def count(env: dict[str, str]) -> int:
    engine = get_engine(env["DATABASE_URL"])
    with engine.connect() as conn:
        n = int(conn.execute(text("SELECT count(*) FROM whatsapp_messages")).scalar_one())
    engine.dispose()
    return n


def test_send_resend_and_send_csv_refuse_without_consent_or_after_an_opt_out(
    env: dict[str, str], tmp_path: Path
) -> None:
    refused = wanotify(*send("PO-C1"), env=env, cwd=tmp_path)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "no recorded consent" in refused.stderr and count(env) == 0
    sent = wanotify(*send("PO-C1", "--consent"), env=env, cwd=tmp_path)
    assert sent.returncode == 0, sent.stderr
    engine = get_engine(env["DATABASE_URL"])
    with Session(engine) as session:
        (supplier,) = session.exec(select(Supplier)).all()
        assert (supplier.consent_source, supplier.consent_by) == ("cli", "cli")
        withdraw(session, supplier, source="reply", by=supplier.phone_e164, evidence="STOP")
        session.commit()
    with engine.begin() as conn:
        message_id = conn.execute(text("SELECT id FROM whatsapp_messages")).scalar_one()
        conn.execute(text("UPDATE whatsapp_messages SET status = 'failed'"))
    engine.dispose()
    again = wanotify(*send("PO-C2", "--consent"), env=env, cwd=tmp_path)
    assert again.returncode == 1 and "opted out" in again.stderr
    assert "a reply with a stop word" in again.stderr
    resent = wanotify("resend", message_id, "--no-wait", env=env, cwd=tmp_path)
    assert resent.returncode == 1 and "opted out" in resent.stderr
    assert count(env) == 1
    csv = tmp_path / "c.csv"
    csv.write_text(
        "supplier_name,phone,po_number,total_amount,consent\n"
        "Harinas,612 34 56 01,PO-C3,10,yes\n"
        "Nueva,612 34 56 02,PO-C4,10,=1\n"
        "Otra,612 34 56 03,PO-C5,10,\n",
        encoding="utf-8",
    )
    checked = wanotify("send-csv", str(csv), "--dry-run", env=env, cwd=tmp_path)
    assert checked.returncode == 0, checked.stderr
    shown = " ".join((checked.stdout + checked.stderr).split())
    assert "row 2:" in shown and "opted out" in shown
    assert "row 3: Consent '=1' is not yes or no" in shown
    assert "row 4:" in shown and "no recorded consent" in shown
    confirmed = wanotify("send-csv", str(csv), "--dry-run", "--consent-confirmed", env=env,
                         cwd=tmp_path)  # fmt: skip
    assert "1 rows valid, 2 refused" in confirmed.stdout  # row 4 now; rows 2 and 3 never
