"""dashboard/widgets.py: the WhatsApp bubble escapes outside text and shows every part."""

from __future__ import annotations

from core.templates import Preview
from dashboard.widgets import status_badge, whatsapp_bubble_html


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
