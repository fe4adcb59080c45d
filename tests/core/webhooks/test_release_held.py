"""Events held for a number nobody had registered are applied once it is registered
(`wanotify numbers add` does it; `numbers apply-held` again), each to its own tenant and
only to messages that went out from that number; health stops counting them."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, text

from core.numbers.admin import add_number
from core.settings import SANDBOX_PHONE_NUMBER_ID, load_settings
from core.webhooks.health import read_health
from core.webhooks.release import Released, release_held_numbers
from tests.core.webhooks.helpers import (
    T0,
    add_message,
    add_supplier,
    apply_all,
    body_of,
    envelope,
    inbound_message,
    journal,
    message_row,
    status,
    timeline,
    value,
)

NEW = "2000005"  # initech's number, registered after its events arrived
STRANGER = "9999999"  # a number nobody registers


def _as(number: str, doc_value: dict[str, Any]) -> bytes:
    doc_value["metadata"] = {"display_phone_number": "34910000005", "phone_number_id": number}
    return body_of(envelope(doc_value))


def _sent_from(engine: Engine, message_id: str, number: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE whatsapp_messages SET phone_number_id = :n WHERE id = :i"),
            {"n": number, "i": message_id},
        )


def _count(engine: Engine, sql: str) -> Any:
    with engine.connect() as conn:
        return conn.execute(text(sql)).scalar_one()


@pytest.fixture
def held(engine: Engine) -> dict[str, str]:
    """initech's message from NEW (as if sent before registration), a status for it, a
    status for a message not there, a status claiming the default tenant's message, and
    a reply to NEW, and replies to NEW and to STRANGER in one delivery: all held, NEW
    being unknown."""
    add_number(
        engine, load_settings(), tenant_id="globex", phone_number_id="2000002", access_token=None
    )  # fmt: skip  (numbers are data: the book is not shared)
    ours = add_message(engine, wamid="wamid.N1", tenant="initech")
    _sent_from(engine, ours, NEW)
    default = add_message(engine, wamid="wamid.D1", tenant="default")
    _sent_from(engine, default, SANDBOX_PHONE_NUMBER_ID)
    supplier = add_supplier(engine, "+34612345678", tenant="initech")
    to_new = inbound_message("wamid.IN-N", "34612345678", "text", text={"body": "hola"})
    to_stranger = inbound_message("wamid.IN-S", "34612345678", "text", text={"body": "eh"})
    journal(
        engine,
        _as(NEW, value(statuses=[status("wamid.N1", "delivered", T0)])),
        _as(NEW, value(statuses=[status("wamid.GONE", "sent", T0)])),
        _as(NEW, value(statuses=[status("wamid.D1", "read", T0)])),  # not NEW's message
        _as(STRANGER, value(statuses=[status("wamid.N1", "read", T0 + 5)])),
    )
    journal(engine, _as(NEW, value(messages=[to_new])))
    again = inbound_message("wamid.IN-N2", "34612345678", "text", text={"body": "ok"})
    mixed = envelope(
        {**value(messages=[again]), "metadata": {"phone_number_id": NEW}},
        {**value(messages=[to_stranger]), "metadata": {"phone_number_id": STRANGER}},
    )  # one delivery, replies to two numbers
    journal(engine, body_of(mixed))
    apply_all(engine)
    health = read_health(engine)
    assert (health.unknown_number, health.held_replies) == (4, 3)
    return {"ours": ours, "default": default, "supplier": str(supplier)}


def test_registering_the_number_applies_what_was_held_for_it(
    engine: Engine, held: dict[str, str]
) -> None:
    info = add_number(engine, load_settings(), tenant_id="initech", phone_number_id=NEW,
                      access_token=None)  # fmt: skip
    assert info.held_applied == 5  # three statuses and two replies
    assert message_row(engine, held["ours"])["status"] == "delivered"
    assert message_row(engine, held["default"])["status"] == "accepted"  # never across
    states = {
        wamid: sorted(e["state"] for e in timeline(engine, wamid))
        for wamid in ("wamid.N1", "wamid.GONE", "wamid.D1")
    }
    assert states == {
        "wamid.N1": ["applied", "unknown_num"],  # the stranger's read stays held
        "wamid.GONE": ["pending"],  # now an ordinary status waiting for its message
        "wamid.D1": ["other_number"],
    }
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT wamid, tenant_id, supplier_id FROM inbound_messages"))
        assert sorted(tuple(r) for r in stored) == [
            ("wamid.IN-N", "initech", int(held["supplier"])),
            ("wamid.IN-N2", "initech", int(held["supplier"])),
        ]
        notes = sorted(
            str(n)
            for n in conn.execute(text("SELECT apply_error FROM webhook_receipts")).scalars()
            if n is not None
        )
    assert len(notes) == 1 and STRANGER in notes[0] and "1 reply" in notes[0]
    health = read_health(engine)
    assert (health.unknown_number, health.held_replies) == (1, 1)
    # Once released, nothing is held for it any more: again does nothing.
    assert release_held_numbers(engine, default_tenant="default") == Released()
    assert _count(engine, "SELECT count(*) FROM inbound_messages") == 2


def test_without_registering_nothing_is_released(engine: Engine, held: dict[str, str]) -> None:
    assert release_held_numbers(engine, default_tenant="default") == Released()
    assert message_row(engine, held["ours"])["status"] == "accepted"
    assert _count(engine, "SELECT count(*) FROM inbound_messages") == 0


def test_apply_held_takes_them_up_when_registering_could_not(
    engine: Engine, held: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from core.numbers import admin
    from core.numbers.cli import numbers_app

    def interrupted(*args: Any, **kwargs: Any) -> Released:
        raise RuntimeError("the database went away")

    with monkeypatch.context() as patched:
        patched.setattr("core.webhooks.release.release_held_numbers", interrupted)
        info = admin.add_number(engine, load_settings(), tenant_id="initech",
                                phone_number_id=NEW, access_token=None)  # fmt: skip
    assert info.held_applied == 0  # added all the same; the events are still held
    assert read_health(engine).unknown_number == 4
    runner = CliRunner()
    first = runner.invoke(numbers_app, ["apply-held"])
    assert first.exit_code == 0, first.output
    assert "5 webhook events held while the number was unknown were applied" in first.output
    assert message_row(engine, held["ours"])["status"] == "delivered"
    again = runner.invoke(numbers_app, ["apply-held"])
    assert "No held webhook event names a number we know now" in again.output


def test_the_applier_releases_what_was_held_as_the_number_was_registered(
    engine: Engine, held: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch that read the book just before a number was registered holds its events
    just after registering released the others: the applier's next sweeps release them."""
    from core.numbers import admin
    from core.webhooks.applier import Applier, ApplierTuning

    def missed(*args: Any, **kwargs: Any) -> Released:
        return Released()  # as if these events were held after it had looked

    now = [0.0]
    applier = Applier(engine, ApplierTuning(release_seconds=10.0), "default", clock=lambda: now[0])
    assert applier.step().released is None  # the book as it was: nothing to release
    with monkeypatch.context() as patched:
        patched.setattr("core.webhooks.release.release_held_numbers", missed)
        admin.add_number(engine, load_settings(), tenant_id="initech", phone_number_id=NEW,
                         access_token=None)  # fmt: skip
    assert read_health(engine).unknown_number == 4
    now[0] = 1.0
    released = applier.step().released
    assert released is not None and released.total == 5
    assert message_row(engine, held["ours"])["status"] == "delivered"
    assert read_health(engine).unknown_number == 1  # the stranger's
    now[0] = 12.0  # the book has not changed since: sweeps no longer look for held events
    assert applier.step().released is None
