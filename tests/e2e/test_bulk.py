"""Bulk send from a CSV in a real browser: 50 rows, 3 refused with reasons, 47 sent.

The file is what a Spanish Excel writes: semicolons, decimal commas, Windows-1252.
The tab is closed while the batch sends: the embedded sender carries on, and the batch
(progress and results file) is found again after logging in anew.
"""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect
from sqlmodel import Session, col, select

from core.models.batches import SendBatch
from core.models.messages import WhatsAppMessage
from tests.fixtures.browser import Product, log_in, screenshot, wait_idle

pytestmark = pytest.mark.browser

#: Bad rows by data row (the n-th PO); a spreadsheet shows data row n as row n + 1.
BAD_ROWS = {7: "missing phone", 20: "amount", 33: "formula"}


def spanish_excel_csv() -> bytes:
    """50 PO rows as Excel (es-ES) saves "CSV (separado por punto y coma)"."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(["Proveedor", "Teléfono", "Nº Pedido", "Importe", "Moneda"])
    for n in range(1, 51):
        name, phone, amount = f"Proveedor Núñez {n}", f"6{10 + n:02d} 123 {100 + n:03d}", f"{n}1,50"
        if n == 7:
            phone = ""
        if n == 20:
            amount = "doce euros"
        if n == 33:
            name = '=HYPERLINK("http://evil.example")'
        writer.writerow([name, phone, f"PO-BULK-{n:04d}", amount, "EUR"])
    return out.getvalue().encode("cp1252")


def _batch(product: Product, name: str) -> SendBatch:
    with Session(product.engine()) as session:
        return session.exec(select(SendBatch).where(col(SendBatch.name) == name)).one()


def _settled(product: Product, batch_id: str) -> int:
    with Session(product.engine()) as session:
        rows = session.exec(
            select(WhatsAppMessage.status).where(col(WhatsAppMessage.batch_id) == batch_id)
        ).all()
    return sum(status in ("accepted", "sent", "delivered", "read") for status in rows)


def test_a_csv_with_three_bad_rows_sends_the_rest_and_gives_a_result_file(
    page: Any, product: Product, tmp_path: Path
) -> None:
    log_in(page, product, "buyer")
    page.locator("[data-testid='stSidebarNav'] a", has_text="Bulk send").click()
    wait_idle(page)
    screenshot(page, "bulk-empty")
    page.locator("[data-testid='stFileUploaderDropzone'] input[type=file]").set_input_files(
        {"name": "pedidos-marzo.csv", "mimeType": "text/csv", "buffer": spanish_excel_csv()}
    )
    wait_idle(page)
    page.get_by_text(
        "Every supplier in this file agreed to receive WhatsApp messages from us", exact=True
    ).click()  # the file has no consent (the refused rows quote the box: exact)
    wait_idle(page)
    page.get_by_text("3 rows will not be sent").wait_for()
    table = page.locator("[data-testid='stTable']").inner_text()
    assert "The phone number is missing" in table
    assert "'doce euros' is not an amount" in table
    assert "like a spreadsheet formula" in table
    lines = page.locator("[data-testid='stTable'] tbody tr")
    numbers = [line.locator("td, th").first.inner_text().strip() for line in lines.all()]
    assert numbers == [str(row + 1) for row in BAD_ROWS]  # the header is row 1
    screenshot(page, "bulk-checked")

    page.get_by_role("button", name="Send 47 messages").click()
    page.locator("[data-testid='stProgress']").wait_for()
    batch = _batch(product, "pedidos-marzo")
    assert batch.total_rows == 50 and batch.created_by == "e2e-buyer"
    page.context.close()  # the buyer closes the tab while it sends

    deadline = time.monotonic() + 120
    while _settled(product, batch.id) < 47 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _settled(product, batch.id) == 47  # the embedded sender kept going


def test_a_batch_is_found_again_after_logging_in_and_its_results_download(
    page: Any, product: Product, tmp_path: Path
) -> None:
    batch = _batch(product, "pedidos-marzo")  # sent by the previous test
    page.goto(f"{product.dashboard_url}/bulk?batch={batch.id}")
    wait_idle(page)
    page.get_by_label("Username").fill("e2e-buyer")
    page.get_by_role("textbox", name="Password").fill(product.password)
    page.get_by_role("button", name="Log in").click()
    bar = page.locator("[data-testid='stProgress'] [role='progressbar']")
    bar.wait_for()
    page.wait_for_function(
        "() => document.querySelector(\"[data-testid='stProgress'] [role='progressbar']\")"
        "?.getAttribute('aria-valuenow') === '100'",
        timeout=60_000,
    )
    expect(page.get_by_text("Done — 47 of 47 messages settled")).to_be_visible()
    screenshot(page, "bulk-done")
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Download results (CSV)").click()
    download = download_info.value
    path = tmp_path / "results.csv"
    download.save_as(path)
    data = path.read_bytes()
    assert data.startswith(b'\xef\xbb\xbf"row_number";"Proveedor";')  # the upload's dialect
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig")), delimiter=";"))
    assert len(rows) == 50
    assert [r["row_number"] for r in rows] == [str(n) for n in range(2, 52)]
    outcomes = {r["row_number"]: r["outcome"] for r in rows}
    assert {outcomes[str(n + 1)] for n in BAD_ROWS} == {"refused"}
    assert sum(o == "sent" for o in outcomes.values()) == 47
    formula = rows[32]["Proveedor"]
    assert formula.startswith("'=")  # neutralised for Excel
    assert rows[0]["Proveedor"] == "Proveedor Núñez 1"  # Latin-1 accents read right


def test_the_dry_run_shows_one_preview_per_language_and_refuses_a_language_without_one(
    page: Any, product: Product
) -> None:
    data = (
        "Proveedor;Teléfono;Pedido;Importe;Idioma;Consentimiento\r\n"
        "Harinas Idiomas;612 700 001;PO-LANG-1;10,50;es;sí\r\n"
        "Bright Packaging;+44 7911 123 456;PO-LANG-2;20,00;EN;sí\r\n"
        "Embalagens Lda;+351 912 700 003;PO-LANG-3;30,00;pt;sí\r\n"
        "Sin idioma;612 700 004;PO-LANG-4;40,00;;sí\r\n"
    ).encode("cp1252")
    log_in(page, product, "buyer")
    page.locator("[data-testid='stSidebarNav'] a", has_text="Bulk send").click()
    wait_idle(page)
    page.locator("[data-testid='stFileUploaderDropzone'] input[type=file]").set_input_files(
        {"name": "idiomas.csv", "mimeType": "text/csv", "buffer": data}
    )
    wait_idle(page)
    page.get_by_text("1 row will not be sent").wait_for()
    refused = page.locator("[data-testid='stTable'] tbody tr")
    expect(refused).to_have_count(1)  # waits: the table may still be drawing under the error
    assert refused.first.locator("td, th").first.inner_text().strip() == "4"  # spreadsheet row
    assert "no approved version in pt" in refused.first.inner_text()
    spanish = page.locator(".st-key-bulk_preview_es")
    english = page.locator(".st-key-bulk_preview_en")
    expect(spanish).to_contain_text("es · 2 rows · row 2", timeout=30_000)
    expect(spanish).to_contain_text("Hola Harinas Idiomas")
    expect(english).to_contain_text("en · 1 row · row 3")
    expect(english).to_contain_text("Bright Packaging")
    assert "Hola" not in english.inner_text()
    screenshot(page, "bulk-languages")

    # The buyer chooses explicitly to send such rows in the default language instead.
    page.get_by_text("Send rows whose language has no approved version").click()
    wait_idle(page)
    expect(page.get_by_text("will not be sent")).to_have_count(0, timeout=30_000)
    expect(spanish).to_contain_text("es · 3 rows · row 2", timeout=30_000)
    expect(page.get_by_role("button", name="Send 4 messages")).to_be_enabled()
