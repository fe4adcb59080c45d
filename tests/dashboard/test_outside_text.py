"""Outside text stays text on every page (AppTest, real database, real core paths).

A hostile corpus goes into every field that comes from outside: supplier names and ERP
references, PO numbers, a supplier's WhatsApp reply, Meta's error titles and details,
template bodies and rejection reasons synced from Meta, a pause reason, CSV cells and a
batch's file name. Every page is then drawn, and every string Streamlit reads as Markdown
(bodies, captions, alerts, headings, toasts, labels, metric values, radio options,
`st.table` cells) is parsed as CommonMark: no link, image or HTML may come out of it,
none of the patterns Streamlit rewrites after parsing (bare URLs, e-mail addresses,
`:shortcodes:`, arrows) may be left whole, and wherever a corpus string shows it must
read exactly as written. Each corpus string must also appear verbatim somewhere.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from typing import Any

import pytest
from sqlalchemy import Engine
from streamlit.testing.v1 import AppTest

from core.control import pause_sending
from core.sandbox.catalog import DEFAULT_TEMPLATE_FIELDS, default_templates
from core.settings import get_settings
from core.supplier_directory import SupplierInput, add_supplier
from core.templates import upsert_templates
from tests.core.webhooks.helpers import (
    add_message,
    apply_all,
    inbound_body,
    inbound_message,
    journal,
    status,
    statuses_body,
)
from tests.dashboard.pages import (
    dashboard_env,
    markdown_bodies,
    markup_made,
    page,
    person,
    plain_texts,
    shown,
)

__all__ = ["dashboard_env"]

WORD_JOINER = "\u2060"


def hostile(tag: str) -> str:
    """A one-line value (at most 200 characters, a supplier name's limit) that would draw
    a heading, an image, a link, HTML, formatting, an emoji, LaTeX, a colour, bare-URL and
    e-mail links and an arrow if it were read as Markdown."""
    return (
        f"# {tag} ![{tag}](http://127.0.0.1:9/{tag}.png) [Session expired: log in]"
        f"(https://e.example/{tag}) <b>{tag}</b> **b** `c` ~~d~~ :smile: :red[e] $x^2$ "
        f"www.e.example {tag}@e.example -> |f|"
    )


def short(tag: str) -> str:
    """A hostile value that fits a 64-character field (PO numbers, ERP references)."""
    return f"{tag} ![i](http://127.0.0.1:9/i.png) <b>b</b> :smile: [l](//x.co)"


SUPPLIER, REF, PO = hostile("Zsup"), short("Zref"), short("Zpo1")
REPLY = "Zrep1 ![px](http://127.0.0.1:9/px.png)\n# Zrep2 heading\n> [Log in](https://e.example)"
TITLE, DETAILS = hostile("Zttl"), hostile("Zdet")
BODY, PAUSE = hostile("Zbod"), hostile("Zpau")
REJECTED = hostile("Zrej")[:120]  # Meta's rejection reason is kept to 120 characters
CSV_NAME, CSV_PO = hostile("Zcsv"), short("Zcpo")
AMOUNT = "Zamt ![a](//x.co/a.png) **9**"  # the field takes 40 characters
FILE_NAME = "Zfil ![f](http___127_0_0_1_9_f_png) [l](https___e_example) <b>f</b> :smile:"
CORPUS = {
    "Zsup": SUPPLIER, "Zref": REF, "Zpo1": PO, "Zrep1": REPLY, "Zttl": TITLE, "Zdet": DETAILS,
    "Zbod": BODY, "Zrej": REJECTED, "Zpau": PAUSE, "Zcsv": CSV_NAME, "Zcpo": CSV_PO,
    "Zfil": FILE_NAME, "Zamt": AMOUNT,
}  # fmt: skip
TAG = re.compile("|".join(CORPUS))
ADMIN = person("admin")


def markdown_problems(where: str, body: str) -> list[str]:
    """What is wrong with one Markdown body on the page (an empty list when nothing):
    links, images or HTML made of it, rewritten patterns left whole, or a corpus string
    that does not read as written."""
    problems = [f"{where}: {found} in {body!r}" for found in markup_made(body)]
    visible = shown(body)
    for tag in set(TAG.findall(body)):
        expected = CORPUS[tag]
        if "\n" in expected:  # multi-line text belongs in st.text: check it line by line
            missing = [line for line in expected.split("\n") if line not in visible]
        else:
            missing = [expected] if expected not in visible else []
        if missing:
            problems.append(f"{where}: {tag} does not read as written: {visible!r}")
    return problems


def _check(at: AppTest, name: str, seen: set[str]) -> list[str]:
    """The problems on one drawn page; adds the corpus tags shown verbatim to `seen`."""
    assert not at.exception, f"{name}: {at.exception}"
    problems = []
    for kind, body in markdown_bodies(at):
        problems += markdown_problems(f"{name} {kind}", body)
        seen.update(tag for tag, text in CORPUS.items() if text in shown(body))
    for text in plain_texts(at):
        seen.update(tag for tag, value in CORPUS.items() if value in text)
    for chart in at.get("plotly_chart"):
        for label in _strings(json.loads(chart.proto.spec)):
            if TAG.search(label) and re.search(r"<(?!br>)[a-z/]", label, re.IGNORECASE):
                problems.append(f"{name} chart: a label Plotly reads as HTML: {label!r}")
    return problems


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _seed(engine: Engine) -> dict[str, Any]:
    """The hostile corpus in every outside field, written through the product's paths."""
    templates = [t.as_graph(DEFAULT_TEMPLATE_FIELDS) for t in default_templates()]
    rejected = json.loads(json.dumps(templates[0]))
    rejected.update(name="zz_hostile", status="REJECTED", rejected_reason=REJECTED)
    for component in rejected["components"]:
        if component["type"] == "BODY":
            component["text"] = f"{BODY}\n{component['text']}"
    report = upsert_templates(engine, "default", [*templates, rejected])
    assert not report.skipped, report.skipped
    supplier = add_supplier(engine, ADMIN, SupplierInput(SUPPLIER, "+34612345678", "es", REF))
    answered = add_message(
        engine, wamid="wamid.Z1", status_="delivered", po_number=PO, supplier_id=supplier.id
    )
    failed = add_message(engine, wamid="wamid.Z2", po_number=PO, supplier_id=supplier.id)
    journal(
        engine,
        inbound_body(
            inbound_message(
                "wamid.ZIN1", "34612345678", "text", context="wamid.Z1", text={"body": REPLY}
            ),
            name=SUPPLIER,
        ),
        statuses_body(
            status(
                "wamid.Z2",
                "failed",
                1_763_990_100,
                errors=[
                    {
                        "code": 987654,
                        "title": TITLE,
                        "message": TITLE,
                        "error_data": {"details": DETAILS},
                    }
                ],
            )
        ),
    )
    apply_all(engine)
    pause_sending(engine, get_settings().phone_number_id, PAUSE, 987654)
    return {"supplier": supplier.id, "answered": answered, "failed": failed}


def _csv() -> bytes:
    return (
        "supplier_name;phone;po_number;total_amount;currency;language\n"
        f"{CSV_NAME};+34 612 34 56 78;{CSV_PO};10.50;EUR;es\n"
        f"{CSV_NAME};12;{CSV_PO}-2;10.50;EUR;es\n"
    ).encode()


def _pages(engine: Engine, ids: dict[str, Any]) -> Iterator[tuple[str, AppTest]]:
    """Every page drawn (and clicked through) where the corpus shows."""
    messages = "dashboard.views.messages"
    for chosen in ("answered", "failed"):
        at = page(messages, person("manager"))
        at.session_state["messages_selected"] = ids[chosen]
        yield f"messages ({chosen})", at.run()
    yield "analytics", page("dashboard.views.analytics", person("manager")).run()
    yield "health", page("dashboard.views.health", ADMIN).run()
    at = page("dashboard.views.templates", ADMIN).run()
    yield "templates", at.selectbox(key="templates_preview").set_value("zz_hostile · es").run()
    at = page("dashboard.views.suppliers", ADMIN)
    at.session_state["suppliers_selected"] = ids["supplier"]
    at.run()
    at.file_uploader(key="suppliers_upload").set_value((f"{FILE_NAME}.csv", _csv(), "text/csv"))
    yield "suppliers", at.run()
    at = page("dashboard.views.send", ADMIN)
    for key, value in (("send_name", SUPPLIER), ("send_phone", "+34612345678"),
                       ("send_po", PO), ("send_amount", AMOUNT)):  # fmt: skip
        at.session_state[key] = value
    yield "send (refused amount)", at.run()
    at.text_input(key="send_amount").set_value("10.50")
    yield "send (ready)", at.run()
    at.button(key="send_go").click()
    yield "send (sent)", at.run()
    at = page("dashboard.views.bulk", ADMIN).run()
    at.file_uploader(key="bulk_file").set_value((f"{FILE_NAME}.csv", _csv(), "text/csv"))
    yield "bulk (checked file)", at.run()
    next(b for b in at.button if b.key and b.key.startswith("bulk_go_")).click()
    yield "bulk (batch)", at.run()
    yield "settings", page("dashboard.views.settings", ADMIN).run()


@pytest.mark.slow
def test_no_page_reads_outside_text_as_markdown(dashboard_env: str, engine: Engine) -> None:
    ids = _seed(engine)
    problems: list[str] = []
    seen: set[str] = set()
    for name, at in _pages(engine, ids):
        problems += _check(at, name, seen)
    assert not problems, "\n".join(problems)
    assert seen == set(CORPUS), f"never shown as written: {sorted(set(CORPUS) - seen)}"


def test_the_checks_catch_raw_outside_text() -> None:
    """The sweep's own control: unescaped corpus text is caught, escaped text passes."""
    from dashboard.widgets import md_escape

    for value in (SUPPLIER, PO, TITLE, FILE_NAME):
        assert markdown_problems("raw", f"Edit {value}")
        assert not markdown_problems("escaped", f"**Edit** {md_escape(value)}")
    assert markdown_problems("raw reply", REPLY)
    assert not markdown_problems("escaped reply", md_escape(REPLY))
