"""Pure, CPU-bound work spread over the machine's cores: a few worker processes.

Python runs one thread's bytecode at a time, so checking a 100,000-row file row by row
keeps one core busy however many the machine has (seconds of a buyer's upload). Work
that needs nothing but its arguments (a slice of rows and the rules to check them by)
can run in other processes instead, each on its own core: `spread`.

The workers are fresh interpreters (`python -m core.cores`), started once, on first use
or by `warm`, and kept for the life of the process; each has imported `PRELOAD` and then
runs one piece of work after another, pickled to it and back over its stdin and stdout.
They are not `multiprocessing` children: those import the parent's `__main__` again,
which under Streamlit is the page script itself, and a fork of the dashboard would copy
its threads' locks in whatever state they are.

Nothing depends on the workers: on a one-core machine, while another caller is using
them, or when one cannot start or died, the same work runs in this process, as before:
slower, never lost. The work must be a module-level function (pickled by name) of
picklable arguments, and must not read settings, the environment or the database: a
worker is a copy of the program, not of this process's state.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import importlib
import logging
import os
import pickle
import select
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import IO, Any, ClassVar, TypeVar, cast

from core.heap import give_back_free_memory

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

#: Modules each worker imports when it starts, before its first piece of work.
PRELOAD = ("core.csv_import",)
#: Worker processes at most (each holds its slice of the work while it runs).
MAX_WORKERS = 4
_READY = "ready"


class WorkerGone(RuntimeError):
    """A worker process ended (or never started) before it answered."""


class _Worker:
    """One worker process and its two pipes."""

    def __init__(self) -> None:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        self.process = subprocess.Popen(  # noqa: S603 (this interpreter, fixed arguments)
            [sys.executable, "-m", "core.cores", *PRELOAD],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )
        self.ready = False  # its first answer, once it has imported PRELOAD, says so

    def send(self, work: Callable[[Any], Any], part: Any) -> None:
        """Give the worker one piece of work (it starts at once)."""
        try:
            pickle.dump((work, part), self._stdin, protocol=pickle.HIGHEST_PROTOCOL)
            self._stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            raise WorkerGone(str(exc)) from exc

    def receive(self) -> tuple[bool, Any]:
        """The answer to the last piece of work sent: (False, its result), or (True,
        the exception it raised)."""
        try:
            self.await_ready()
            return self._answer()
        except (EOFError, OSError, pickle.UnpicklingError) as exc:
            raise WorkerGone(f"worker {self.process.pid} ended: {exc!r}") from exc

    def has_started(self) -> bool:
        """True once the worker has said it is ready (never waits for it)."""
        if not self.ready and select.select([cast(IO[bytes], self.process.stdout)], [], [], 0)[0]:
            try:
                self.await_ready()
            except (EOFError, OSError, pickle.UnpicklingError):
                return False  # ended: the next piece of work finds out
        return self.ready

    def await_ready(self) -> None:
        """Wait until the worker has said it is ready (it has imported PRELOAD)."""
        if not self.ready:
            self._answer()
            self.ready = True

    def stop(self) -> None:
        """End the worker: it exits when its stdin closes."""
        with contextlib.suppress(OSError):
            self._stdin.close()
        try:
            self.process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.process.kill()

    def _answer(self) -> tuple[bool, Any]:
        # Our own worker's answer, over a pipe only the two processes hold.
        answer: tuple[bool, Any] = pickle.load(cast(IO[bytes], self.process.stdout))  # noqa: S301
        return answer

    @property
    def _stdin(self) -> IO[bytes]:
        return cast(IO[bytes], self.process.stdin)


class _Pool:
    """The process's workers (empty until first used) and who is using them."""

    lock = threading.Lock()  # held by the one caller using the workers
    workers: ClassVar[list[_Worker]] = []


def workers() -> int:
    """How many processes share a piece of work: one per core, at most MAX_WORKERS; 1
    means it runs in this process (a single core has nothing to spread onto)."""
    return max(1, min(os.cpu_count() or 1, MAX_WORKERS))


def spread(work: Callable[[T], R], parts: Sequence[T]) -> list[R]:
    """`[work(part) for part in parts]`, each part in its own worker process when the
    machine has the cores (at most `workers()` parts); results in the order of `parts`.

    An exception `work` raises is raised here, as it would be in a loop. When the
    workers are busy with another caller's work, or cannot run, the parts are worked
    on in this process.
    """
    if len(parts) < 2 or len(parts) > workers() or not _Pool.lock.acquire(blocking=False):
        return [work(part) for part in parts]
    try:
        team = _started(len(parts))
        for worker, part in zip(team, parts, strict=False):
            worker.send(work, part)
        answers = [worker.receive() for worker in team[: len(parts)]]  # every one, read
    except WorkerGone as exc:  # no process to run on: here, then
        log.warning("a worker process is gone (%s); working in this process", exc)
        _stop_all()
        return [work(part) for part in parts]
    except BaseException:  # stopped half way (a part that does not pickle, an interrupt):
        _stop_all()  # answers may be left unread in the pipes
        raise
    finally:
        _Pool.lock.release()
    for failed, value in answers:
        if failed:
            raise value
    return [value for _failed, value in answers]


def warm(wait: bool = False) -> None:
    """Start the workers now, in the background (a server as it starts): the first big
    piece of work then finds them ready. With `wait`, return once they are."""
    if workers() < 2 or not _Pool.lock.acquire(blocking=False):
        return
    try:
        for worker in _started(workers()):
            if wait:
                worker.await_ready()
    except (WorkerGone, EOFError, OSError, pickle.UnpicklingError) as exc:
        log.warning("worker processes could not start (%s)", exc)
        _stop_all()
    finally:
        _Pool.lock.release()


def ready() -> bool:
    """True when every worker has started and said it is ready, and none is busy (never
    waits): work too small to be worth the second it takes to start them can go to them."""
    if workers() < 2 or not _Pool.lock.acquire(blocking=False):
        return False
    try:
        return len(_Pool.workers) >= workers() and all(w.has_started() for w in _Pool.workers)
    finally:
        _Pool.lock.release()


@contextlib.contextmanager
def in_this_process() -> Iterator[None]:
    """Do all work in this process meanwhile, as on one core (waits for a caller using
    the workers): what the workers save is then measured in the same run."""
    with _Pool.lock:
        yield


def pids() -> list[int]:
    """The process ids of the workers started so far (to measure what they use)."""
    return [worker.process.pid for worker in _Pool.workers]


def shutdown() -> None:
    """Stop the workers (they start again when next needed)."""
    with _Pool.lock:
        _stop_all()


def _started(count: int) -> list[_Worker]:
    try:
        while len(_Pool.workers) < count:
            _Pool.workers.append(_Worker())
    except OSError as exc:
        raise WorkerGone(str(exc)) from exc
    return _Pool.workers


def _stop_all() -> None:
    team, _Pool.workers = _Pool.workers, []
    for worker in team:
        worker.stop()


def serve(stdin: IO[bytes], stdout: IO[bytes], preload: Sequence[str]) -> None:
    """A worker's life: import `preload`, say so, then answer each piece of work read
    from `stdin` on `stdout` as (failed, result or exception), until stdin closes."""
    for module in preload:
        importlib.import_module(module)
    _write(stdout, (False, _READY))
    while True:
        try:
            work, part = pickle.load(stdin)  # noqa: S301 (from the process that started it)
        except EOFError:
            return
        try:
            answer: tuple[bool, Any] = (False, work(part))
        except Exception as exc:  # the caller raises it, as if it had run there
            answer = (True, exc)
        try:
            _reply(stdout, answer)
        except BrokenPipeError:  # the caller ended while this worked (a dashboard stopped)
            _discard(stdout)
            return
        del work, part, answer
        _give_back_memory()


def _reply(stdout: IO[bytes], answer: tuple[bool, Any]) -> None:
    """Send `answer`, or the error of one that cannot be pickled (raised by the caller)."""
    try:
        _write(stdout, answer)
    except (pickle.PicklingError, TypeError, AttributeError) as exc:
        _write(stdout, (True, RuntimeError(f"{type(exc).__name__}: {exc}")))


def _discard(stdout: IO[bytes]) -> None:
    """Point `stdout` at /dev/null: what is left in its buffer is flushed there as the
    process ends, not into a pipe nobody reads (which prints a traceback)."""
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, stdout.fileno())
    os.close(null)


def _give_back_memory() -> None:
    """Return what a piece of work used to the system: an idle worker that checked 50,000
    rows otherwise keeps the 170 MB its allocators hold until the next big file."""
    gc.collect()
    give_back_free_memory()


def _write(stdout: IO[bytes], answer: tuple[bool, Any]) -> None:
    data = pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL)
    stdout.write(data)
    stdout.flush()


atexit.register(_stop_all)  # at exit, whoever held the workers is gone

if __name__ == "__main__":
    # Ctrl-C in a terminal reaches every process of its group: the caller decides when
    # its workers end (by closing their stdin), not the keyboard.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # The answers get stdout to themselves: anything the work prints goes to stderr.
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    serve(sys.stdin.buffer, answers, sys.argv[1:])
