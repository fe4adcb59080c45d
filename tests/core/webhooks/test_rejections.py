"""`core.webhooks.rejections`: refused signatures counted per reason, overtaken by a valid
delivery, written in one upsert per reason, and never lost to a failed write."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine

from core.db import get_engine
from core.webhooks.health import read_health, since_last_valid
from core.webhooks.rejections import (
    RejectionRecorder,
    RejectionRow,
    Tally,
    read_rejections,
    record_rejections,
)

T = datetime(2026, 3, 4, 9, 30, tzinfo=UTC)
S = timedelta(seconds=1)


def stored(engine: Engine) -> dict[str, tuple[int, datetime, datetime]]:
    with engine.connect() as conn:
        return {r.reason: (r.count, r.first_at, r.last_at) for r in read_rejections(conn)}


def test_runs_add_up_per_reason_and_restart_after_a_valid_delivery(engine: Engine) -> None:
    record_rejections(engine, {"bad_signature": Tally(3, T, T + S)}, None)
    record_rejections(engine, {"bad_signature": Tally(2, T + 2 * S, T + 3 * S),
                               "malformed_signature": Tally(1, T, T)}, T - S)  # fmt: skip
    assert stored(engine) == {
        "bad_signature": (5, T, T + 3 * S),
        "malformed_signature": (1, T, T),
    }
    # a valid delivery at T+5s overtook the run: the next refusals count from scratch
    record_rejections(engine, {"bad_signature": Tally(4, T + 9 * S, T + 10 * S)}, T + 5 * S)
    assert stored(engine)["bad_signature"] == (4, T + 9 * S, T + 10 * S)


def test_a_late_write_never_moves_the_last_refusal_back(engine: Engine) -> None:
    record_rejections(engine, {"bad_signature": Tally(1, T + 5 * S, T + 5 * S)}, None)
    record_rejections(engine, {"bad_signature": Tally(1, T, T)}, None)  # another process, slower
    assert stored(engine)["bad_signature"] == (2, T + 5 * S, T + 5 * S)


def test_health_counts_only_refusals_newer_than_the_last_valid_delivery() -> None:
    rows = [
        RejectionRow("bad_signature", 7, T, T + 10 * S),
        RejectionRow("malformed_signature", 2, T, T + 2 * S),
    ]
    assert since_last_valid(rows, None).count == 9
    newer = since_last_valid(rows, T + 5 * S)
    assert (newer.count, newer.first_at, newer.last_at) == (7, T, T + 10 * S)
    assert since_last_valid(rows, T + 10 * S).count == 0
    described = newer.describe() or ""
    assert described.startswith("7 webhook deliveries refused for a bad signature since")
    assert "WHATSAPP_APP_SECRET" in described


def test_read_health_is_degraded_with_the_cause(engine: Engine) -> None:
    assert read_health(engine).status == "ok"
    record_rejections(engine, {"bad_signature": Tally(12, T, T + S)}, None)
    health = read_health(engine)
    assert health.status == "degraded"
    view = health.as_dict()
    assert view["rejected_signatures"] == {
        "count": 12, "first_at": T.isoformat(), "last_at": (T + S).isoformat(),
    }  # fmt: skip
    assert "WHATSAPP_APP_SECRET" in view["causes"][0]


async def test_a_failed_write_keeps_its_counts_for_the_next(
    engine: Engine, tmp_path: Path
) -> None:
    clock = iter(T + n * S for n in range(100))
    unmigrated = get_engine(f"sqlite:///{tmp_path / 'no-schema.db'}")
    recorder = RejectionRecorder(
        unmigrated, lambda _e: None, interval=3600, clock=lambda: next(clock)
    )
    for reason in ("bad_signature", "bad_signature", "missing_signature", "too_large"):
        recorder.note(reason)  # only signature refusals of a signed-looking body count
    await recorder.flush()  # no table there: the write fails, the tally stays
    assert recorder.writes == 0
    recorder.note("bad_signature")
    recorder.engine = engine
    await recorder.close()
    assert recorder.writes == 1
    assert stored(engine) == {"bad_signature": (3, T, T + 2 * S)}
