"""Small drawing helpers the dashboard's pages share (no rules here: those live in core).

`whatsapp_bubble_html` and `format_local` are pure functions, tested without a browser;
`whatsapp_bubble` and `status_timeline` draw with Streamlit. Times are stored in UTC and
shown in the viewer's own time zone (the browser's, when Streamlit knows it).

Outside text (anything a supplier, an ERP, a CSV file or Meta wrote) never reaches a
Markdown-reading call raw: it goes through `md_escape`, the one escaping helper, or is
drawn with `st.text`, `st.code` or a dataframe cell.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd
import streamlit as st

from core import clock
from core.compose import MessageState
from core.formatting import format_ago, format_moment, style_of
from core.i18n import N_, _
from core.paging import ResultPage, page_of
from core.templates import Preview

#: Every ASCII punctuation character: CommonMark lets each be backslash-escaped, which
#: turns off links, images, emphasis, code, headings, lists, quotes, tables, HTML,
#: entities, LaTeX (`$`) and Streamlit's `:color[...]` directives.
_MD_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")
#: Where Streamlit rewrites the *parsed* text, after escapes are gone: GFM's bare-URL and
#: e-mail links (`https://`, `www.`, `a@b.c`), `:emoji:`, `:streamlit:` and
#: `:material/icon:` shortcodes, and typographic arrows (`->`, `<=`, `--`...). An
#: invisible word joiner breaks each pattern without changing what a reader sees.
_REWRITTEN = re.compile(r"(?=[:@])|(?i:(?<=www)(?=\.))|(?<=[<>=~-])(?=[<>=~-])")
WORD_JOINER = "\u2060"
_LEADING_BLANKS = re.compile(r"^[ \t]+", re.MULTILINE)


def md_escape(value: object) -> str:
    """`value` as literal text for any call that reads Markdown (`st.markdown`, captions,
    alerts, subheaders, toasts, widget and metric labels, `st.table` cells).

    The dashboard's one escaping helper, for everything that came from outside: a
    supplier's reply `![x](https://elsewhere/pixel.png)` must show as those characters,
    never load an image or draw a link, heading or formatting. Every ASCII punctuation
    character is backslash-escaped; the patterns Streamlit rewrites after parsing get a
    word joiner (U+2060, invisible); leading blanks become no-break spaces (no code block)
    and line breaks stay line breaks.
    """
    text = str(value).replace("\r\n", "\n").replace("\r", "\n")
    text = _MD_PUNCTUATION.sub(r"\\\1", _REWRITTEN.sub(WORD_JOINER, text))
    text = _LEADING_BLANKS.sub(
        lambda m: m.group(0).replace("\t", "    ").replace(" ", "\u00a0"), text
    )
    return text.replace("\n", "  \n")


#: Colours and shapes of WhatsApp's chat view (light theme).
_BUBBLE_CSS = """
<style>
.wa-chat{background:#EFEAE2;border-radius:12px;padding:18px 16px;max-width:460px;
  font-family:-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;}
.wa-bubble{background:#FFFFFF;border-radius:0 8px 8px 8px;padding:8px 10px 6px 10px;
  box-shadow:0 1px 0.5px rgba(11,20,26,.13);color:#111B21;font-size:14.2px;line-height:19px;
  position:relative;}
.wa-header{font-weight:700;margin-bottom:4px;}
.wa-doc{display:flex;align-items:center;gap:8px;background:#F5F6F6;border-radius:6px;
  padding:10px;margin-bottom:6px;color:#54656F;font-size:13px;}
.wa-doc b{color:#111B21;}
.wa-doc-icon{background:#E2574C;color:#fff;font-weight:700;font-size:10px;border-radius:3px;
  padding:6px 4px;}
.wa-body{white-space:pre-wrap;word-wrap:break-word;}
.wa-footer{color:#667781;font-size:12.5px;margin-top:4px;}
.wa-time{color:#667781;font-size:11px;text-align:right;margin-top:2px;}
.wa-button{background:#FFFFFF;border-radius:8px;margin-top:2px;padding:9px;text-align:center;
  color:#027EB5;font-size:14px;box-shadow:0 1px 0.5px rgba(11,20,26,.13);}
.wa-missing{background:#FFF3CD;border-radius:3px;padding:0 2px;}
</style>
"""


def _text(value: str) -> str:
    """Escaped text with WhatsApp's *bold* and unfilled {{placeholders}} marked up."""
    escaped = html.escape(value)
    parts = escaped.split("{{")
    out = [parts[0]]
    for part in parts[1:]:
        name, sep, rest = part.partition("}}")
        out.append(f'<span class="wa-missing">{{{{{name}}}}}</span>{rest}' if sep else "{{" + part)
    return "".join(out)


def whatsapp_bubble_html(preview: Preview, *, time_label: str = "") -> str:
    """The preview as a WhatsApp chat bubble: header, body, footer, then the buttons.

    Every text is HTML-escaped (supplier names and PO numbers come from outside); a
    document header shows as the attachment card WhatsApp draws for a PDF.
    """
    inner = []
    media = preview.header_media
    if media is not None:
        kind = str(media.get("type", "document"))
        name = str(media.get("filename") or media.get("link") or kind)
        badge = {"document": "PDF", "image": "IMG", "video": "VID"}.get(kind, "FILE")
        inner.append(
            f'<div class="wa-doc"><span class="wa-doc-icon">{badge}</span>'
            f"<div><b>{html.escape(name.rsplit('/', 1)[-1])}</b>"
            f"<br>{html.escape(kind.capitalize())}</div></div>"
        )
    if preview.header:
        inner.append(f'<div class="wa-header">{_text(preview.header)}</div>')
    inner.append(f'<div class="wa-body">{_text(preview.body)}</div>')
    if preview.footer:
        inner.append(f'<div class="wa-footer">{_text(preview.footer)}</div>')
    if time_label:
        inner.append(f'<div class="wa-time">{html.escape(time_label)}</div>')
    buttons = "".join(
        f'<div class="wa-button">↩ {html.escape(label)}</div>' for label in preview.buttons
    )
    return (
        f'{_BUBBLE_CSS}<div class="wa-chat" data-testid="wa-preview">'
        f'<div class="wa-bubble">{"".join(inner)}</div>{buttons}</div>'
    )


def whatsapp_bubble(preview: Preview, *, time_label: str = "") -> None:
    """Draw the preview as the supplier will see it on WhatsApp."""
    st.html(whatsapp_bubble_html(preview, time_label=time_label))


_STATUS_ICONS = {
    "pending": ":material/schedule:",
    "sending": ":material/schedule:",
    "accepted": ":material/check:",
    "sent": ":material/check:",
    "delivered": ":material/done_all:",
    "read": ":material/done_all:",
    "failed": ":material/error:",
    "needs_attention": ":material/help:",
    "cancelled": ":material/block:",
}
#: Each message status as a person reads it (shown through `_()`).
STATUS_NAMES = {
    "pending": N_("pending"),
    "queued": N_("queued"),
    "sending": N_("sending"),
    "accepted": N_("accepted"),
    "sent": N_("sent"),
    "delivered": N_("delivered"),
    "read": N_("read"),
    "failed": N_("failed"),
    "needs_attention": N_("needs attention"),
    "cancelled": N_("cancelled"),
}


def status_name(status: str) -> str:
    """A status in the reader's language ("needs_attention" -> "needs attention")."""
    known = STATUS_NAMES.get(status)
    return _(known) if known else status.replace("_", " ")


def status_badge(status: str) -> str:
    """Markdown for a status word with WhatsApp's tick marks (blue for read)."""
    icon = _STATUS_ICONS.get(status, ":material/circle:")
    colour = {"read": "blue", "failed": "red", "needs_attention": "orange"}.get(status, "gray")
    return f":{colour}[**{icon} {status_name(status)}**]"


def viewer_zone() -> str:
    """The browser's time zone when Streamlit knows it and it is valid, else UTC."""
    tz = getattr(st.context, "timezone", None) or "UTC"
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        return "UTC"
    return tz


def viewer_today() -> date:
    """Today's date where the viewer is, on core's injectable clock (default date ranges)."""
    return clock.now().astimezone(ZoneInfo(viewer_zone())).date()


def format_local(
    at: datetime, tz: str, fmt: str = "%d/%m/%Y %H:%M", *, labelled: bool = True
) -> str:
    """`at` (an aware time) in zone `tz`, in the one date format of core.formatting
    (`fmt`, a strftime pattern or a style name, says only whether to show the date, the
    time, seconds); with the zone's abbreviation unless `labelled` is False (a chat
    bubble's clock, say)."""
    local = at.astimezone(ZoneInfo(tz))
    text = format_moment(local, tz, style_of(fmt))
    return f"{text} {local.tzname() or tz}" if labelled else text


def local_time(at: datetime, fmt: str = "%d/%m/%Y %H:%M", *, labelled: bool = True) -> str:
    """`at` as the viewer reads it: in their time zone (labelled unless told not to)."""
    return format_local(at, viewer_zone(), fmt, labelled=labelled)


def ago(at: datetime | None) -> str:
    """How long ago `at` was, in the reader's language ("hace 2 días"); "—" for None.

    For table columns: Streamlit's own "distance" date format is English only."""
    if at is None or pd.isna(at):
        return format_ago(None, clock.now())
    return format_ago(pd.Timestamp(at).to_pydatetime(), clock.now())


def _when(at: datetime | None) -> str:
    return local_time(at, "%H:%M:%S") if at is not None else "—"


def status_timeline(state: MessageState) -> None:
    """Draw a message's status and the time each stage was reached."""
    st.markdown(_("Status: {badge}").format(badge=status_badge(state.status)),
                help=_("Updates as WhatsApp reports it"))  # fmt: skip
    rows = "\n".join(
        f"| {status_name(step.name).capitalize()} | {_when(step.at)} |" for step in state.steps
    )
    header = "| " + _("Stage") + " | " + _("Reached") + " |"
    st.markdown(f"{header}\n|---|---|\n{rows}")
    if state.error:
        st.error(_("WhatsApp reported a failure: {error}").format(error=md_escape(state.error)))


Row = TypeVar("Row")
#: Rows on one page of a short list read whole (templates, rate card, users, batches).
LIST_PAGE_SIZE = 20


def page_number(key: str) -> int:
    """The page the viewer is on in the list `key` (1 until they page)."""
    value = st.session_state.get(f"{key}_page", 1)
    return value if isinstance(value, int) and value >= 1 else 1


def _go(key: str, page: int) -> None:
    st.session_state[f"{key}_page"] = page


def pager(page: ResultPage[Any], key: str) -> None:
    """Where this page sits in the list ("Rows 21–40 of 57") and buttons to the first,
    previous, next and last pages (only the count when everything fits on one)."""
    if page.total <= page.page_size:
        if page.total:
            st.caption(_("Rows {first}–{last} of {total}").format(
                first=f"{page.first_row:,}", last=f"{page.last_row:,}",
                total=f"{page.total:,}"))  # fmt: skip
        return
    first, prev, info, nxt, last = st.columns([1, 1, 3, 1, 1], vertical_alignment="center")
    first.button(_("First"), key=f"{key}_first", disabled=page.page <= 1, on_click=_go,
                 args=(key, 1), width="stretch", icon=":material/first_page:")  # fmt: skip
    prev.button(_("Previous"), key=f"{key}_prev", disabled=page.page <= 1, on_click=_go,
                args=(key, page.page - 1), width="stretch")  # fmt: skip
    info.caption(
        _("Rows {first}–{last} of {total} · page {page} of {pages}").format(
            first=f"{page.first_row:,}",
            last=f"{page.last_row:,}", total=f"{page.total:,}", page=page.page,
            pages=page.pages,
        )
    )  # fmt: skip
    nxt.button(_("Next"), key=f"{key}_next", disabled=page.page >= page.pages, on_click=_go,
               args=(key, page.page + 1), width="stretch")  # fmt: skip
    last.button(_("Last"), key=f"{key}_last", disabled=page.page >= page.pages, on_click=_go,
                args=(key, page.pages), width="stretch", icon=":material/last_page:")  # fmt: skip


def paged(rows: Sequence[Row], key: str, page_size: int = LIST_PAGE_SIZE) -> ResultPage[Row]:
    """The page of `rows` (a list read whole) the viewer is on in the list `key`."""
    found = page_of(rows, page_number(key), page_size)
    _go(key, found.page)  # a list that shrank stays on its (new) last page
    return found
