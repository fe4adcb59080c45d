"""Template status and quality changes Meta announces by webhook, onto our template rows.

`PAUSED` and `DISABLED` hold the template (the sender stops using it and says why);
`APPROVED` and `REINSTATED` lift such a hold. Changes are applied in the order received.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, update

from core.alerts import events as alert_events
from core.webhooks.parse import TemplateChange
from core.webhooks.sql import TEMPLATES, rowcount

#: Statuses that stop sending a template, and the words a buyer reads for each.
HOLDING = {"PAUSED": "paused", "DISABLED": "disabled"}
#: Statuses that mean the template may be used again.
RELEASING = frozenset({"APPROVED", "REINSTATED", "UNPAUSED"})


def held_reason(change: TemplateChange) -> str | None:
    """Why a template is held after `change`, or None if the change does not hold it."""
    verb = HOLDING.get(change.value)
    if verb is None:
        return None
    reason = change.reason if change.reason and change.reason.upper() != "NONE" else None
    return f"Meta {verb} this template" + (f": {reason}" if reason else "")


def apply_template_changes(conn: Connection, changes: list[TemplateChange], now: datetime) -> int:
    """Write each change to every row of that template name (and language, when given)."""
    changed = 0
    t = TEMPLATES.c
    for change in changes:
        alert_events.template_changes(conn, [change], now)  # admins hear of a hold/rejection
        where = [t.template_name == change.name]
        if change.language:
            where.append(t.language == change.language)
        values: dict[str, object] = {"updated_at": now}
        if change.kind == "quality":
            values["quality_score"] = change.value[:20]
        else:
            values["status"] = change.value[:30]
            if change.value in HOLDING:
                values["held_reason"] = held_reason(change)
            elif change.value in RELEASING:
                values["held_reason"] = None
            if change.value == "REJECTED" and change.reason:
                values["rejected_reason"] = change.reason[:120]
        changed += rowcount(conn.execute(update(TEMPLATES).where(*where).values(**values)))
    return changed
