"""The applier's schedule: batches of receipts, WAL restarts, sweeps of held statuses.

One `Applier.step` is what every applier runs in a loop, whether it lives in a process of
its own (`core.webhooks.applier_process`, the default) or in the webhook process:
apply the next batch, let the SQLite WAL restart when it grew large, and every
`sweep_interval` release the held statuses whose message has appeared.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Engine

from core.webhooks.apply import DEFAULT_HOLD_GRACE, ApplyReport, apply_next_batch, sweep_held
from core.webhooks.checkpoint import restart_if_large


@dataclass(frozen=True)
class ApplierTuning:
    """How the applier batches, how often it looks for work and how long statuses wait."""

    max_receipts: int = 400
    max_events: int = 800
    hold_grace: timedelta = DEFAULT_HOLD_GRACE
    sweep_interval: float = 1.0  # seconds between sweeps of held statuses
    unmatched_interval: float = 60.0  # seconds between re-checks of unmatched ones
    idle_poll: float = 1.0  # idle: seconds between looks for receipts nobody announced
    gather_seconds: float = 0.1  # applier process: let commits gather before a batch
    nice: int = 10  # applier process: its CPU priority below the webhook process's
    separate_process: bool = True  # apply in a process of its own (see runtime)


@dataclass(frozen=True, slots=True)
class StepResult:
    """What one step did: the batch, and the sweep if one was due."""

    batch: ApplyReport
    swept: ApplyReport | None = None

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
        return StepResult(batch, swept)
