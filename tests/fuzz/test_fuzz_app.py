"""Fuzz the real webhook app (uvicorn, own process, real database) through both outside doors.

Seeded, generated webhook bodies and ERP events (`webhook_gen`, `erp_gen`) are posted in
three rounds: refusals, then everything correctly signed or keyed (and replays of valid
events), then refusals again. The run holds when:

- no answer is a 5xx, and every answer is one its case allows;
- refusals change nothing: every table's row count (the SQLite inbox's too) and the rows
  of the outbox and the suppliers are the same after them;
- every valid signed status is applied: each tracked message ends in the state the set
  of its statuses implies (stage times the earliest of each), with one timeline row per
  distinct status; the applier set no receipt aside;
- every valid ERP event queued one pending `po_notification` row (202), a replay of it
  is a 200 duplicate naming the same row, and every 202 names a row that exists.

`WANOTIFY_FUZZ_PROFILE=full` (`make fuzz`) sends 10,000 of each and prints the figures.
"""

from __future__ import annotations

import importlib.util
import json
import random
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from core.sandbox.catalog import DEFAULT_TEMPLATE_FIELDS, default_templates
from core.templates import upsert_templates
from tests.core.webhooks.helpers import SECRET, WebhookProcess, add_message, message_row
from tests.fuzz.cases import Case, Outcome, Tally
from tests.fuzz.erp_gen import OTHER_TENANT, ErpGenerator
from tests.fuzz.profile import FuzzProfile, fuzz_profile
from tests.fuzz.runner import differences, post_all, snapshot
from tests.fuzz.webhook_gen import TrackedMessage, WebhookGenerator

TENANT = "default"
KEY = "fuzz-Key-5b1e9c0d7a3f4e62"
#: Refusal bookkeeping that refusals may write (issue 10 item 6: health counts refused
#: signatures); every other table must be unchanged by a refusal.
REFUSAL_BOOKKEEPING = ("webhook_rejections", "signature_alerts")
LIVE_ENV = {
    "WHATSAPP_ACCESS_TOKEN": "EAAG-fuzz-token",
    "WHATSAPP_PHONE_NUMBER_ID": "106540352242922",  # the number its webhook bodies name
    "WHATSAPP_BUSINESS_ACCOUNT_ID": "1029384756",
    "WHATSAPP_API_BASE_URL": "http://127.0.0.1:9",  # nothing is sent by this process
    "PO_EVENTS_API_KEY": KEY,
}
#: Share of each door's requests that are refusals (half before, half after the rest).
REFUSED_SHARE = 0.3
REPLAY_SHARE = 0.05


def per_tenant_keys() -> bool:
    """True once ERP keys belong to one tenant (issue 10 item 5)."""
    return importlib.util.find_spec("core.api_keys") is not None


def stored_keys(engine: Engine) -> tuple[str | None, str | None]:
    """Once keys are per tenant: a stored key of the other tenant, and a revoked one."""
    if not per_tenant_keys():
        return None, None
    from core.api_keys import add_key, revoke_key

    other = add_key(engine, OTHER_TENANT, "fuzz ERP")
    revoked = add_key(engine, TENANT, "fuzz revoked")
    revoke_key(engine, revoked.info.prefix)
    return other.key, revoked.key


def seed_database(
    engine: Engine, profile: FuzzProfile, rng: random.Random
) -> tuple[list[TrackedMessage], list[str]]:
    """Templates for both tenants; outbox rows for valid statuses (tracked) and mutated ones."""
    definitions = [t.as_graph(DEFAULT_TEMPLATE_FIELDS) for t in default_templates()]
    for tenant in (TENANT, OTHER_TENANT):
        upsert_templates(engine, tenant, definitions)
    tracked = []
    for i in range(profile.tracked_messages):
        wamid = f"wamid.FZT{i:06d}{rng.getrandbits(48):012x}"
        tracked.append(TrackedMessage(add_message(engine, wamid=wamid), wamid))
    targets = []
    for i in range(max(profile.tracked_messages // 4, 1)):
        wamid = f"wamid.FZG{i:06d}{rng.getrandbits(48):012x}"
        add_message(engine, wamid=wamid)
        targets.append(wamid)
    return tracked, targets


def plan(
    profile: FuzzProfile, webhooks: WebhookGenerator, erp: ErpGenerator, rng: random.Random
) -> dict[str, list[Case]]:
    """Every case of the run, by round, drawn from the seed alone."""
    refused_webhooks = round(profile.webhook_bodies * REFUSED_SHARE)
    refused_erp = round(profile.erp_events * REFUSED_SHARE)
    replays = round(profile.erp_events * REPLAY_SHARE)
    refused = [webhooks.refused_case() for _ in range(refused_webhooks)]
    refused += [erp.refused_case() for _ in range(refused_erp)]
    accepted = [webhooks.accepted_case() for _ in range(profile.webhook_bodies - refused_webhooks)]
    accepted += [erp.accepted_case() for _ in range(profile.erp_events - refused_erp - replays)]
    replayed = [erp.replay_case(rng.choice(erp.valid_po_numbers)) for _ in range(replays)]
    rng.shuffle(refused)
    rng.shuffle(accepted)
    half = len(refused) // 2
    return {
        "refused": refused[:half],
        "accepted": accepted,
        "replays": replayed,
        "refused_again": refused[half:],
    }


def unix(at: datetime | None) -> int | None:
    """An aware time as a unix second (None stays None)."""
    return None if at is None else int(at.astimezone(UTC).timestamp())


def check_tracked(engine: Engine, tracked: list[TrackedMessage]) -> list[str]:
    """Each tracked message's state and timeline against the statuses it was sent."""
    problems = []
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT wamid, count(*) FROM message_status_events GROUP BY wamid")
        ).all()
    timeline = {str(r[0]): int(r[1]) for r in rows}
    for message in tracked:
        row = message_row(engine, message.id)
        status, stages = message.expected()
        found = {name: unix(row[name]) for name in stages}
        if (row["status"], found) != (status, stages):
            problems.append(f"{message.wamid}: {row['status']} {found}, expected {status} {stages}")
        if status == "failed" and row["error_code"] != 131026:
            problems.append(f"{message.wamid}: failed without its error code ({row['error_code']})")
        if timeline.get(message.wamid, 0) != len(message.events):
            problems.append(
                f"{message.wamid}: {timeline.get(message.wamid, 0)} timeline rows, "
                f"sent {len(message.events)} distinct"
            )
    return problems


def check_erp(
    engine: Engine, outcomes: list[Outcome], tenants: dict[str, str]
) -> tuple[list[str], int]:
    """Valid events queued once (replays name the same row); every 202 names a row."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT id, po_number, status, tenant_id, template_name FROM whatsapp_messages"
                " WHERE po_number IS NOT NULL"
            )
        ).all()
    by_id = {str(r.id): r for r in rows}
    problems: list[str] = []
    queued: dict[str, str] = {}
    applied = 0
    for outcome in outcomes:
        if outcome.case.door != "erp" or outcome.status not in (200, 202):
            continue
        answer = json.loads(outcome.text)
        row = by_id.get(answer.get("message_id"))
        if row is None:
            problems.append(
                f"{outcome.case.kind} {outcome.status} names no row: {outcome.text[:120]}"
            )
            continue
        ref = outcome.case.ref
        if outcome.case.kind == "valid":
            tenant = tenants.get(str(ref))
            if (row.po_number, row.status, row.tenant_id, row.template_name) != (
                ref,
                "pending",
                tenant,
                "po_notification",
            ):
                problems.append(f"valid event {ref}: row {tuple(row)}")
            else:
                applied += 1
            queued[str(ref)] = row.id
        elif outcome.case.kind == "replay" and queued.get(str(ref)) != row.id:
            problems.append(f"replay of {ref} named {row.id}, not {queued.get(str(ref))}")
    return problems, applied


def report(profile: FuzzProfile, tally: Tally, figures: dict[str, Any]) -> str:
    """The run's figures, for a person (printed; `make fuzz` shows it)."""
    lines = [
        f"fuzz profile {profile.name}, seed {profile.seed}, "
        f"{figures['duration_s']:.1f} s of requests"
    ]
    for door in ("webhook", "erp"):
        lines.append(
            f"  {door}: {tally.sent(door)} requests; "
            f"answers {dict(sorted(tally.by_status[door].items()))}"
        )
        kinds = Counter({k: v for k, v in tally.by_kind[door].items()})
        lines += [f"    {kind}: {count}" for kind, count in sorted(kinds.items())]
    lines += [f"  {name}: {value}" for name, value in figures.items() if name != "duration_s"]
    return "\n".join(lines)


@pytest.mark.slow
def test_fuzz_the_real_app(database_url: str, engine: Engine, tmp_path: Path) -> None:
    profile = fuzz_profile()
    rng = random.Random(profile.seed)
    tracked, targets = seed_database(engine, profile, rng)
    webhooks = WebhookGenerator(random.Random(rng.random()), SECRET, tracked, targets)
    other_key, revoked_key = stored_keys(engine)
    erp = ErpGenerator(
        random.Random(rng.random()),
        TENANT,
        KEY,
        per_tenant_keys=per_tenant_keys(),
        other_key=other_key,
        revoked_key=revoked_key,
    )
    rounds = plan(profile, webhooks, erp, rng)
    tally = Tally()
    outcomes: list[Outcome] = []
    changed: dict[str, Any] = {}
    started = time.monotonic()
    with WebhookProcess(database_url, env=LIVE_ENV, log_path=tmp_path / "webhook.log") as app:
        for name in ("refused", "accepted", "replays", "refused_again"):
            before = snapshot(engine) if name.startswith("refused") else None
            outcomes += post_all(app.url, rounds[name], profile.concurrency, tally)
            health = app.wait_applied(timeout=600)
            assert health["backlog"] == 0, f"the applier did not drain after {name}: {health}"
            if before is not None:
                changed[name] = differences(before, snapshot(engine), REFUSAL_BOOKKEEPING)
        health = app.health()
    duration = time.monotonic() - started
    tracked_problems = check_tracked(engine, tracked)
    erp_problems, erp_applied = check_erp(engine, outcomes, erp.tenant_of)
    valid_statuses = sum(1 for o in outcomes if o.case.kind == "valid_status")
    figures = {
        "duration_s": duration,
        "server errors (5xx)": tally.server_errors(),
        "answers outside the allowed set": len(tally.unexpected),
        "tables changed by refusals": {k: v for k, v in changed.items() if v} or 0,
        "valid signed status bodies": valid_statuses,
        "tracked messages in the expected state": (
            f"{len(tracked) - len(tracked_problems)}/{len(tracked)}"
        ),
        "valid ERP events queued": f"{erp_applied}/{len(erp.valid_po_numbers)}",
        "receipts the applier set aside": health["failed_receipts"],
        "per-tenant ERP keys checked": per_tenant_keys(),
    }
    print("\n" + report(profile, tally, figures))
    unexpected = [
        f"{o.case.door}/{o.case.kind}: {o.status} {o.text[:150]!r} body={o.case.body[:150]!r}"
        for o in tally.unexpected[:20]
    ]
    log_tail = (tmp_path / "webhook.log").read_text(errors="replace")[-3000:]
    assert not unexpected, (
        f"{len(tally.unexpected)} answers not allowed:\n"
        + "\n".join(unexpected)
        + f"\n--- the app's log ends:\n{log_tail}"
    )
    assert not any(changed.values()), f"refused requests changed rows: {changed}"
    assert not tracked_problems, "\n".join(tracked_problems[:20])
    assert not erp_problems, "\n".join(erp_problems[:20])
    assert erp_applied == len(erp.valid_po_numbers)
    assert health["failed_receipts"] == 0, health
