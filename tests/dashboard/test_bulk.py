"""The bulk page (AppTest) on a real SQLite file: upload, mapping, refusals, batch panel."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import Session, select

from core import clock
from core.models.batches import SendBatch
from core.models.messages import WhatsAppMessage
from core.models.templates import WhatsAppTemplate
from core.sandbox.catalog import DEFAULT_TEMPLATE_FIELDS, default_templates
from core.templates import upsert_templates
from tests.dashboard.pages import dashboard_env, page, person, shown, texts

__all__ = ["dashboard_env"]

MODULE = "dashboard.views.bulk"
SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "samples" / "csv"  # beside the repo


def _templates(engine: Engine) -> None:
    upsert_templates(
        engine, "default", [t.as_graph(DEFAULT_TEMPLATE_FIELDS) for t in default_templates()]
    )


def _upload(at, name: str, data: bytes, *, consent: bool = True):  # type: ignore[no-untyped-def]
    at.file_uploader(key="bulk_file").set_value((name, data, "text/csv"))
    at = at.run()
    if consent and not at.exception:  # the buyer confirms the file's suppliers opted in
        at = at.checkbox(key="bulk_consent").check().run()
    return at


def test_a_fresh_install_has_useful_empty_states(dashboard_env: str, engine: Engine) -> None:
    at = page(MODULE, person("buyer")).run()
    assert not at.exception
    shown = texts(at)
    assert "No approved template yet" in shown and "No batches yet" in shown


def test_the_sample_with_errors_lists_every_refused_row_with_its_reason(
    dashboard_env: str, engine: Engine
) -> None:
    _templates(engine)
    at = page(MODULE, person("buyer")).run()
    assert at.selectbox(key="bulk_template").value.label == "po_notification (es)"
    at = _upload(at, "errors.csv", (SAMPLES / "po_batch_with_errors.csv").read_bytes())
    assert not at.exception
    assert "6 rows will not be sent" in texts(at)
    (table,) = at.table
    refused = table.value
    assert list(refused["Row"]) == [3, 4, 5, 6, 7, 8]  # as the spreadsheet numbers them
    reasons = " | ".join(shown(cell) for cell in refused["Reason"])  # cells read Markdown
    for expected in (
        "phone number is missing",
        "too short",
        "line break",
        "'abc' is not an amount",
        "Same PO, phone and template as row 2",
        "spreadsheet formula",
    ):
        assert expected in reasons
    assert [m.value for m in at.metric] == ["7", "1", "6"]
    read_as = texts(at)  # words whole, not cut as a metric's large figure
    assert "Read as" in read_as and "UTF-8\ncommas" in read_as
    assert at.button(key=next(b.key for b in at.button if b.key.startswith("bulk_go_"))).label == (
        "Send 1 message"
    )


def test_an_ambiguous_amount_is_refused_until_the_separator_is_chosen(
    dashboard_env: str, engine: Engine
) -> None:
    _templates(engine)
    at = page(MODULE, person("buyer")).run()
    at = _upload(at, "valid.csv", (SAMPLES / "po_batch_valid.csv").read_bytes())
    assert "ambiguous: 2.750" in " ".join(map(shown, at.table[0].value["Reason"]))
    at.radio(key="bulk_decimal").set_value(".").run()
    assert "ambiguous" not in " ".join(map(shown, at.table[0].value["Reason"]))


def test_unreadable_files_are_refused_with_a_reason(dashboard_env: str, engine: Engine) -> None:
    _templates(engine)
    at = page(MODULE, person("buyer")).run()
    at = _upload(at, "book.csv", b"PK\x03\x04 an excel workbook")
    assert "This file cannot be read" in texts(at) and "Excel workbook" in texts(at)
    at = _upload(at, "mixed.csv", b"name;phone,mobile\nx;y,z\na,b;c\n")
    assert "unclear which one separates" in texts(at)
    at = _upload(at, "empty.csv", b"")
    assert "empty" in texts(at)


def test_a_remapped_column_is_used_and_sending_opens_the_batch_once(
    dashboard_env: str, engine: Engine
) -> None:
    _templates(engine)
    data = (
        "Empresa;Móvil;Otro móvil;Pedido;Importe\n"
        "Harinas;000;612 34 56 78;PO-1;10,50\n"
        "Lácteos;000;612 555 111;PO-2;20,00\n"
    ).encode("cp1252")
    at = page(MODULE, person("buyer", name="ana")).run()
    at = _upload(at, "marzo.csv", data)
    phone = next(s for s in at.selectbox if s.label == "Phone")
    assert phone.value == "Móvil"  # the guess
    assert "2 rows will not be sent" in texts(at)
    phone.set_value("Otro móvil").run()
    assert "will not be sent" not in texts(at)
    go = next(b for b in at.button if b.key and b.key.startswith("bulk_go_"))
    assert go.label == "Send 2 messages"
    go.click().run()
    assert not at.exception
    assert at.query_params["batch"]
    with Session(engine) as session:
        (batch,) = session.exec(select(SendBatch)).all()
        messages = session.exec(select(WhatsAppMessage)).all()
    assert batch.name == "marzo" and batch.created_by == "ana" and len(messages) == 2
    assert "Batch: marzo" in texts(at)
    (bar,) = at.get("progress")
    assert "Sending — 0 of 2 messages settled" in str(bar.proto)
    sent = next(b for b in at.button if b.key and b.key.startswith("bulk_sent_"))
    assert sent.disabled  # the same file cannot start a second batch
    at.button(key="bulk_pause").click().run()
    with Session(engine) as session:
        assert session.get(SendBatch, batch.id).status == "paused"  # type: ignore[union-attr]
    at.button(key="bulk_resume").click().run()
    with Session(engine) as session:
        assert session.get(SendBatch, batch.id).status == "running"  # type: ignore[union-attr]


def test_a_batch_of_another_tenant_cannot_be_opened(dashboard_env: str, engine: Engine) -> None:
    with Session(engine) as session:
        batch = SendBatch(tenant_id="other", name="secret", total_rows=1)
        session.add(batch)
        session.commit()
        batch_id = batch.id
    at = page(MODULE, person("buyer"))
    at.query_params["batch"] = batch_id
    at.run()
    assert "does not exist or belongs to another tenant" in texts(at)
    assert "secret" not in texts(at)


def test_retry_failed_counts_and_resends_only_the_failed_rows(
    dashboard_env: str, engine: Engine
) -> None:
    _templates(engine)
    data = b"supplier;phone;po;amount\nA;612 34 56 78;PO-1;10.50\nB;612 555 111;PO-2;20.00\n"
    at = page(MODULE, person("buyer", name="ana")).run()
    at = _upload(at, "two.csv", data)
    next(b for b in at.button if b.key and b.key.startswith("bulk_go_")).click().run()
    with Session(engine) as session:
        first, second = session.exec(select(WhatsAppMessage).order_by("batch_row")).all()
        first.status, first.error_message = "failed", "Message undeliverable"
        second.status = "delivered"
        session.add_all([first, second])
        session.commit()
    at.run()
    retry = at.button(key="bulk_retry")
    assert retry.label == "Retry failed (1)" and not retry.disabled
    retry.click().run()
    assert not at.exception
    with Session(engine) as session:
        rows = session.exec(select(WhatsAppMessage)).all()
    assert len(rows) == 3
    (resent,) = [r for r in rows if r.idempotency_key.startswith("resend:")]
    assert resent.status == "pending" and resent.po_number == "PO-1"
    assert at.button(key="bulk_retry").label == "Retry failed (0)"


def test_recent_batches_are_listed_and_one_can_be_opened_again(
    dashboard_env: str, engine: Engine
) -> None:
    with Session(engine) as session:
        mine = SendBatch(tenant_id="default", name="marzo", total_rows=3, created_by="ana")
        theirs = SendBatch(tenant_id="other", name="secret", total_rows=1)
        session.add_all([mine, theirs])
        session.commit()
        mine_id = mine.id
    at = page(MODULE, person("buyer")).run()
    (listed,) = at.dataframe
    assert list(listed.value["Name"]) == ["marzo"]
    assert at.selectbox(key=f"bulk_pick_{mine_id}").value == mine_id
    at.button(key="bulk_open").click().run()
    assert at.query_params["batch"] == mine_id
    assert "Batch: marzo" in texts(at)
    at.button(key="bulk_close").click().run()
    assert "batch" not in at.query_params
    assert "Batch: marzo" not in texts(at)


def test_the_batch_picker_offers_the_newest_batch_once_one_starts(
    dashboard_env: str, engine: Engine
) -> None:
    """It kept offering the batch it first showed, so 'Open' re-opened an older batch."""
    with Session(engine) as session:
        older = SendBatch(tenant_id="default", name="marzo", total_rows=3,
                          created_at=clock.now() - timedelta(hours=1))  # fmt: skip
        session.add(older)
        session.commit()
        older_id = older.id
    at = page(MODULE, person("buyer")).run()
    assert at.selectbox(key=f"bulk_pick_{older_id}").value == older_id
    with Session(engine) as session:
        newer = SendBatch(tenant_id="default", name="abril", total_rows=2)
        session.add(newer)
        session.commit()
        newer_id = newer.id
    at.run()
    assert at.selectbox(key=f"bulk_pick_{newer_id}").value == newer_id


def test_a_forged_batch_id_in_the_url_is_refused_calmly(dashboard_env: str, engine: Engine) -> None:
    for forged in ("'; DROP TABLE send_batches; --", "x" * 5000, "../../etc/passwd"):
        at = page(MODULE, person("buyer"))
        at.query_params["batch"] = forged
        at.run()
        assert not at.exception
        assert "does not exist or belongs to another tenant" in texts(at)


def test_a_new_supplier_named_like_another_is_confirmed_before_sending(
    dashboard_env: str, engine: Engine
) -> None:
    from core.models.suppliers import Supplier
    from core.models.types import utcnow

    _templates(engine)
    with Session(engine) as session:
        session.add(Supplier(tenant_id="default", name="Harinas [x](http://e.x)",
                             phone_e164="+34612345678", opted_in_at=utcnow()))  # fmt: skip
        session.commit()
    data = (
        b"supplier_name,phone,po_number,total_amount,language,consent\n"
        b"harinas [x](http://e.x),612 345 679,PO-N1,10.00,,yes\n"
    )
    at = _upload(page(MODULE, person("buyer")).run(), "namesakes.csv", data)
    assert not at.exception
    assert "1 row would add a new supplier with the name of another one" in texts(at)
    listed = next(d for d in at.dataframe if "Already named so" in d.value.columns).value
    assert list(listed["Row"]) == [2]
    assert list(listed["Already named so"]) == ["Harinas [x](http://e.x) · +34 612 34 56 78"]
    go = next(b for b in at.button if b.key and b.key.startswith("bulk_go_"))
    assert go.disabled
    next(c for c in at.checkbox if c.key and c.key.startswith("bulk_namesakes_ok_")).check().run()
    go = next(b for b in at.button if b.key and b.key.startswith("bulk_go_"))
    assert not go.disabled
    go.click().run()
    assert not at.exception and at.query_params["batch"]
    with Session(engine) as session:
        assert len(session.exec(select(Supplier)).all()) == 2


def test_without_a_consent_confirmation_new_suppliers_are_refused_with_the_reason(
    dashboard_env: str, engine: Engine
) -> None:
    _templates(engine)
    data = b"Proveedor;Telefono;Pedido;Importe\nHarinas;612 34 56 78;PO-1;10,50\n"
    at = _upload(page(MODULE, person("buyer")).run(), "c.csv", data, consent=False)
    assert "1 row will not be sent" in texts(at)
    (table,) = at.table
    assert "no recorded consent" in " ".join(map(str, table.value["Reason"]))
    at = at.checkbox(key="bulk_consent").check().run()
    assert "will not be sent" not in texts(at)


def test_a_tenant_with_several_numbers_sends_the_batch_from_the_one_picked(
    dashboard_env: str, engine: Engine
) -> None:
    from core.numbers.admin import add_number
    from core.settings import get_settings

    _templates(engine)
    add_number(engine, get_settings(), tenant_id="default", phone_number_id="2000001",
               access_token=None, display_name="Norte")  # fmt: skip
    data = b"supplier_name,phone,po_number,amount\nHarinas,612 34 56 78,PO-1,10.50\n"
    at = page(MODULE, person("buyer")).run()
    at = _upload(at, "one.csv", data)
    picker = at.selectbox(key="bulk_from")
    assert picker.value == get_settings().phone_number_id  # the default preselected
    picker.set_value("2000001").run()
    next(b for b in at.button if b.key and b.key.startswith("bulk_go_")).click().run()
    assert not at.exception
    with Session(engine) as session:
        (message,) = session.exec(select(WhatsAppMessage)).all()
    assert message.phone_number_id == "2000001"


def test_a_template_paused_after_the_pick_is_not_replaced_by_another_nobody_chose(
    dashboard_env: str, engine: Engine
) -> None:
    """Meta pausing the picked template mid-send (132015) used to leave the page on the
    next template, checking the attached file against it: 100,000 rows of work and
    hundreds of MB for a choice nobody made. The page now says the template can no
    longer be sent and waits for the buyer to pick one."""
    _templates(engine)
    at = page(MODULE, person("buyer")).run()
    at = _upload(at, "valid.csv", (SAMPLES / "po_batch_valid.csv").read_bytes())
    assert at.selectbox(key="bulk_template").value.label == "po_notification (es)"
    assert _send_button(at) is not None
    with Session(engine) as session:
        paused = session.exec(
            select(WhatsAppTemplate).where(
                WhatsAppTemplate.template_name == "po_notification",
                WhatsAppTemplate.language == "es",
            )
        ).one()
        paused.held_reason = "Paused by Meta for low quality"
        session.add(paused)
        session.commit()
    at = at.run()
    assert not at.exception
    assert at.selectbox(key="bulk_template").value is None
    assert "po_notification (es) can no longer be sent" in texts(at)
    assert _send_button(at) is None and not at.metric  # nothing checked meanwhile
    at = at.run()  # any rerun: still waiting for the buyer
    assert at.selectbox(key="bulk_template").value is None
    assert "po_notification (es) can no longer be sent" in texts(at)
    choice = at.selectbox(key="bulk_template")
    at = choice.select_index(choice.options.index("po_notification (en)")).run()
    assert not at.exception
    assert "can no longer be sent" not in texts(at)
    assert _send_button(at) is not None
    at = at.run()  # the pick stays
    assert at.selectbox(key="bulk_template").value.label == "po_notification (en)"


def _send_button(at):  # type: ignore[no-untyped-def]
    """The checked file's Send button, or None."""
    return next((b for b in at.button if b.key and b.key.startswith("bulk_go_")), None)
