"""`SandboxProcess`: the same sandbox app served by a child process, and its heap."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import time

import httpx
import orjson
import pytest

from core.sandbox.config import SandboxConfig
from core.sandbox.process import READY_PREFIX, ROOT, SandboxProcess
from core.sandbox.state import AcceptedMessage
from tests.core.sandbox.helpers import AUTH, MESSAGES_PATH, po_notification


def _pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_the_child_enforces_the_cap_and_keeps_bodies_as_sent() -> None:
    with SandboxProcess(mps=2, latency_ms=0, webhooks_enabled=False) as sandbox:
        assert sandbox.pid is not None and sandbox.pid != 0
        answers = [
            httpx.post(
                sandbox.url + MESSAGES_PATH,
                json=po_notification(to=f"+3461234{n:04d}", opaque=f"m-{n}"),
                headers=AUTH,
            )
            for n in range(1001, 1004)
        ]
        codes = [a.status_code for a in answers]
        assert codes[:2] == [200, 200]
        assert answers[2].json()["error"]["code"] == 130429  # the cap, in the child
        stats = sandbox.stats(recipients=False)
        assert stats["accepted"] == 2 and stats["rejected"] == {"130429": 1}
        stored = sandbox.messages()
        assert [m["biz_opaque_callback_data"] for m in stored] == ["m-1001", "m-1002"]
        assert stored[0]["body"] == po_notification(to="+34612341001", opaque="m-1001")
        pid = sandbox.pid
    assert sandbox.pid is None
    assert not _pid_alive(pid)
    with pytest.raises(RuntimeError):
        sandbox.stats()


def test_the_child_leaves_when_its_parent_closes_stdin() -> None:
    config = json.dumps({"mps": 5})
    child = subprocess.Popen(
        [sys.executable, "-m", "core.sandbox.process", config],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdin is not None
        line = child.stdout.readline()
        assert line.startswith(READY_PREFIX)
        url = line[len(READY_PREFIX) :].strip()
        assert httpx.get(url + "/_sandbox/health", timeout=10).status_code == 200
        child.stdin.close()  # what the parent's death does to the pipe
        assert child.wait(timeout=15) == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        if child.stdout is not None:
            child.stdout.close()


def test_a_child_that_cannot_start_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "executable", "/bin/false")  # exits at once, says nothing
    sandbox = SandboxProcess(SandboxConfig(), startup_timeout=20.0)
    with pytest.raises(RuntimeError, match="did not start"):
        sandbox.start()
    assert sandbox.pid is None


def test_accepted_messages_keep_the_raw_body_not_a_tree_of_objects() -> None:
    raw = orjson.dumps(po_notification())
    message = AcceptedMessage(
        wamid="wamid.X",
        to="34612345678",
        wa_id="34612345678",
        type="template",
        template_name="po_notification",
        language="es",
        category="utility",
        biz_opaque="msg-1",
        message_status="accepted",
        raw_body=raw,
        accepted_at=time.time(),
        accepted_monotonic=time.monotonic(),
    )
    assert message.body == po_notification()
    assert message.body is not message.body  # parsed on read: callers cannot alter it
    referents = gc.get_referents(message)
    assert not any(isinstance(r, dict) for r in referents)  # nothing for the GC to walk
