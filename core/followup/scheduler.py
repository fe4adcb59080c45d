"""Automatic reminders: for each tenant that switched them on, every `auto_every_hours`,
a reminder to each PO notice whose waiting time has passed (within the cap).

The sender process runs `run_scheduler` beside its dispatcher (`core.sender.worker`),
so no extra process is needed. Several sender processes may run it at once: each
tenant's run is claimed by a compare-and-set of its last-run moment
(`settings.claim_run`), and a reminder's idempotency key makes a reminder once even if
two runs overlapped. Switching the setting off (Settings > Follow-up) stops the next
run; the last and next run are shown there. Time comes from the injected clock.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine

from core import clock
from core.followup.query import AwaitingFilter, State, awaiting
from core.followup.reminders import Outcome, remind
from core.followup.settings import auto_tenants, claim_run, get_settings

log = logging.getLogger(__name__)

#: How often the loop wakes to see whether a tenant's run is due.
TICK_SECONDS = 60.0
#: Notices looked at per page while a run walks a tenant's list.
_PAGE = 200
SCHEDULER_BY = "scheduler"
#: Automatic runs remind notices delivered at most this long ago: an old PO nobody
#: answered is a person's call, and the run's work stays bounded as the history grows.
LOOKBACK_HOURS = 14 * 24


@dataclass
class RunReport:
    """What one run did for one tenant: outcomes counted."""

    tenant_id: str
    at: datetime
    outcomes: Counter[str] = field(default_factory=Counter)

    @property
    def queued(self) -> int:
        """Reminders queued by this run."""
        return self.outcomes[Outcome.QUEUED.value]


def run_due(engine: Engine, *, now: datetime | None = None) -> list[RunReport]:
    """Run every tenant whose automatic reminders are on and due at `now`; one report each
    run this process claimed (a tenant another process claimed is left to it)."""
    now = now or clock.now()
    reports = []
    for tenant in auto_tenants(engine):
        cfg = get_settings(engine, tenant)
        due = cfg.next_run(now)
        if due is None or due > now:
            continue
        if not claim_run(engine, tenant, cfg.last_run, now):
            continue
        reports.append(run_tenant(engine, tenant, now=now))
    return reports


def run_tenant(engine: Engine, tenant_id: str, *, now: datetime) -> RunReport:
    """Ask for the next reminder of every unanswered or replied notice of the tenant that
    is past its waiting time and was delivered in the last 14 days (rejected ones, and
    older ones, are left to a person)."""
    report = RunReport(tenant_id, now)
    page = 1
    states = (State.UNANSWERED.value, State.REPLIED.value)
    seen: set[str] = set()
    while True:
        listed = awaiting(
            engine,
            AwaitingFilter(
                (tenant_id,),
                states=states,
                max_age_hours=LOOKBACK_HOURS,
                page=page,
                page_size=_PAGE,
            ),
            now=now,
        )
        for notice in listed.rows:
            if notice.message_id in seen or notice.reminders_left == 0:
                continue
            seen.add(notice.message_id)
            result = remind(
                engine, tenant_id, notice.message_id, now=now, by=SCHEDULER_BY, automatic=True
            )
            report.outcomes[result.outcome.value] += 1
        if page >= listed.pages:
            break
        page += 1
    log.info(
        "follow-up run for tenant %s: %d reminder(s) queued (%s)",
        tenant_id,
        report.queued,
        dict(report.outcomes),
    )
    return report


async def run_scheduler(
    engine: Engine,
    stop: asyncio.Event,
    *,
    tick: float = TICK_SECONDS,
    on_run: Callable[[list[RunReport]], None] | None = None,
) -> None:
    """Until `stop` is set: every `tick` seconds, run the tenants that are due (in a thread:
    database calls never block the sender's event loop). A failing run is logged and
    tried again at the next tick; it never stops the sender."""
    while not stop.is_set():
        try:
            reports = await asyncio.to_thread(run_due, engine)
            if on_run is not None and reports:
                on_run(reports)
        except Exception:  # the sender keeps sending; the next tick tries again
            log.exception("follow-up scheduler run failed")
        try:
            await asyncio.wait_for(stop.wait(), timeout=tick)
        except TimeoutError:
            continue
