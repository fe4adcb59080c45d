"""The applier's schedule: batches of receipts, WAL restarts, sweeps of held statuses.

One `Applier.step` is what every applier runs in a loop, whether it lives in a process of
its own (`core.webhooks.applier_process`, the default) or in the webhook process:
apply the next batch, let the SQLite WAL restart when it grew large, and every
`sweep_interval` release the held statuses whose message has appeared.

A sweep also looks at the number book (`core.webhooks.numbers.number_book`): when a
number was registered since the last sweep, the events held for naming it are released
(`core.webhooks.release`) by this sweep and those of the next `release_seconds`.
Registering a number releases them too, but a batch that read the book just before the
registration can hold an event for it just after that release; the sweeps take it up.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Engine

from core.webhooks.apply import DEFAULT_HOLD_GRACE, ApplyReport, apply_next_batch, sweep_held
from core.webhooks.checkpoint import restart_if_large
from core.webhooks.numbers import number_book
from core.webhooks.release import Released, release_held_numbers

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ApplierTuning:
    """How the applier batches, how often it looks for work and how long statuses wait."""

    max_receipts: int = 400
    max_events: int = 800
    hold_grace: timedelta = DEFAULT_HOLD_GRACE
    sweep_interval: float = 1.0  # seconds between sweeps of held statuses
    unmatched_interval: float = 60.0  # seconds between re-checks of unmatched ones
    #: after the number book changed, the sweeps of this many seconds release the
    #: events held for a number that was not in it (a batch may hold one just after
    #: registering released the others)
    release_seconds: float = 10.0
    idle_poll: float = 1.0  # idle: seconds between looks for receipts nobody announced
    gather_seconds: float = 0.1  # applier process: let commits gather before a batch
    nice: int = 10  # applier process: its CPU priority below the webhook process's
    separate_process: bool = True  # apply in a process of its own (see runtime)


@dataclass(frozen=True, slots=True)
class StepResult:
    """What one step did: the batch, and the sweep if one was due."""

    batch: ApplyReport
    swept: ApplyReport | None = None
    released: Released | None = None  # held events of newly registered numbers

    @property
    def reports(self) -> list[ApplyReport]:
        """The batch's and the sweep's reports, for metrics."""
        return [self.batch] if self.swept is None else [self.batch, self.swept]


class Applier:
    """Runs the applier's steps against one database (not thread-safe: one loop owns it)."""

    def __init__(
        self,
        engine: Engine,
        tuning: ApplierTuning,
        default_tenant: str,
        *,
        restart_wal: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine = engine
        self.tuning = tuning
        self.default_tenant = default_tenant
        self._restart_wal = restart_wal
        self._clock = clock
        self._next_sweep = clock()
        self._next_unmatched = clock() + tuning.unmatched_interval
        self._book: frozenset[tuple[str, str | None]] | None = None  # at the last sweep
        self._release_until = -math.inf

    def step(self) -> StepResult:
        """Apply one batch, restart the WAL if due, sweep held statuses if due."""
        tuning = self.tuning
        batch = apply_next_batch(
            self.engine,
            max_receipts=tuning.max_receipts,
            max_events=tuning.max_events,
            default_tenant=self.default_tenant,
        )
        if self._restart_wal:
            restart_if_large(self.engine)  # lets the WAL restart under constant load
        now = self._clock()
        if now < self._next_sweep:
            return StepResult(batch)
        recheck = now >= self._next_unmatched
        swept = sweep_held(self.engine, grace=tuning.hold_grace, include_unmatched=recheck)
        self._next_sweep = self._clock() + tuning.sweep_interval
        if recheck:
            self._next_unmatched = self._clock() + tuning.unmatched_interval
        return StepResult(batch, swept, self._release_for_new_numbers(now))

    def _release_for_new_numbers(self, now: float) -> Released | None:
        """Release the events held for numbers registered lately (None: none lately)."""
        with self.engine.connect() as conn:
            book = frozenset(number_book(conn, self.default_tenant).items())
        if self._book is not None and book != self._book:
            self._release_until = now + self.tuning.release_seconds
        self._book = book
        if now > self._release_until:
            return None
        released = release_held_numbers(self.engine, default_tenant=self.default_tenant)
        if released.total:
            log.info("%d held webhook event(s) of a newly known number applied", released.total)
        return released
