"""The analytics rollups (migration 0009) stay exact under any sequence of message writes.

Randomised messages are inserted, moved between stages, given another supplier,
template, pricing or creation time, cancelled and deleted (one row at a time and in bulk
statements); after each sequence the rollup tables must equal a recomputation from the
messages, and every rollup-backed chart must equal the same chart read from the
messages alone (`rollup=False`), for random ranges in zones with :30 and :45 offsets,
template and tenant filters, and rate changes in the middle of an hour.
On a real SQLite file, or PostgreSQL when WANOTIFY_TEST_DATABASE_URL names one.
"""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, delete, insert, select, text, update

from core import stats
from core.analytics_rollup import Unit, ceil_to, floor_to, split
from core.models.messages import WhatsAppMessage
from core.models.pricing import RateCardEntry
from core.models.rollup import AnalyticsHourly, AnalyticsHourlyStages, SupplierWeekly
from core.pricing import set_rate
from tests.core.test_stats import supplier

MESSAGES = WhatsAppMessage.__table__  # type: ignore[attr-defined]
HOURLY = AnalyticsHourly.__table__  # type: ignore[attr-defined]
WEEKLY = SupplierWeekly.__table__  # type: ignore[attr-defined]
STAGES = AnalyticsHourlyStages.__table__  # type: ignore[attr-defined]
BASE = datetime(2026, 11, 2, 0, 0, tzinfo=UTC)  # a Monday
SPAN_SECONDS = 16 * 86400
TENANTS = ("acme", "beta")
ZONES = ("UTC", "Europe/Madrid", "Asia/Kolkata", "Asia/Kathmandu", "America/St_Johns",
         "Pacific/Chatham")  # fmt: skip
STATUSES = ("pending", "sending", "accepted", "sent", "delivered", "read", "failed",
            "needs_attention", "cancelled")  # fmt: skip
_keys = itertools.count(1)

instants = st.integers(0, SPAN_SECONDS).map(lambda s: BASE + timedelta(seconds=s))
maybe_later = st.one_of(st.none(), st.integers(0, 7200))


@st.composite
def message_values(draw: st.DrawFn, suppliers: dict[str, list[int]]) -> dict[str, Any]:
    """Every column a chart or a rollup reads, drawn at random (NULLs included)."""
    tenant = draw(st.sampled_from(TENANTS))
    at = draw(instants)
    offsets = {name: draw(maybe_later) for name in ("accepted", "sent", "delivered", "read")}
    own = suppliers[tenant]
    other = suppliers[TENANTS[1] if tenant == TENANTS[0] else TENANTS[0]]
    return {
        "tenant_id": tenant,
        "created_at": at,
        "status": draw(st.sampled_from(STATUSES)),
        "template_name": draw(st.sampled_from(("po_notification", "po_reminder", "", None))),
        "supplier_id": draw(st.sampled_from((*own, other[0], None))),
        **{f"{name}_at": None if off is None else at + timedelta(seconds=off)
           for name, off in offsets.items()},
        "replied_at": draw(st.one_of(st.none(), st.just(at + timedelta(hours=3)))),
        "po_number": draw(st.sampled_from(("PO-1", "PO-2", None))),
        "ack_action": draw(st.sampled_from(("confirmed", "rejected", "other", None))),
        "pricing_type": draw(st.sampled_from(("regular", "free_customer_service", None))),
        "pricing_category": draw(st.sampled_from(("utility", "marketing", None))),
        "recipient_country": draw(st.sampled_from(("34", "44", None))),
        "error_code": draw(st.sampled_from((131026, None))),
    }


CHANGEABLE = (
    "created_at", "status", "template_name", "supplier_id", "accepted_at", "sent_at",
    "delivered_at", "read_at", "replied_at", "po_number", "ack_action", "pricing_type",
    "pricing_category", "recipient_country", "tenant_id",
)  # fmt: skip


@st.composite
def operations(draw: st.DrawFn, suppliers: dict[str, list[int]]) -> list[tuple[Any, ...]]:
    """Inserts first, then a random mix of single-row updates, bulk updates, deletes."""
    ops: list[tuple[Any, ...]] = [
        ("insert", draw(message_values(suppliers)))
        for _ in range(draw(st.integers(1, 25)))
    ]
    for _ in range(draw(st.integers(0, 25))):
        kind = draw(st.sampled_from(("update", "update", "update", "bulk", "delete")))
        if kind == "update":
            fresh = draw(message_values(suppliers))
            columns = draw(st.sets(st.sampled_from(CHANGEABLE), min_size=1, max_size=4))
            ops.append(("update", draw(st.integers(0, 10**6)),
                        {c: fresh[c] for c in columns}))  # fmt: skip
        elif kind == "bulk":
            ops.append(("bulk", draw(st.sampled_from(TENANTS)),
                        draw(st.sampled_from(("deliver", "read", "cancel", "reprice")))))
        else:
            ops.append(("delete", draw(st.integers(0, 10**6))))
    return ops


def apply(engine: Engine, ops: list[tuple[Any, ...]]) -> None:
    """Run the operations against the messages table, as the product's code would."""
    ids: list[str] = []
    with engine.begin() as conn:
        for op in ops:
            if op[0] == "insert":
                n = next(_keys)
                values = {**op[1], "id": f"msg-{n}", "idempotency_key": f"rollup:{n}",
                          "recipient_phone": "+34612000001", "message_type": "template",
                          "attempt_count": 0, "updated_at": op[1]["created_at"]}  # fmt: skip
                conn.execute(insert(MESSAGES).values(**values))
                ids.append(values["id"])
            elif not ids:
                continue
            elif op[0] == "update":
                target = ids[op[1] % len(ids)]
                conn.execute(update(MESSAGES).where(MESSAGES.c.id == target).values(**op[2]))
            elif op[0] == "delete":
                target = ids.pop(op[1] % len(ids))
                conn.execute(delete(MESSAGES).where(MESSAGES.c.id == target))
            else:
                _bulk(conn, op[1], op[2])


def _bulk(conn: Any, tenant: str, change: str) -> None:
    """One UPDATE statement over many rows (the webhook applier's shape)."""
    rows = MESSAGES.c.tenant_id == tenant
    if change == "deliver":
        values: dict[str, Any] = {"status": "delivered", "delivered_at": BASE}
    elif change == "read":
        values = {"status": "read", "read_at": BASE + timedelta(days=1)}
    elif change == "cancel":
        values = {"status": "cancelled"}
    else:
        values = {"pricing_type": "regular", "pricing_category": "marketing"}
    conn.execute(update(MESSAGES).where(rows).values(**values))


# --- the oracle: the rollups recomputed from the messages in Python ------------------


def expected_cells(engine: Engine) -> tuple[Counter[Any], Counter[Any]]:
    """Every non-zero (cell, count) pair both rollups should hold now."""
    hourly: Counter[Any] = Counter()
    weekly: Counter[Any] = Counter()
    with engine.connect() as conn:
        rows = conn.execute(select(MESSAGES)).all()
    for m in rows:
        if m.status == "cancelled":
            continue
        created = m.created_at.astimezone(UTC)
        nulls = (
            (m.template_name is None) + 2 * (m.pricing_type is None)
            + 4 * (m.pricing_category is None) + 8 * (m.recipient_country is None)
        )  # fmt: skip
        cell = (m.tenant_id, created.replace(minute=0, second=0, microsecond=0),
                m.template_name or "", m.pricing_type or "", m.pricing_category or "",
                m.recipient_country or "", nulls)  # fmt: skip
        po = m.po_number is not None
        for name, hit in (
            ("delivered", m.delivered_at is not None),
            ("notices", po),
            ("notices_delivered", po and m.delivered_at is not None),
            ("acknowledged", po and m.ack_action is not None),
            ("confirmed", po and m.ack_action == "confirmed"),
            ("rejected", po and m.ack_action == "rejected"),
        ):
            hourly[(*cell, name)] += int(hit)
        monday = (created - timedelta(days=created.weekday())).date()
        wcell = (m.tenant_id, m.supplier_id or 0, monday, m.template_name or "",
                 (m.template_name is None) + 2 * (m.supplier_id is None))  # fmt: skip
        for name, hit in (
            ("messages", True),
            ("sent", m.accepted_at is not None or m.sent_at is not None),
            ("delivered", m.delivered_at is not None),
            ("read_count", m.read_at is not None),
            ("failed", m.status == "failed"),
            ("replied", m.replied_at is not None),
        ):
            weekly[(*wcell, name)] += int(hit)
    return +hourly, +weekly


def stored_cells(engine: Engine) -> tuple[Counter[Any], Counter[Any]]:
    """The non-zero counts the rollup tables hold (a cell may keep zeros after moves)."""
    hourly: Counter[Any] = Counter()
    weekly: Counter[Any] = Counter()
    with engine.connect() as conn:
        for r in conn.execute(select(HOURLY)):
            cell = (r.tenant_id, r.hour, r.template_name, r.pricing_type, r.pricing_category,
                    r.recipient_country, r.null_bits)  # fmt: skip
            for name in ("delivered", "notices", "notices_delivered", "acknowledged",
                         "confirmed", "rejected"):  # fmt: skip
                hourly[(*cell, name)] += int(getattr(r, name))
        for r in conn.execute(select(WEEKLY)):
            week = r.week if isinstance(r.week, date) else date.fromisoformat(str(r.week))
            wcell = (r.tenant_id, r.supplier_id, week, r.template_name, r.null_bits)
            for name in ("messages", "sent", "delivered", "read_count", "failed", "replied"):
                weekly[(*wcell, name)] += int(getattr(r, name))
    return +hourly, +weekly


def assert_no_negative_cells(engine: Engine) -> None:
    with engine.connect() as conn:
        assert conn.execute(text(
            "SELECT COUNT(*) FROM analytics_hourly WHERE delivered < 0 OR notices < 0 "
            "OR notices_delivered < 0 OR acknowledged < 0 OR confirmed < 0 OR rejected < 0"
        )).scalar_one() == 0  # fmt: skip
        assert conn.execute(text(
            "SELECT COUNT(*) FROM analytics_supplier_weekly WHERE messages < 0 OR sent < 0 "
            "OR delivered < 0 OR read_count < 0 OR failed < 0 OR replied < 0"
        )).scalar_one() == 0  # fmt: skip


# --- comparing the charts ------------------------------------------------------------


def assert_same(engine: Engine, flt: stats.StatsFilter) -> None:
    """Every rollup-backed chart equals the one read from the messages alone."""
    pd.testing.assert_frame_equal(
        stats.supplier_table(engine, flt), stats.supplier_table(engine, flt, rollup=False)
    )
    assert stats.acknowledgements(engine, flt) == stats.acknowledgements(
        engine, flt, rollup=False
    )
    fast, slow = stats.cost(engine, flt), stats.cost(engine, flt, rollup=False)
    assert fast.totals == slow.totals
    tallies = ("charged_messages", "free_messages", "unpriced_messages", "unreported_messages")
    assert [getattr(fast, t) for t in tallies] == [getattr(slow, t) for t in tallies]
    pd.testing.assert_frame_equal(fast.by_category, slow.by_category)
    pd.testing.assert_frame_equal(fast.by_bucket, slow.by_bucket)
    # the stages rollup (migration 0026): funnel, daily rates, latency histograms
    assert stats.funnel(engine, flt) == stats.funnel(engine, flt, rollup=False)
    pd.testing.assert_frame_equal(
        stats.daily_rates(engine, flt), stats.daily_rates(engine, flt, rollup=False)
    )
    for stage in ("deliver", "read"):
        quick = stats.latency(engine, flt, stage)
        full = stats.latency(engine, flt, stage, rollup=False)
        pd.testing.assert_frame_equal(quick.bins, full.bins)
        assert (quick.count, quick.p50_seconds, quick.p90_seconds) == (
            full.count, full.p50_seconds, full.p90_seconds
        )


filters = st.fixed_dictionaries(
    {
        "tenant_ids": st.sampled_from((("acme",), ("beta",), ("acme", "beta"))),
        "first": st.integers(-2, 17),
        "days": st.integers(1, 20),
        "tz": st.sampled_from(ZONES),
        "template_names": st.sampled_from(((), ("po_notification",), ("",),
                                           ("po_reminder", "po_notification"))),
    }
)  # fmt: skip


def make_filter(spec: dict[str, Any]) -> stats.StatsFilter:
    start = BASE.date() + timedelta(days=spec["first"])
    return stats.StatsFilter(
        tenant_ids=spec["tenant_ids"], start=start,
        end=start + timedelta(days=spec["days"] - 1), tz=spec["tz"],
        template_names=spec["template_names"],
    )  # fmt: skip


def reset(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(delete(MESSAGES))
        conn.execute(delete(HOURLY))
        conn.execute(delete(WEEKLY))
        conn.execute(delete(STAGES))
        conn.execute(delete(RateCardEntry.__table__))  # type: ignore[attr-defined]


@pytest.fixture
def suppliers(engine: Engine) -> dict[str, list[int]]:
    return {tenant: [supplier(engine, f"{tenant} {name}", tenant=tenant)
                     for name in ("Alfa", "Beta", "Alfa")] for tenant in TENANTS}  # fmt: skip


SETTINGS = settings(
    max_examples=60, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                           HealthCheck.data_too_large],
)  # fmt: skip


@SETTINGS
@given(data=st.data())
def test_rollups_equal_a_recomputation_and_charts_equal_the_raw_path(
    engine: Engine, suppliers: dict[str, list[int]], data: st.DataObject
) -> None:
    reset(engine)
    rate_at = data.draw(instants, label="rate change")
    for tenant in TENANTS:
        set_rate(engine, tenant, market="*", category="utility", rate="0.01", currency="EUR",
                 effective_from=BASE - timedelta(days=30))  # fmt: skip
        set_rate(engine, tenant, market="34", category="*", rate="0.02", currency="EUR",
                 effective_from=BASE - timedelta(days=30))  # fmt: skip
        # Mid-hour, mid-range: the hour it falls in must be read from the messages.
        set_rate(engine, tenant, market="*", category="utility", rate="0.015",
                 currency="USD", effective_from=rate_at)  # fmt: skip
    apply(engine, data.draw(operations(suppliers), label="operations"))
    assert stored_cells(engine) == expected_cells(engine)
    assert_no_negative_cells(engine)
    for spec in data.draw(st.lists(filters, min_size=2, max_size=4), label="filters"):
        assert_same(engine, make_filter(spec))
    # a supplier filter's cost, read from the supplier index, equals the per-pricing read
    chosen = data.draw(st.sampled_from(suppliers["acme"]), label="supplier")
    flt = stats.StatsFilter(tenant_ids=TENANTS, start=BASE.date(),
                            end=BASE.date() + timedelta(days=16), tz="Asia/Kolkata",
                            supplier_ids=(chosen,))  # fmt: skip
    quick = stats.cost(engine, flt)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(stats, "SUPPLIER_COST_READ", False)
        slow = stats.cost(engine, flt)
    assert quick.totals == slow.totals and quick.charged_messages == slow.charged_messages
    pd.testing.assert_frame_equal(quick.by_bucket, slow.by_bucket)
    pd.testing.assert_frame_equal(quick.by_category, slow.by_category)


def test_a_message_moving_between_stages_suppliers_and_templates(
    engine: Engine, suppliers: dict[str, list[int]]
) -> None:
    """The hand-written case: one message walks through every kind of change."""
    at = BASE + timedelta(days=3, hours=5, minutes=10)
    flt = stats.StatsFilter(tenant_ids=("acme",), start=BASE.date(),
                            end=BASE.date() + timedelta(days=13))  # fmt: skip
    apply(engine, [("insert", {
        "tenant_id": "acme", "created_at": at, "status": "pending", "template_name": "po_a",
        "supplier_id": suppliers["acme"][0], "po_number": "PO-9", "recipient_country": "34",
    })])  # fmt: skip
    steps: list[dict[str, Any]] = [
        {"status": "sent", "sent_at": at + timedelta(seconds=2)},
        {"status": "delivered", "delivered_at": at + timedelta(seconds=9),
         "pricing_type": "regular", "pricing_category": "utility"},
        {"supplier_id": suppliers["acme"][1]},
        {"template_name": "po_b", "ack_action": "confirmed"},
        {"created_at": at + timedelta(days=8)},  # another hour and another week
        {"status": "cancelled"},
        {"status": "read", "read_at": at + timedelta(days=8, hours=1)},
    ]  # fmt: skip
    for values in steps:
        apply(engine, [("insert", {"tenant_id": "beta", "created_at": at, "status": "sent"}),
                       ("update", 0, values)])  # fmt: skip
        with engine.begin() as conn:  # `apply` updated the beta row: do it to ours too
            conn.execute(update(MESSAGES).where(MESSAGES.c.tenant_id == "acme").values(**values))
        assert stored_cells(engine) == expected_cells(engine)
        assert_same(engine, flt)
    table = stats.supplier_table(engine, flt)
    assert table["supplier"].tolist() == ["acme Beta"]
    assert table["read"].tolist() == [1]
    assert stats.acknowledgements(engine, flt).confirmed == 1
    with engine.begin() as conn:
        conn.execute(delete(MESSAGES))
    assert stored_cells(engine) == (Counter(), Counter())
    assert stats.supplier_table(engine, flt).empty


def test_a_foreign_tenant_never_reaches_a_rollup_read(
    engine: Engine, suppliers: dict[str, list[int]]
) -> None:
    at = BASE + timedelta(days=1)
    values = {"created_at": at, "status": "delivered", "delivered_at": at,
              "po_number": "PO-1", "ack_action": "confirmed", "pricing_type": "regular",
              "pricing_category": "utility", "recipient_country": "34"}  # fmt: skip
    apply(engine, [("insert", {**values, "tenant_id": "beta",
                               "supplier_id": suppliers["beta"][0]})])  # fmt: skip
    set_rate(engine, "acme", market="*", category="*", rate="1", currency="EUR",
             effective_from=BASE - timedelta(days=1))  # fmt: skip
    flt = stats.StatsFilter(tenant_ids=("acme",), start=BASE.date(),
                            end=BASE.date() + timedelta(days=13))  # fmt: skip
    assert stats.acknowledgements(engine, flt).notices == 0
    assert stats.supplier_table(engine, flt).empty
    assert stats.cost(engine, flt).totals == {}
    both = stats.StatsFilter(tenant_ids=("acme", "beta"), start=flt.start, end=flt.end)
    assert stats.acknowledgements(engine, both).confirmed == 1
    assert stats.cost(engine, both).totals == {}  # beta has no rate card
    assert stats.cost(engine, both).unpriced_messages == 1


def test_the_cost_of_a_rate_change_mid_hour_is_split_exactly(engine: Engine) -> None:
    set_rate(engine, "acme", market="*", category="utility", rate="0.01", currency="EUR",
             effective_from=BASE - timedelta(days=1))  # fmt: skip
    change = BASE + timedelta(days=2, hours=10, minutes=17)
    set_rate(engine, "acme", market="*", category="utility", rate="0.03", currency="EUR",
             effective_from=change)  # fmt: skip
    priced = {"tenant_id": "acme", "status": "delivered", "pricing_type": "regular",
              "pricing_category": "utility", "recipient_country": "34"}  # fmt: skip
    ops = [("insert", {**priced, "created_at": change + timedelta(minutes=m),
                       "delivered_at": change + timedelta(minutes=m + 1)})
           for m in (-16, -1, 0, 30, 120)]  # fmt: skip
    apply(engine, ops)
    flt = stats.StatsFilter(tenant_ids=("acme",), start=BASE.date(),
                            end=BASE.date() + timedelta(days=6))  # fmt: skip
    assert stats.cost(engine, flt).totals == {"EUR": Decimal("0.11")}  # 2 x 0.01 + 3 x 0.03
    assert_same(engine, flt)


# --- the range cutting itself --------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "inner", "edges"),
    [
        ("2026-11-02 00:00", "2026-11-02 05:00", ("00:00", "05:00"), []),
        ("2026-11-01 18:30", "2026-11-02 18:30", ("19:00", "18:00"),
         [("18:30", "19:00"), ("18:00", "18:30")]),
        ("2026-11-02 10:17", "2026-11-02 10:59", None, [("10:17", "10:59")]),
    ],
)  # fmt: skip
def test_split_into_whole_hours_and_edges(
    start: str, end: str, inner: tuple[str, str] | None, edges: list[tuple[str, str]]
) -> None:
    def at(value: str) -> datetime:
        return datetime.fromisoformat(value).replace(tzinfo=UTC)

    parts = split(at(start), at(end), "hour")
    hm = "%H:%M"
    got_inner = None if parts.inner is None else tuple(t.strftime(hm) for t in parts.inner)
    assert got_inner == inner
    assert [tuple(t.strftime(hm) for t in e) for e in parts.edges] == edges


@given(st.integers(0, 10**8), st.integers(0, 10**8))
def test_split_covers_the_range_exactly_once(a: int, b: int) -> None:
    start, end = BASE + timedelta(seconds=min(a, b)), BASE + timedelta(seconds=max(a, b))
    units: tuple[Unit, ...] = ("hour", "week")
    for unit in units:
        parts = split(start, end, unit)
        pieces = sorted([*parts.edges, *([parts.inner] if parts.inner else [])])
        if start == end:
            assert pieces == []
            continue
        assert pieces[0][0] == start and pieces[-1][1] == end
        assert all(p[1] == q[0] for p, q in itertools.pairwise(pieces))
        if parts.inner:
            lo, hi = parts.inner
            assert floor_to(lo, unit) == lo and floor_to(hi, unit) == hi
            assert lo == ceil_to(start, unit)
            if unit == "week":
                assert lo.weekday() == 0 and lo.hour == 0
