"""dashboard/widgets.py: the WhatsApp bubble escapes outside text and shows every part; md_escape
turns any text into Markdown that reads exactly as written and makes no markup."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.templates import Preview
from dashboard.widgets import format_local, md_escape, status_badge, whatsapp_bubble_html
from tests.dashboard.pages import MARKDOWN, markup_made, shown

#: Markdown every construct of which md_escape must turn into literal text.
HOSTILE = [
    "![x](https://elsewhere/pixel.png)",
    "[Session expired: log in here](https://elsewhere/login)",
    "<img src=http://127.0.0.1:9/p.png> <script>alert(1)</script> &lt;b&gt; &#x41;",
    "**bold** __b__ *it* _it_ `code` ~~del~~ ~sub~ $x^2$ $$y$$ \\*not\\*",
    ":smile: :+1: :streamlit: :material/home: :red[red] :blue-badge[b] :small[s]",
    "https://elsewhere.example www.elsewhere.example bob@evil.example <https://x.example>",
    "a -> b <- c <-> d -- e >= f <= g ~= h",
    "# h1\n## h2\n- item\n+ item\n* item\n1. one\n2) two\n> quote\n    code\n\tcode",
    "| a | b |\n|---|---|\n| 1 | 2 |\n\ntitle\n===\n---\n***\n```\nfence\n```",
    "[ref]: https://elsewhere.example\n[ref] [^1]\n[^1]: note\n- [ ] task",
]
#: The only Markdown tokens literal text may produce.
PLAIN = {"paragraph_open", "paragraph_close", "inline", "text", "softbreak", "hardbreak"}


def _token_types(body: str) -> set[str]:
    types = set()
    for block in MARKDOWN.parse(body):
        types.add(block.type)
        types.update(child.type for child in block.children or ())
    return types


def _flat(text: str) -> str:
    return " ".join(text.replace("\u00a0", " ").split())


@pytest.mark.parametrize("text", HOSTILE)
def test_md_escape_makes_every_markdown_construct_literal(text: str) -> None:
    assert markup_made(text) or _token_types(text) - PLAIN  # the control: raw, it is Markdown
    body = md_escape(text)
    assert _token_types(body) <= PLAIN, body
    assert not markup_made(body), body
    assert _flat(shown(body)) == _flat(text.replace("\t", "    "))


def test_md_escape_keeps_lines_and_leading_blanks() -> None:
    body = md_escape("Recibido:\r\n  - 3 cajas\n\tok")
    assert shown(body) == "Recibido:\n  - 3 cajas\n    ok"


@given(st.text(st.characters(exclude_categories=("Cs", "Cc")) | st.sampled_from("\n\t "),
               max_size=60))  # fmt: skip
def test_any_text_escaped_reads_as_written_and_makes_no_markup(text: str) -> None:
    body = md_escape(text)
    assert _token_types(body) <= PLAIN, body
    assert not markup_made(body), body
    assert _flat(shown(body)) == _flat(text.replace("\t", "    "))


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
        ("UTC", "01 Jul 2026 10:30 UTC"),
        ("Europe/Madrid", "01 Jul 2026 12:30 CEST"),  # summer time
        ("America/Mexico_City", "01 Jul 2026 04:30 CST"),
        ("Asia/Kolkata", "01 Jul 2026 16:00 IST"),  # a half-hour offset
    ],
)
def test_times_are_shown_in_the_viewers_zone_with_its_name(tz: str, expected: str) -> None:
    assert format_local(datetime(2026, 7, 1, 10, 30, tzinfo=UTC), tz) == expected


def test_winter_time_and_an_unlabelled_clock() -> None:
    at = datetime(2026, 1, 15, 23, 45, tzinfo=UTC)
    assert format_local(at, "Europe/Madrid") == "16 Jan 2026 00:45 CET"  # the next day there
    assert format_local(at, "Europe/Madrid", "%Y-%m-%d %H:%M") == "16 Jan 2026 00:45 CET"
    assert format_local(at, "Europe/Madrid", "%H:%M", labelled=False) == "00:45"
