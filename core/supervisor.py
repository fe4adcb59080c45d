"""Run the product's processes side by side (`wanotify run`) and stop them together.

Each part is its own OS process (sandbox, webhook app, dashboard with its embedded
sender), so one crashing is seen at once and Ctrl-C stops all of them cleanly.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import httpx

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Part:
    """One process of the product: its name, command line, the URL that says it is up,
    and what to do once it is (e.g. sync templates when the sandbox answers)."""

    name: str
    argv: Sequence[str]
    ready_url: str | None = None
    after_ready: Callable[[], None] | None = None


def wanotify_argv(*args: str) -> list[str]:
    """The command line that runs `wanotify ARGS` with this interpreter."""
    return [sys.executable, "-m", "core.cli", *args]


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 60.0) -> bool:
    """Poll `url` until it answers below HTTP 500, the process dies, or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            if httpx.get(url, timeout=1.0).status_code < 500:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    return False


def _stop(processes: dict[str, subprocess.Popen[bytes]], grace: float = 15.0) -> None:
    for process in processes.values():
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for name, process in processes.items():
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop in %.0f s; killing it", name, grace)
            process.kill()


def supervise(parts: Sequence[Part]) -> int:
    """Start every part in order (each ready before the next) and run until one exits.

    Returns the exit status of the first part that stopped (0 on Ctrl-C or SIGTERM).
    """
    processes: dict[str, subprocess.Popen[bytes]] = {}
    stopping = False

    def _on_signal(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for part in parts:
            process = subprocess.Popen(list(part.argv), env=os.environ.copy())  # noqa: S603
            processes[part.name] = process
            if part.ready_url and not wait_ready(part.ready_url, process):
                log.error("%s did not start (see its output above)", part.name)
                return 1
            log.info("%s is up%s", part.name, f" at {part.ready_url}" if part.ready_url else "")
            if part.after_ready is not None:
                part.after_ready()
        while not stopping:
            for name, process in processes.items():
                code = process.poll()
                if code is not None:
                    log.error("%s stopped with exit status %s; stopping the rest", name, code)
                    return code or 1
            time.sleep(0.5)
        return 0
    finally:
        _stop(processes)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
