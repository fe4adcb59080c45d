"""Tables you can read (issue 12 item 9), in Chromium at 1,400 × 900.

Every list named in the issue (messages, suppliers, templates, configuration, rate card,
recent batches, the analytics supplier table) shows all its columns: the grid's
scrolling area is no wider than the grid (no column hidden off to the right) and the
grid ends inside the window. Every page of a list shows all of its rows (no scrolling
inside the grid, no list cut at ten rows), and a list longer than a page pages to its
last row.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select

from core.db import session_scope
from core.models.messages import WhatsAppMessage
from core.models.suppliers import Supplier
from core.pricing import ensure_default_rate_card
from tests.fixtures.browser import Product, log_in, screenshot, type_into, wait_idle

pytestmark = pytest.mark.browser

VIEWPORT = {"width": 1400, "height": 900}
HOSTILE = '=HYPERLINK("http://evil.example/x","click me")'
MESSAGES = 57  # more than one page of 50
SUPPLIERS = 31  # more than one page of 25
#: Per grid: its scrolling area's sizes, its right edge, and the last row's text.
_GRIDS = """() => [...document.querySelectorAll("[data-testid='stDataFrame']")]
  .filter(el => el.getBoundingClientRect().width > 0)
  .map(el => {
    const box = el.getBoundingClientRect();
    const scroller = el.querySelector('.dvn-scroller');
    const rows = [...el.querySelectorAll('[role=row]')];
    const keyed = el.closest("[class*='st-key-']");
    const keyClass = keyed ? [...keyed.classList].find(c => c.startsWith('st-key-')) : null;
    return {
      key: keyClass ? keyClass.slice(7) : '',
      right: box.right, width: box.width,
      scrollWidth: scroller ? scroller.scrollWidth : 0,
      clientWidth: scroller ? scroller.clientWidth : 0,
      scrollHeight: scroller ? scroller.scrollHeight : 0,
      clientHeight: scroller ? scroller.clientHeight : 0,
      rows: rows.length,
      last: rows.length ? rows[rows.length - 1].innerText : '',
    };
  })"""


def _seed(engine: Engine) -> None:
    """Long lists: messages over one page, suppliers over one page (long names too)."""
    now = datetime.now(UTC)
    with session_scope(engine) as session:
        for n in range(1, SUPPLIERS + 1):
            session.add(
                Supplier(
                    tenant_id="default",
                    name=f"Tabla Distribuciones y Suministros Industriales {n:02d} S.L.",
                    phone_e164=f"+3469900{n:04d}",
                    external_ref=f"TABLA-ERP-{n:06d}",
                )
            )
        hostile = Supplier(tenant_id="default", name=HOSTILE, phone_e164="+34699009999")
        session.add(hostile)
        session.flush()
        at = now  # the newest: first on the list
        session.add(
            WhatsAppMessage(
                tenant_id="default", idempotency_key="tables:hostile", supplier_id=hostile.id,
                recipient_phone="+34699009999", request_payload={}, status="failed",
                template_name="po_notification", error_code=131026, po_number="PO-TABLA-LINK",
                created_at=at, updated_at=at, failed_at=at, body_text=HOSTILE,
            )
        )  # fmt: skip
        for n in range(1, MESSAGES + 1):
            at = now - timedelta(minutes=n)
            session.add(
                WhatsAppMessage(
                    tenant_id="default", idempotency_key=f"tables:{n}",
                    recipient_phone=f"+3469900{n:04d}", request_payload={},
                    template_name="po_notification", status="failed", error_code=131026,
                    po_number=f"PO-TABLA-{n:04d}", created_at=at, updated_at=at, failed_at=at,
                )
            )  # fmt: skip


def _open(page: Any, title: str) -> None:
    page.locator("[data-testid='stSidebarNav'] a", has_text=title).click()
    wait_idle(page)
    page.wait_for_timeout(500)  # the grid lays out after the script has run


def _grids(page: Any) -> list[dict[str, Any]]:
    page.wait_for_function(  # a grid may still be drawing after the script has run
        "() => { const g = [...document.querySelectorAll(\"[data-testid='stDataFrame']\")]"
        ".filter(el => el.getBoundingClientRect().width > 0); "
        "return g.length > 0 && g.every(el => el.querySelector('[role=row]') && "
        "el.querySelector('.dvn-scroller')?.clientWidth > 0); }"
    )
    return list(page.evaluate(_GRIDS))


def assert_readable(page: Any, where: str) -> list[dict[str, Any]]:
    """Every grid on screen shows every column and every row of its page."""
    grids = _grids(page)
    assert grids, f"no table on {where}"
    for grid in grids:
        assert grid["scrollWidth"] <= grid["clientWidth"] + 1, (where, grid)  # no hidden column
        assert grid["right"] <= VIEWPORT["width"], (where, grid)
        assert grid["scrollHeight"] <= grid["clientHeight"] + 1, (where, grid)  # no inner scroll
    return grids


def _grid(grids: list[dict[str, Any]], key: str) -> dict[str, Any]:
    """The one grid whose widget key starts with `key` (pages can show other grids too,
    such as the messages that need attention above the message list)."""
    (found,) = [g for g in grids if g["key"].startswith(key)]
    return found


def _last_page(page: Any, key: str) -> None:
    page.locator(f".st-key-{key}_last button").click()
    wait_idle(page)
    page.wait_for_timeout(500)


@pytest.fixture(scope="module")
def seeded(product: Product) -> Product:
    """The product with long lists and a rate card (seeded once for this module)."""
    _seed(product.engine())
    ensure_default_rate_card(product.engine(), "default")
    return product


@pytest.fixture
def wide_page(page: Any, seeded: Product) -> Any:
    page.set_viewport_size(VIEWPORT)
    return page


def test_messages_show_every_column_and_page_to_the_last_row(
    wide_page: Any, product: Product
) -> None:
    log_in(wide_page, product, "manager")
    _open(wide_page, "Messages")
    type_into(wide_page, "PO number", "PO-TABLA-")  # this module's messages, not others'
    wide_page.wait_for_timeout(500)  # the grid lays out after the script has run
    grid = _grid(assert_readable(wide_page, "messages"), "messages_table_")
    assert grid["rows"] == 51  # a header and all 50 rows of the first page
    screenshot(wide_page, "tables-messages")
    _last_page(wide_page, "messages")
    wide_page.get_by_text(f"of {MESSAGES + 1} · page 2 of 2", exact=False).wait_for()
    grid = _grid(assert_readable(wide_page, "messages (last page)"), "messages_table_")
    assert f"PO-TABLA-{MESSAGES:04d}" in grid["last"]  # the oldest: the list's last row
    _open(wide_page, "Analytics")
    assert_readable(wide_page, "analytics")


def test_admin_lists_show_every_column_and_page_to_the_last_row(
    wide_page: Any, product: Product
) -> None:
    log_in(wide_page, product, "admin")
    _open(wide_page, "Suppliers")
    assert_readable(wide_page, "suppliers")
    _last_page(wide_page, "suppliers")
    grid = assert_readable(wide_page, "suppliers (last page)")[0]
    assert grid["rows"] > 1 and "Rows" in wide_page.locator("[data-testid='stCaptionContainer']")\
        .all_inner_texts()[-1]  # fmt: skip
    screenshot(wide_page, "tables-suppliers")
    _open(wide_page, "Templates")
    assert_readable(wide_page, "templates")
    _open(wide_page, "Settings")
    assert_readable(wide_page, "rate card")
    screenshot(wide_page, "tables-rate-card")
    wide_page.get_by_role("tab", name="Configuration").click()
    wait_idle(wide_page)
    wide_page.wait_for_timeout(500)
    assert_readable(wide_page, "configuration")
    screenshot(wide_page, "tables-configuration")


def _no_outside_links(page: Any) -> None:
    hrefs = page.eval_on_selector_all("[data-testid='stMain'] a", "els => els.map(e => e.href)")
    assert not [h for h in hrefs if "evil" in h], hrefs


def test_a_refused_hyperlink_cell_is_text_wherever_it_shows(
    wide_page: Any, product: Product
) -> None:
    log_in(wide_page, product, "buyer")
    _open(wide_page, "Bulk send")
    csv = ("supplier_name,phone,po_number,amount\n"
           f'"{HOSTILE.replace(chr(34), chr(34) * 2)}",612345678,PO-LINK-1,10\n'
           "Ferreteria Sol,612345679,PO-LINK-2,12\n").encode()  # fmt: skip
    wide_page.locator("[data-testid='stFileUploaderDropzone'] input[type=file]").set_input_files(
        {"name": "link.csv", "mimeType": "text/csv", "buffer": csv}
    )
    wait_idle(wide_page)
    wide_page.get_by_text("like a spreadsheet formula", exact=False).first.wait_for()
    refused = wide_page.locator("[data-testid='stTable']").inner_text()
    assert "HYPERLINK(" in refused and "evil.example" in refused  # shown, as text
    _no_outside_links(wide_page)
    screenshot(wide_page, "tables-refused-hyperlink")

    other = wide_page.context.browser.new_context(viewport=VIEWPORT)
    manager = other.new_page()
    log_in(manager, product, "manager")
    # Opened by its link (`?message=ID`): clicking a canvas grid's row by position raced
    # the PO filter's rerun on a loaded machine and could open another message.
    with session_scope(product.engine()) as session:
        (message_id,) = session.execute(
            select(WhatsAppMessage.id).where(WhatsAppMessage.idempotency_key == "tables:hostile")
        ).one()
    manager.goto(f"{product.dashboard_url}/messages?message={message_id}")
    wait_idle(manager)
    manager.get_by_text("The message (not delivered)").wait_for()
    assert "HYPERLINK(" in manager.locator("[data-testid='stMain']").inner_text()
    _no_outside_links(manager)
    other.close()
