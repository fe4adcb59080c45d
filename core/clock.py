"""The one injectable clock for rules that decide by age, read where no `now=` is passed.

Functions in `core` that decide by age take a `now` argument; callers that have none (a
dashboard rerun, a CLI command) ask `clock.now()`. Tests set the clock with `frozen(at)`
(or `set_clock`) instead of depending on the day they run. The setting is process-wide
on purpose: Streamlit's AppTest runs the page script in a thread of its own, which a
context variable would not reach.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

_lock = threading.Lock()
_source: Callable[[], datetime] | None = None


def now() -> datetime:
    """The current time, timezone-aware UTC: the wall clock unless a test has set one."""
    source = _source
    return source() if source is not None else datetime.now(UTC)


def set_clock(source: Callable[[], datetime] | None) -> None:
    """Make `now()` read `source` (None: the wall clock again). For tests and tools."""
    global _source
    with _lock:
        _source = source


@contextmanager
def frozen(at: datetime) -> Iterator[Callable[[datetime], None]]:
    """`now()` returns `at` inside the block; the yielded function moves it to a new time."""
    if at.tzinfo is None:
        raise ValueError("the clock is timezone-aware UTC: pass an aware datetime")
    current = [at]

    def move(to: datetime) -> None:
        if to.tzinfo is None:
            raise ValueError("the clock is timezone-aware UTC: pass an aware datetime")
        current[0] = to

    previous = _source
    set_clock(lambda: current[0])
    try:
        yield move
    finally:
        set_clock(previous)
