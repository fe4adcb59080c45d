"""Two `wanotify worker` processes, two tenants' numbers: each process runs a dispatcher
per number, and the two dispatchers of a number split that number's cap through the
database (`core.sender.budget`, keyed by phone number id), never sending twice."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine

from core.db import get_engine
from core.models.messages import MessageStatus
from core.numbers.admin import add_number
from core.numbers.secrets import new_key
from core.outbox import enqueue_many
from core.sandbox import SandboxServer
from core.sandbox.server import sandbox_numbers
from core.settings import get_settings, load_settings
from tests.core.sender.helpers import (
    notice,
    phone,
    rows,
    start_worker,
    stop_worker,
    unsettled,
    wait_until,
    worker_env,
)
from tests.test_several_workers import shared_database  # noqa: F401 - a fixture

CAP = 20
PER_TENANT = 60
NUMBERS = sandbox_numbers(2, mps=10_000)  # the sandbox far above the cap: it measures


@pytest.mark.slow
def test_two_workers_share_each_numbers_cap(
    shared_database: str,  # noqa: F811 - the imported fixture
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key = new_key()
    monkeypatch.setenv("WANOTIFY_SECRET_KEY", key)
    get_settings.cache_clear()
    engine: Engine = get_engine(shared_database)
    settings = load_settings()
    tenants = {"bakery": NUMBERS[0], "dairy": NUMBERS[1]}
    for tenant, number in tenants.items():
        add_number(
            engine,
            settings,
            tenant_id=tenant,
            phone_number_id=number["phone_number_id"],
            access_token=number["access_token"],
            max_mps=CAP,
        )
    ids = {
        tenant: [
            r.message.id
            for r in enqueue_many(
                [
                    notice(phone(n * 1000 + i), f"{tenant}-{i}", tenant_id=tenant)
                    for i in range(PER_TENANT)
                ],
                engine=engine,
            )
        ]
        for n, tenant in enumerate(tenants)
    }
    with SandboxServer(numbers=NUMBERS, latency_ms=100) as sandbox:
        env = worker_env(
            shared_database,
            sandbox.url,
            WANOTIFY_SECRET_KEY=key,
            WHATSAPP_RATE_MARGIN_SECONDS="0.25",
        )
        log = tmp_path / "workers.log"
        workers = [start_worker(env, f"w{n}", log) for n in range(2)]
        try:
            wait_until(
                lambda: unsettled(engine) == 0,
                PER_TENANT / CAP * 8 + 60,
                "the workers to send everything",
            )
        finally:
            codes = [stop_worker(w) for w in workers]
        stats = sandbox.stats()
        sent_from = {
            m["biz_opaque_callback_data"]: m["phone_number_id"]
            for m in sandbox.messages(limit=1000)
        }
    text = log.read_text()[-3000:]
    assert codes == [0, 0], text
    assert stats["accepted"] == 2 * PER_TENANT
    assert stats["duplicates"] == []  # no message sent twice
    final = rows(engine)
    assert {m.status for m in final.values()} == {MessageStatus.ACCEPTED}
    for tenant, number in tenants.items():
        ident = number["phone_number_id"]
        assert {sent_from[i] for i in ids[tenant]} == {ident}
        assert stats["numbers"][ident]["max_in_window"] <= CAP, text  # both workers together
        workers_of_number = {(final[i].claimed_by or "").split("#")[0] for i in ids[tenant]}
        assert workers_of_number == {"w0", "w1"}, text  # both took part, for each number
