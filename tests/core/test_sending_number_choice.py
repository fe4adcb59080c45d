"""Choosing which of a tenant's numbers a message goes out from, on every road people send
by (issue 14 item 3): the send page's draft, a CSV batch, the CLI, ERP events over HTTP
or straight into the intake. Another tenant's number, an unknown one or garbage is
refused by core routing with a clear reason, and nothing is written."""

from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, func
from sqlmodel import Session, select
from typer.testing import CliRunner

from core.api_keys import add_key
from core.bulk import plan_csv, start_batch
from core.compose import NoticeForm, draft_notice
from core.models import Supplier, WhatsAppMessage
from core.models.batches import SendBatch
from core.models.users import Role
from core.notify import NoticeRejected, PoNotice, send_po_notice
from core.numbers.admin import add_number
from core.numbers.errors import NumberError
from core.po_events.intake import handle_po_event
from core.po_events.publish import example_po_event
from core.routing import NumberChoice, number_choices
from core.sandbox.catalog import DEFAULT_TEMPLATE_FIELDS, default_templates
from core.settings import get_settings
from core.templates import upsert_templates
from core.users import UserInfo
from tests.core.po_events.test_http import PATH, asgi_client
from tests.fixtures.consent import allow_unrecorded

#: acme's two numbers and bolt's one; refused for acme: bolt's, unknown, garbage
NORTE, SUR, BOLT = "2000001", "2000002", "2000003"
HOSTILE = (BOLT, "9999999", "' OR 1=1 --", "", "+34 612 345 678", "2" * 200)


@pytest.fixture
def numbers(engine: Engine) -> Engine:
    """Tenants acme (two numbers, Norte its default) and bolt (one), able to send."""
    settings = get_settings()
    definitions = [t.as_graph(DEFAULT_TEMPLATE_FIELDS) for t in default_templates()]
    for tenant in ("acme", "bolt"):
        upsert_templates(engine, tenant, definitions)
    allow_unrecorded(engine, "acme", "bolt")
    add_number(engine, settings, tenant_id="acme", phone_number_id=NORTE, access_token=None,
               display_name="Acme Norte", display_number="+34 910 00 00 01")  # fmt: skip
    add_number(engine, settings, tenant_id="acme", phone_number_id=SUR, access_token=None,
               display_name="Acme Sur")  # fmt: skip
    add_number(engine, settings, tenant_id="bolt", phone_number_id=BOLT, access_token=None)
    return engine


def written(engine: Engine) -> tuple[int, int, int]:
    """(messages, suppliers, batches) of every tenant: what a refused send could write."""
    with Session(engine) as session:
        return (
            session.exec(select(func.count()).select_from(WhatsAppMessage)).one(),
            session.exec(select(func.count()).select_from(Supplier)).one(),
            session.exec(select(func.count()).select_from(SendBatch)).one(),
        )


def notice(number: str | None, po: str = "PO-1") -> PoNotice:
    return PoNotice(
        tenant_id="acme", supplier_name="Harinas", phone="+34 612 345 678", po_number=po,
        amount=Decimal("10.00"), currency="EUR", language="es", phone_number_id=number,
    )  # fmt: skip


def buyer(tenant: str) -> UserInfo:
    return UserInfo(
        id=1, username="ana", display_name="Ana", role=Role("buyer"), tenant_id=tenant,
        tenants=(tenant,), is_active=True, is_demo=False, last_login_at=None,
    )  # fmt: skip


def test_the_choices_are_the_tenants_own_numbers_default_first(engine: Engine) -> None:
    settings = get_settings()
    # Nothing registered: every tenant shares the environment's number, nothing to pick.
    assert number_choices(engine, settings, "acme") == []
    (shared,) = number_choices(engine, settings, settings.default_tenant)
    assert shared.from_environment  # named so, not shown as a bare id
    assert shared.label == f"Environment number · {settings.phone_number_id}"
    add_number(engine, settings, tenant_id="acme", phone_number_id=SUR, access_token=None,
               display_name="Acme Sur")  # fmt: skip
    add_number(engine, settings, tenant_id="acme", phone_number_id=NORTE, access_token=None,
               display_name="Acme Norte", display_number="+34 910 00 00 01",
               make_default=True)  # fmt: skip
    add_number(engine, settings, tenant_id="bolt", phone_number_id=BOLT, access_token=None)
    assert number_choices(engine, settings, "acme") == [
        NumberChoice(NORTE, "Acme Norte", "+34 910 00 00 01", True),
        NumberChoice(SUR, "Acme Sur", None, False),
    ]
    labels = [c.label for c in number_choices(engine, settings, "acme")]
    assert labels == ["Acme Norte · +34 910 00 00 01", "Acme Sur"]
    assert [c.label for c in number_choices(engine, settings, "bolt")] == [BOLT]


def test_a_notice_goes_out_from_the_chosen_number_or_the_default(numbers: Engine) -> None:
    chosen = send_po_notice(notice(SUR), engine=numbers).message
    default = send_po_notice(notice(None, po="PO-2"), engine=numbers).message
    other = send_po_notice(replace(notice(None), tenant_id="bolt"), engine=numbers).message
    assert (chosen.phone_number_id, default.phone_number_id) == (SUR, NORTE)
    assert other.phone_number_id == BOLT


@pytest.mark.parametrize("number", HOSTILE)
def test_another_tenants_an_unknown_or_a_garbage_number_is_refused(
    numbers: Engine, number: str
) -> None:
    with pytest.raises(NoticeRejected, match="is not one of tenant acme's numbers"):
        send_po_notice(notice(number), engine=numbers)
    assert written(numbers) == (0, 0, 0)


def test_the_send_pages_draft_lists_a_number_not_the_tenants_as_a_problem(
    numbers: Engine,
) -> None:
    form = NoticeForm(
        supplier_name="Harinas", phone="+34 612 345 678", po_number="PO-9", amount="10",
        currency="EUR", template_name="po_notification", language="es",
    )  # fmt: skip
    assert draft_notice(numbers, buyer("acme"), form).ok
    refused = draft_notice(numbers, buyer("acme"), _with(form, BOLT))
    assert not refused.ok
    assert any("is not one of tenant acme's numbers" in p for p in refused.problems)
    picked = draft_notice(numbers, buyer("acme"), _with(form, SUR))
    assert picked.ok and picked.notice is not None and picked.notice.phone_number_id == SUR
    assert written(numbers) == (0, 0, 0)  # a draft writes nothing


def _with(form: NoticeForm, number: str) -> NoticeForm:
    return replace(form, phone_number_id=number)


CSV = (
    b"supplier_name,phone,po_number,amount\n"
    b"Harinas,+34 612 345 678,PO-1,10.00\nAceros,+34 612 345 679,PO-2,20.00\n"
)


def test_a_batch_goes_out_from_one_chosen_number_and_never_another_tenants(
    numbers: Engine,
) -> None:
    plan = plan_csv(CSV, tenant_id="acme", template_name="po_notification", language="es",
                    engine=numbers)  # fmt: skip
    assert plan.valid_count == 2
    for number in (BOLT, "9999999", "x"):
        with pytest.raises(NoticeRejected, match="is not one of tenant acme's numbers"):
            start_batch(plan, name="f", created_by="ana", engine=numbers, phone_number_id=number)
        assert written(numbers) == (0, 0, 0)  # no batch, no supplier, no message
    start_batch(plan, name="f", created_by="ana", engine=numbers, phone_number_id=SUR)
    with Session(numbers) as session:
        sent = session.exec(select(WhatsAppMessage.phone_number_id)).all()
    assert sorted(sent) == [SUR, SUR]


def test_an_erp_event_names_one_of_its_tenants_numbers_or_is_rejected(numbers: Engine) -> None:
    def event(po: str, number: object) -> dict[str, object]:
        return {
            **example_po_event(tenant_id="acme", po_number=po),
            "sender_phone_number_id": number,
        }

    ok = handle_po_event(event("PO-1", SUR), engine=numbers, source="rabbitmq")
    as_int = handle_po_event(event("PO-2", int(SUR)), engine=numbers, source="rabbitmq")
    assert (ok.status, as_int.status) == ("enqueued", "enqueued")
    with Session(numbers) as session:
        assert set(session.exec(select(WhatsAppMessage.phone_number_id)).all()) == {SUR}
    before = written(numbers)
    refused = handle_po_event(event("PO-3", BOLT), engine=numbers, source="rabbitmq")
    assert refused.status == "rejected"
    assert "is not one of tenant acme's numbers" in (refused.reason or "")
    for garbage in ("+34 612 345 678", "' OR 1=1 --", True, 1.5, {"id": SUR}, "1" * 40):
        result = handle_po_event(event("PO-4", garbage), engine=numbers, source="rabbitmq")
        assert result.status == "rejected", garbage
        assert any("sender_phone_number_id" in p for p in result.problems), result.problems
    assert written(numbers) == before  # nothing of a rejected event was written


async def test_over_http_another_tenants_number_is_422_and_writes_nothing(
    numbers: Engine,
) -> None:
    key = add_key(numbers, "acme").key
    event = {**example_po_event(tenant_id="acme"), "sender_phone_number_id": BOLT}
    async with asgi_client(numbers) as client:
        response = await client.post(
            PATH, content=json.dumps(event).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
        )  # fmt: skip
        assert response.status_code == 422, response.text
        assert "is not one of tenant acme's numbers" in response.json()["problems"][0]
        assert written(numbers) == (0, 0, 0)
        event["sender_phone_number_id"] = NORTE
        accepted = await client.post(
            PATH, content=json.dumps(event).encode(),
            headers={"Content-Type": "application/json", "X-API-Key": key},
        )  # fmt: skip
    assert accepted.status_code == 202, accepted.text


def test_the_cli_sends_from_the_number_given_and_refuses_another_tenants(
    numbers: Engine, tmp_path: Path
) -> None:
    from core.cli import app

    runner = CliRunner()
    base = ["send", "--tenant", "acme", "--to", "+34 612 345 678", "--supplier-name", "H",
            "--amount", "10", "--no-wait"]  # fmt: skip
    refused = runner.invoke(app, [*base, "--po-number", "PO-1", "--number", BOLT])
    assert isinstance(refused.exception, NoticeRejected)
    assert "is not one of tenant acme's numbers" in str(refused.exception)
    assert written(numbers) == (0, 0, 0)
    sent = runner.invoke(app, [*base, "--po-number", "PO-2", "--number", SUR])
    assert sent.exit_code == 0, sent.output
    with Session(numbers) as session:
        assert session.exec(select(WhatsAppMessage.phone_number_id)).all() == [SUR]
    upload = tmp_path / "pos.csv"
    upload.write_bytes(CSV)
    batch = runner.invoke(app, ["send-csv", str(upload), "--tenant", "acme", "--number", BOLT])
    assert isinstance(batch.exception, NumberError)
    assert "is not one of tenant acme's numbers" in str(batch.exception)
    assert written(numbers)[0] == 1  # the file was not even read
