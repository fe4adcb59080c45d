"""Reminders in analytics (issue 15 follow-up item 2): a reminder carries its PO's number
but is no PO notice, so notice counts and confirmation rates leave it out, both from the
hourly rollup and from the messages; a confirmation pressed on a reminder is the PO's
confirmation, counted once on its notice. Real database, real webhook applier."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine, select

from core import stats
from core.followup.kind import reminded_notice
from core.followup.query import AwaitingFilter, awaiting
from core.followup.reminders import Outcome, send_reminders
from core.models.events import PoAcknowledgement
from core.models.messages import WhatsAppMessage
from tests.core.followup.helpers import T0, answer, deliver, notice, person, ready

pytestmark = pytest.mark.clock
H = timedelta(hours=1)
_M = WhatsAppMessage.__table__  # type: ignore[attr-defined]
_A = PoAcknowledgement.__table__  # type: ignore[attr-defined]


def acks(engine: Engine) -> stats.AckStats:
    """Both paths must agree: whole hours from the rollup, the same from the messages."""
    with engine.connect() as conn:
        days = [at.date() for (at,) in conn.execute(select(_M.c.created_at))]
    flt = stats.StatsFilter(("default",), min(days) - timedelta(days=1), max(days))
    rolled, raw = (
        stats.acknowledgements(engine, flt),
        stats.acknowledgements(engine, flt, rollup=False),
    )
    assert rolled == raw
    return rolled


def test_a_reminder_is_no_notice_and_its_confirmation_counts_on_the_notice(
    engine: Engine,
) -> None:
    db = ready(engine, "default")
    first, _ = notice(db, "PO-A1", T0 - 30 * H, number="+34699000401")
    other, w_other = notice(db, "PO-A2", T0 - 30 * H, number="+34699000402")
    sent = [r for r in send_reminders(db, person(), [first, other], now=T0)]
    assert [r.outcome for r in sent] == [Outcome.QUEUED, Outcome.QUEUED]
    for i, result in enumerate(sent):
        assert result.reminder_id
        deliver(db, result.reminder_id, T0 + H, f"wamid.reminder.a{i}")
    before = acks(db)
    assert (before.notices, before.delivered, before.confirmed) == (2, 2, 0)

    answer(db, "wamid.reminder.a0", "+34699000401", T0 + 2 * H, button="Confirmar pedido")
    answer(db, w_other, "+34699000402", T0 + 2 * H, button="Rechazar")
    after = acks(db)
    assert (after.notices, after.delivered, after.acknowledged) == (2, 2, 2)
    assert (after.confirmed, after.rejected) == (1, 1)  # a rate of 1/2, not 1/4
    with db.connect() as conn:
        (on,) = conn.execute(select(_A.c.message_id).where(_A.c.po_number == "PO-A1")).one()
        states = dict(conn.execute(select(_M.c.id, _M.c.ack_action)).all())
    assert on == first and states[first] == "confirmed"  # the notice holds the answer
    assert states[sent[0].reminder_id] is None
    listed = awaiting(db, AwaitingFilter(("default",)), now=T0 + 3 * H)
    assert [n.po_number for n in listed.rows] == ["PO-A2"]  # rejected; PO-A1 is closed


def test_only_a_reminder_with_a_notice_id_redirects_a_button() -> None:
    assert reminded_notice("po_reminder", {"reminder_of": "abc"}) == "abc"
    assert reminded_notice("po_notification", {"reminder_of": "abc"}) is None
    assert reminded_notice("po_reminder", None) is None
    assert reminded_notice("po_reminder", {"reminder_of": ["x"]}) is None
    assert reminded_notice("po_reminder", {"reminder_of": "x" * 37}) is None
    assert reminded_notice("po_reminder", {"reminder_of": ""}) is None
