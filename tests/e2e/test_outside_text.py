"""A supplier's reply is text in a real browser: an image or a link in it never loads.

A reply carrying Markdown and HTML that point at a small HTTP server of the test's own on
127.0.0.1 arrives through the real webhook app (signed, applied by its applier); a
manager opens the message on the Messages page. The reply must show as the characters
the supplier typed, and the server must receive no request from the page. A control at
the end proves the server would have seen a request from this very browser page.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from core.message_log import message_detail
from core.settings import SANDBOX_APP_SECRET
from tests.core.webhooks.helpers import (
    WEBHOOK_PATH,
    add_message,
    add_supplier,
    inbound_body,
    inbound_message,
    signed,
)
from tests.fixtures.browser import TENANT, Product, log_in, screenshot, type_into, wait_idle

pytestmark = pytest.mark.browser

PO = "PO-E2E-BEACON"


class _Recorder(BaseHTTPRequestHandler):
    """Answers every GET with a 1x1 GIF and records the path it was asked for."""

    seen: list[str]
    GIF = b"GIF89a\x01\x00\x01\x00\x00\x00\x00;"

    def do_GET(self) -> None:  # the http.server API
        self.server.seen.append(self.path)  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", "image/gif")
        self.send_header("Access-Control-Allow-Origin", "*")
        self.end_headers()
        self.wfile.write(self.GIF)

    def log_message(self, *args: Any) -> None:
        return


@pytest.fixture
def beacon() -> Iterator[tuple[str, list[str]]]:
    """A local HTTP server and the list of paths it was asked for."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    server.seen = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", server.seen  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()


def _reply_arrives(product: Product, url: str) -> tuple[str, str]:
    """A message to a supplier named with an image, and a hostile reply to it posted to the
    real webhook app; returns the supplier's name and the reply once it is applied."""
    engine = product.engine()
    name = f"Beacon S.L. ![s]({url}/supplier.png)"
    supplier = add_supplier(engine, "+34612349876", tenant=TENANT, name=name)
    message = add_message(
        engine, wamid="wamid.E2EBEACON", status_="delivered", phone="+34612349876",
        po_number=PO, supplier_id=supplier,
    )  # fmt: skip
    reply = (
        f"Recibido, gracias ![px]({url}/pixel.png)\n"
        f"[Session expired: log in here]({url}/login) <img src={url}/img.png>"
    )
    inbound = inbound_message(
        "wamid.E2EREPLY", "34612349876", "text", context="wamid.E2EBEACON", text={"body": reply}
    )
    body = inbound_body(inbound, name=f"![p]({url}/profile.png)")
    answer = httpx.post(
        product.webhook_url + WEBHOOK_PATH, content=body, headers=signed(body, SANDBOX_APP_SECRET)
    )
    assert answer.status_code == 200, answer.text
    # The applier works on its own: wait (by its result, never by a clock) for the reply.
    for _ in range(600):
        detail = message_detail(engine, (TENANT,), message)
        if detail is not None and any(e.kind == "reply" for e in detail.events):
            return name, reply
        threading.Event().wait(0.1)
    raise AssertionError("the webhook app never applied the reply")


def test_a_reply_with_an_image_loads_nothing_when_a_manager_opens_it(
    page: Any, product: Product, beacon: tuple[str, list[str]]
) -> None:
    url, seen = beacon
    name, reply = _reply_arrives(product, url)
    log_in(page, product, "manager")
    page.locator("[data-testid='stSidebarNav'] a", has_text="Messages").click()
    wait_idle(page)
    type_into(page, "PO number", PO)
    # the message list (the page may also list messages that need attention above it)
    grid = page.locator("[class*='st-key-messages_table_'] [data-testid='stDataFrame']")
    expect(grid).to_be_visible()
    box = grid.bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + 18, box["y"] + 35 + 17)  # the first row's selection cell
    wait_idle(page)
    expect(page.get_by_text("Recibido, gracias")).to_be_visible(timeout=30_000)  # drawn
    page.wait_for_load_state("networkidle")
    screenshot(page, "messages-hostile-reply")
    assert seen == [], f"the page asked the outside server for {seen}"
    assert page.locator(f"img[src^='{url}'], a[href^='{url}']").count() == 0
    # Positive control: the page did draw the reply, every character as the supplier typed,
    # and the supplier's name (md_escape's word joiners are invisible).
    for line in reply.split("\n"):
        expect(page.get_by_text(line, exact=False)).to_be_visible()
    heading = page.locator("[data-testid='stHeading']", has_text=PO)
    assert heading.inner_text().replace("\u2060", "").strip() == f"{PO} → {name}"
    # Control of the control: this page's requests to the server are seen.
    page.evaluate("(src) => { new Image().src = src; }", f"{url}/control.gif")
    page.wait_for_function("() => true")
    for _ in range(300):
        if seen:
            break
        threading.Event().wait(0.1)
    assert seen == ["/control.gif"]
