"""The kinds of alert, what each is called, and who is told by default.

The kind is stored as its value (`po_rejected`, ...); the label is marked for the
catalogue and translated where shown (dashboard, e-mail).
"""

from __future__ import annotations

from enum import StrEnum

from core.i18n import N_, _


class AlertKind(StrEnum):
    """Something that happened which a person should hear about without looking."""

    PO_REJECTED = "po_rejected"
    SENDING_PAUSED = "sending_paused"
    BATCH_FAILURES = "batch_failures"
    TEMPLATE_HELD = "template_held"
    WEBHOOK_SIGNATURES = "webhook_signatures"


LABELS: dict[AlertKind, str] = {
    AlertKind.PO_REJECTED: N_("A supplier rejects a PO I sent"),
    AlertKind.SENDING_PAUSED: N_("Sending pauses (admins)"),
    AlertKind.BATCH_FAILURES: N_("A batch I started finishes with failures"),
    AlertKind.TEMPLATE_HELD: N_("Meta pauses, disables or rejects a template (admins)"),
    AlertKind.WEBHOOK_SIGNATURES: N_("Webhooks are refused for bad signatures (admins)"),
}

#: Kinds told to admins only (a buyer or manager is never in their audience).
ADMIN_KINDS = frozenset(
    {AlertKind.SENDING_PAUSED, AlertKind.TEMPLATE_HELD, AlertKind.WEBHOOK_SIGNATURES}
)


def label(kind: str) -> str:
    """The kind in the reader's words (the stored value if it is not a known kind)."""
    try:
        return _(LABELS[AlertKind(kind)])
    except ValueError:
        return kind


def kinds_for_role(role: str) -> list[AlertKind]:
    """The kinds a user of `role` can receive, in the order the settings list them."""
    return [kind for kind in AlertKind if role == "admin" or kind not in ADMIN_KINDS]
