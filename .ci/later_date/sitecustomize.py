"""Loaded by every Python process of `make test`'s later-date pass (PYTHONPATH points here).

That pass runs tests under Debian's libfaketime with only the wall clock moved
(`FAKETIME_DONT_FAKE_MONOTONIC=1`). libfaketime 0.9.10 (Debian 12) mistranslates the
absolute monotonic deadline Python 3.11's `time.sleep` hands to `clock_nanosleep`, so
every `time.sleep` fails with EINVAL (wolfcw/libfaketime#426). When, and only when,
that bug is present, `time.sleep` waits with `select` on the real monotonic clock
instead: the same sleep, through a call libfaketime leaves alone. Nothing else changes.
"""

from __future__ import annotations

import errno
import select
import time


def _sleep(seconds: float) -> None:
    """Sleep `seconds` (monotonic), as `time.sleep` does, without clock_nanosleep."""
    if seconds < 0:
        raise ValueError("sleep length must be non-negative")
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        select.select([], [], [], left)


def _sleep_is_broken() -> bool:
    try:
        time.sleep(0)
    except OSError as exc:
        return exc.errno == errno.EINVAL
    return False


if _sleep_is_broken():
    time.sleep = _sleep  # type: ignore[assignment]  # floats are all Python passes here
