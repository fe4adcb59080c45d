"""Result and error files download on the first click, at every moment a buyer asks.

Issue 12 item 2: a download button drawn inside the batch panel that refreshes every
second held a placeholder id Streamlit had already forgotten ("Deferred file ... not
found"), so clicks right after a batch finished did nothing. Here each file is clicked
once while the batch runs (held by a sending pause, so "runs" is certain), once right
after it finishes on the same screen (the panel still refreshing), and once from
Recent batches, and every downloaded file is opened and read.
"""

from __future__ import annotations

import csv
import io
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from core.control import pause_sending, resume_sending
from core.settings import SANDBOX_PHONE_NUMBER_ID
from tests.fixtures.browser import Product, log_in, wait_idle

pytestmark = pytest.mark.browser

ROWS = 12
BAD = {4: "phone", 9: "amount"}  # data rows refused at upload
#: Long enough for the batch panel to have refreshed itself at least twice.
REFRESHES = 2.5


def _upload() -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["supplier_name", "phone", "po_number", "amount", "currency", "consent"])
    for n in range(1, ROWS + 1):
        phone = "" if BAD.get(n) == "phone" else f"+34 622 300 {n:03d}"
        amount = "lots" if BAD.get(n) == "amount" else f"{n}00.50"
        writer.writerow([f"Descargas {n}", phone, f"PO-DL-{n:04d}", amount, "EUR", "yes"])
    return out.getvalue().encode("utf-8")


@pytest.fixture
def paused(product: Product) -> Iterator[Any]:
    """Sending paused (the batch stays queued) until the test resumes it; resumed after."""
    engine = product.engine()
    pause_sending(engine, SANDBOX_PHONE_NUMBER_ID, "e2e: hold the batch while it runs")
    try:
        yield engine
    finally:
        resume_sending(engine, SANDBOX_PHONE_NUMBER_ID, "e2e")


def _download(page: Any, label: str, tmp_path: Path, name: str) -> list[dict[str, str]]:
    """Click the download button once; the file it gives, read as CSV rows."""
    with page.expect_download(timeout=15_000) as info:
        page.get_by_role("button", name=label).click()
    path = tmp_path / name
    info.value.save_as(path)
    return list(csv.DictReader(io.StringIO(path.read_bytes().decode("utf-8-sig"))))


def _outcomes(rows: list[dict[str, str]]) -> dict[str, str]:
    return {row["po_number"]: row["outcome"] for row in rows}


def _check_errors(rows: list[dict[str, str]]) -> None:
    assert sorted(row["po_number"] for row in rows) == [f"PO-DL-{n:04d}" for n in sorted(BAD)]
    assert {row["outcome"] for row in rows} == {"refused"}
    assert all(row["error"] for row in rows)


def test_results_and_errors_download_while_running_just_finished_and_from_recent(
    page: Any, product: Product, paused: Any, tmp_path: Path
) -> None:
    log_in(page, product, "buyer")
    page.locator("[data-testid='stSidebarNav'] a", has_text="Bulk send").click()
    wait_idle(page)
    page.locator("[data-testid='stFileUploaderDropzone'] input[type=file]").set_input_files(
        {"name": "descargas.csv", "mimeType": "text/csv", "buffer": _upload()}
    )
    wait_idle(page)
    page.get_by_text(f"{len(BAD)} rows will not be sent").wait_for()
    good = ROWS - len(BAD)
    page.get_by_role("button", name=f"Send {good} messages").click()
    expect(page.get_by_text(f"Sending — 0 of {good} messages settled")).to_be_visible()

    # 1. While it runs (sending is paused: every good row is still queued).
    time.sleep(REFRESHES)
    rows = _download(page, "Download results (CSV)", tmp_path, "running-results.csv")
    assert len(rows) == ROWS
    outcomes = _outcomes(rows)
    assert {outcomes[f"PO-DL-{n:04d}"] for n in BAD} == {"refused"}
    assert sum(o == "queued" for o in outcomes.values()) == good
    time.sleep(REFRESHES)
    _check_errors(_download(page, "Download errors (CSV)", tmp_path, "running-errors.csv"))

    # 2. Right after it finishes, on the same screen (the panel goes on refreshing).
    resume_sending(paused, SANDBOX_PHONE_NUMBER_ID, "e2e")
    expect(page.get_by_text(f"Done — {good} of {good} messages settled")).to_be_visible(
        timeout=60_000
    )
    rows = _download(page, "Download results (CSV)", tmp_path, "done-results.csv")
    assert sum(o == "sent" for o in _outcomes(rows).values()) == good
    time.sleep(REFRESHES)
    _check_errors(_download(page, "Download errors (CSV)", tmp_path, "done-errors.csv"))

    # 3. From Recent batches.
    page.get_by_role("button", name="Close").click()
    wait_idle(page)
    # its own batch: the picker keeps what it showed first (other tests' batches may be there)
    picker = page.get_by_role("combobox", name="Open a batch")
    for _ in range(5):  # a rerun still under way after Close can redraw the tabs
        page.get_by_role("tab", name="Recent batches").click()
        wait_idle(page)
        if picker.is_visible():
            break
    picker.click()
    page.get_by_role("option", name=re.compile(r"^descargas · ")).first.click()
    wait_idle(page)
    page.locator("[data-testid^='stBaseButton']", has_text="Open").click()
    wait_idle(page)
    expect(page.get_by_text(f"Done — {good} of {good} messages settled")).to_be_visible()
    time.sleep(REFRESHES)
    rows = _download(page, "Download results (CSV)", tmp_path, "recent-results.csv")
    assert len(rows) == ROWS and sum(o == "sent" for o in _outcomes(rows).values()) == good
    _check_errors(_download(page, "Download errors (CSV)", tmp_path, "recent-errors.csv"))
