"""`core.cores`: work spread over worker processes returns what a loop here would, and
a worker that died or is busy never loses work."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from core import cores
from tests.fixtures.cores_work import big_answer, pid_and_square, refuse, unpicklable_answer

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def two_workers(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Two workers whatever the machine, each started without the preload (faster)."""
    cores.shutdown()
    monkeypatch.setattr(cores, "workers", lambda: 2)
    monkeypatch.setattr(cores, "PRELOAD", ())
    yield
    cores.shutdown()


def test_each_part_is_worked_on_in_another_process_and_answers_in_order(
    two_workers: None,
) -> None:
    answers = cores.spread(pid_and_square, [3, 4])
    assert [square for _pid, square in answers] == [9, 16]
    pids = {pid for pid, _square in answers}
    assert len(pids) == 2 and os.getpid() not in pids
    assert cores.spread(pid_and_square, [5, 6])[0][0] in pids  # the same workers, kept


def test_an_exception_in_a_worker_is_raised_here_and_the_workers_stay(two_workers: None) -> None:
    with pytest.raises(ValueError, match="refused: row 7"):
        cores.spread(refuse, ["row 7", "row 8"])
    assert [square for _pid, square in cores.spread(pid_and_square, [2, 3])] == [4, 9]


def test_an_answer_that_cannot_be_sent_back_is_an_error_not_a_hang(two_workers: None) -> None:
    with pytest.raises(RuntimeError, match="pickle"):
        cores.spread(unpicklable_answer, [1, 2])


def test_a_dead_worker_costs_time_not_work(two_workers: None) -> None:
    first = cores.spread(pid_and_square, [1, 2])
    os.kill(first[0][0], signal.SIGKILL)
    answers = cores.spread(pid_and_square, [7, 8])
    assert [square for _pid, square in answers] == [49, 64]
    assert {pid for pid, _square in answers} == {os.getpid()}  # done here, this once
    again = cores.spread(pid_and_square, [7, 8])  # new workers next time
    assert {pid for pid, _square in again}.isdisjoint({os.getpid(), first[0][0]})


def test_work_waits_for_nobody_while_another_caller_has_the_workers(two_workers: None) -> None:
    with cores._Pool.lock:  # another caller's big file is being checked
        answers = cores.spread(pid_and_square, [2, 3])
    assert answers == [(os.getpid(), 4), (os.getpid(), 9)]


def test_one_core_or_one_part_is_worked_on_here(monkeypatch: pytest.MonkeyPatch) -> None:
    assert cores.spread(pid_and_square, [4]) == [(os.getpid(), 16)]
    monkeypatch.setattr(cores, "workers", lambda: 1)
    assert cores.spread(pid_and_square, [1, 2]) == [(os.getpid(), 1), (os.getpid(), 4)]
    cores.warm()  # starts nothing on one core
    assert cores._Pool.workers == []


def test_a_part_that_cannot_be_sent_is_an_error_and_leaves_no_stale_answer(
    two_workers: None,
) -> None:
    import threading

    with pytest.raises(TypeError):
        cores.spread(pid_and_square, [1, threading.Lock()])  # type: ignore[arg-type]
    assert [square for _pid, square in cores.spread(pid_and_square, [2, 3])] == [4, 9]


def test_workers_end_with_a_caller_that_died_without_stopping_them(tmp_path: Path) -> None:
    """A dashboard killed outright leaves no worker behind: theirs read end-of-file."""
    script = (
        "import os, sys\n"
        "from core import cores\n"
        "cores.PRELOAD = ()\n"
        "cores.workers = lambda: 2\n"
        "from tests.fixtures.cores_work import pid_and_square\n"
        "print(' '.join(str(pid) for pid, _ in cores.spread(pid_and_square, [1, 2])), flush=True)\n"
        "os._exit(0)\n"  # no atexit: as if killed
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, cwd=ROOT)  # fmt: skip
    assert done.returncode == 0, done.stderr
    pids = [int(pid) for pid in done.stdout.split()]
    assert len(pids) == 2
    deadline = time.monotonic() + 30
    while any(Path(f"/proc/{pid}").exists() for pid in pids):
        assert time.monotonic() < deadline, f"workers {pids} outlived their caller"
        time.sleep(0.05)


def test_a_worker_whose_caller_stopped_reading_ends_quietly() -> None:
    """A dashboard stopped while a check ran: its worker's answer meets a closed pipe, and
    the worker ends without a traceback in the dashboard's log."""
    worker = subprocess.Popen([sys.executable, "-m", "core.cores"], cwd=ROOT,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)  # fmt: skip
    assert worker.stdin is not None and worker.stdout is not None
    assert pickle.load(worker.stdout) == (False, "ready")
    pickle.dump((big_answer, 8_000_000), worker.stdin)
    worker.stdin.flush()
    worker.stdout.close()  # the caller is gone before the answer
    _out, errors = worker.communicate(timeout=60)
    assert worker.returncode == 0
    assert errors == b"", errors.decode()


def test_workers_are_ready_once_started_and_never_waited_for(two_workers: None) -> None:
    assert not cores.ready()  # none started
    cores.warm()
    assert len(cores.pids()) == 2  # started, perhaps not ready yet: ready() does not wait
    cores.warm(wait=True)
    assert cores.ready()
    with cores._Pool.lock:  # busy with another caller's work
        assert not cores.ready()
