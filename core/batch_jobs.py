"""Long bulk work run off the page's thread: checking a file and queuing a batch.

A Streamlit page must not check or queue 100,000 rows on its own script thread: every
click reruns the page, and a rerun cannot stop work that runs inside one call, so the
buyer (and every other page of the same session) would wait for it. The dashboard owns
one `JobRunner` per server process (an `st.cache_resource` singleton); a page submits
the work and reads its progress every second (`job`), from any rerun, until it is done.

The work itself keeps the guarantees of `core.batch_import`: what a job queued is in
the database, chunk by chunk, whatever happens to the page or the process.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from core.heap import give_back_free_memory
from core.i18n import _, current_locale, set_locale
from core.models.types import new_id

log = logging.getLogger(__name__)

#: Jobs remembered (finished ones are forgotten oldest first beyond this).
KEPT = 200


@dataclass(frozen=True)
class Job:
    """Where one piece of work stands: rows done of the total, and its outcome."""

    id: str
    kind: str  # "check" or "import"
    total: int
    done_rows: int = 0
    batch_id: str | None = None  # an import's batch, as soon as it is recorded
    finished: bool = False
    error: str | None = None  # why it failed, in words for the buyer
    error_kind: str | None = None  # the class of the expected exception it failed with
    result: Any = None  # what the work returned (a checked plan, a batch)


#: Reports progress from inside the work: (rows done, rows in all, batch id if known).
Report = Callable[[int, int, str | None], None]
#: The work: called on the runner's thread with its progress reporter.
Work = Callable[[Report], Any]
#: The exceptions whose text is shown to the buyer as the job's error.
Expected = tuple[type[BaseException], ...]


class JobRunner:
    """Runs submitted work on its own threads (two: a check never waits for a long
    import) and keeps each job's progress for the pages to read."""

    def __init__(self, workers: int = 2) -> None:
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="wanotify-bulk")
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def submit(self, kind: str, total: int, work: Work, expected: Expected = ()) -> str:
        """Start `work` on the runner's thread; returns the job id to follow it by.

        An exception of the `expected` kinds ends the job with its text as the error;
        anything else is logged with its traceback and ends it with a generic error.
        """
        job = Job(new_id(), kind, total)
        locale = current_locale()  # the page's: refusals are written in the buyer's language
        with self._lock:
            self._jobs[job.id] = job
            while len(self._jobs) > KEPT:
                oldest = next((j for j in self._jobs.values() if j.finished), None)
                if oldest is None:
                    break
                del self._jobs[oldest.id]
        self._pool.submit(self._run, job.id, work, expected, locale)
        return job.id

    def job(self, job_id: str) -> Job | None:
        """The job's state now (None if unknown: another process's, or forgotten)."""
        with self._lock:
            return self._jobs.get(job_id)

    def forget(self, job_id: str) -> None:
        """Drop a finished job (its result may be a checked file of 100,000 rows that
        the page now keeps itself)."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is not None and job.finished:
                del self._jobs[job_id]

    def shutdown(self) -> None:
        """Stop taking work and wait for what runs (the server is stopping)."""
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _update(self, job_id: str, **changes: Any) -> None:
        with self._lock:
            if job_id in self._jobs:
                self._jobs[job_id] = replace(self._jobs[job_id], **changes)

    def _run(self, job_id: str, work: Work, expected: Expected, locale: str) -> None:
        def report(done: int, total: int, batch_id: str | None = None) -> None:
            changes: dict[str, Any] = {"done_rows": done, "total": total}
            if batch_id is not None:
                changes["batch_id"] = batch_id
            self._update(job_id, **changes)

        started = time.monotonic()
        try:
            set_locale(locale)  # this thread's context, used by this job alone
            result = work(report)
        except expected as exc:
            self._update(job_id, finished=True, error=str(exc), error_kind=type(exc).__name__)
        except Exception:  # a job must end, with the cause in the log
            log.exception("bulk job %s failed", job_id)
            self._update(job_id, finished=True, error=_("It failed: the server log says why"))
        else:
            self._update(job_id, finished=True, result=result)
        finally:
            job = self.job(job_id)
            kind = job.kind if job is not None else "?"
            spent = time.monotonic() - started
            log.info("bulk job %s (%s) ended after %.2f s", job_id, kind, spent)
            give_back_free_memory()  # what the work made and dropped: hundreds of MB
