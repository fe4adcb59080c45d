"""`wanotify templates create FILE.json`, run as an admin runs it (a real process) against
the real sandbox: a submission, a file that is not JSON, a template that breaks Meta's
rules, and Meta's own refusal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from core.sandbox import SandboxServer
from core.templates import get_template
from core.templates.draft import TemplateDraft, build_template

ROOT = Path(__file__).resolve().parents[1]


def wanotify(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "core.cli", *args],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


@pytest.mark.slow
def test_templates_create_from_metas_json(
    sandbox: SandboxServer, database_url: str, engine: Engine, tmp_path: Path
) -> None:
    sandbox.configure(template_review_s=60)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WHATSAPP_", "DATABASE_"))}
    env.update(DATABASE_URL=database_url, PYTHONPATH=str(ROOT), WANOTIFY_MODE="sandbox",
               WHATSAPP_API_BASE_URL=sandbox.url)  # fmt: skip
    good = build_template(
        TemplateDraft(
            name="po_chaser", language="es", category="UTILITY",
            body="Hola {{supplier_name}}, el pedido {{po_number}} sigue sin confirmar.",
            examples={"supplier_name": "Harinas", "po_number": "PO-1"},
            quick_replies=("Confirmar",),
        )
    )  # fmt: skip
    (tmp_path / "good.json").write_text(json.dumps(good), encoding="utf-8")
    done = wanotify("templates", "create", "good.json", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Submitted po_chaser (es) for review: PENDING" in done.stdout
    with Session(engine) as session:
        row = get_template(session, "default", "po_chaser", "es")
    assert row is not None and row.status == "PENDING"

    again = wanotify("templates", "create", "good.json", env=env, cwd=tmp_path)
    assert again.returncode == 1
    assert "Meta refused the template: There is already Spanish content" in again.stderr

    (tmp_path / "broken.json").write_text('{"name": "x",\n  "components": [}', encoding="utf-8")
    broken = wanotify("templates", "create", "broken.json", env=env, cwd=tmp_path)
    assert broken.returncode == 1 and "Traceback" not in broken.stderr
    assert "broken.json is not valid JSON" in broken.stderr and "line 2" in broken.stderr

    bad = {**good, "name": "Chaser <b>1</b>", "components": [{"type": "BODY", "text": "{{a}}"}]}
    (tmp_path / "bad.json").write_text(json.dumps(bad), encoding="utf-8")
    refused = wanotify("templates", "create", "bad.json", env=env, cwd=tmp_path)
    assert refused.returncode == 1
    assert "name: The name may use only lowercase letters" in refused.stderr
    assert "body.example.a: Give a sample value for {{a}}" in refused.stderr
    assert "problems to fix before submitting; nothing was sent" in refused.stderr

    (tmp_path / "list.json").write_text("[1, 2]", encoding="utf-8")
    listed = wanotify("templates", "create", "list.json", env=env, cwd=tmp_path)
    assert listed.returncode == 1 and "a template is a JSON object" in listed.stderr
    missing = wanotify("templates", "create", "nope.json", env=env, cwd=tmp_path)
    assert missing.returncode == 1 and "nope.json: no such file" in missing.stderr
