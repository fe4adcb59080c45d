"""The awaiting-answer list (issue 15 item 1) on a real database: rejected first, the
tenant's waiting time, answers on reminders, filters, tenant isolation, hostile text."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine

from core.auth import PermissionDenied
from core.followup.query import (
    AwaitingFilter,
    FollowUpQueryError,
    State,
    age_words,
    awaiting,
    notice_templates,
)
from core.followup.settings import (
    FollowUpSettingsError,
    get_settings,
    save_settings,
    set_auto,
)
from tests.core.followup.helpers import HOSTILE, T0, answer, notice, person, ready, setting

pytestmark = pytest.mark.clock
H = timedelta(hours=1)


def listed(engine: Engine, tenants: tuple[str, ...] = ("default",), **kw: object) -> list[str]:
    page = awaiting(engine, AwaitingFilter(tenants, **kw), now=T0)  # type: ignore[arg-type]
    return [n.po_number for n in page.rows]


@pytest.fixture
def db(engine: Engine) -> Engine:
    return ready(engine, "default", "other")


def test_rejected_first_then_the_longest_waiting_past_the_tenants_time(db: Engine) -> None:
    _, old = notice(db, "PO-OLD", T0 - 30 * H)
    notice(db, "PO-OLDEST", T0 - 50 * H)
    _, fresh = notice(db, "PO-FRESH", T0 - 10 * H)  # under 24 h: not yet listed
    _, rej = notice(db, "PO-REJ", T0 - 2 * H, number="+34699000001")
    _, ok = notice(db, "PO-OK", T0 - 48 * H, number="+34699000002")
    _, txt = notice(db, "PO-TXT", T0 - 40 * H, number="+34699000003")
    notice(db, "PO-SENT", None)  # never delivered
    answer(db, rej, "+34699000001", T0 - H, button="Rechazar")
    answer(db, ok, "+34699000002", T0 - 40 * H, button="Confirmar pedido")
    answer(db, txt, "+34699000003", T0 - 39 * H, text=HOSTILE)

    page = awaiting(db, AwaitingFilter(("default",)), now=T0)
    assert [n.po_number for n in page.rows] == ["PO-REJ", "PO-OLDEST", "PO-TXT", "PO-OLD"]
    rows = {n.po_number: n for n in page.rows}
    assert rows["PO-REJ"].state is State.REJECTED and rows["PO-REJ"].reply_text == "Rechazar"
    assert rows["PO-TXT"].state is State.REPLIED
    assert rows["PO-TXT"].reply_text == HOSTILE  # verbatim: the page shows it as text
    assert rows["PO-OLD"].state is State.UNANSWERED and rows["PO-OLD"].reply_text is None
    assert rows["PO-OLD"].age == 30 * H and age_words(rows["PO-OLD"].age) == "1 d 6 h"
    assert rows["PO-OLD"].supplier_name == "Harinas Martín"
    assert page.total == 4

    setting(db, after_hours=8)  # the tenant waits less: the 10-hour-old one is listed
    assert "PO-FRESH" in listed(db)
    assert old and fresh  # (ids used only to build the data)


def test_a_confirmation_on_a_reminder_closes_the_po(db: Engine) -> None:
    from core.followup.reminders import Outcome, send_reminders
    from tests.core.followup.helpers import deliver

    notice_id, _ = notice(db, "PO-R", T0 - 30 * H, number="+34699000010")
    (result,) = send_reminders(db, person(), [notice_id], now=T0)
    assert result.outcome is Outcome.QUEUED and result.reminder_id
    deliver(db, result.reminder_id, T0 + H, "wamid.reminder.1")
    assert listed(db) == ["PO-R"]  # the reminder itself is never listed as a notice
    answer(db, "wamid.reminder.1", "+34699000010", T0 + 2 * H, button="Confirmar pedido")
    assert listed(db) == []


def test_a_later_confirmation_beats_an_earlier_rejection_and_back(db: Engine) -> None:
    _, w = notice(db, "PO-X", T0 - 30 * H, number="+34699000020")
    answer(db, w, "+34699000020", T0 - 20 * H, button="Rechazar")
    answer(db, w, "+34699000020", T0 - 10 * H, button="Confirmar pedido")
    assert listed(db) == []
    answer(db, w, "+34699000020", T0 - 5 * H, button="Rechazar")
    assert listed(db) == ["PO-X"]


def test_filters_supplier_template_state_and_age(db: Engine) -> None:
    notice(db, "PO-A", T0 - 30 * H, name="Harinas Martín", number="+34611000001")
    notice(db, "PO-B", T0 - 80 * H, name="Aceites_100%", number="+34611000002")
    _, c = notice(db, "PO-C", T0 - 26 * H, name="Lácteos Sur", number="+34611000003")
    answer(db, c, "+34611000003", T0 - 25 * H, text="¿Qué plazo?")
    assert listed(db, supplier="harinas") == ["PO-A"]
    assert listed(db, supplier="100%") == ["PO-B"]  # typed text, not a LIKE pattern
    assert listed(db, supplier="_") == ["PO-B"]
    assert listed(db, supplier="611 000 003") == ["PO-C"]  # digits of the number
    assert listed(db, states=("replied",)) == ["PO-C"]
    assert listed(db, states=("unanswered",)) == ["PO-B", "PO-A"]
    assert listed(db, min_age_hours=48) == ["PO-B"]
    assert listed(db, template="po_notification") == ["PO-B", "PO-A", "PO-C"]
    assert listed(db, template="payment_notice") == []
    assert notice_templates(db, ("default",)) == ["po_notification"]


def test_tenants_never_see_each_others_notices(db: Engine) -> None:
    notice(db, "PO-MINE", T0 - 30 * H)
    notice(db, "PO-THEIRS", T0 - 30 * H, tenant="other")
    setting(db, "other", after_hours=48)  # each tenant's own waiting time
    assert listed(db) == ["PO-MINE"]
    assert listed(db, ("other",)) == []
    assert listed(db, ("other",), min_age_hours=1) == ["PO-THEIRS"]
    assert listed(db, ("default", "other")) == ["PO-MINE"]


def test_only_the_newest_delivered_notice_of_a_po_is_listed(db: Engine) -> None:
    first, _ = notice(db, "PO-D", T0 - 40 * H, number="+34699000030")
    from sqlalchemy import update

    from core.models.messages import WhatsAppMessage
    from core.outbox import resend

    m = WhatsAppMessage.__table__  # type: ignore[attr-defined]
    with db.begin() as conn:  # as if it had failed, then been resent and delivered
        conn.execute(update(m).where(m.c.id == first).values(status="failed"))
    again = resend(first, "test", engine=db, tenant_id="default")
    with db.begin() as conn:
        conn.execute(
            update(m)
            .where(m.c.id == again.id)
            .values(status="delivered", delivered_at=T0 - 30 * H, whatsapp_message_id="wamid.2")
        )
    page = awaiting(db, AwaitingFilter(("default",)), now=T0)
    assert [n.message_id for n in page.rows] == [again.id]


def test_bad_filters_are_refused_with_the_reason() -> None:
    with pytest.raises(FollowUpQueryError):
        AwaitingFilter(())
    with pytest.raises(FollowUpQueryError):
        AwaitingFilter(("default",), states=("<script>",))
    with pytest.raises(FollowUpQueryError):
        AwaitingFilter(("default",), supplier="x" * 65)
    with pytest.raises(FollowUpQueryError):
        AwaitingFilter(("default",), min_age_hours=-1)


def test_settings_defaults_ranges_roles_and_garbled_rows(db: Engine) -> None:
    cfg = get_settings(db, "default")
    assert (cfg.after_hours, cfg.max_reminders, cfg.auto) == (24, 2, False)
    setting(db, after_hours="banana", max_reminders=99, auto="TRUE")  # garbled: defaults
    cfg = get_settings(db, "default")
    assert (cfg.after_hours, cfg.max_reminders, cfg.auto) == (24, 2, False)
    admin = person("admin")
    saved = save_settings(db, admin, after_hours=12, max_reminders=3, auto=True,
                          auto_every_hours=4)  # fmt: skip
    assert (saved.after_hours, saved.max_reminders, saved.auto, saved.auto_every_hours) == (
        12, 3, True, 4)  # fmt: skip
    assert set_auto(db, admin, False).auto is False
    with pytest.raises(FollowUpSettingsError):
        save_settings(db, admin, after_hours=0, max_reminders=2, auto=False, auto_every_hours=6)
    with pytest.raises(PermissionDenied):
        set_auto(db, person("buyer"), True)
    assert get_settings(db, "other").after_hours == 24  # another tenant keeps its own


def test_words_on_a_reminder_and_pages_past_the_end(db: Engine) -> None:
    """A text on a reminder makes the PO "replied" (the PO thread, not the notice alone);
    a page past the end of a shrunk list is its last page, with the total, in one read."""
    from core.followup.reminders import send_reminders
    from tests.core.followup.helpers import deliver

    ids = [notice(db, f"PO-P{i}", T0 - (40 - i) * H, number=f"+3469900030{i}")[0]
           for i in range(3)]  # fmt: skip
    (sent,) = send_reminders(db, person(), [ids[0]], now=T0)
    assert sent.reminder_id
    deliver(db, sent.reminder_id, T0 + H, "wamid.reminder.p0")
    answer(db, "wamid.reminder.p0", "+34699000300", T0 + 2 * H, text="<b>mañana</b>")
    page = awaiting(db, AwaitingFilter(("default",), states=("replied",)), now=T0 + 3 * H)
    assert [(n.po_number, n.reply_text, n.reminders) for n in page.rows] == [
        ("PO-P0", "<b>mañana</b>", 1)
    ]
    last = awaiting(db, AwaitingFilter(("default",), page=99, page_size=2), now=T0 + 3 * H)
    assert (last.page, last.total, [n.po_number for n in last.rows]) == (2, 3, ["PO-P2"])
    second = awaiting(db, AwaitingFilter(("default",), page=1, page_size=2), now=T0 + 3 * H)
    assert (second.total, [n.po_number for n in second.rows]) == (3, ["PO-P0", "PO-P1"])
    nothing = awaiting(db, AwaitingFilter(("default",), page=5, template="none"), now=T0)
    assert (nothing.page, nothing.total, nothing.rows) == (1, 0, [])
