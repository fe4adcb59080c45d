"""Helpers for AppTest tests of single dashboard pages (a page's `render(user)`).

`texts` is what a reader sees of a page's Markdown: each body rendered as CommonMark
(markdown-it-py), tags dropped, entities decoded, `md_escape`'s invisible word joiners
removed. `markdown_bodies` and `plain_texts` split a page into the strings Streamlit
reads as Markdown and those it shows verbatim, for the outside-text sweep.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any

import pandas as pd
import pytest
import streamlit as st
from markdown_it import MarkdownIt
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import (
    AlertBase,
    Code,
    Dataframe,
    HeadingBase,
    Html,
    Markdown,
    Metric,
    Multiselect,
    Radio,
    Selectbox,
    Table,
    Text,
    TextArea,
    TextInput,
    Toast,
)

from core.models.users import Role
from core.users import UserInfo

USER_KEY = "wanotify_user"  # dashboard.login._USER_KEY


def person(role: str, tenant: str = "default", *extra: str, name: str | None = None) -> UserInfo:
    """A logged-in user as the login page would put it in the session."""
    return UserInfo(
        id=1,
        username=name or f"{role}-user",
        display_name=(name or role).title(),
        role=Role(role),
        tenant_id=tenant,
        tenants=(tenant, *extra),
        is_active=True,
        is_demo=False,
        last_login_at=None,
    )


def _script(module: str) -> None:
    import importlib

    import streamlit as st

    importlib.import_module(module).render(st.session_state["wanotify_user"])


def page(module: str, user: UserInfo, timeout: float = 60) -> AppTest:
    """An AppTest that draws `module`'s page for `user` (call `.run()`)."""
    at = AppTest.from_function(_script, args=(module,), default_timeout=timeout)
    at.session_state[USER_KEY] = user
    return at


@pytest.fixture
def dashboard_env(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A migrated database for the pages, no embedded sender, empty Streamlit caches."""
    monkeypatch.setenv("DASHBOARD_EMBEDDED_SENDER", "false")
    st.cache_data.clear()
    yield database_url
    st.cache_data.clear()


#: CommonMark with GitHub's tables and strikethrough (Streamlit renders GFM).
MARKDOWN = MarkdownIt("commonmark").enable(["table", "strikethrough"])
WORD_JOINER = "\u2060"  # dashboard.widgets.WORD_JOINER


class _Visible(HTMLParser):
    """The text content of an HTML fragment, as a browser shows it (tags dropped)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def visible_html(fragment: str) -> str:
    """The text a browser shows for `fragment` (entities decoded, tags dropped)."""
    parser = _Visible()
    parser.feed(fragment)
    parser.close()
    return "".join(parser.parts)


def shown(markdown: str) -> str:
    """What a reader sees of a Markdown body: its rendered text, without word joiners and
    with no-break spaces as spaces."""
    text = visible_html(MARKDOWN.render(str(markdown)))
    return text.replace(WORD_JOINER, "").replace("\u00a0", " ").strip()


def texts(at: AppTest) -> str:
    """Every markdown, caption, alert, heading, toast and plain text on the page, as a
    reader sees it (Markdown rendered: `md_escape`d text reads as what it escapes)."""
    parts: list[Any] = []
    for kind in ("markdown", "caption", "info", "warning", "error", "success", "subheader",
                 "title", "toast"):  # fmt: skip
        parts.extend(shown(element.value) for element in getattr(at, kind))
    parts.extend(element.value for element in at.text)
    return "\n".join(str(p) for p in parts)


#: Markdown that Streamlit rewrites *after* parsing, in the text itself (escapes are gone
#: by then): GFM's bare URLs and e-mail addresses, emoji/`:streamlit:` shortcodes, arrows.
REWRITTEN = {
    "bare URL": re.compile(r"https?://|www\.", re.IGNORECASE),
    "e-mail": re.compile(r"[-.\w+]+@[-\w]+(?:\.[-\w]+)+"),
    "shortcode": re.compile(r":[a-z+-][\w+-]*:", re.IGNORECASE),
    "arrow": re.compile(r"(?:^|\s)(?:<->|->|<-|--|>=|<=|~=)(?:\s|$)"),
}
#: What Markdown must never make of outside text (the pages' own Markdown has none).
FORBIDDEN_TOKENS = frozenset({"link_open", "image", "html_inline", "html_block"})


def markup_made(body: str) -> list[str]:
    """The links, images and HTML that `body` turns into when read as Markdown, and the
    patterns Streamlit would still rewrite in its text; empty for literal text."""
    found = []
    for block in MARKDOWN.parse(str(body)):
        for token in [block, *(block.children or ())]:
            if token.type in FORBIDDEN_TOKENS:
                found.append(f"Markdown made a {token.type}")
            if token.type == "text":
                found.extend(
                    f"a {name} left whole in {token.content!r}"
                    for name, pattern in REWRITTEN.items()
                    if pattern.search(token.content)
                )
    return found


def _nodes(node: Any) -> Iterator[Any]:
    yield node
    for child in getattr(node, "children", {}).values():
        yield from _nodes(child)


def _cells(frame: pd.DataFrame) -> list[str]:
    cells = [str(c) for c in frame.columns]
    for column in frame.columns:
        cells.extend(v for v in frame[column].tolist() if isinstance(v, str))
    return cells


def _proto_text(node: Any, name: str) -> str:
    try:
        value = getattr(node, name)  # an element's missing names fall through to its proto
    except (AttributeError, ValueError):
        return ""
    return value if isinstance(value, str) else ""


def markdown_bodies(at: AppTest) -> list[tuple[str, str]]:
    """Every string on the page that Streamlit reads as Markdown, with its element type:
    bodies of markdown, captions, alerts, headings and toasts; widget, metric, tab and
    expander labels and tooltips; metric values and deltas; radio options; table cells.
    (Select box and multiselect options are shown verbatim: see `plain_texts`.)"""
    found: list[tuple[str, str]] = []
    for node in _nodes(at._tree):
        kind = str(getattr(node, "type", type(node).__name__))
        if isinstance(node, Markdown | AlertBase | HeadingBase | Toast):
            found.append((kind, node.value))
        elif isinstance(node, Metric):
            found.extend((kind, _proto_text(node, n)) for n in ("label", "body", "delta"))
        elif isinstance(node, Table):
            found.extend((kind, cell) for cell in _cells(node.value))
        if isinstance(node, Radio):
            found.extend((f"{kind} option", option) for option in node.options)
        for name in ("label", "help", "text"):  # widget/tab/expander labels, progress text
            if not isinstance(node, Markdown | AlertBase | HeadingBase | Toast | Metric):
                found.append((f"{kind} {name}", _proto_text(node, name)))
    return [(kind, body) for kind, body in found if body]


def plain_texts(at: AppTest) -> list[str]:
    """Every string the page shows verbatim: `st.text` and `st.code` bodies, dataframe
    cells, select box and multiselect options, text input values, and the visible text
    of `st.html` (the WhatsApp bubble)."""
    found: list[str] = []
    for node in _nodes(at._tree):
        if isinstance(node, Text | Code):
            found.append(node.value)
        elif isinstance(node, Dataframe):
            found.extend(_cells(node.value))
        elif isinstance(node, Selectbox | Multiselect):
            found.extend(node.options)
        elif isinstance(node, TextInput | TextArea):
            found.append(str(node.value or ""))
        elif isinstance(node, Html):
            found.append(visible_html(node.value))
    return [text for text in found if text]
