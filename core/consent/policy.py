"""The consent rule for business-initiated messages (templates), in one place.

A template goes to a supplier only when the supplier has recorded consent, or the
tenant allows sends without it (`core.consent.tenant`). A supplier who opted out (an
admin's untick, a stop-word reply) is refused always. `refusal_for` is called where
templates are prepared (`core.notify.prepare_template_message`, which the dashboard,
CSV batches, ERP events, the CLI and the seed call all go through), by
`core.outbox.resend`, and, for opt-outs that arrive after a message was queued, by the
dispatcher when it claims messages (`core.consent.dispatch`). Free-form text inside the
24-hour window the supplier opened is a reply, not business-initiated, and is not
checked here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from sqlalchemy import Connection
from sqlmodel import Session

from core.consent.tenant import allows_unrecorded
from core.formatting import format_day
from core.i18n import N_, _

OPTED_OUT = "opted_out"
NO_CONSENT = "no_consent"
#: The error class stored on a message the dispatcher refused for consent.
CONSENT_ERROR_CLASS = "consent"

ConsentStateName = Literal["consenting", "opted_out", "unknown"]

#: How each source of consent reads in the UI (the stored value is the key).
SOURCE_LABELS: dict[str, str] = {
    "admin": N_("an admin in the supplier directory"),
    "send_page": N_("the send page (the buyer confirmed)"),
    "csv": N_("a CSV upload (the file or the buyer confirmed)"),
    "erp": N_("an ERP event (supplier.whatsapp_consent)"),
    "api": N_("the API"),
    "cli": N_("the command line"),
    "import": N_("a supplier import"),
    "reply": N_("a reply with a stop word"),
    "demo": N_("demo data"),
    "legacy": N_("recorded before consent tracking"),
}


@dataclass(frozen=True)
class ConsentGrant:
    """A person's or system's confirmation that the supplier agreed to WhatsApp messages."""

    source: str  # send_page, csv, erp, api, cli, admin, import, demo
    by: str | None = None


@dataclass(frozen=True)
class Refusal:
    """Why a template may not go to this supplier: `code` (opted_out, no_consent) and
    `reason`, one sentence for the person sending."""

    code: str
    reason: str


class ConsentHolder(Protocol):
    """What the consent rule reads of a supplier: a `Supplier`, or a row of the suppliers
    table read in bulk (`core.batch_import`)."""

    @property
    def name(self) -> str: ...
    @property
    def opted_in(self) -> bool: ...
    @property
    def opted_out_at(self) -> datetime | None: ...
    @property
    def opt_out_source(self) -> str | None: ...


def consent_state(supplier: ConsentHolder | None) -> ConsentStateName:
    """`opted_out` (withdrawn: never sendable), `consenting`, or `unknown` (none recorded)."""
    if supplier is None:
        return "unknown"
    if supplier.opted_out_at is not None:
        return "opted_out"
    return "consenting" if supplier.opted_in else "unknown"


def source_label(source: str | None) -> str:
    """A stored consent source in words (unknown values shown as they are)."""
    if not source:
        return _("unknown")
    label = SOURCE_LABELS.get(source)
    return _(label) if label is not None else source


def refusal_for(
    db: Session | Connection,
    tenant_id: str,
    supplier: ConsentHolder | None,
    *,
    confirming: bool = False,
    unrecorded_allowed: bool | None = None,
) -> Refusal | None:
    """Why a template to `supplier` must not be sent now, or None when it may.

    `confirming` is True when the sender confirms consent with this send (the send
    page's checkbox, a CSV row's `consent` yes, an ERP event's whatsapp_consent true):
    that records consent for a supplier without it, but never lifts an opt-out.
    `unrecorded_allowed` is the tenant's setting (`allows_unrecorded`) when the caller
    read it once for many messages (a batch); None reads it here when needed.
    """
    state = consent_state(supplier)
    if state == "opted_out":
        assert supplier is not None
        when = supplier.opted_out_at
        return Refusal(
            OPTED_OUT,
            _(
                "Not sent: {name} opted out of WhatsApp messages on {date} (by {source}). "
                "Only an admin can record new consent, in Suppliers."
            ).format(
                name=supplier.name,
                date=format_day(when.date()) if when else "?",  # the one date format
                source=source_label(supplier.opt_out_source),
            ),
        )
    if state == "consenting" or confirming:
        return None
    if unrecorded_allowed is None:
        unrecorded_allowed = allows_unrecorded(db, tenant_id)
    if unrecorded_allowed:
        return None
    name = supplier.name if supplier is not None else _("this number")
    return Refusal(
        NO_CONSENT,
        _(
            "Not sent: {name} has no recorded consent to receive WhatsApp messages. "
            "Confirm that the supplier agreed (and it is recorded with your name), or ask "
            "an admin to record it in Suppliers."
        ).format(name=name),
    )
