"""The awaiting-answer page (AppTest) on a real SQLite file: who sees it, rejected first,
filters, and the supplier's words (reply and name) shown as text, never Markdown."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine

from core import clock
from core.auth import Page, allowed_pages
from core.models.users import Role
from tests.core.followup.helpers import HOSTILE, T0, answer, notice, ready
from tests.dashboard.pages import (
    dashboard_env,
    markdown_bodies,
    markup_made,
    page,
    person,
    plain_texts,
)

pytestmark = pytest.mark.clock
__all__ = ["dashboard_env"]

MODULE = "dashboard.views.follow_up"
H = timedelta(hours=1)
EVIL_NAME = "<b>Evil</b> [x](https://evil.example) ![p](https://evil.example/p.png)"


def test_buyers_and_managers_have_the_page() -> None:
    assert Page.FOLLOW_UP in allowed_pages(Role.BUYER)
    assert Page.FOLLOW_UP in allowed_pages(Role.MANAGER)
    assert Page.FOLLOW_UP in allowed_pages(Role.ADMIN)


def test_the_list_rejected_first_with_hostile_words_as_text(
    dashboard_env: str, engine: Engine
) -> None:
    ready(engine)
    notice(engine, "PO-WAIT", T0 - 30 * H, number="+34699200001")
    _, rej = notice(engine, "PO-REJ", T0 - 3 * H, number="+34699200002", name=EVIL_NAME)
    _, txt = notice(engine, "PO-TXT", T0 - 50 * H, number="+34699200003")
    answer(engine, rej, "+34699200002", T0 - 2 * H, button="Rechazar")
    answer(engine, txt, "+34699200003", T0 - 49 * H, text=HOSTILE)
    with clock.frozen(T0):
        at = page(MODULE, person("buyer")).run()
        assert not at.exception
        frame = at.dataframe[0].value
        assert list(frame["po"]) == ["PO-REJ", "PO-TXT", "PO-WAIT"]
        assert list(frame["age"]) == ["3 h", "2 d 2 h", "1 d 6 h"]
        assert frame["reply"].iloc[1] == HOSTILE and frame["supplier"].iloc[0] == EVIL_NAME
        cells = plain_texts(at)
        assert HOSTILE in cells and EVIL_NAME in cells
        for kind, body in markdown_bodies(at):
            assert not markup_made(body), (kind, body)
            assert "evil.example" not in body, (kind, body)

        at.multiselect(key="follow_up_states").set_value(["unanswered"]).run()
        assert list(at.dataframe[0].value["po"]) == ["PO-WAIT"]
        at.multiselect(key="follow_up_states").set_value([]).run()
        at.selectbox(key="follow_up_age").set_value(48).run()
        assert list(at.dataframe[0].value["po"]) == ["PO-TXT"]
        at.selectbox(key="follow_up_age").set_value(0).run()
        at.text_input(key="follow_up_supplier").set_value("evil").run()
        assert list(at.dataframe[0].value["po"]) == ["PO-REJ"]
        button = at.button(key="follow_up_remind")
        assert button.disabled  # nothing picked yet


def test_another_tenants_notices_and_an_empty_list(dashboard_env: str, engine: Engine) -> None:
    ready(engine, "default", "other")
    notice(engine, "PO-THEIRS", T0 - 30 * H, tenant="other")
    with clock.frozen(T0):
        at = page(MODULE, person("manager")).run()
    assert not at.exception
    assert not at.dataframe
    assert any("Nothing is waiting" in m.value for m in at.markdown)


def test_settings_show_the_schedule_and_switch_it(dashboard_env: str, engine: Engine) -> None:
    from core.followup.settings import get_settings

    ready(engine)
    with clock.frozen(T0):
        at = page("dashboard.views.settings", person("admin")).run()
        assert not at.exception
        assert any("**off**" in m.value for m in at.markdown)
        at.toggle(key="settings_followup_auto").set_value(True).run()
        assert get_settings(engine, "default").auto
        assert any("next run" in m.value for m in at.markdown)
        at.toggle(key="settings_followup_auto").set_value(False).run()
    assert not get_settings(engine, "default").auto
