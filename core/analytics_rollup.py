"""Cutting a time range into whole rollup buckets and the partial edges around them.

The rollup tables (`core.models.rollup`, kept by the triggers of migration 0009) count
messages per UTC hour or per UTC week (from Monday). A chart's range is cut in the
viewer's zone, so its ends need not fall on a bucket boundary (zones with a :30 or
:45 offset, a rate change at 10:17, a range that starts on a Wednesday): `split` gives
the run of whole buckets inside a range, read from the rollup, and the pieces left at
either end, read from the messages themselves. Both together count every message of
the range exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal

Unit = Literal["hour", "week"]

HOUR = timedelta(hours=1)
WEEK = timedelta(days=7)
#: A Monday at midnight UTC: weeks of the weekly rollup start on Mondays.
_MONDAY = datetime(2024, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Split:
    """[start, end) as whole buckets [inner_start, inner_end) plus raw edge ranges."""

    inner: tuple[datetime, datetime] | None
    edges: tuple[tuple[datetime, datetime], ...]


def floor_to(at: datetime, unit: Unit) -> datetime:
    """The start of the UTC hour or week (Monday 00:00 UTC) that contains `at`."""
    at = at.astimezone(UTC)
    if unit == "hour":
        return at.replace(minute=0, second=0, microsecond=0)
    weeks = (at - _MONDAY) // WEEK
    return _MONDAY + weeks * WEEK


def ceil_to(at: datetime, unit: Unit) -> datetime:
    """The first bucket boundary at or after `at`."""
    floor = floor_to(at, unit)
    if floor == at:
        return floor
    return floor + (HOUR if unit == "hour" else WEEK)


def split(start: datetime, end: datetime, unit: Unit) -> Split:
    """Whole `unit` buckets inside [start, end) and the partial pieces at its ends."""
    if end <= start:
        return Split(inner=None, edges=())
    lo, hi = ceil_to(start, unit), floor_to(end, unit)
    if lo >= hi:
        return Split(inner=None, edges=((start, end),))
    edges = tuple((s, e) for s, e in ((start, lo), (hi, end)) if s < e)
    return Split(inner=(lo, hi), edges=edges)


def week_dates(inner: tuple[datetime, datetime]) -> tuple[date, date]:
    """The Mondays [first, after-last) of a run of whole weeks, as the weekly table keys
    them (its `week` column is a date)."""
    return inner[0].date(), inner[1].date()
