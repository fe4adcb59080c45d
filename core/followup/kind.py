"""What marks a message as a reminder, for the modules that must tell reminders apart.

A reminder (`core.followup.reminders`) is a template message with the PO's number, like
the notice it reminds, so the PO's answers and thread stay together. It is recorded as a
reminder twice at enqueue: its template is `REMINDER_TEMPLATE` and its idempotency key
starts with `REMINDER_PREFIX`; its metadata names the notice (`reminder_of`). Analytics
(`core.stats`) leave reminders out of PO notice counts, and the webhooks
(`core.webhooks.inbound`) record a button pressed on a reminder as the answer to its
notice. This module imports nothing, so those modules may depend on it.
"""

from __future__ import annotations

from typing import Any

#: The approved template reminders are sent with (reserved: never a PO notice's).
REMINDER_TEMPLATE = "po_reminder"
#: Idempotency keys of reminders start with this.
REMINDER_PREFIX = "reminder:"


def reminded_notice(template_name: str | None, meta: dict[str, Any] | None) -> str | None:
    """The id of the notice a reminder reminds, or None when the message is no reminder
    (or its metadata does not name one): where a button pressed on it counts."""
    if template_name != REMINDER_TEMPLATE or not isinstance(meta, dict):
        return None
    notice = meta.get("reminder_of")
    return notice if isinstance(notice, str) and 0 < len(notice) <= 36 else None
