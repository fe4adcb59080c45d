"""Test-only crash points: a worker kills itself (SIGKILL) at a named point of its cycle.

The crash tests (tests/test_crash_recovery.py) and benchmarks/crash_recovery.py place a
SIGKILL exactly where a real crash would hurt most, which an outside `kill -9` hits only
by luck. `WANOTIFY_TEST_CRASH="<point>:<n>"` kills the process the n-th time it reaches
`<point>`:

- `claimed`: a claim cycle has just committed (rows `sending`, none requested yet);
- `started`: a pacing slice was marked started, none of its requests has gone out;
- `writing`: outcomes (some accepted) were received and are about to be recorded.

Inert in production: without the variable every check is one `is None` test, and in live
mode the variable is refused (the dispatcher will not start), so a stray test setting
can never kill a worker that talks to Meta.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass

ENV = "WANOTIFY_TEST_CRASH"
POINTS = frozenset({"claimed", "started", "writing"})


@dataclass
class CrashPoint:
    """Where and on which visit to die."""

    point: str
    at: int
    seen: int = 0

    def reached(self, point: str) -> None:
        """Count a visit to `point`; SIGKILL this process on the chosen one."""
        if point != self.point:
            return
        self.seen += 1
        if self.seen == self.at:
            os.kill(os.getpid(), signal.SIGKILL)


def parse(value: str) -> CrashPoint:
    """`"<point>:<n>"` as a CrashPoint; ValueError for anything else."""
    point, _, count = value.strip().partition(":")
    if point not in POINTS or not count.isdigit() or int(count) < 1:
        raise ValueError(f"{ENV} must be <point>:<n> with point one of {sorted(POINTS)} and n >= 1")
    return CrashPoint(point, int(count))


def from_env(*, sandbox_mode: bool, environ: dict[str, str] | None = None) -> CrashPoint | None:
    """The crash point the environment asks for, or None (always None in production).

    Raises ValueError when it is malformed, or set outside sandbox mode (fail closed).
    """
    value = (os.environ if environ is None else environ).get(ENV, "")
    if not value:
        return None
    if not sandbox_mode:
        raise ValueError(f"{ENV} is a test setting: refused outside sandbox mode")
    return parse(value)
