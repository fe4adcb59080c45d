"""dashboard/widgets.py: the WhatsApp bubble escapes outside text and shows every part."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from core.templates import Preview
from dashboard.widgets import format_local, status_badge, whatsapp_bubble_html


def test_the_bubble_shows_header_body_footer_and_buttons_in_order() -> None:
    html = whatsapp_bubble_html(
        Preview(body="Hola", header="Pedido", footer="Compras", buttons=("Sí", "No")),
        time_label="10:30",
    )
    positions = [html.index(part) for part in ("Pedido", "Hola", "Compras", "10:30", "Sí", "No")]
    assert positions == sorted(positions)


def test_outside_text_is_escaped_never_run() -> None:
    html = whatsapp_bubble_html(
        Preview(
            body="<script>alert(1)</script> & <img src=x onerror=alert(1)>",
            header="<b>h</b>",
            footer='"><svg onload=1>',
            buttons=("<i>x</i>",),
            header_media={"type": "document", "link": "https://x/<po>.pdf"},
        )
    )
    for raw in ("<script>", "<img", "<svg", "<b>h", "<i>x", "<po>"):
        assert raw not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;img" in html
    assert "&lt;po&gt;.pdf" in html and "PDF" in html


def test_unfilled_placeholders_are_marked() -> None:
    html = whatsapp_bubble_html(Preview(body="Total {{total_amount}} for {{po"))
    assert '<span class="wa-missing">{{total_amount}}</span>' in html
    assert "for {{po" in html  # an unclosed brace is left as text


def test_status_badges_name_the_status() -> None:
    assert "read" in status_badge("read") and ":blue[" in status_badge("read")
    assert "needs attention" in status_badge("needs_attention")
    assert "weird" in status_badge("weird")


@pytest.mark.parametrize(
    ("tz", "expected"),
    [
        ("UTC", "01/07/2026 10:30 UTC"),
        ("Europe/Madrid", "01/07/2026 12:30 CEST"),  # summer time
        ("America/Mexico_City", "01/07/2026 04:30 CST"),
        ("Asia/Kolkata", "01/07/2026 16:00 IST"),  # a half-hour offset
    ],
)
def test_times_are_shown_in_the_viewers_zone_with_its_name(tz: str, expected: str) -> None:
    assert format_local(datetime(2026, 7, 1, 10, 30, tzinfo=UTC), tz) == expected


def test_winter_time_and_an_unlabelled_clock() -> None:
    at = datetime(2026, 1, 15, 23, 45, tzinfo=UTC)
    assert format_local(at, "Europe/Madrid") == "16/01/2026 00:45 CET"  # the next day there
    assert format_local(at, "Europe/Madrid", "%H:%M", labelled=False) == "00:45"
