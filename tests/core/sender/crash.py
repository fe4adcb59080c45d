"""What the crash tests check once a worker died: the sandbox's record against the rows.

`kill_report` is taken right after the SIGKILL, `check_recovered` after a recovery pass:
the sandbox (which records every request it accepted, with our id) says which requests
had really started; the rows say what the dead worker had recorded.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import Engine

from core.models.messages import MessageStatus
from core.sandbox.server import SandboxControls
from core.sender.dispatcher import slice_rows
from tests.core.sender.helpers import rows

REACHED_META = {
    MessageStatus.ACCEPTED,
    MessageStatus.SENT,
    MessageStatus.DELIVERED,
    MessageStatus.READ,
}
HELD = {MessageStatus.SENDING, MessageStatus.NEEDS_ATTENTION}
FINAL_OR_PENDING = REACHED_META | {
    MessageStatus.PENDING,
    MessageStatus.NEEDS_ATTENTION,
    MessageStatus.FAILED,
}


def most_marked_unsent(cap: int) -> int:
    """The most rows marked but never requested at any moment: two pacing slices (one
    going out, the next marked ahead of it), each `slice_seconds` of sends at the cap."""
    return 2 * slice_rows(cap)


def sandbox_seen(sandbox: SandboxControls) -> set[str]:
    """Our ids of every request the sandbox accepted (asserts it saw none twice).

    A live worker may still be sending: every request accepted before the count was
    read is among them, and any accepted while paging may be too."""
    stats = sandbox.stats(recipients=False)
    assert stats["duplicates"] == [], stats["duplicates"]
    seen: set[str] = set()
    while True:
        page = sandbox.messages(offset=len(seen), limit=1000)
        before = len(seen)
        seen |= {m["biz_opaque_callback_data"] for m in page}
        if len(seen) == before:  # nothing more (or nothing new)
            break
    assert len(seen) >= stats["accepted"]
    return seen


@dataclass(frozen=True)
class KillReport:
    """The state a SIGKILL left: what the sandbox saw and what the rows recorded."""

    seen: set[str]  # requests the sandbox accepted
    recorded: set[str]  # rows recorded as reached Meta
    sending: set[str]  # rows left `sending` (or a live worker's recovery already settled)
    holders: dict[str, str | None]  # the worker holding each of them

    def lost_by(self, worker: str) -> set[str]:
        """Requests of `worker`'s that had started and whose answer it never recorded."""
        return {i for i in self.answer_lost if self.holders.get(i) == worker}

    @property
    def answer_lost(self) -> set[str]:
        """Requests that had started whose answer the dead worker never recorded."""
        return self.seen - self.recorded


def kill_report(engine: Engine, sandbox: SandboxControls, latency_s: float) -> KillReport:
    """Take stock after the kill, once requests already on their way have arrived (the
    sandbox counts a request part-way through its latency, as Meta does)."""
    time.sleep(latency_s + 0.2)
    stored = rows(engine)
    return KillReport(
        seen=sandbox_seen(sandbox),
        recorded={i for i, m in stored.items() if m.status in REACHED_META},
        sending={i for i, m in stored.items() if m.status in HELD},
        holders={i: m.claimed_by for i, m in stored.items() if m.status in HELD},
    )


def check_recovered(engine: Engine, at_kill: KillReport, not_requested: int) -> set[str]:
    """After recovery: every row final or pending, a person asked only about requests
    that had started (plus at most `not_requested` marked rows the kill caught before
    their requests left), and everything else back to pending. Returns the ids that
    need attention."""
    stored = rows(engine)
    statuses = {m.status for m in stored.values()}
    assert statuses <= FINAL_OR_PENDING, statuses
    attention = {i for i, m in stored.items() if m.status == MessageStatus.NEEDS_ATTENTION}
    assert at_kill.answer_lost <= attention  # never sent again on their own
    assert len(attention - at_kill.seen) <= not_requested, (attention - at_kill.seen, at_kill)
    assert len(attention) <= len(at_kill.answer_lost) + not_requested
    pending = {i for i, m in stored.items() if m.status == MessageStatus.PENDING}
    assert pending.isdisjoint(at_kill.seen)  # nothing the sandbox saw goes out again
    assert at_kill.sending - attention <= pending | at_kill.seen  # the rest: back to pending
    return attention


def check_sent_once(engine: Engine, sandbox: SandboxControls, attention: set[str]) -> None:
    """After the restart: no duplicates, every row but those a person decides reached Meta."""
    seen = sandbox_seen(sandbox)
    stored = rows(engine)
    for message_id, message in stored.items():
        if message_id in attention:
            assert message.status == MessageStatus.NEEDS_ATTENTION
        else:
            assert message.status in REACHED_META, (message_id, message.status)
            assert message_id in seen
