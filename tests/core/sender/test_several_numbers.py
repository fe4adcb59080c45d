"""Several sending numbers against the sandbox playing them: each tenant's messages go
out from its own number with its own token, a 190 on one number pauses that number
only (and its tenant's Health says so), and one tenant's big batch does not hold back
another tenant's single notice (each number has its own dispatcher)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine

from core.control import sending_state
from core.numbers.admin import add_number
from core.numbers.secrets import new_key
from core.outbox import OutboxError, enqueue_many
from core.routing import NumberError, route
from core.sandbox import SandboxServer
from core.sandbox.server import sandbox_numbers
from core.sender import fleet, run_worker
from core.settings import SANDBOX_PHONE_NUMBER_ID, get_settings, load_settings
from core.system_health import ApiCheck, read_system_health, status_lines
from tests.core.sender.helpers import fast_options, notice, phone, rows, run_drain, wait_until

BAKERY, DAIRY = sandbox_numbers(2, mps=40)
B_ID, C_ID = BAKERY["phone_number_id"], DAIRY["phone_number_id"]
NO_PROBE = ApiCheck(True, True)


@pytest.fixture(scope="module")
def numbers_sandbox() -> Iterator[SandboxServer]:
    """A sandbox playing the environment's number and the bakery's and the dairy's."""
    with SandboxServer(numbers=[BAKERY, DAIRY]) as server:
        yield server


@pytest.fixture
def tenants(
    numbers_sandbox: SandboxServer, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> Iterator[SandboxServer]:
    """The bakery and the dairy each with its own number and token (encrypted at rest);
    the default tenant keeps the environment's number."""
    numbers_sandbox.reset()
    monkeypatch.setenv("WHATSAPP_API_BASE_URL", numbers_sandbox.url)
    monkeypatch.setenv("WANOTIFY_MODE", "sandbox")
    monkeypatch.setenv("WANOTIFY_SECRET_KEY", new_key())
    get_settings.cache_clear()
    settings = load_settings()
    for tenant, number in (("bakery", BAKERY), ("dairy", DAIRY)):
        add_number(
            engine,
            settings,
            tenant_id=tenant,
            phone_number_id=number["phone_number_id"],
            access_token=number["access_token"],
            max_mps=number["mps"],
        )
    yield numbers_sandbox
    get_settings.cache_clear()


def _enqueue(engine: Engine, tenant: str, count: int, start: int = 0) -> list[str]:
    messages = [
        notice(phone(start + i), f"{tenant}-{start + i}", tenant_id=tenant) for i in range(count)
    ]
    return [r.message.id for r in enqueue_many(messages, engine=engine)]


def _sent_from(sandbox: SandboxServer) -> dict[str, str]:
    """Our message id -> the number the sandbox accepted it from."""
    return {
        m["biz_opaque_callback_data"]: m["phone_number_id"] for m in sandbox.messages(limit=5000)
    }


def test_each_message_is_routed_to_its_tenants_number(
    tenants: SandboxServer, engine: Engine
) -> None:
    bakery = _enqueue(engine, "bakery", 2)
    dairy = _enqueue(engine, "dairy", 2, start=10)
    default = _enqueue(engine, "default", 2, start=20)
    stored = rows(engine)
    assert {stored[i].phone_number_id for i in bakery} == {B_ID}
    assert {stored[i].phone_number_id for i in dairy} == {C_ID}
    assert {stored[i].phone_number_id for i in default} == {SANDBOX_PHONE_NUMBER_ID}
    with pytest.raises(OutboxError, match="no WhatsApp number"):
        _enqueue(engine, "stranger", 1, start=30)  # numbers exist, none is theirs
    settings = load_settings()
    assert route(engine, settings, "bakery", B_ID).phone_number_id == B_ID
    for tenant, other in (("bakery", C_ID), ("dairy", SANDBOX_PHONE_NUMBER_ID), ("bakery", "x")):
        with pytest.raises(NumberError, match="not one of tenant"):
            route(engine, settings, tenant, other)  # never another tenant's number

    report = run_drain(engine)
    assert report.accepted == 6 and not report.paused
    sent = _sent_from(tenants)  # each went out from its number, with that number's token
    assert {sent[i] for i in bakery} == {B_ID}
    assert {sent[i] for i in dairy} == {C_ID}
    assert {sent[i] for i in default} == {SANDBOX_PHONE_NUMBER_ID}
    assert tenants.stats(recipients=False)["duplicates"] == []


def test_a_190_pauses_that_number_only(tenants: SandboxServer, engine: Engine) -> None:
    tenants.inject(190, http_status=401, count=1000, phone_number_id=B_ID)
    bakery = _enqueue(engine, "bakery", 3)
    dairy = _enqueue(engine, "dairy", 3, start=10)
    report = run_drain(engine)
    assert report.paused and report.stats.paused_code == 190
    final = rows(engine)
    assert {final[i].status for i in dairy} == {"accepted"}  # the dairy never noticed
    assert {final[i].status for i in bakery} == {"pending"}  # waiting for a person
    assert sending_state(engine, B_ID).paused
    assert not sending_state(engine, C_ID).paused
    assert not sending_state(engine, SANDBOX_PHONE_NUMBER_ID).paused
    settings = load_settings()
    bakery_health = read_system_health(engine, settings, "bakery", api=NO_PROBE)
    assert bakery_health.sending.paused and bakery_health.phone_number_id == B_ID
    assert bakery_health.sending.code == 190
    assert not read_system_health(engine, settings, "dairy", api=NO_PROBE).sending.paused
    lines = status_lines(engine, settings)  # `wanotify status`
    assert "Sending is running." in lines  # the environment's number
    [paused] = [line for line in lines if "PAUSED" in line]
    assert paused.startswith(f"Sending from number {B_ID} is PAUSED")
    assert f"wanotify resume --number {B_ID}" in paused


def test_a_big_batch_does_not_hold_back_another_tenants_notice(
    tenants: SandboxServer, engine: Engine
) -> None:
    """The bakery's 120 rows are queued before the dairy's one notice (older rows are
    claimed first): with one queue the notice would go out last, after three seconds of
    the bakery's sends at its cap of 40. Its own dispatcher sends it at once, among the
    first slices (the benchmark measures the wait: `send_throughput --numbers 3`)."""
    bakery = _enqueue(engine, "bakery", 120)
    [notice_id] = _enqueue(engine, "dairy", 1, start=500)
    report = run_drain(engine, timeout=120)
    assert report.accepted == 121
    order = [m["biz_opaque_callback_data"] for m in tenants.messages(limit=5000)]
    before = order.index(notice_id)
    # one queue: all 120 first; own dispatchers: the notice goes out with the first
    # slices (bounded by two seconds of the bakery's sends, for a loaded machine)
    assert before < 2 * BAKERY["mps"], f"{before} of the bakery's rows went out first"
    assert set(order) == {*bakery, notice_id}
    numbers = tenants.stats(recipients=False)["numbers"]
    assert numbers[B_ID]["max_in_window"] <= BAKERY["mps"]  # its own cap, in any second


def test_a_running_worker_takes_up_a_new_number_and_a_rotated_token(
    tenants: SandboxServer, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Numbers are read again while the worker runs: a number added later gets a
    dispatcher of its own, and a number whose token changed is served with the new one
    (the sandbox refuses the old one), without a restart."""
    monkeypatch.setattr(fleet, "REFRESH_SECONDS", 0.2)
    settings = load_settings()
    new_id, new_token = "300000000000001", "token-of-the-creamery"
    tenants.set_number(new_id, access_token=new_token, mps=40)
    stop = threading.Event()
    seen: list[str] = []

    def worker() -> None:
        async def main() -> None:
            done = asyncio.Event()
            task = asyncio.create_task(
                run_worker(
                    settings,
                    engine,
                    stop=done,
                    options=fast_options(),
                    on_dispatcher=lambda d: seen.append(d.phone_number_id),
                )
            )
            while not stop.is_set():
                await asyncio.sleep(0.05)
            done.set()
            await task

        asyncio.run(main())

    thread = threading.Thread(target=worker)
    thread.start()
    try:
        wait_until(lambda: {B_ID, C_ID} <= set(seen), 30, "a dispatcher per number")
        add_number(
            engine, settings, tenant_id="creamery", phone_number_id=new_id,
            access_token=new_token, max_mps=40,
        )  # fmt: skip
        [added] = _enqueue(engine, "creamery", 1, start=700)
        wait_until(lambda: rows(engine)[added].status == "accepted", 30, "the new number")
        # the bakery's token is rotated: stored, then the old one revoked at Meta
        _rotate(engine, settings, B_ID, "rotated-token")
        wait_until(lambda: seen.count(B_ID) >= 2, 30, "the bakery's dispatcher replaced")
        tenants.set_number(B_ID, access_token="rotated-token")
        [rotated] = _enqueue(engine, "bakery", 1, start=800)
        wait_until(lambda: rows(engine)[rotated].status == "accepted", 30, "the new token")
    finally:
        stop.set()
        thread.join(timeout=60)
    assert not sending_state(engine, B_ID).paused  # never tried with the old token


def _rotate(engine: Engine, settings: Any, phone_number_id: str, token: str) -> None:
    """Store a new token for a number (what `wanotify numbers add` does for a new one)."""
    from sqlmodel import Session, col, select

    from core.models.sender_numbers import SenderNumberRow
    from core.numbers.secrets import encrypt_token

    with Session(engine) as session:
        row = session.exec(
            select(SenderNumberRow).where(col(SenderNumberRow.phone_number_id) == phone_number_id)
        ).one()
        row.token_ciphertext = encrypt_token(settings, token)
        session.add(row)
        session.commit()
