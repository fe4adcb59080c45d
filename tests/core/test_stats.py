"""core.stats on a real SQLite file (or PostgreSQL): every figure from known rows."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import Engine, text

from core import stats
from core.db import session_scope
from core.i18n import set_locale
from core.models.events import InboundMessage, PoAcknowledgement
from core.models.messages import WhatsAppMessage
from core.models.suppliers import Supplier
from core.pricing import ensure_default_rate_card, set_rate

pytestmark = pytest.mark.clock  # decides by dates or ages: also run a year ahead

T0 = datetime(2026, 11, 10, 9, 0, tzinfo=UTC)
_ids = itertools.count(1)


def supplier(engine: Engine, name: str, tenant: str = "acme") -> int:
    with session_scope(engine) as session:
        row = Supplier(tenant_id=tenant, name=name, phone_e164=f"+3461{next(_ids):07d}")
        session.add(row)
        session.flush()
        assert row.id is not None
        return row.id


def message(engine: Engine, *, tenant: str = "acme", at: datetime = T0, **values: Any) -> str:
    """One outbox row; `sent`, `delivered`, `read` are seconds after `at` (or None)."""
    n = next(_ids)
    sent = values.pop("sent", 2)
    delivered = values.pop("delivered", None)
    read = values.pop("read", None)
    status = values.pop("status", None)
    if status is None:
        status = "read" if read is not None else "delivered" if delivered is not None else "sent"
    row = WhatsAppMessage(
        tenant_id=tenant,
        idempotency_key=f"test:{n}",
        recipient_phone=values.pop("phone", "+34612000001"),
        request_payload={},
        template_name=values.pop("template", "po_notification"),
        status=status,
        created_at=at,
        updated_at=at,
        accepted_at=at + timedelta(seconds=1) if sent is not None else None,
        sent_at=at + timedelta(seconds=sent) if sent is not None else None,
        delivered_at=at + timedelta(seconds=delivered) if delivered is not None else None,
        read_at=at + timedelta(seconds=read) if read is not None else None,
        recipient_country=values.pop("country", "34"),
        **values,
    )
    with session_scope(engine) as session:
        session.add(row)
    return row.id


def reply(engine: Engine, message_id: str, at: datetime, kind: str = "text") -> None:
    with session_scope(engine) as session:
        session.add(
            InboundMessage(
                tenant_id="acme", wamid=f"wamid.in{next(_ids)}", from_wa_id="34612000001",
                message_type=kind, text="ok", context_message_id=message_id, at=at,
                received_at=at,
            )
        )  # fmt: skip


def ack(engine: Engine, message_id: str, action: str, at: datetime) -> None:
    with session_scope(engine) as session:
        session.add(
            PoAcknowledgement(
                tenant_id="acme", po_number="PO-1", message_id=message_id,
                inbound_wamid=f"wamid.ack{next(_ids)}", action=action, at=at,
            )
        )  # fmt: skip


def flt(**overrides: Any) -> stats.StatsFilter:
    values: dict[str, Any] = {
        "tenant_ids": ("acme",),
        "start": date(2026, 11, 1),
        "end": date(2026, 11, 30),
        "tz": "Europe/Madrid",
    }
    values.update(overrides)
    return stats.StatsFilter(**values)


# --- the filter ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message_part"),
    [
        ({"tenant_ids": ()}, "tenant"),
        ({"start": date(2026, 11, 30), "end": date(2026, 11, 1)}, "before the start"),
        ({"tz": "Mars/Olympus"}, "Unknown time zone"),
        ({"tz": "../../etc/passwd"}, "Unknown time zone"),
        ({"start": date(2010, 1, 1), "end": date(2026, 1, 1)}, "ten years"),
    ],
)
def test_unusable_filters_are_refused_with_a_reason(
    overrides: dict[str, Any], message_part: str
) -> None:
    with pytest.raises(stats.StatsFilterError, match=message_part):
        flt(**overrides)


def test_days_are_cut_in_the_viewers_zone_across_a_dst_change() -> None:
    f = flt(start=date(2026, 10, 24), end=date(2026, 10, 26))
    buckets = stats.time_buckets(f)
    assert [b.label for b in buckets] == [date(2026, 10, d) for d in (24, 25, 26)]
    # Madrid leaves summer time on 25 Oct: that local day lasts 25 hours.
    assert [(b.end - b.start) for b in buckets] == [
        timedelta(hours=24), timedelta(hours=25), timedelta(hours=24)
    ]
    assert buckets[0].start == datetime(2026, 10, 23, 22, 0, tzinfo=UTC)


def test_long_ranges_switch_to_weeks_then_months() -> None:
    assert stats.granularity_for(flt(start=date(2026, 1, 1), end=date(2026, 3, 1))) == "day"
    weekly = flt(start=date(2026, 1, 1), end=date(2026, 9, 1))
    assert stats.granularity_for(weekly) == "week"
    labels = [b.label for b in stats.time_buckets(weekly)]
    assert labels[0] == date(2026, 1, 1) and all(d.weekday() == 0 for d in labels[1:])
    assert stats.granularity_for(flt(start=date(2020, 1, 1), end=date(2026, 1, 1))) == "month"


# --- the figures ---------------------------------------------------------------------


def test_funnel_counts_each_stage_and_leaves_out_cancelled_and_other_tenants(
    engine: Engine,
) -> None:
    delivered = message(engine, delivered=10)
    read = message(engine, delivered=10, read=100)
    message(engine)  # sent only
    message(engine, sent=None, status="failed", error_code=131026)
    message(engine, sent=None, status="pending")
    message(engine, sent=None, status="needs_attention")
    message(engine, sent=None, status="cancelled")
    message(engine, tenant="other", delivered=5, read=6)
    message(engine, at=T0 - timedelta(days=30), delivered=5)  # before the range
    reply(engine, read, T0 + timedelta(hours=1))
    reply(engine, read, T0 + timedelta(hours=2))  # a second reply: still one message
    ack(engine, delivered, "confirmed", T0 + timedelta(hours=1))

    f = stats.funnel(engine, flt())

    assert (f.total, f.sent, f.delivered, f.read, f.replied) == (6, 3, 2, 1, 2)
    assert (f.failed, f.queued) == (1, 2)
    frame = f.frame()
    assert list(frame["stage"]) == ["sent", "delivered", "read", "replied"]
    assert frame["rate"].iloc[1] == pytest.approx(2 / 3)  # delivered, of sent
    assert frame["rate"].iloc[2] == pytest.approx(1 / 2)  # read, of delivered
    assert frame["rate"].iloc[3] == pytest.approx(2 / 2)  # answered, of delivered
    assert list(frame["rate_key"])[1:] == ["delivery_rate", "read_rate", "reply_rate"]


def test_template_and_supplier_filters_narrow_every_count(engine: Engine) -> None:
    a, b = supplier(engine, "Alfa"), supplier(engine, "Beta")
    message(engine, supplier_id=a, template="po_notification", delivered=3)
    message(engine, supplier_id=b, template="po_notification")
    message(engine, supplier_id=b, template="delivery_reminder", delivered=3)

    assert stats.funnel(engine, flt(supplier_ids=(b,))).total == 2
    assert stats.funnel(engine, flt(template_names=("delivery_reminder",))).delivered == 1
    both = flt(supplier_ids=(b,), template_names=("po_notification",))
    assert stats.funnel(engine, both).total == 1


def test_a_foreign_tenants_rows_never_leak_into_a_read(engine: Engine) -> None:
    message(engine, tenant="other", delivered=3, status="failed", error_code=131026)
    assert stats.report(engine, flt()).empty
    assert stats.failures_by_reason(engine, flt()).empty


def test_daily_rates_have_a_row_per_local_day_with_zeros(engine: Engine) -> None:
    late_evening = datetime(2026, 11, 10, 23, 30, tzinfo=UTC)  # 00:30 on the 11th in Madrid
    message(engine, at=late_evening, delivered=5, read=9)
    message(engine, at=datetime(2026, 11, 10, 12, 0, tzinfo=UTC), delivered=5)
    message(engine, at=datetime(2026, 11, 10, 13, 0, tzinfo=UTC), sent=None, status="failed")

    daily = stats.daily_rates(engine, flt(start=date(2026, 11, 9), end=date(2026, 11, 12)))

    assert list(daily["bucket"]) == [date(2026, 11, d) for d in (9, 10, 11, 12)]
    assert list(daily["messages"]) == [0, 2, 1, 0]
    tenth = daily.iloc[1]
    assert (tenth["sent"], tenth["delivered"], tenth["failed"]) == (1, 1, 1)
    assert tenth["failure_rate"] == pytest.approx(0.5)
    assert pd_isna(daily.iloc[0]["delivery_rate"])  # no sends: no rate, not 0 %
    assert daily.iloc[2]["read_rate"] == 1.0


def pd_isna(value: object) -> bool:
    return value is None or value != value  # NaN is the only value unequal to itself


def test_latency_bins_and_percentiles(engine: Engine) -> None:
    for seconds in (3, 4, 10, 10, 40, 4000):  # sent at +2 s
        message(engine, delivered=2 + seconds)

    lat = stats.latency(engine, flt(), "deliver")

    counts = dict(zip(lat.bins["label"], lat.bins["messages"], strict=True))
    assert counts["under 5 s"] == 2
    assert counts["5 s–15 s"] == 2
    assert counts["30 s–1 min"] == 1
    assert counts["1 h–3 h"] == 1
    assert lat.count == 6
    assert lat.p50_seconds is not None and 5 <= lat.p50_seconds <= 15
    assert lat.p90_seconds is not None and lat.p90_seconds >= 3600
    assert stats.latency(engine, flt(), "read").count == 0


def test_latency_refuses_an_unknown_stage(engine: Engine) -> None:
    with pytest.raises(stats.StatsFilterError):
        stats.latency(engine, flt(), "replied")  # type: ignore[arg-type]


def test_failures_are_explained_in_human_words_most_common_first(engine: Engine) -> None:
    for _ in range(3):
        message(engine, sent=None, status="failed", error_code=131026)
    message(engine, sent=None, status="failed", error_code=999999, error_title="Odd new thing")
    message(engine, sent=None, status="failed")

    failures = stats.failures_by_reason(engine, flt())

    assert list(failures["messages"]) == [3, 1, 1]
    assert failures["reason"].iloc[0].startswith("Undeliverable")
    reasons = set(failures["reason"])
    assert "Odd new thing" in reasons  # Meta's own words for a code we do not know
    assert "Unknown error" in reasons
    assert failures["share"].sum() == pytest.approx(1.0)


def test_supplier_table_counts_replies_once_per_message(engine: Engine) -> None:
    a, b = supplier(engine, "Alfa"), supplier(engine, "Beta")
    m1 = message(engine, supplier_id=a, delivered=3, read=5)
    message(engine, supplier_id=a, delivered=3)
    message(engine, supplier_id=b, sent=None, status="failed")
    message(engine)  # a bare number, no supplier record
    reply(engine, m1, T0 + timedelta(hours=1))
    ack(engine, m1, "confirmed", T0 + timedelta(hours=2))

    table = stats.supplier_table(engine, flt())

    alfa = table[table["supplier"] == "Alfa"].iloc[0]
    assert (alfa["messages"], alfa["delivered"], alfa["read"], alfa["replied"]) == (2, 2, 1, 1)
    assert alfa["reply_rate"] == pytest.approx(0.5)
    assert "(no supplier record)" in set(table["supplier"])
    assert table[table["supplier"] == "Beta"].iloc[0]["failed"] == 1


def test_supplier_table_tells_namesakes_apart_by_phone(engine: Engine) -> None:
    north, south = supplier(engine, "Acme S.L."), supplier(engine, "ACME s.l.")
    alone = supplier(engine, "Beta")
    for supplier_id in (north, north, south, alone):
        message(engine, supplier_id=supplier_id)
    shown = set(stats.supplier_table(engine, flt())["supplier"])
    assert "Beta" in shown  # no namesake: the name alone, as before
    namesakes = sorted(label for label in shown if label.casefold().startswith("acme"))
    assert len(namesakes) == 2 and all(" · +34 61" in label for label in namesakes)


def test_acknowledgements_count_each_notice_by_its_latest_answer(engine: Engine) -> None:
    changed_mind = message(engine, po_number="PO-1", delivered=3)
    confirmed = message(engine, po_number="PO-2", delivered=3)
    message(engine, po_number="PO-3", delivered=3)  # no answer
    message(engine, po_number="PO-4")  # not delivered
    not_a_notice = message(engine, delivered=3)
    ack(engine, changed_mind, "confirmed", T0 + timedelta(hours=1))
    ack(engine, changed_mind, "rejected", T0 + timedelta(hours=3))
    ack(engine, changed_mind, "confirmed", T0 + timedelta(hours=2))  # late, out of order
    ack(engine, confirmed, "confirmed", T0 + timedelta(hours=1))
    ack(engine, not_a_notice, "confirmed", T0 + timedelta(hours=1))

    acks = stats.acknowledgements(engine, flt())

    assert (acks.notices, acks.delivered, acks.acknowledged) == (4, 3, 2)
    assert (acks.confirmed, acks.rejected) == (1, 1)
    assert acks.rate == pytest.approx(2 / 3)


def test_reply_columns_are_kept_by_the_database_whoever_writes(engine: Engine) -> None:
    mid = message(engine, po_number="PO-9", delivered=3)
    reply(engine, mid, T0 + timedelta(hours=5))
    ack(engine, mid, "rejected", T0 + timedelta(hours=4))
    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT replied_at, ack_action FROM whatsapp_messages WHERE id = :id"),
            {"id": mid},
        ).one()
    assert row.ack_action == "rejected"
    assert str(row.replied_at).startswith("2026-11-10 13:00")  # the earliest answer


def test_cost_uses_the_rate_in_force_for_each_message(engine: Engine) -> None:
    set_rate(engine, "acme", market="34", category="utility", rate="0.0200", currency="EUR",
             effective_from=datetime(2026, 1, 1, tzinfo=UTC))  # fmt: skip
    # A price change at noon UTC on 15 Nov, mid-day in Madrid.
    set_rate(engine, "acme", market="34", category="utility", rate="0.0300", currency="EUR",
             effective_from=datetime(2026, 11, 15, 12, 0, tzinfo=UTC))  # fmt: skip
    priced: dict[str, Any] = {
        "pricing_category": "utility", "pricing_type": "regular", "delivered": 4
    }  # fmt: skip
    message(engine, at=datetime(2026, 11, 15, 11, 0, tzinfo=UTC), **priced)
    message(engine, at=datetime(2026, 11, 15, 13, 0, tzinfo=UTC), **priced)
    message(engine, at=datetime(2026, 11, 16, 9, 0, tzinfo=UTC), **priced)
    message(engine, pricing_category="utility", pricing_type="free_customer_service",
            delivered=4)  # fmt: skip
    message(engine, pricing_category="marketing", pricing_type="regular", delivered=4)
    message(engine, delivered=4)  # Meta reported no pricing yet
    message(engine, pricing_category="utility", pricing_type="regular")  # not delivered

    report = stats.cost(engine, flt())

    assert report.totals == {"EUR": Decimal("0.08")}
    assert isinstance(report.totals["EUR"], Decimal)
    assert (report.charged_messages, report.free_messages) == (3, 1)
    assert (report.unpriced_messages, report.unreported_messages) == (1, 1)
    assert not report.uses_example_rates
    fifteenth = report.by_bucket[report.by_bucket["bucket"] == date(2026, 11, 15)]
    assert fifteenth["cost"].iloc[0] == Decimal("0.05")


def test_cost_with_the_example_card_says_it_is_an_estimate(engine: Engine) -> None:
    ensure_default_rate_card(engine, "acme")
    message(engine, pricing_category="utility", pricing_type="regular", delivered=4,
            country="44")  # fmt: skip
    report = stats.cost(engine, flt())
    assert report.uses_example_rates
    assert report.totals == {"USD": Decimal("0.022")}


def test_filter_options_list_only_the_tenants_own(engine: Engine) -> None:
    supplier(engine, "Zeta")
    supplier(engine, "Alfa")
    supplier(engine, "Foreign", tenant="other")
    names = [label.split(" · ")[0] for _, label in stats.supplier_options(engine, ["acme"])]
    assert names == ["Alfa", "Zeta"]
    assert stats.template_options(engine, ["acme"]) == []


def test_report_bundles_every_figure(engine: Engine) -> None:
    message(engine, delivered=3, read=8, po_number="PO-1")
    data = stats.report(engine, flt())
    assert not data.empty
    assert data.funnel.read == 1
    assert data.granularity == "day"
    assert len(data.daily) == 30
    assert data.to_read.count == 1
    assert data.acknowledgements.notices == 1


def test_report_words_reasons_and_bins_in_the_callers_language(engine: Engine) -> None:
    # report() reads on worker threads: they must use the caller's locale, not English
    message(engine, sent=None, status="failed", error_code=131026)
    message(engine, delivered=3, read=8)
    set_locale("es")
    try:
        data = stats.report(engine, flt())
    finally:
        set_locale("en")
    assert data.failures["reason"].iloc[0].startswith("No se puede entregar")
    assert any(b.startswith("menos de") for b in data.to_read.bins["label"])


@pytest.mark.parametrize(
    "overrides",
    [
        {},  # daily slices
        {"start": date(2026, 8, 1), "end": date(2026, 11, 30)},  # weekly, a partial first
        {"tz": "Asia/Kathmandu", "tenant_ids": ("acme", "other")},  # a :45 zone, two tenants
    ],
)
def test_the_whole_page_gives_each_chart_as_its_own_query_does(
    engine: Engine, overrides: dict[str, Any]
) -> None:
    # report() runs the charts at once and adds the funnel up from the daily slices
    first = message(engine, delivered=3, read=8, po_number="PO-1")
    reply(engine, first, T0 + timedelta(minutes=5))
    ack(engine, first, "confirmed", T0 + timedelta(minutes=6))
    message(engine, at=T0 + timedelta(days=3), status="failed", sent=None, error_code=131026)
    message(engine, at=T0 + timedelta(days=5), status="pending", sent=None)
    message(engine, at=T0 + timedelta(days=9), delivered=30)
    message(engine, tenant="other", at=T0 + timedelta(hours=23, minutes=30), delivered=4)
    message(engine, at=datetime(2026, 10, 31, 23, 30, tzinfo=UTC))  # near a slice edge
    chosen = flt(**overrides)
    page = stats.report(engine, chosen)
    assert page.funnel == stats.funnel(engine, chosen)
    assert page.funnel.total > 0
    pd.testing.assert_frame_equal(page.daily, stats.daily_rates(engine, chosen))
    assert page.to_deliver.count == stats.latency(engine, chosen, "deliver").count
    assert page.to_read.count == stats.latency(engine, chosen, "read").count
    pd.testing.assert_frame_equal(page.failures, stats.failures_by_reason(engine, chosen))
    pd.testing.assert_frame_equal(page.suppliers, stats.supplier_table(engine, chosen))
    assert page.acknowledgements == stats.acknowledgements(engine, chosen)
    alone = stats.cost(engine, chosen)
    for name in ("by_category", "by_bucket"):
        pd.testing.assert_frame_equal(getattr(page.cost, name), getattr(alone, name))
    assert page.cost.totals == alone.totals
    assert page.cost.charged_messages == alone.charged_messages


# --- latency columns kept by the database (migration 0008) ------------------------------


def latency_row(engine: Engine, mid: str) -> tuple[Any, ...]:
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT deliver_seconds, deliver_bin, read_seconds, read_bin "
                "FROM whatsapp_messages WHERE id = :id"
            ),
            {"id": mid},
        ).one()
    return tuple(row)


def test_latency_columns_are_kept_by_the_database_whoever_writes(engine: Engine) -> None:
    mid = message(engine, sent=2, delivered=7)  # exactly 5 s: the bin from 5 s up
    assert latency_row(engine, mid) == (5, 1, None, None)
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE whatsapp_messages SET read_at = :at WHERE id = :id"),
            {"at": T0 + timedelta(seconds=2 + 3600, milliseconds=500), "id": mid},
        )
    assert latency_row(engine, mid) == (5, 1, 3600, 9)
    with engine.begin() as conn:  # no sent time: counted from acceptance (at +1 s)
        conn.execute(text("UPDATE whatsapp_messages SET sent_at = NULL WHERE id = :id"),
                     {"id": mid})  # fmt: skip
    assert latency_row(engine, mid) == (6, 1, 3601, 9)
    with engine.begin() as conn:  # a direct write of the derived columns is undone
        conn.execute(
            text("UPDATE whatsapp_messages SET deliver_seconds = 999, read_bin = 0 WHERE id = :id"),
            {"id": mid},
        )
    assert latency_row(engine, mid) == (6, 1, 3601, 9)
    with engine.begin() as conn:
        conn.execute(text("UPDATE whatsapp_messages SET delivered_at = NULL WHERE id = :id"),
                     {"id": mid})  # fmt: skip
    assert latency_row(engine, mid) == (None, None, 3601, 9)
    with engine.begin() as conn:  # no start at all: no latency
        conn.execute(text("UPDATE whatsapp_messages SET accepted_at = NULL WHERE id = :id"),
                     {"id": mid})  # fmt: skip
    assert latency_row(engine, mid) == (None, None, None, None)


def test_latency_columns_are_set_when_a_row_is_inserted_complete(engine: Engine) -> None:
    mid = message(engine, sent=2, delivered=2 + 86400 * 4, read=2 + 14)
    assert latency_row(engine, mid) == (86400 * 4, 14, 14, 1)
    pending = message(engine, sent=None, status="pending")
    assert latency_row(engine, pending) == (None, None, None, None)


def test_latency_bins_match_the_timestamps_exactly(engine: Engine) -> None:
    """Many latencies, edges exact and a millisecond either side, fall where they should."""
    offsets = [-3.0, 0.0]
    for edge in stats.LATENCY_EDGES:
        offsets += [edge - 0.001, float(edge), edge + 0.001]
    offsets += [400_000.25, 10 * 365 * 86400.0]
    expected = [0] * (len(stats.LATENCY_EDGES) + 1)
    for seconds in offsets:
        message(engine, sent=2, delivered=2 + seconds, read=2 + seconds)
        expected[sum(1 for edge in stats.LATENCY_EDGES if seconds >= edge)] += 1
    for stage in ("deliver", "read"):
        lat = stats.latency(engine, flt(), stage)
        assert list(lat.bins["messages"]) == expected
        assert lat.count == len(offsets)


def test_latency_counts_each_tenant_of_the_filter_and_no_other(engine: Engine) -> None:
    message(engine, tenant="acme", delivered=2 + 3)
    message(engine, tenant="beta", delivered=2 + 20)
    message(engine, tenant="gamma", delivered=2 + 20)
    message(engine, tenant="beta", delivered=2 + 20, status="cancelled")
    lat = stats.latency(engine, flt(tenant_ids=("acme", "beta")), "deliver")
    assert list(lat.bins["messages"][:3]) == [1, 0, 1]
    assert lat.count == 2


def test_where_refuses_a_tenant_outside_the_filter() -> None:
    with pytest.raises(stats.StatsFilterError):
        stats._where(flt(), tenants=("intruder",))


def test_the_migrations_bins_are_the_charts_bins() -> None:
    """The triggers bin with the edges copied into migration 0008: they must agree."""
    import importlib.util
    from pathlib import Path

    path = Path(stats.__file__).parent / "migrations/versions/0008_analytics_latency.py"
    spec = importlib.util.spec_from_file_location("m0008", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.EDGES == stats.LATENCY_EDGES


def stage_flags(engine: Engine, mid: str) -> stats.StageFlag:
    with engine.connect() as conn:
        value = conn.execute(
            text("SELECT stage_flags FROM whatsapp_messages WHERE id = :id"), {"id": mid}
        ).scalar_one()
    return stats.StageFlag(value)


def test_stage_flags_follow_the_row_whoever_writes(engine: Engine) -> None:
    F = stats.StageFlag
    pending = message(engine, sent=None, status="pending")
    assert stage_flags(engine, pending) == F(0)
    mid = message(engine, delivered=3)
    assert stage_flags(engine, mid) == F.SENT | F.DELIVERED | F.DEQUEUED
    reply(engine, mid, T0 + timedelta(hours=1))  # the 0005 trigger sets replied_at
    assert stage_flags(engine, mid) == F.SENT | F.DELIVERED | F.REPLIED | F.DEQUEUED
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE whatsapp_messages SET status = 'failed', stage_flags = 0 WHERE id = :id"),
            {"id": mid},
        )
    assert stage_flags(engine, mid) == F.SENT | F.DELIVERED | F.REPLIED | F.FAILED | F.DEQUEUED
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE whatsapp_messages SET status = 'cancelled' WHERE id = :id"),
            {"id": pending},
        )
    assert stage_flags(engine, pending) == F.DEQUEUED | F.CANCELLED
    with engine.begin() as conn:  # a row written by raw SQL, not through the model
        conn.execute(
            text(
                "INSERT INTO whatsapp_messages (id, tenant_id, idempotency_key, recipient_phone,"
                " message_type, status, attempt_count, created_at, updated_at, read_at)"
                " VALUES ('raw-1', 'acme', 'raw:1', '+34612000009', 'template', 'needs_attention',"
                " 1, :at, :at, :at)"
            ),
            {"at": T0},
        )
    assert stage_flags(engine, "raw-1") == F.READ


def test_funnel_and_daily_rates_agree_with_the_rows(engine: Engine) -> None:
    """Every combination of stages counted once, by the same rules as the rows say."""
    statuses = ["pending", "sending", "needs_attention", "sent", "delivered", "read", "failed"]
    for i in range(60):
        status = statuses[i % len(statuses)]
        done = status not in ("pending", "sending", "needs_attention")
        mid = message(
            engine, at=T0 + timedelta(hours=i * 7), status=status,
            sent=2 if done else None, delivered=5 if i % 3 else None,
            read=9 if i % 4 == 0 else None,
        )  # fmt: skip
        if i % 5 == 0:
            reply(engine, mid, T0 + timedelta(hours=i * 7 + 1))
    message(engine, status="cancelled", delivered=5)
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT created_at, status, accepted_at, sent_at, delivered_at, read_at,"
                " replied_at FROM whatsapp_messages WHERE status <> 'cancelled'"
            )
        ).all()
    f = stats.funnel(engine, flt())
    assert (f.total, f.sent, f.delivered, f.read, f.replied) == (
        len(rows),
        sum(1 for r in rows if r.accepted_at or r.sent_at),
        sum(1 for r in rows if r.delivered_at),
        sum(1 for r in rows if r.read_at),
        sum(1 for r in rows if r.replied_at),
    )
    assert f.failed == sum(1 for r in rows if r.status == "failed")
    assert f.queued == sum(1 for r in rows if r.status in statuses[:3])
    daily = stats.daily_rates(engine, flt())
    assert int(daily["messages"].sum()) == f.total
    assert int(daily["delivered"].sum()) == f.delivered
    assert int(daily["failed"].sum()) == f.failed
