"""The applier runs in a process of its own, beside the webhook app's.

At Meta's peak the app spends most of one core receiving, checking and journalling, and
applying the events costs most of another. In one process they share one interpreter
lock, and every batch the applier folds in Python delays the acknowledgements behind it.
So the webhook process starts this module as a child (`python -m
core.webhooks.applier_process`: a fresh interpreter that depends on nothing of its
parent's but the job it is given, in its environment: a PostgreSQL URL may carry a
password, and a command line is visible to every local user), which applies the
receipts the app commits (on SQLite, to its inbox: `core.webhooks.inbox`) and reports
what each batch did, for `/metrics`.

The pipes between the two:
- the child's stdin: one byte per journal commit ("there is work"); end of file means
  the parent stopped or died, and the child finishes its batch and exits;
- the child's stdout: length-prefixed pickled reports (the child's own prints and logs
  go to stderr).

The parent restarts the child, with a growing delay, if it dies. Nothing is lost either
way: the inbox and the receipts are committed, and applying again is idempotent.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import pickle
import select
import signal
import struct
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import IO, Any

from core.webhooks.applier import Applier, ApplierTuning
from core.webhooks.apply import ApplyReport

log = logging.getLogger(__name__)

#: How long `stop` waits for the batch in flight before killing the child.
STOP_TIMEOUT = 30.0
_MAX_DELAY = 30.0
_FRAME = struct.Struct("!I")
#: The environment variable the job reaches the child in.
JOB_VARIABLE = "WANOTIFY_APPLIER_JOB"


@dataclass(frozen=True)
class ApplierJob:
    """What the child needs, passed in its environment as JSON (`JOB_VARIABLE`)."""

    database_url: str
    default_tenant: str
    tuning: ApplierTuning

    def to_json(self) -> str:
        """The job as text for the child."""
        tuning = asdict(self.tuning)
        tuning["hold_grace"] = self.tuning.hold_grace.total_seconds()
        return json.dumps(
            {"database_url": self.database_url, "tenant": self.default_tenant, "tuning": tuning}
        )

    @classmethod
    def from_json(cls, text: str) -> ApplierJob:
        """The job back from its text."""
        doc = json.loads(text)
        tuning = dict(doc["tuning"])
        tuning["hold_grace"] = timedelta(seconds=tuning["hold_grace"])
        return cls(doc["database_url"], doc["tenant"], ApplierTuning(**tuning))


# --- the child ------------------------------------------------------------------------------


def main() -> int:
    """The child's entry point: apply until stdin closes (the parent stopped or died)."""
    from core import heap
    from core.db import get_engine
    from core.webhooks.checkpoint import start_checkpointer

    job = ApplierJob.from_json(os.environ.pop(JOB_VARIABLE))
    reports = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # stray prints must not corrupt the report frames
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    stopping: list[bool] = []
    # Ctrl-C reaches the whole process group: the parent stops us when it stops. A
    # SIGTERM (a service manager stopping the group) ends the batch in flight first.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    # Acknowledging is what Meta waits for; applying may lag a little. When the cores
    # are short, the scheduler should serve the webhook process first.
    os.nice(job.tuning.nice)
    engine = get_engine(job.database_url)
    checkpointer = start_checkpointer(engine)
    applier = Applier(engine, job.tuning, job.default_tenant, restart_wal=checkpointer is not None)
    heap.freeze_start_up_heap()
    try:
        _apply_until_stopped(applier, job.tuning, stopping, reports)
    finally:
        if checkpointer is not None:
            checkpointer.stop()
        with contextlib.suppress(OSError):
            reports.close()
        engine.dispose()
    return 0


def _apply_until_stopped(
    applier: Applier, tuning: ApplierTuning, stopping: list[bool], reports: IO[bytes]
) -> None:
    delay = 0.5
    while not stopping:
        try:
            result = applier.step()
        except Exception as exc:
            log.warning("webhook applier: %s; retrying in %.1f s", type(exc).__name__, delay)
            log.debug("webhook applier error", exc_info=True)
            if not _send(reports, ("error", type(exc).__name__)) or not _wait_for_work(delay):
                return
            delay = min(delay * 2, _MAX_DELAY)
            continue
        delay = 0.5
        sends = [result.batch] if result.batch.did_work else []
        if result.swept is not None:
            sends.append(result.swept)
        if not all(_send(reports, ("applied", report)) for report in sends):
            return
        # More than one batch was waiting: only a look at stdin (has the parent stopped?).
        # Else wait for the next commit: one that came during the step has its wake
        # byte waiting already, and every earlier one was in what the step read.
        if result.batch.more_waiting:
            if not _wait_for_work(0.0):
                return
            continue
        if not _wait_for_work(tuning.idle_poll):
            return
        # Let a few more commits gather: a batch costs less per event the more events
        # it folds (a message's stages become one update), and the CPU it saves is
        # the webhook process's at Meta's peak.
        time.sleep(tuning.gather_seconds)


def _wait_for_work(timeout: float) -> bool:
    """Idle until the parent announces a commit, or `timeout` passes (other processes'
    receipts, sweeps); False once the parent has gone (stdin at end of file)."""
    readable, _, _ = select.select([0], [], [], timeout)
    if not readable:
        return True
    try:
        return os.read(0, 65536) != b""  # every wake so far, in one read
    except OSError:
        return False


def _send(reports: IO[bytes], message: tuple[str, Any]) -> bool:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    try:
        reports.write(_FRAME.pack(len(data)) + data)
        reports.flush()
    except (BrokenPipeError, OSError):  # the parent is gone: stop
        return False
    return True


# --- the parent's handle -------------------------------------------------------------------


class ApplierProcess:
    """The webhook process's handle on its applier child: start, wake, supervise, stop."""

    def __init__(
        self,
        job: ApplierJob,
        on_report: Callable[[ApplyReport], None],
        on_error: Callable[[str], None],
    ) -> None:
        self.job = job
        self._on_report = on_report
        self._on_error = on_error
        self._stopping = False
        self._process: asyncio.subprocess.Process | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self.restarts = 0

    @property
    def pid(self) -> int | None:
        """The running child's process id (None between restarts)."""
        process = self._process
        return process.pid if process is not None and process.returncode is None else None

    async def start(self) -> None:
        """Start the child and keep it running until `stop`."""
        self._stopping = False
        self._supervisor = asyncio.create_task(self._supervise(), name="webhook-applier-process")

    def wake(self) -> None:
        """Tell the child there is work (after each journal commit); never blocks."""
        process = self._process
        if process is None or process.stdin is None or process.stdin.is_closing():
            return
        transport = process.stdin.transport
        if transport.get_write_buffer_size() == 0:  # else a wake is already on its way
            with contextlib.suppress(ConnectionError, RuntimeError):
                process.stdin.write(b"w")

    async def stop(self) -> None:
        """Let the child finish its batch and exit (killed after `STOP_TIMEOUT`)."""
        self._stopping = True
        process = self._process
        if process is not None and process.stdin is not None:
            process.stdin.close()  # end of file: the child's signal to stop
        if self._supervisor is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._supervisor), STOP_TIMEOUT)
        except TimeoutError:
            log.error("webhook applier did not stop within %.0f s; killing it", STOP_TIMEOUT)
            if process is not None and process.returncode is None:
                process.kill()
            await self._supervisor
        self._supervisor = None

    async def _supervise(self) -> None:
        delay = 1.0
        while not self._stopping:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "core.webhooks.applier_process",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                env={**os.environ, JOB_VARIABLE: self.job.to_json()},
            )
            self._process = process
            if self._stopping and process.stdin is not None:
                process.stdin.close()  # stop() came while it was starting
            await self._read_reports(process)
            code = await process.wait()
            if self._stopping:
                return
            self.restarts += 1
            self._on_error("process_exited")
            log.error("webhook applier process exited (code %s); restarting in %.0f s", code, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, _MAX_DELAY)

    async def _read_reports(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        while True:
            try:
                (size,) = _FRAME.unpack(await process.stdout.readexactly(_FRAME.size))
                kind, payload = pickle.loads(await process.stdout.readexactly(size))  # noqa: S301 - our own child
            except (asyncio.IncompleteReadError, ConnectionError):
                return  # the child exited
            except Exception as exc:  # a garbled frame: count it and restart the child
                self._on_error(type(exc).__name__)
                process.kill()
                return
            if kind == "applied" and isinstance(payload, ApplyReport):
                self._on_report(payload)
            else:
                self._on_error(str(payload))


if __name__ == "__main__":
    sys.exit(main())
