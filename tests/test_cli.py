"""The `wanotify` command line, run as a user runs it: a real process, a real sandbox."""

from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from core.db import get_engine
from core.sandbox import SandboxServer
from tests.fixtures.consent import allow_unrecorded

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "samples" / "csv"
if not SAMPLES.is_dir():  # CI clones the repo with shared/ beside it
    SAMPLES = Path(__file__).resolve().parents[1].parent / "shared" / "samples" / "csv"


def wanotify(
    *args: str, env: dict[str, str], cwd: Path, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "core.cli", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def cli_env(sandbox: SandboxServer, tmp_path: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("WHATSAPP_", "SANDBOX_", "WEBHOOK_", "DATABASE_URL"))
    }
    env.update(
        WHATSAPP_API_BASE_URL=sandbox.url,
        WANOTIFY_MODE="sandbox",  # a sandbox elsewhere: the base URL alone would mean live
        DATABASE_URL=f"sqlite:///{tmp_path / 'cli.db'}",
        PYTHONPATH=str(Path(__file__).resolve().parents[1]),
    )
    return env


@pytest.fixture
def ready_env(cli_env: dict[str, str], tmp_path: Path, _migrated_sqlite: Path) -> dict[str, str]:
    # The database: a copy of the session's migrated file (migrated by core.migrate.upgrade,
    # which `wanotify db upgrade` runs), as tests.fixtures.db gives every test; a `wanotify
    # db upgrade` process per test cost a second. That command itself still runs on a new
    # file in tests/test_cli_attention.py, test_cli_consent.py and test_cli_numbers.py.
    shutil.copyfile(_migrated_sqlite, cli_env["DATABASE_URL"].removeprefix("sqlite:///"))
    synced = wanotify("templates", "sync", env=cli_env, cwd=tmp_path)
    assert synced.returncode == 0, synced.stderr
    assert "added" in synced.stdout
    engine = get_engine(cli_env["DATABASE_URL"])
    allow_unrecorded(engine, "default")  # consent itself: tests/test_cli_consent.py
    engine.dispose()
    return cli_env


def test_send_po_notice_reaches_the_sandbox_once(
    ready_env: dict[str, str], sandbox: SandboxServer, tmp_path: Path
) -> None:
    args = ("send", "--to", "612 34 56 78", "--supplier-name", "Harinas Martín",
            "--po-number", "PO-CLI-1", "--amount", "1234.50", "--lang", "es")  # fmt: skip
    first = wanotify(*args, env=ready_env, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "Status: accepted" in first.stdout
    again = wanotify(*args, env=ready_env, cwd=tmp_path)
    assert again.returncode == 0
    assert "Already queued" in again.stdout
    sent = sandbox.messages()
    assert len(sent) == 1
    assert sent[0]["body"]["to"] == "34612345678"
    assert "1.234,50" in str(sent[0]["body"]["template"]["components"])


def test_invalid_phone_is_one_clear_line_and_non_zero(
    ready_env: dict[str, str], sandbox: SandboxServer, tmp_path: Path
) -> None:
    result = wanotify("send", "--to", "+34 612", "--supplier-name", "X", "--po-number", "P",
                      "--amount", "1", env=ready_env, cwd=tmp_path)  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "too short" in result.stderr
    assert "Traceback" not in result.stderr
    assert sandbox.messages() == []


def test_send_csv_writes_one_result_row_per_input_row(
    ready_env: dict[str, str], sandbox: SandboxServer, tmp_path: Path
) -> None:
    results = tmp_path / "results.csv"
    source = SAMPLES / "po_batch_with_errors.csv"
    run = wanotify("send-csv", str(source), "--template", "po_notification", "--lang", "es",
                   "--results", str(results), env=ready_env, cwd=tmp_path)  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "1 rows valid, 6 refused" in run.stdout
    rows = list(csv.DictReader(io.StringIO(results.read_text("utf-8-sig"))))
    assert [int(r["row_number"]) for r in rows] == [2, 3, 4, 5, 6, 7, 8]  # header: row 1
    assert [r["outcome"] for r in rows].count("sent") == 1
    assert all(r["error"] for r in rows if r["outcome"] == "refused")
    formula = rows[6]["supplier_name"]
    assert formula.startswith("'=")  # neutralised for spreadsheets
    assert len(sandbox.messages()) == 1


def test_text_from_the_file_is_printed_literally_not_as_markup(
    ready_env: dict[str, str], tmp_path: Path
) -> None:
    """A cell quoted in a refusal is outside text: rich markup in it must print as written."""
    source = tmp_path / "markup.csv"
    source.write_text(
        "phone,supplier_name,po_number,total_amount\n"
        '612345678,Acme,PO-M-1,"[bold]x[/bold]"\n',
        encoding="utf-8",
    )
    run = wanotify("send-csv", str(source), "--template", "po_notification", "--lang", "es",
                   "--dry-run", env=ready_env, cwd=tmp_path)  # fmt: skip
    assert "'[bold]x[/bold]' is not an amount" in run.stderr, run.stderr


def test_bad_setting_names_the_variable(cli_env: dict[str, str], tmp_path: Path) -> None:
    env = {**cli_env, "WHATSAPP_MAX_MPS": "fast"}
    result = wanotify("db", "upgrade", env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert "WHATSAPP_MAX_MPS" in result.stderr
    assert "Traceback" not in result.stderr


def test_secret_values_are_not_echoed_in_setting_errors(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**cli_env, "WHATSAPP_API_VERSION": "latest", "WHATSAPP_ACCESS_TOKEN": "EAAGsecret"}
    result = wanotify("db", "upgrade", env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert "WHATSAPP_API_VERSION" in result.stderr
    assert "EAAGsecret" not in result.stderr + result.stdout


def test_commands_before_migration_say_what_to_run(cli_env: dict[str, str], tmp_path: Path) -> None:
    result = wanotify("status", env=cli_env, cwd=tmp_path)
    assert result.returncode == 1
    assert "wanotify db upgrade" in result.stderr


@pytest.mark.parametrize(
    "command",
    [
        ("run",),
        ("db", "upgrade"),
        ("send",),
        ("send-csv",),
        ("worker",),
        ("templates", "sync"),
        ("sandbox",),
        ("resume",),
        ("status",),
    ],
)
def test_every_command_exists(
    cli_env: dict[str, str], tmp_path: Path, command: tuple[str, ...]
) -> None:
    result = wanotify(*command, "--help", env=cli_env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Usage:" in result.stdout


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("send-csv", "missing.csv"), "missing.csv: no such file"),
        (("send-csv", "po.csv", "--decimal", ";"), "--decimal must be auto"),
        (("send-csv", "po.csv", "--template", "nope"), "There is no template 'nope'"),
        (("send", "--to", "612345678", "--param", "oops"), "write it as NAME=VALUE"),
        (("send", "--to", "612345678", "--template", "po_notification"), "is missing"),
    ],
)
def test_user_errors_are_one_clear_line_and_non_zero(
    ready_env: dict[str, str],
    sandbox: SandboxServer,
    tmp_path: Path,
    args: tuple[str, ...],
    words: str,
) -> None:
    (tmp_path / "po.csv").write_text("supplier_name,phone,po_number,amount\nA,612345678,P1,10\n")
    result = wanotify(*args, env=ready_env, cwd=tmp_path)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and words in last, result.stderr
    assert sandbox.messages() == []


def test_send_csv_shows_progress_and_sends_each_valid_row_once(
    ready_env: dict[str, str], sandbox: SandboxServer, tmp_path: Path
) -> None:
    source = tmp_path / "pos.csv"
    source.write_text(
        "supplier_name,phone,po_number,amount,currency\n"
        'Harinas Martín,612345601,PO-1,"1.234,50",EUR\n'
        "Aceites Sur,612345602,PO-2,99,EUR\n"
        "Aceites Sur,612345602,PO-2,99,EUR\n"
        "Nadie,12,PO-3,5,EUR\n",
        "utf-8",
    )
    run = wanotify("send-csv", str(source), env=ready_env, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "Sending" in run.stderr  # the progress bar
    results = tmp_path / "pos.results.csv"
    rows = list(csv.DictReader(io.StringIO(results.read_text("utf-8-sig"))))
    assert [int(r["row_number"]) for r in rows] == [2, 3, 4, 5]
    assert [r["outcome"] for r in rows] == ["sent", "sent", "refused", "refused"]
    assert len(sandbox.messages()) == 2
    again = wanotify("send-csv", str(source), env=ready_env, cwd=tmp_path)  # idempotent
    assert again.returncode == 0, again.stderr
    assert len(sandbox.messages()) == 2


def test_send_csv_sends_each_row_in_its_language_and_asks_about_namesakes(
    ready_env: dict[str, str], sandbox: SandboxServer, tmp_path: Path
) -> None:
    source = tmp_path / "langs.csv"
    source.write_text(
        "supplier_name,phone,po_number,amount,currency,language,consent\n"
        "Twin [bold]S.L.[/bold],612345611,PO-L1,10,EUR,es,yes\n"
        "Bright,+44 7911 123456,PO-L2,20,EUR,EN,yes\n"
        "Embalagens,+351 912 345 611,PO-L3,30,EUR,pt,yes\n"
        "twin [bold]s.l.[/bold],612345612,PO-L4,40,EUR,,yes\n",
        "utf-8",
    )
    dry = wanotify("send-csv", str(source), "--dry-run", env=ready_env, cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert "3 rows valid, 1 refused." in dry.stdout
    assert "row 4: The template has no approved version in pt" in dry.stderr
    assert "--- es: 2 rows; row 2 as the supplier will read it ---" in dry.stdout
    assert "--- en: 1 row; row 3 as the supplier will read it ---" in dry.stdout
    assert "Hola Twin [bold]S.L.[/bold]" in dry.stdout  # the file's text, not markup
    assert "row 5: would add twin [bold]s.l.[/bold] at +34612345612" in dry.stderr
    refused = wanotify("send-csv", str(source), env=ready_env, cwd=tmp_path)
    assert refused.returncode == 1 and "--allow-namesakes" in refused.stderr
    assert sandbox.messages() == []
    run = wanotify("send-csv", str(source), "--allow-namesakes", "--fallback-to-default",
                   env=ready_env, cwd=tmp_path)  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "row 4: Sent in es: the template has no approved pt version" in run.stderr
    sent = {m["body"]["to"]: m["body"]["template"]["language"]["code"] for m in sandbox.messages()}
    assert sent == {"34612345611": "es", "447911123456": "en", "351912345611": "es",
                    "34612345612": "es"}  # fmt: skip


# --- the mode is explicit; refused webhooks are seen ---------------------------------------


def _plain_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a process with no sandbox, no credentials, a file database."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("WHATSAPP_", "SANDBOX_", "WEBHOOK_", "DATABASE_URL", "WANOTIFY_MODE"))
    }
    env.update(
        DATABASE_URL=f"sqlite:///{tmp_path / 'mode.db'}",
        PYTHONPATH=str(Path(__file__).resolve().parents[1]),
        **extra,
    )
    return env


PARTIAL_LINE = (
    "error: incomplete live WhatsApp configuration (WHATSAPP_ACCESS_TOKEN set): missing "
    "WHATSAPP_PHONE_NUMBER_ID, WHATSAPP_BUSINESS_ACCOUNT_ID, WHATSAPP_APP_SECRET, "
    "WHATSAPP_WEBHOOK_VERIFY_TOKEN; set them all for live mode, or none of them (nor "
    "WHATSAPP_API_BASE_URL) for the sandbox"
)


def test_a_partial_live_configuration_stops_the_webhook_process_with_one_line(
    tmp_path: Path,
) -> None:
    env = _plain_env(tmp_path, WHATSAPP_ACCESS_TOKEN="EAAG-partial-secret")
    result = wanotify("webhook", env=env, cwd=tmp_path, timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == PARTIAL_LINE
    assert "Traceback" not in result.stderr
    assert "EAAG-partial-secret" not in result.stderr + result.stdout
    assert not (tmp_path / "mode.db").exists()  # stopped before touching anything


@pytest.mark.parametrize(
    "command", [("status",), ("run",), ("worker",), ("consume-po-events",), ("db", "upgrade")]
)
def test_a_partial_live_configuration_stops_every_command_with_one_line(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: tuple[str, ...],
) -> None:
    """The same entry point (`core.cli.main`) in this process, one command after another."""
    from core import cli

    for name, value in _plain_env(tmp_path, WHATSAPP_ACCESS_TOKEN="EAAG-partial").items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(sys, "argv", ["wanotify", *command])
    with pytest.raises(SystemExit) as stopped:
        cli.main()
    assert stopped.value.code == 1
    captured = capsys.readouterr()
    assert captured.err.strip().splitlines()[-1] == PARTIAL_LINE
    assert not (tmp_path / "mode.db").exists()


def test_status_shows_the_mode_and_refused_signatures_with_what_to_check(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from core import migrate
    from core.db import get_engine
    from core.webhooks.rejections import Tally, record_rejections

    env = _plain_env(tmp_path)
    migrate.upgrade(env["DATABASE_URL"])
    at = datetime(2026, 3, 4, 9, 30, tzinfo=UTC)
    engine = get_engine(env["DATABASE_URL"])
    record_rejections(engine, {"bad_signature": Tally(41, at, at)}, None)
    engine.dispose()
    result = wanotify("status", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Mode: sandbox (no WhatsApp credentials set)")
    assert "Webhooks: degraded (none yet" in result.stdout
    assert "41 webhook deliveries refused for a bad signature" in result.stdout
    assert "check that WHATSAPP_APP_SECRET is the app secret" in result.stdout
