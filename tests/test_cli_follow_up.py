"""`wanotify follow-up`: the awaiting-answer list as a table, JSON lines or CSV, on a
real SQLite file (PostgreSQL too), the clock injected; a supplier's hostile words are
printed as they are, never read as Rich markup or left as a live spreadsheet formula."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from rich.console import Console
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from core import clock
from core.cli import app
from tests.core.followup.helpers import HOSTILE, T0, answer, notice, ready

pytestmark = pytest.mark.clock
H = timedelta(hours=1)
FORMULA = '=HYPERLINK("https://evil.example","ok")'


@pytest.fixture
def listed(engine: Engine) -> Engine:
    ready(engine, "default", "other")
    notice(engine, "PO-WAIT", T0 - 30 * H, number="+34699300001")
    _, rej = notice(engine, "PO-REJ", T0 - 2 * H, number="+34699300002")
    _, txt = notice(engine, "PO-TXT", T0 - 40 * H, number="+34699300003")
    with engine.begin() as conn:  # as the directory may hold it (an import, an ERP name)
        conn.execute(text("UPDATE suppliers SET name = :n WHERE phone_e164 = '+34699300003'"),
                     {"n": FORMULA})  # fmt: skip
    notice(engine, "PO-THEIRS", T0 - 30 * H, tenant="other")
    answer(engine, rej, "+34699300002", T0 - H, button="Rechazar")
    answer(engine, txt, "+34699300003", T0 - 39 * H, text=HOSTILE)
    return engine


def follow_up(*args: str) -> str:
    with clock.frozen(T0):
        result = CliRunner().invoke(app, ["follow-up", *args])
    assert result.exit_code == 0, result.output
    return result.stdout


def test_the_table_rejected_first_words_as_they_are(
    listed: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("core.cli.out", Console(width=300))  # one line per notice
    shown = follow_up()
    assert shown.index("PO-REJ") < shown.index("PO-TXT") < shown.index("PO-WAIT")
    assert "[click me](https://evil.example) <img src=x onerror=alert(1)> **bold**" in shown
    assert "\n# H" not in shown  # one line per notice
    assert "PO-THEIRS" not in shown
    assert "3 notices waiting." in shown
    assert "PO-THEIRS" in follow_up("--tenant", "other", "--min-age", "1")


def test_json_lines_and_filters(listed: Engine) -> None:
    rows = [json.loads(line) for line in follow_up("--json").splitlines()]
    assert [r["po_number"] for r in rows] == ["PO-REJ", "PO-TXT", "PO-WAIT"]
    assert rows[1]["reply_text"] == HOSTILE and rows[1]["state"] == "replied"
    assert rows[2]["age_hours"] == 30 and rows[2]["reminders"] == 0
    assert rows[0]["max_reminders"] == 2
    only = [json.loads(x) for x in follow_up("--json", "--state", "rejected").splitlines()]
    assert [r["po_number"] for r in only] == ["PO-REJ"]


def test_csv_is_safe_to_open_in_a_spreadsheet(listed: Engine) -> None:
    table = list(csv.DictReader(io.StringIO(follow_up("--csv"))))
    assert [r["po_number"] for r in table] == ["PO-REJ", "PO-TXT", "PO-WAIT"]
    assert table[1]["supplier"] == "'" + FORMULA  # a formula stays text
    assert table[1]["reply_text"] == HOSTILE


def test_bad_options_are_one_clear_line(listed: Engine) -> None:
    with clock.frozen(T0):
        both = CliRunner().invoke(app, ["follow-up", "--json", "--csv"])
        state = CliRunner().invoke(app, ["follow-up", "--state", "lost"])
    assert both.exit_code != 0 and state.exit_code != 0
    assert "Unknown state" in str(state.exception)
