"""A sandbox in a process of its own, for benchmarks that must not share its interpreter.

`SandboxServer` serves from a thread of the calling process: fine for tests, but a
benchmark's own work (polling the database, reading results) then shares the sandbox's
interpreter lock and garbage collector, and every pause there delays the sandbox's
accept times as if the sender had sent in a clump. `SandboxProcess` runs the same app
(`create_app`, same configuration, same `/_sandbox/` controls over HTTP) under uvicorn
in a child Python process, on a free loopback port.

    with SandboxProcess(latency_ms=150, mps=1000, webhooks_enabled=False) as sandbox:
        ... sandbox.url, sandbox.stats(), sandbox.messages() ...

The child exits when its parent closes its stdin (`stop()`, or the parent dying).
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from core.sandbox.config import SandboxConfig
from core.sandbox.server import SandboxControls, _fields, freeze_heap

ROOT = Path(__file__).resolve().parents[2]
READY_PREFIX = "sandbox listening on "


class SandboxProcess(SandboxControls):
    """A sandbox served by a child process; keyword arguments are `SandboxConfig` fields."""

    def __init__(
        self,
        config: SandboxConfig | None = None,
        *,
        startup_timeout: float = 30.0,
        **overrides: Any,
    ) -> None:
        base = config or SandboxConfig()
        self.config = SandboxConfig(**{**_fields(base), **overrides})
        self.startup_timeout = startup_timeout
        self._proc: subprocess.Popen[str] | None = None
        self._client = None
        self.url = ""

    def __enter__(self) -> SandboxProcess:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def pid(self) -> int | None:
        """The child's process id while it runs (to read its CPU time, for instance)."""
        return self._proc.pid if self._proc is not None else None

    def start(self) -> str:
        """Start the child, wait until `/_sandbox/health` answers; return the base URL."""
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        self._proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "core.sandbox.process", json.dumps(self.config.to_json())],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._proc.stdout is not None
        ready, _, _ = select.select([self._proc.stdout], [], [], self.startup_timeout)
        line = self._proc.stdout.readline() if ready else ""
        if not line.startswith(READY_PREFIX):
            self.stop()
            raise RuntimeError(f"the sandbox process did not start: {line!r}")
        self.url = line[len(READY_PREFIX) :].strip()
        self._client = httpx.Client(base_url=self.url, timeout=30.0)
        self._client.get("/_sandbox/health").raise_for_status()
        return self.url

    def stop(self) -> None:
        """Stop the child (SIGTERM: uvicorn's graceful exit; SIGKILL if it lingers)."""
        if self._client is not None:
            self._client.close()
            self._client = None
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()


def _exit_when_parent_leaves(server: Any) -> None:
    """Ask uvicorn to exit once stdin reaches end of file (the parent closed or died)."""

    def watch() -> None:
        sys.stdin.read()
        server.should_exit = True

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()


def main(argv: list[str] | None = None) -> None:
    """Child entry: serve `create_app(SandboxConfig(**json))` on a free loopback port."""
    import uvicorn

    from core.sandbox.app import create_app
    from core.sandbox.server import _uvicorn_config

    args = sys.argv[1:] if argv is None else argv
    config = SandboxConfig(**json.loads(args[0]))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.listen(4096)  # connections wait in the backlog until uvicorn accepts them
    server = uvicorn.Server(_uvicorn_config(create_app(config), "127.0.0.1", port))
    _exit_when_parent_leaves(server)
    freeze_heap()
    print(f"{READY_PREFIX}http://127.0.0.1:{port}", flush=True)
    server.run(sockets=[sock])


if __name__ == "__main__":
    main()
