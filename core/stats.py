"""Analytics over the outbox, aggregated in SQL: every chart reads a few hundred rows at most.

Each function takes a `StatsFilter` (tenants, a day range in the viewer's time zone,
optional templates and suppliers) and returns a small DataFrame or dataclass. The
database does the counting: with a million messages every function answers in a
fraction of a second on SQLite, because the messages table has covering indexes
(`core.models.analytics`) on the columns these queries read, and the cost chart, the
PO acknowledgements and the per-supplier table read exact rollups kept by triggers
(`core.models.rollup`, migration 0009) for the whole UTC hours or weeks of a range and
the messages only for the partial edges (`core.analytics_rollup`). Their `rollup=False`
reads every message instead: the same figures, for tests and the benchmark.

Conventions:
- A message belongs to the day (in the viewer's zone) it was created. Days are cut in
  Python from the zone's rules (DST included) and handed to SQL as UTC ranges, so the
  same query is exact on SQLite and PostgreSQL.
- "Sent" means Meta accepted the message (it has an accepted or sent time); "delivered"
  and "read" come from status webhooks; "replied" means the supplier answered it (a
  reply quoting it, or a PO acknowledgement button).
- Cancelled messages (withdrawn before sending) are left out of every figure.
- Cost: Meta charges a delivered message by the pricing category and type its status
  webhook reported, at the rate card's rate for the recipient's market on that day.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from enum import IntFlag
from typing import Any, Literal, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd
from sqlalchemy import Connection, Engine, bindparam, text
from sqlalchemy.sql.elements import BindParameter, TextClause

from core import rates
from core.analytics_rollup import Split, split, week_dates
from core.db import analytics_engine
from core.errors import HUMAN_REASONS, human_reason
from core.followup.kind import REMINDER_TEMPLATE
from core.i18n import _, current_locale, set_locale
from core.models.messages import MessageStatus
from core.models.rollup import (
    HOURLY_NULL_CATEGORY,
    HOURLY_NULL_MARKET,
    HOURLY_NULL_PRICING_TYPE,
    HOURLY_NULL_TEMPLATE,
    STAGES_KIND_DELIVER,
    STAGES_KIND_FLAGS,
    STAGES_KIND_READ,
    STAGES_NULL_TEMPLATE,
    WEEKLY_NULL_SUPPLIER,
    WEEKLY_NULL_TEMPLATE,
)
from core.models.types import UTCDateTime
from core.pricing import (
    FREE_PRICING_TYPES,
    find_rate,
    list_rates,
    micros_to_decimal,
    rate_change_instants,
    rate_to_micros,
)
from core.supplier_labels import supplier_labels

Granularity = Literal["day", "week", "month"]
Stage = Literal["deliver", "read"]

#: Longest range shown day by day; longer ranges are shown by week, then by month.
MAX_DAILY_DAYS = 92
MAX_WEEKLY_DAYS = 731
MAX_RANGE_DAYS = 3660
#: Upper edges (seconds) of the latency histogram's bins; the last bin is open-ended.
LATENCY_EDGES: tuple[int, ...] = (
    5,
    15,
    30,
    60,
    120,
    300,
    600,
    1800,
    3600,
    3 * 3600,
    6 * 3600,
    12 * 3600,
    86400,
    3 * 86400,
)
_SENT = "(m.accepted_at IS NOT NULL OR m.sent_at IS NOT NULL)"
_FAILED = f"m.status = '{MessageStatus.FAILED.value}'"
_NOT_CANCELLED = f"m.status <> '{MessageStatus.CANCELLED.value}'"


class StageFlag(IntFlag):
    """The bits of `whatsapp_messages.stage_flags`: how far a message got.

    Kept by database triggers from the row's own columns (migration
    0008_analytics_latency), so the funnel and daily rates count index ranges, one per
    combination, instead of decoding half a dozen columns of every message.
    """

    SENT = 1  # accepted_at or sent_at set
    DELIVERED = 2
    READ = 4
    REPLIED = 8
    FAILED = 16  # status failed
    DEQUEUED = 32  # status no longer pending, sending or needs_attention
    CANCELLED = 64  # status cancelled (left out of every figure)


#: Every combination of stage bits a message that was not cancelled can have.
_LIVE_STAGES = ", ".join(str(v) for v in range(StageFlag.CANCELLED))


class StatsFilterError(ValueError):
    """A filter that cannot be applied (no tenant, reversed dates, unknown zone...)."""


@dataclass(frozen=True)
class StatsFilter:
    """What the charts cover: tenants, days `start`..`end` inclusive in zone `tz`, and
    optionally only some templates and suppliers (empty means all)."""

    tenant_ids: tuple[str, ...]
    start: date
    end: date
    tz: str = "UTC"
    template_names: tuple[str, ...] = ()
    supplier_ids: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if not self.tenant_ids:
            raise StatsFilterError(_("Choose at least one tenant"))
        if self.end < self.start:
            raise StatsFilterError(_("The end date is before the start date"))
        if (self.end - self.start).days >= MAX_RANGE_DAYS:
            raise StatsFilterError(_("Choose a range of at most ten years"))
        zone(self.tz)

    @property
    def utc_range(self) -> tuple[datetime, datetime]:
        """The range as UTC instants: local midnight of `start` to the midnight after `end`."""
        return local_midnight(self.start, self.tz), local_midnight(
            self.end + timedelta(days=1), self.tz
        )


@dataclass(frozen=True)
class Bucket:
    """One slice of the time axis: a day, week or month in the viewer's zone."""

    index: int
    label: date  # the first local day of the slice
    start: datetime  # UTC, inclusive
    end: datetime  # UTC, exclusive


@dataclass(frozen=True)
class Funnel:
    """How far the filtered messages got."""

    total: int
    sent: int
    delivered: int
    read: int
    replied: int
    failed: int
    queued: int  # pending, sending or needing attention

    def counts(self) -> dict[str, int]:
        """The counts by the names `core.rates` divides (`messages` is every message)."""
        return {
            "messages": self.total,
            "sent": self.sent,
            "delivered": self.delivered,
            "read": self.read,
            "replied": self.replied,
            "failed": self.failed,
        }

    def frame(self) -> pd.DataFrame:
        """The funnel as rows for a funnel chart: stage (the count's name), messages, and
        the stage's rate as `core.rates` defines it (None for "sent", which is the base
        of the first rate), so the funnel says what the tiles say."""
        counts = self.counts()
        stages = ("sent", "delivered", "read", "replied")
        chosen = [rates.FUNNEL_RATES.get(stage) for stage in stages]
        return pd.DataFrame(
            {
                "stage": list(stages),
                "messages": [counts[stage] for stage in stages],
                "rate": [r.value(counts) if r else None for r in chosen],
                "rate_key": [r.key if r else None for r in chosen],
            }
        )


@dataclass(frozen=True)
class LatencyStats:
    """A histogram of seconds between two stages, and percentiles estimated from it."""

    stage: Stage
    bins: pd.DataFrame  # label, lower_s, upper_s (None: open), messages
    count: int
    p50_seconds: float | None
    p90_seconds: float | None


@dataclass(frozen=True)
class AckStats:
    """How PO notices were acknowledged with the quick-reply buttons."""

    notices: int  # messages carrying a PO number
    delivered: int
    acknowledged: int  # distinct notices with at least one button press
    confirmed: int
    rejected: int

    @property
    def rate(self) -> float | None:
        """Acknowledged notices as a share of delivered ones (None if none delivered)."""
        return _ratio(self.acknowledged, self.delivered)


@dataclass(frozen=True)
class CostReport:
    """What the filtered messages cost, per currency, category and time slice."""

    totals: dict[str, Decimal]  # currency -> amount
    by_category: pd.DataFrame  # category, currency, messages, cost (Decimal)
    by_bucket: pd.DataFrame  # bucket (date), currency, cost (Decimal)
    charged_messages: int  # delivered messages with a rate
    free_messages: int  # Meta reported a free pricing type
    unpriced_messages: int  # charged type but no rate in the card for it
    unreported_messages: int  # delivered, but Meta reported no pricing (yet)
    uses_example_rates: bool
    granularity: Granularity = "day"
    currencies: tuple[str, ...] = field(default=())


def zone(tz: str) -> ZoneInfo:
    """The time zone named `tz`, or StatsFilterError."""
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise StatsFilterError(
            _("Unknown time zone {zone}").format(zone=repr(str(tz)[:60]))
        ) from None


def local_midnight(day: date, tz: str) -> datetime:
    """The UTC instant at which `day` begins in zone `tz`."""
    return datetime.combine(day, time(0), tzinfo=zone(tz)).astimezone(UTC)


def granularity_for(flt: StatsFilter) -> Granularity:
    """Day slices up to three months, weeks up to two years, months beyond."""
    days = (flt.end - flt.start).days + 1
    if days <= MAX_DAILY_DAYS:
        return "day"
    if days <= MAX_WEEKLY_DAYS:
        return "week"
    return "month"


def time_buckets(flt: StatsFilter, granularity: Granularity | None = None) -> list[Bucket]:
    """The slices of the filter's range (weeks start on Monday; the first may be partial)."""
    unit = granularity or granularity_for(flt)
    labels: list[date] = []
    day = flt.start
    while day <= flt.end:
        labels.append(day)
        day = _next_label(day, unit)
    bounds = [local_midnight(label, flt.tz) for label in labels]
    bounds.append(flt.utc_range[1])
    return [
        Bucket(index=i, label=label, start=bounds[i], end=bounds[i + 1])
        for i, label in enumerate(labels)
    ]


def _next_label(day: date, unit: Granularity) -> date:
    if unit == "day":
        return day + timedelta(days=1)
    if unit == "week":
        return day + timedelta(days=7 - day.weekday())
    return date(day.year + (day.month == 12), day.month % 12 + 1, 1)


# --- queries -------------------------------------------------------------------------


def funnel(engine: Engine, flt: StatsFilter, *, rollup: bool = True) -> Funnel:
    """Counts of messages sent, delivered, read, replied to, failed and still queued.

    Whole UTC hours come from the hourly stages rollup (migration 0026), the minutes at
    the range's ends from the stages index; `rollup=False` (or a supplier filter) reads
    every message of the range."""
    start, end = flt.utc_range
    with _read(engine) as conn:
        if _uses_stage_rollup(flt, rollup):
            counts = _rollup_or_raw(conn, flt, STAGES_KIND_FLAGS, [(0, start, end)])[0]
        else:
            counts = _stage_counts(conn, flt, start, end)
    return _funnel_from(counts)


def _uses_stage_rollup(flt: StatsFilter, rollup: bool) -> bool:
    """The stages rollup serves a filter unless asked not to or filtered by supplier
    (the rollup has no supplier; a supplier's messages are a small read anyway)."""
    return rollup and not flt.supplier_ids


def _rollup_or_raw(
    conn: Connection, flt: StatsFilter, kind: int, ranges: Sequence[tuple[int, datetime, datetime]]
) -> dict[int, dict[int, int]]:
    """Messages per value of `kind` (stage bits or a latency bin) in each range (k, start,
    end), keyed by k: the whole UTC hours of each range from the stages rollup, the
    partial hours at its ends (zones with a :30 or :45 offset) from the messages."""
    found: dict[int, dict[int, int]] = {k: {} for k, _s, _e in ranges}
    inner: list[tuple[int, datetime, datetime]] = []
    edges: list[tuple[int, datetime, datetime]] = []
    for k, start, end in ranges:
        parts = split(start, end, "hour")
        if parts.inner is not None:
            inner.append((k, *parts.inner))
        edges.extend((k, s, e) for s, e in parts.edges)
    if inner:
        _add_stage_rollup(conn, flt, kind, inner, found)
    for k, start, end in edges:
        if kind == STAGES_KIND_FLAGS:
            counts = _stage_counts(conn, flt, start, end)
        else:
            counts = _latency_counts(conn, flt, kind, (start, end))
        into = found[k]
        for value, n in counts.items():
            into[value] = into.get(value, 0) + n
    return found


def _add_stage_rollup(
    conn: Connection,
    flt: StatsFilter,
    kind: int,
    inner: Sequence[tuple[int, datetime, datetime]],
    found: dict[int, dict[int, int]],
) -> None:
    """Add the whole hours `inner` (k, start, end) of the stages rollup to `found`: per
    tenant, each range is one seek of the rollup's primary key (tenant, kind, hour)."""
    cte, cte_params = _ranges_cte(inner)
    templates, params = _rollup_templates(flt, STAGES_NULL_TEMPLATE)
    params.pop("tenants")
    for tenant in flt.tenant_ids:
        sql = f"""
            WITH {cte}
            SELECT b.k AS k, r.value AS value, SUM(r.messages) AS n
            FROM b JOIN analytics_hourly_stages r
              ON r.tenant_id = :c_tenant AND r.kind = :c_kind
             AND r.hour >= b.s AND r.hour < b.e
            WHERE r.messages <> 0 {templates}
            GROUP BY b.k, r.value
        """
        bound = {**params, **cte_params, "c_tenant": tenant, "c_kind": kind}
        for r in conn.execute(_q(sql, bound)):
            into = found[int(r.k)]
            into[int(r.value)] = into.get(int(r.value), 0) + int(r.n)


def _funnel_from(counts: Mapping[int, int]) -> Funnel:
    """The funnel of messages counted per combination of stage bits."""
    return Funnel(
        total=sum(counts.values()),
        sent=_with(counts, StageFlag.SENT),
        delivered=_with(counts, StageFlag.DELIVERED),
        read=_with(counts, StageFlag.READ),
        replied=_with(counts, StageFlag.REPLIED),
        failed=_with(counts, StageFlag.FAILED),
        queued=sum(n for flags, n in counts.items() if not flags & StageFlag.DEQUEUED),
    )


def _stage_counts(
    conn: Connection, flt: StatsFilter, start: datetime, end: datetime
) -> dict[int, int]:
    """Messages created in [start, end) per combination of stage bits (not cancelled).

    Per tenant, the combinations listed explicitly make each one a range of the stages
    index, already grouped: no sort and no column decoded per message.
    """
    counts: dict[int, int] = {}
    for tenant in flt.tenant_ids:
        where, params = _where(flt, tenants=(tenant,), status_test=False)
        sql = f"""
            SELECT m.stage_flags AS flags, COUNT(*) AS n
            FROM whatsapp_messages m
            WHERE {where} AND m.stage_flags IN ({_LIVE_STAGES})
            GROUP BY m.stage_flags
        """
        bound = {**params, "range_start": start, "range_end": end}
        for r in conn.execute(_q(sql, bound)):
            counts[int(r.flags)] = counts.get(int(r.flags), 0) + int(r.n)
    return counts


def _with(counts: Mapping[int, int], flag: StageFlag) -> int:
    """How many of the counted messages have `flag`."""
    return sum(n for flags, n in counts.items() if flags & flag)


def daily_rates(engine: Engine, flt: StatsFilter, *, rollup: bool = True) -> pd.DataFrame:
    """Per time slice: messages, sent, delivered, read, failed, and the rates between them.

    Columns: bucket (date), messages, sent, delivered, read, failed, delivery_rate
    (delivered/sent), read_rate (read/delivered), failure_rate (failed/messages). Every
    slice of the range has a row, zeros included, so the line has no gaps.
    """
    return _daily_frame(*_daily_counts(engine, flt, rollup=rollup))


def _daily_counts(
    engine: Engine, flt: StatsFilter, *, rollup: bool = True
) -> tuple[list[Bucket], dict[int, dict[int, int]]]:
    """The time slices of the range and each one's messages per stage bits (whole UTC
    hours from the stages rollup, see `funnel`; `rollup=False` reads every message)."""
    buckets = time_buckets(flt)
    per_bucket: dict[int, dict[int, int]] = {}
    with _read(engine) as conn:
        if _uses_stage_rollup(flt, rollup):
            ranges = [(b.index, b.start, b.end) for b in buckets]
            per_bucket = _rollup_or_raw(conn, flt, STAGES_KIND_FLAGS, ranges)
        elif conn.dialect.name == "postgresql":
            per_bucket = _stage_counts_by_bucket(conn, flt, buckets)
        else:
            for bucket in buckets:
                per_bucket[bucket.index] = _stage_counts(conn, flt, bucket.start, bucket.end)
    return buckets, per_bucket


def _stage_counts_by_bucket(
    conn: Connection, flt: StatsFilter, buckets: Sequence[Bucket]
) -> dict[int, dict[int, int]]:
    """`_stage_counts` of every slice at once, on PostgreSQL: per tenant one range read of
    the stages index, each message placed in its slice by `width_bucket` over the slices'
    starts (one statement, where a query per slice cost a round trip and a plan each)."""
    per_bucket: dict[int, dict[int, int]] = {b.index: {} for b in buckets}
    if not buckets:
        return per_bucket
    starts = [b.start.astimezone(UTC) for b in buckets]
    for tenant in flt.tenant_ids:
        where, params = _where(flt, tenants=(tenant,), status_test=False)
        sql = f"""
            SELECT width_bucket(m.created_at, CAST(:starts AS timestamptz[])) AS k,
                   m.stage_flags AS flags, COUNT(*) AS n
            FROM whatsapp_messages m
            WHERE {where} AND m.stage_flags IN ({_LIVE_STAGES})
            GROUP BY 1, 2
        """
        for r in conn.execute(_q(sql, {**params, "starts": starts})):
            counts = per_bucket[int(r.k) - 1]  # width_bucket counts from 1
            counts[int(r.flags)] = counts.get(int(r.flags), 0) + int(r.n)
    return per_bucket


def _daily_frame(buckets: list[Bucket], per_bucket: dict[int, dict[int, int]]) -> pd.DataFrame:
    """`daily_rates`' table from the slices' counts."""
    records = []
    for bucket in buckets:
        counts = per_bucket[bucket.index]
        messages = sum(counts.values())
        sent = _with(counts, StageFlag.SENT)
        delivered = _with(counts, StageFlag.DELIVERED)
        read = _with(counts, StageFlag.READ)
        failed = _with(counts, StageFlag.FAILED)
        records.append(
            {
                "bucket": bucket.label,
                "messages": messages,
                "sent": sent,
                "delivered": delivered,
                "read": read,
                "failed": failed,
                **_rates(messages=messages, sent=sent, delivered=delivered, read=read,
                         failed=failed, keys=_DAILY_RATES),
            }
        )
    return pd.DataFrame.from_records(records, columns=_DAILY_COLUMNS)


_DAILY_RATES = (rates.DELIVERED, rates.READ, rates.FAILED)
_DAILY_COLUMNS = [
    "bucket",
    "messages",
    "sent",
    "delivered",
    "read",
    "failed",
    *(r.key for r in _DAILY_RATES),
]


def latency(engine: Engine, flt: StatsFilter, stage: Stage, *, rollup: bool = True) -> LatencyStats:
    """How long messages took from sent to delivered (`deliver`) or to read (`read`).

    Binned in SQL on a human scale (5 s, 15 s, 30 s, 1 min ... 3 days); p50 and p90 are
    interpolated within their bin, so they are estimates good to the bin's width. Whole
    UTC hours of the range come from the hourly stages rollup (migration 0026), the
    partial hours at its ends from the latency indexes; `rollup=False` (or a supplier
    filter) reads every message.
    """
    if stage not in ("deliver", "read"):
        raise StatsFilterError(f"Unknown stage {stage!r}: use 'deliver' or 'read'")
    kind = STAGES_KIND_DELIVER if stage == "deliver" else STAGES_KIND_READ
    with _read(engine) as conn:
        if _uses_stage_rollup(flt, rollup):
            counts = _rollup_or_raw(conn, flt, kind, [(0, *flt.utc_range)])[0]
        else:
            counts = _latency_counts(conn, flt, kind, flt.utc_range)
    lowers = (0, *LATENCY_EDGES)
    uppers: tuple[int | None, ...] = (*LATENCY_EDGES, None)
    bins = pd.DataFrame(
        {
            "label": [_bin_label(lo, hi) for lo, hi in zip(lowers, uppers, strict=True)],
            "lower_s": list(lowers),
            "upper_s": list(uppers),
            "messages": [counts.get(i, 0) for i in range(len(lowers))],
        }
    )
    total = int(bins["messages"].sum())
    return LatencyStats(
        stage=stage,
        bins=bins,
        count=total,
        p50_seconds=_percentile_from_bins(bins, 0.5),
        p90_seconds=_percentile_from_bins(bins, 0.9),
    )


def _latency_counts(
    conn: Connection, flt: StatsFilter, kind: int, between: tuple[datetime, datetime]
) -> dict[int, int]:
    """Messages created in `between` per time-to-deliver (`kind` 1) or time-to-read (2)
    bin, from the messages.

    Each message's bin is kept on its row by database triggers (migration
    0008_analytics_latency): NULL until both ends are known. Per tenant, the bins listed
    explicitly make each one a range of the partial latency index for just the date
    range, already grouped (several tenants in one query would need a sort).
    """
    column = "m.deliver_bin" if kind == STAGES_KIND_DELIVER else "m.read_bin"
    all_bins = ", ".join(str(i) for i in range(len(LATENCY_EDGES) + 1))
    counts: dict[int, int] = {}
    for tenant in flt.tenant_ids:
        where, params = _where(flt, tenants=(tenant,), between=between)
        sql = f"""
            SELECT {column} AS bin, COUNT(*) AS n
            FROM whatsapp_messages m
            WHERE {where} AND {column} IN ({all_bins})
            GROUP BY {column}
        """
        for r in conn.execute(_q(sql, params)):
            counts[int(r.bin)] = counts.get(int(r.bin), 0) + int(r.n)
    return counts


def failures_by_reason(engine: Engine, flt: StatsFilter) -> pd.DataFrame:
    """Failed messages by error code, with a reason a buyer understands, most common first.

    Columns: code (Int64, missing when Meta gave none), reason, messages, share.
    """
    where, params = _where(flt)
    sql = f"""
        SELECT m.error_code AS code, COUNT(*) AS n
        FROM whatsapp_messages m
        WHERE {where} AND {_FAILED}
        GROUP BY m.error_code
        ORDER BY n DESC, m.error_code
    """
    with _read(engine) as conn:
        rows = conn.execute(_q(sql, params)).all()
        unknown = [r.code for r in rows if r.code not in HUMAN_REASONS]
        titles = _meta_titles(conn, where, params, unknown)
    total = sum(int(r.n) for r in rows)
    return pd.DataFrame(
        {
            "code": pd.array([r.code for r in rows], dtype="Int64"),
            "reason": [human_reason(r.code, titles.get(r.code)) for r in rows],
            "messages": [int(r.n) for r in rows],
            "share": [_ratio(int(r.n), total) for r in rows],
        }
    )


def _meta_titles(
    conn: Connection, where: str, params: Mapping[str, Any], codes: Sequence[int | None]
) -> dict[int | None, str]:
    """Meta's own title for codes we have no sentence for (one row read per code)."""
    titles: dict[int | None, str] = {}
    for code in codes[:50]:
        test = "m.error_code IS NULL" if code is None else "m.error_code = :code"
        sql = f"""
            SELECT m.error_title FROM whatsapp_messages m
            WHERE {where} AND {_FAILED} AND {test} AND m.error_title IS NOT NULL
            LIMIT 1
        """
        bound = {**params, "code": code} if code is not None else dict(params)
        title = conn.execute(_q(sql, bound)).scalar()
        if title:
            titles[code] = str(title)
    return titles


def supplier_table(
    engine: Engine, flt: StatsFilter, limit: int = 200, *, rollup: bool = True
) -> pd.DataFrame:
    """Per supplier (most messages first, at most `limit`): counts, rates, replies, last send.

    Columns: supplier_id (Int64; missing for messages sent to a bare number), supplier,
    messages, delivered, read, failed, replied, delivery_rate, read_rate, reply_rate,
    last_sent_at.

    Whole UTC weeks of the range are read from the weekly per-supplier rollup (kept by
    the triggers of migration 0009), the days before the first and after the last whole
    week from the supplier index; `rollup=False` reads every message (the same figures,
    slower). With a supplier filter the supplier index is already a small read.
    """
    limit = max(1, min(int(limit), 5000))
    start, end = flt.utc_range
    parts = split(start, end, "week") if rollup and not flt.supplier_ids else (
        Split(inner=None, edges=((start, end),))
    )
    found: dict[int | None, _SupplierCounts] = {}
    with _read(engine) as conn:
        if parts.inner is not None:
            _add_weekly_rollup(conn, flt, parts.inner, found)
        for edge in parts.edges:
            _add_supplier_range(conn, flt, edge, found)
        chosen = sorted(
            (c for c in found.values() if c.messages),
            key=lambda c: (-c.messages, c.supplier_id is None, c.name or "", c.supplier_id or 0),
        )[:limit]
        last = _last_sent(conn, flt, [c.supplier_id for c in chosen])
        labels = _namesake_labels(conn, chosen)
    return pd.DataFrame(
        {
            "supplier_id": pd.array([c.supplier_id for c in chosen], dtype="Int64"),
            "supplier": [
                labels.get(c.supplier_id or 0) or c.name or _("(no supplier record)")
                for c in chosen
            ],
            "messages": [c.messages for c in chosen],
            "delivered": [c.delivered for c in chosen],
            "read": [c.read for c in chosen],
            "failed": [c.failed for c in chosen],
            "replied": [c.replied for c in chosen],
            **{
                r.key: [r.value(vars(c)) for c in chosen]
                for r in (rates.DELIVERED, rates.READ, rates.ANSWERED)
            },
            "last_sent_at": [last.get(c.supplier_id) for c in chosen],
        }
    )


@dataclass
class _SupplierCounts:
    supplier_id: int | None
    name: str | None
    messages: int = 0
    sent: int = 0
    delivered: int = 0
    read: int = 0
    failed: int = 0
    replied: int = 0

    def add(self, row: Any) -> None:
        self.messages += int(row.messages or 0)
        self.sent += int(row.sent or 0)
        self.delivered += int(row.delivered or 0)
        self.read += int(row.read_count or 0)
        self.failed += int(row.failed or 0)
        self.replied += int(row.replied or 0)


def _add_rows(found: dict[int | None, _SupplierCounts], rows: Any) -> None:
    for row in rows:
        key = None if row.supplier_id is None else int(row.supplier_id)
        counts = found.setdefault(key, _SupplierCounts(key, row.supplier))
        counts.add(row)


def _add_weekly_rollup(
    conn: Connection,
    flt: StatsFilter,
    inner: tuple[datetime, datetime],
    found: dict[int | None, _SupplierCounts],
) -> None:
    """Counts of the whole weeks `inner` from the weekly per-supplier rollup.

    Driven from the suppliers table like the raw query: each supplier's weeks are one
    range of the rollup's primary key, already grouped, so no sort.
    """
    first, after = week_dates(inner)
    templates, params = _rollup_templates(flt, WEEKLY_NULL_TEMPLATE)
    params.update(week_start=first, week_end=after)
    sums = """
        SUM(r.messages) AS messages, SUM(r.sent) AS sent, SUM(r.delivered) AS delivered,
        SUM(r.read_count) AS read_count, SUM(r.failed) AS failed, SUM(r.replied) AS replied
    """
    known_sql = f"""
        SELECT s.id AS supplier_id, s.name AS supplier, {sums}
        FROM suppliers s CROSS JOIN analytics_supplier_weekly r
        WHERE r.tenant_id = s.tenant_id AND r.supplier_id = s.id AND s.tenant_id IN :tenants
          AND r.week >= :week_start AND r.week < :week_end
          AND (r.null_bits & {WEEKLY_NULL_SUPPLIER}) = 0 {templates}
        GROUP BY s.id, s.name
    """
    bare_sql = f"""
        SELECT NULL AS supplier_id, NULL AS supplier, {sums}
        FROM analytics_supplier_weekly r
        WHERE r.tenant_id IN :tenants AND r.supplier_id = 0
          AND (r.null_bits & {WEEKLY_NULL_SUPPLIER}) <> 0
          AND r.week >= :week_start AND r.week < :week_end {templates}
    """
    _add_rows(found, conn.execute(_q(known_sql, params)))
    if not flt.supplier_ids:
        _add_rows(found, (r for r in conn.execute(_q(bare_sql, params)) if r.messages))


def _add_supplier_range(
    conn: Connection,
    flt: StatsFilter,
    between: tuple[datetime, datetime],
    found: dict[int | None, _SupplierCounts],
) -> None:
    """Counts of the messages created in `between`, from the supplier index."""
    where, params = _where(flt, between=between)
    counts = f"""
        COUNT(*) AS messages,
        COUNT(COALESCE(m.accepted_at, m.sent_at)) AS sent,
        COUNT(m.delivered_at) AS delivered,
        COUNT(m.read_at) AS read_count,
        COUNT(CASE WHEN {_FAILED} THEN 1 END) AS failed,
        COUNT(m.replied_at) AS replied
    """
    # Driven from the suppliers table: each supplier's messages are one range of the
    # supplier index, already grouped, so no sort of every message is needed. CROSS
    # JOIN keeps SQLite from reordering the join (with more indexes on the table it
    # chose to scan the range and sort every message, four times slower).
    known_sql = f"""
        SELECT s.id AS supplier_id, s.name AS supplier, {counts}
        FROM suppliers s CROSS JOIN whatsapp_messages m
        WHERE m.tenant_id = s.tenant_id AND m.supplier_id = s.id
          AND s.tenant_id IN :tenants AND {where}
        GROUP BY s.id
    """
    bare_sql = f"""
        SELECT NULL AS supplier_id, NULL AS supplier, {counts}
        FROM whatsapp_messages m
        WHERE {where} AND m.supplier_id IS NULL
        HAVING COUNT(*) > 0
    """
    _add_rows(found, conn.execute(_q(known_sql, params)))
    if not flt.supplier_ids:
        _add_rows(found, conn.execute(_q(bare_sql, params)))


def _namesake_labels(conn: Connection, chosen: Sequence[_SupplierCounts]) -> dict[int, str]:
    """`supplier_labels` (name, phone, ERP reference) for the suppliers of the table that
    share their name with another row of it, so two namesakes read apart; others keep
    their name alone. One query, only when there are namesakes."""
    counts: dict[str, int] = {}
    for c in chosen:
        if c.supplier_id is not None and c.name:
            counts[c.name.strip().casefold()] = counts.get(c.name.strip().casefold(), 0) + 1
    ids = [
        int(c.supplier_id)
        for c in chosen
        if c.supplier_id is not None and c.name and counts[c.name.strip().casefold()] > 1
    ]
    if not ids:
        return {}
    sql = "SELECT id, name, phone_e164, external_ref FROM suppliers WHERE id IN :ids"
    return supplier_labels(list(conn.execute(_q(sql, {"ids": ids}))))


def _last_sent(
    conn: Connection, flt: StatsFilter, supplier_ids: Sequence[int | None]
) -> dict[int | None, datetime]:
    """The latest creation time in the range per supplier shown (None: bare numbers).

    One backward step of the supplier index per supplier shown (at most the table's
    limit), so the table's counts can come from the rollup.
    """
    where, params = _where(flt)
    last: dict[int | None, datetime] = {}
    known = [int(s) for s in supplier_ids if s is not None]
    if known:
        sql = f"""
            SELECT s.id AS supplier_id, (
                SELECT m.created_at FROM whatsapp_messages m
                WHERE m.tenant_id = s.tenant_id AND m.supplier_id = s.id AND {where}
                ORDER BY m.created_at DESC LIMIT 1
            ) AS last_sent_at
            FROM suppliers s WHERE s.id IN :ids AND s.tenant_id IN :tenants
        """
        rows = conn.execute(_q(sql, {**params, "ids": known}).columns(last_sent_at=UTCDateTime()))
        last.update({int(r.supplier_id): r.last_sent_at for r in rows if r.last_sent_at})
    if None in supplier_ids:
        for tenant in flt.tenant_ids:
            where_t, params_t = _where(flt, tenants=(tenant,))
            sql = f"""
                SELECT m.created_at AS last_sent_at FROM whatsapp_messages m
                WHERE {where_t} AND m.supplier_id IS NULL
                ORDER BY m.created_at DESC LIMIT 1
            """
            at = conn.execute(_q(sql, params_t).columns(last_sent_at=UTCDateTime())).scalar()
            if at is not None and (None not in last or at > last[None]):
                last[None] = at
    return last


def acknowledgements(engine: Engine, flt: StatsFilter, *, rollup: bool = True) -> AckStats:
    """PO notices (messages with a PO number) and how many suppliers acknowledged.

    Reminders (template `po_reminder`, `core.followup.kind`) carry the PO number but are
    not notices: they are left out, and a button pressed on one is recorded on its
    notice (`core.webhooks.inbound`), so the PO's answer counts once, on the notice.

    Whole UTC hours of the range come from the hourly rollup (migration 0009), the
    minutes at its ends (zones with a :30 offset) from the covering index;
    `rollup=False` reads every message. A supplier filter reads the supplier index.
    """
    start, end = flt.utc_range
    parts = split(start, end, "hour") if rollup and not flt.supplier_ids else (
        Split(inner=None, edges=((start, end),))
    )
    totals = [0, 0, 0, 0, 0]  # notices, delivered, acknowledged, confirmed, rejected
    with _read(engine) as conn:
        if parts.inner is not None:
            templates, params = _rollup_templates(flt, HOURLY_NULL_TEMPLATE)
            params.update(range_start=parts.inner[0], range_end=parts.inner[1],
                          reminder=REMINDER_TEMPLATE)  # fmt: skip
            sql = f"""
                SELECT SUM(r.notices), SUM(r.notices_delivered), SUM(r.acknowledged),
                       SUM(r.confirmed), SUM(r.rejected)
                FROM analytics_hourly r
                WHERE r.tenant_id IN :tenants AND r.hour >= :range_start
                  AND r.hour < :range_end {templates}
                  AND NOT (r.template_name = :reminder
                           AND (r.null_bits & {HOURLY_NULL_TEMPLATE}) = 0)
            """
            row = conn.execute(_q(sql, params)).one()
            totals = [t + int(v or 0) for t, v in zip(totals, row, strict=True)]
        for edge in parts.edges:
            where, params = _where(flt, between=edge)
            params["reminder"] = REMINDER_TEMPLATE
            sql = f"""
                SELECT COUNT(*), COUNT(m.delivered_at), COUNT(m.ack_action),
                       SUM(CASE WHEN m.ack_action = 'confirmed' THEN 1 ELSE 0 END),
                       SUM(CASE WHEN m.ack_action = 'rejected' THEN 1 ELSE 0 END)
                FROM whatsapp_messages m
                WHERE {where} AND m.po_number IS NOT NULL
                  AND (m.template_name IS NULL OR m.template_name <> :reminder)
            """
            row = conn.execute(_q(sql, params)).one()
            totals = [t + int(v or 0) for t, v in zip(totals, row, strict=True)]
    notices, delivered, acknowledged, confirmed, rejected = totals
    return AckStats(
        notices=notices,
        delivered=delivered,
        acknowledged=acknowledged,
        confirmed=confirmed,
        rejected=rejected,
    )


def cost(engine: Engine, flt: StatsFilter, *, rollup: bool = True) -> CostReport:
    """What delivered messages cost by Meta's reported pricing and the tenant's rate card.

    The rate of a message is the card's row for its tenant, pricing type, category
    (or "*") and market (or "*"), the most specific one winning, in force when the
    message was created. Slices are split at every rate change inside the range, so a
    price change mid-day is applied exactly.

    Delivered messages are counted per (tenant, pricing type, category, market) and
    slice: whole UTC hours of each slice from the hourly rollup (migration 0009), the
    minutes left at a slice's ends (a rate change at 10:17, a :30 zone) from the cost
    index, one range read per combination with no sort. `rollup=False` reads every
    message; a supplier filter too (its messages are a small read). The card's rate for
    each count is looked up here, in Decimal.
    """
    granularity = granularity_for(flt)
    display = time_buckets(flt, granularity)
    start, end = flt.utc_range
    use_rollup = rollup and not flt.supplier_ids
    counts: dict[_Combo, int] = {}
    with _read(engine) as conn:
        changes = rate_change_instants(conn, flt.tenant_ids, start, end)
        pieces = _split(display, changes)
        inner: list[tuple[int, datetime, datetime]] = []
        edges: list[tuple[int, datetime, datetime]] = []
        for piece in pieces:
            parts = split(piece.start, piece.end, "hour") if use_rollup else (
                Split(inner=None, edges=((piece.start, piece.end),))
            )
            if parts.inner is not None:
                inner.append((piece.index, *parts.inner))
            edges.extend((piece.index, s, e) for s, e in parts.edges)
        unreported = _hourly_cost_counts(conn, flt, inner, counts) if inner else 0
        if edges:
            unreported += _raw_cost_counts(conn, flt, edges, counts)
    cards = {tenant: list_rates(engine, tenant) for tenant in flt.tenant_ids}
    rows = [_CostRow(0, "", None, 0, 0, unreported, 0, 0, False)] if unreported else []
    for combo in sorted(counts, key=_Combo.sort_key):
        n = counts[combo]
        if not n:
            continue
        k = combo.k
        piece = pieces[k]
        rate = find_rate(cards.get(combo.tenant, []), combo.market, combo.category.lower(),
                         combo.ptype.lower(), piece.start)  # fmt: skip
        if rate is not None:
            micros = n * rate_to_micros(rate.rate)
            rows.append(_CostRow(k, combo.category, rate.currency, n, micros, 0, 0, 0,
                                 rate.is_example))  # fmt: skip
        elif combo.ptype.lower() in FREE_PRICING_TYPES:
            rows.append(_CostRow(k, combo.category, None, n, 0, 0, n, 0, False))
        else:
            rows.append(_CostRow(k, combo.category, None, n, 0, 0, 0, n, False))
    return _cost_report(rows, pieces, display, granularity)


class _Combo(NamedTuple):
    """Delivered messages of one tenant, pricing type, category and market in piece k."""

    tenant: str
    ptype: str
    category: str
    market: str | None
    k: int

    @staticmethod
    def sort_key(c: _Combo) -> tuple[str, str, str, bool, str, int]:
        return (c.tenant, c.ptype, c.category, c.market is None, c.market or "", c.k)


def _hourly_cost_counts(
    conn: Connection,
    flt: StatsFilter,
    inner: Sequence[tuple[int, datetime, datetime]],
    counts: dict[_Combo, int],
) -> int:
    """Add the whole hours of each piece from the hourly rollup to `counts`; returns the
    delivered messages Meta reported no pricing for (type or category missing)."""
    cte, cte_params = _ranges_cte(inner)
    templates, params = _rollup_templates(flt, HOURLY_NULL_TEMPLATE)
    unreported = 0
    no_pricing = HOURLY_NULL_PRICING_TYPE | HOURLY_NULL_CATEGORY
    for tenant in flt.tenant_ids:
        sql = f"""
            WITH {cte}
            SELECT b.k AS k, r.pricing_type AS ptype, r.pricing_category AS category,
                   r.recipient_country AS market, r.null_bits AS null_bits,
                   SUM(r.delivered) AS n
            FROM b JOIN analytics_hourly r
              ON r.tenant_id = :c_tenant AND r.hour >= b.s AND r.hour < b.e
            WHERE r.delivered <> 0 {templates}
            GROUP BY b.k, r.pricing_type, r.pricing_category, r.recipient_country, r.null_bits
        """
        bound = {**params, **cte_params, "c_tenant": tenant}
        bound.pop("tenants")
        for r in conn.execute(_q(sql, bound)):
            bits = int(r.null_bits)
            if bits & no_pricing:
                unreported += int(r.n)
                continue
            market = None if bits & HOURLY_NULL_MARKET else str(r.market)
            key = _Combo(tenant, str(r.ptype), str(r.category), market, int(r.k))
            counts[key] = counts.get(key, 0) + int(r.n)
    return unreported


def _raw_cost_counts(
    conn: Connection,
    flt: StatsFilter,
    edges: Sequence[tuple[int, datetime, datetime]],
    counts: dict[_Combo, int],
) -> int:
    """Add the delivered messages created in `edges` (k, start, end) to `counts`, one
    range read of the cost index per combination; returns those with no pricing."""
    cte, cte_params = _ranges_cte(edges)
    where, params = _where(flt, with_range=False)
    combos: Sequence[Any] = ()
    if flt.supplier_ids and SUPPLIER_COST_READ:
        _supplier_cost_counts(conn, cte, {**params, **cte_params}, where, counts)
    else:
        combos = conn.execute(_q(_COMBOS_SQL, {"tenants": list(flt.tenant_ids)})).all()
    for combo in combos:
        market = "m.recipient_country IS NULL" if combo.market is None else (
            "m.recipient_country = :c_market"
        )
        sql = f"""
            WITH {cte}
            SELECT b.k AS k, COUNT(*) AS n
            FROM b JOIN whatsapp_messages m
              ON m.tenant_id = :c_tenant AND m.pricing_type = :c_ptype
             AND m.pricing_category = :c_category AND {market}
             AND m.created_at >= b.s AND m.created_at < b.e
            WHERE {where} AND m.delivered_at IS NOT NULL
            GROUP BY b.k
        """
        bound = {**params, **cte_params, "c_tenant": combo.tenant,
                 "c_ptype": combo.ptype, "c_category": combo.category}  # fmt: skip
        if combo.market is not None:
            bound["c_market"] = combo.market
        for r in conn.execute(_q(sql, bound)):
            key = _Combo(str(combo.tenant), str(combo.ptype), str(combo.category),
                         combo.market, int(r.k))  # fmt: skip
            counts[key] = counts.get(key, 0) + int(r.n)
    sql = f"""
        WITH {cte}
        SELECT COUNT(*) FROM b JOIN whatsapp_messages m
          ON m.created_at >= b.s AND m.created_at < b.e
        WHERE {where} AND m.delivered_at IS NOT NULL
          AND (m.pricing_type IS NULL OR m.pricing_category IS NULL)
    """
    return int(conn.execute(_q(sql, {**params, **cte_params})).scalar_one())


#: A supplier filter's cost is read from the supplier index in one query (False: per
#: pricing combination, as without one; tests compare the two).
SUPPLIER_COST_READ = True


def _supplier_cost_counts(
    conn: Connection, cte: str, params: dict[str, Any], where: str, counts: dict[_Combo, int]
) -> None:
    """`_raw_cost_counts` for a supplier filter: the suppliers' messages are a few
    ranges of the supplier index, so one grouped read of them, where a read per pricing
    combination of the cost index would walk every delivered message of the range."""
    sql = f"""
        WITH {cte}
        SELECT b.k AS k, m.tenant_id AS tenant, m.pricing_type AS ptype,
               m.pricing_category AS category, m.recipient_country AS market,
               COUNT(*) AS n
        FROM b JOIN whatsapp_messages m
          ON m.created_at >= b.s AND m.created_at < b.e
        WHERE {where} AND m.delivered_at IS NOT NULL
          AND m.pricing_type IS NOT NULL AND m.pricing_category IS NOT NULL
        GROUP BY b.k, m.tenant_id, m.pricing_type, m.pricing_category, m.recipient_country
    """
    for r in conn.execute(_q(sql, params)):
        key = _Combo(str(r.tenant), str(r.ptype), str(r.category),
                     None if r.market is None else str(r.market), int(r.k))  # fmt: skip
        counts[key] = counts.get(key, 0) + int(r.n)


class _CostRow(NamedTuple):
    k: int
    category: str
    currency: str | None
    n: int
    micros: int
    unreported: int
    free_n: int
    unpriced: int
    example: bool


#: The (tenant, pricing type, category, market) combinations Meta reported for delivered
#: messages; a skip-scan of the cost index, so it reads a few index pages, not every row.
_COMBOS_SQL = """
    SELECT DISTINCT m.tenant_id AS tenant, m.pricing_type AS ptype,
           m.pricing_category AS category, m.recipient_country AS market
    FROM whatsapp_messages m
    WHERE m.tenant_id IN :tenants AND m.pricing_type IS NOT NULL
      AND m.pricing_category IS NOT NULL
"""


def _cost_report(
    rows: Sequence[Any], pieces: Sequence[Bucket], display: Sequence[Bucket], unit: Granularity
) -> CostReport:
    label_of = {piece.index: piece.label for piece in pieces}
    totals: dict[str, Decimal] = {}
    by_cat: dict[tuple[str, str], list[Any]] = {}
    by_bucket: dict[tuple[date, str], Decimal] = {}
    charged = free = unpriced = unreported = 0
    example = False
    for r in rows:
        unreported += int(r.unreported)
        free += int(r.free_n)
        unpriced += int(r.unpriced)
        example = example or bool(r.example)
        if r.currency is None:
            continue
        amount = micros_to_decimal(int(r.micros))
        charged += int(r.n)
        totals[r.currency] = totals.get(r.currency, Decimal(0)) + amount
        entry = by_cat.setdefault((r.category or "(unknown)", r.currency), [0, Decimal(0)])
        entry[0] += int(r.n)
        entry[1] += amount
        key = (label_of[int(r.k)], r.currency)
        by_bucket[key] = by_bucket.get(key, Decimal(0)) + amount
    currencies = tuple(sorted(totals))
    cat_frame = pd.DataFrame.from_records(
        [
            {"category": cat, "currency": cur, "messages": n, "cost": amount}
            for (cat, cur), (n, amount) in sorted(
                by_cat.items(), key=lambda kv: (-kv[1][1], kv[0])
            )
        ],
        columns=["category", "currency", "messages", "cost"],
    )
    bucket_frame = pd.DataFrame.from_records(
        [
            {"bucket": b.label, "currency": cur, "cost": by_bucket.get((b.label, cur), Decimal(0))}
            for cur in currencies
            for b in display
        ],
        columns=["bucket", "currency", "cost"],
    )
    return CostReport(
        totals=totals,
        by_category=cat_frame,
        by_bucket=bucket_frame,
        charged_messages=charged,
        free_messages=free,
        unpriced_messages=unpriced,
        unreported_messages=unreported,
        uses_example_rates=example,
        granularity=unit,
        currencies=currencies,
    )


def _split(display: Sequence[Bucket], cuts: Sequence[datetime]) -> list[Bucket]:
    """`display` slices cut further at `cuts`; each piece keeps its slice's label."""
    pieces: list[Bucket] = []
    for bucket in display:
        inner = sorted({c for c in cuts if bucket.start < c < bucket.end})
        edges = [bucket.start, *inner, bucket.end]
        for lo, hi in itertools.pairwise(edges):
            pieces.append(Bucket(index=len(pieces), label=bucket.label, start=lo, end=hi))
    return pieces


# --- filter options ------------------------------------------------------------------


def template_options(engine: Engine, tenant_ids: Sequence[str]) -> list[str]:
    """Template names known for these tenants (for the template filter), sorted."""
    sql = """
        SELECT DISTINCT template_name FROM whatsapp_templates
        WHERE tenant_id IN :tenants ORDER BY template_name
    """
    with _read(engine) as conn:
        return [r[0] for r in conn.execute(_q(sql, {"tenants": list(tenant_ids)}))]


def supplier_options(engine: Engine, tenant_ids: Sequence[str]) -> list[tuple[int, str]]:
    """(id, label) of these tenants' suppliers, by name (for the supplier filter): the
    label is `supplier_labels`' (name and phone, the ERP reference for namesakes)."""
    sql = """
        SELECT id, name, phone_e164, external_ref FROM suppliers
        WHERE tenant_id IN :tenants ORDER BY name, id
    """
    with _read(engine) as conn:
        rows = list(conn.execute(_q(sql, {"tenants": list(tenant_ids)})))
    labels = supplier_labels(rows)
    return [(int(r.id), labels[int(r.id)]) for r in rows]


# --- helpers -------------------------------------------------------------------------


def _where(
    flt: StatsFilter,
    *,
    with_range: bool = True,
    tenants: Sequence[str] | None = None,
    status_test: bool = True,
    between: tuple[datetime, datetime] | None = None,
) -> tuple[str, dict[str, Any]]:
    """The WHERE clause (on alias `m`) and parameters of a filter (or of some of its
    tenants: `tenants` must be a subset of the filter's). Without `status_test` the
    caller leaves cancelled messages out itself (by their stage bits). `between`
    narrows the creation range to a part of the filter's (an edge of a rollup read)."""
    chosen = list(flt.tenant_ids if tenants is None else tenants)
    if not set(chosen) <= set(flt.tenant_ids):
        raise StatsFilterError("A tenant outside the filter")
    clauses = [_NOT_CANCELLED] if status_test else []
    clauses.append("m.tenant_id IN :tenants")
    params: dict[str, Any] = {"tenants": chosen}
    if with_range:
        start, end = flt.utc_range
        if between is not None:
            if not (start <= between[0] <= between[1] <= end):
                raise StatsFilterError("A range outside the filter's")
            start, end = between
        clauses.append("m.created_at >= :range_start AND m.created_at < :range_end")
        params["range_start"], params["range_end"] = start, end
    if flt.template_names:
        clauses.append("m.template_name IN :templates")
        params["templates"] = list(flt.template_names)
    if flt.supplier_ids:
        clauses.append("m.supplier_id IN :suppliers")
        params["suppliers"] = [int(s) for s in flt.supplier_ids]
    return " AND ".join(clauses), params


def _rollup_templates(flt: StatsFilter, null_bit: int) -> tuple[str, dict[str, Any]]:
    """The template filter on a rollup (alias `r`; a NULL template is stored as '' with
    `null_bit` set, and no filter matches it), and the tenants and templates to bind."""
    params: dict[str, Any] = {"tenants": list(flt.tenant_ids)}
    if not flt.template_names:
        return "", params
    params["templates"] = list(flt.template_names)
    return f"AND r.template_name IN :templates AND (r.null_bits & {null_bit}) = 0", params


_EXPANDING = ("tenants", "templates", "suppliers", "ids")
_TIMES = ("range_start", "range_end")


def _q(sql: str, params: Mapping[str, Any]) -> TextClause:
    """A text query with list parameters expanded and times bound as stored (UTC)."""
    binds: list[BindParameter[Any]] = []
    for name, value in params.items():
        if name in _EXPANDING:
            binds.append(bindparam(name, value, expanding=True))
        elif name in _TIMES or name.startswith(("bs", "be")):
            binds.append(bindparam(name, value, type_=UTCDateTime()))
        else:
            binds.append(bindparam(name, value))
    return text(sql).bindparams(*binds)


def _ranges_cte(ranges: Sequence[tuple[int, datetime, datetime]]) -> tuple[str, dict[str, Any]]:
    """`b(k, s, e) AS (VALUES ...)`: (slice index, start, end) ranges as a table SQL can
    join on (several ranges may share a slice)."""
    if not ranges:
        raise StatsFilterError("The range has no days")
    rows = ", ".join(f"({int(k)}, :bs{i}, :be{i})" for i, (k, _s, _e) in enumerate(ranges))
    params: dict[str, Any] = {}
    for i, (_k, start, end) in enumerate(ranges):
        params[f"bs{i}"] = start
        params[f"be{i}"] = end
    return f"b(k, s, e) AS (VALUES {rows})", params


@contextmanager
def _read(engine: Engine) -> Iterator[Connection]:
    """A connection for analytics reads: on SQLite, one of the analytics engine's
    (`core.db.analytics_engine`: a memory map and a larger cache, on those connections
    alone)."""
    with analytics_engine(engine).connect() as conn:
        if conn.dialect.name == "postgresql":
            # For this read's transaction only: the supplier table groups ~100,000
            # rollup rows, which PostgreSQL's default 4 MB sorts on disk.
            conn.exec_driver_sql("SET LOCAL work_mem = '32MB'")
        yield conn


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _rates(*, keys: Sequence[rates.Rate], **counts: int) -> dict[str, float | None]:
    """The rates `keys` of these counts, by column name (each defined in core.rates)."""
    return {r.key: r.value(counts) for r in keys}


def _bin_label(lower: int, upper: int | None) -> str:
    if upper is None:
        return _("over {duration}").format(duration=_duration(lower))
    if not lower:
        return _("under {duration}").format(duration=_duration(upper))
    return f"{_duration(lower)}–{_duration(upper)}"


def _duration(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 86400:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} d"


def _percentile_from_bins(bins: pd.DataFrame, q: float) -> float | None:
    """The q-quantile of a histogram, interpolating linearly inside the bin it falls in."""
    total = int(bins["messages"].sum())
    if total == 0:
        return None
    target = q * total
    seen = 0
    for lower, upper, count in zip(
        bins["lower_s"], bins["upper_s"], bins["messages"], strict=True
    ):
        count = int(count)
        if count and seen + count >= target:
            if upper is None or (isinstance(upper, float) and math.isnan(upper)):
                return float(lower)  # open-ended bin: at least this long
            return float(lower) + (float(upper) - float(lower)) * (target - seen) / count
        seen += count
    return float(bins["lower_s"].iloc[-1])


# --- everything the analytics page shows ---------------------------------------------


@dataclass(frozen=True)
class AnalyticsReport:
    """Every figure of the analytics page for one filter, computed in one call."""

    filter: StatsFilter
    funnel: Funnel
    daily: pd.DataFrame
    granularity: Granularity
    to_deliver: LatencyStats
    to_read: LatencyStats
    failures: pd.DataFrame
    suppliers: pd.DataFrame
    acknowledgements: AckStats
    cost: CostReport

    @property
    def empty(self) -> bool:
        """True when no message falls in the filter (the page shows an empty state)."""
        return self.funnel.total == 0


#: Charts of one page queried at the same time (each on a pooled connection of its own).
REPORT_THREADS = 4


def report(engine: Engine, flt: StatsFilter, *, supplier_limit: int = 200) -> AnalyticsReport:
    """Run every analytics query for `flt` (each aggregated in SQL), several at once.

    The charts are independent reads: on connections of their own they overlap (the
    database drivers release the GIL while a query runs; SQLite's WAL and PostgreSQL
    serve concurrent readers), so the page costs about its slowest charts rather than
    their sum. The funnel is the daily slices' counts added up - the same messages, as
    the slices cover the range exactly - rather than one more pass over the range.
    """
    with ThreadPoolExecutor(  # each thread reads in the caller's language (reasons, bins)
        REPORT_THREADS,
        thread_name_prefix="stats-report",
        initializer=set_locale,
        initargs=(current_locale(),),
    ) as pool:
        # the slowest first, so the pool is never left with one long query at the end
        suppliers = pool.submit(supplier_table, engine, flt, limit=supplier_limit)
        daily = pool.submit(_daily_counts, engine, flt)
        charges = pool.submit(cost, engine, flt)
        to_deliver = pool.submit(latency, engine, flt, "deliver")
        failures = pool.submit(failures_by_reason, engine, flt)
        to_read = pool.submit(latency, engine, flt, "read")
        acks = pool.submit(acknowledgements, engine, flt)
        buckets, per_bucket = daily.result()
        start, end = flt.utc_range
        if buckets and buckets[0].start == start and buckets[-1].end == end:
            totals: dict[int, int] = {}
            for counts in per_bucket.values():
                for flags, n in counts.items():
                    totals[flags] = totals.get(flags, 0) + n
            whole = _funnel_from(totals)
        else:  # slices not covering the range exactly: count it in one pass
            whole = funnel(engine, flt)
        return AnalyticsReport(
            filter=flt,
            funnel=whole,
            daily=_daily_frame(buckets, per_bucket),
            granularity=granularity_for(flt),
            to_deliver=to_deliver.result(),
            to_read=to_read.result(),
            failures=failures.result(),
            suppliers=suppliers.result(),
            acknowledgements=acks.result(),
            cost=charges.result(),
        )
