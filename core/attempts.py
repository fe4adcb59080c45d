"""What became of a message that already exists: its latest attempt and whether it counts.

Sending the same notice twice returns the first message (idempotency). A script must not
take that for success when the first message failed: `latest_attempt` follows the
deliberate resends a person made (`resent_as`), and `verdict` says whether that attempt
is on its way (queued, being sent, accepted, sent, delivered, read) or not (failed,
cancelled, outcome unknown), with the reason in a buyer's words.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine
from sqlmodel import Session

from core.db import get_engine
from core.errors import human_reason
from core.models.messages import MessageStatus, WhatsAppMessage

#: Statuses that count as success for a caller: the message is queued or reached Meta.
ON_ITS_WAY = frozenset(
    {
        MessageStatus.PENDING,
        MessageStatus.SENDING,
        MessageStatus.ACCEPTED,
        MessageStatus.SENT,
        MessageStatus.DELIVERED,
        MessageStatus.READ,
    }
)
#: Resends followed at most (a chain longer than this is cut, never looped).
_MAX_CHAIN = 50
#: Meta's error details shown at most (characters).
_MAX_DETAILS = 300


@dataclass(frozen=True)
class Verdict:
    """Whether a message counts as sent for its caller, and why not when it does not."""

    ok: bool
    status: str
    reason: str | None  # None when ok


def verdict(message: WhatsAppMessage) -> Verdict:
    """Success (queued or reached Meta) or not, with the reason a person can act on."""
    status = str(message.status)
    if status in ON_ITS_WAY:
        return Verdict(True, status, None)
    if status == MessageStatus.FAILED:
        reason = human_reason(message.error_code, message.error_title or message.error_message)
        if message.error_code is not None:
            reason += f" (Meta error {message.error_code})"
        if message.error_message and message.error_message not in reason:
            reason += f": {message.error_message}"
        details = _meta_details(message.provider_response)
        if details and details not in reason:
            reason += f" ({' '.join(details.split())[:_MAX_DETAILS]})"  # Meta's words, one line
        return Verdict(False, status, reason)
    if status == MessageStatus.CANCELLED:
        return Verdict(False, status, "it was cancelled before it was sent")
    if status == MessageStatus.NEEDS_ATTENTION:
        return Verdict(
            False,
            status,
            "its outcome is unknown after an interruption (check the supplier's phone "
            "before sending again)",
        )
    return Verdict(False, status, f"its status is {status}")


def _meta_details(response: object) -> str | None:
    """Meta's `error_data.details` as the sender stored it (`{"error": {"details": ...}}`)."""
    error = response.get("error") if isinstance(response, dict) else None
    details = error.get("details") if isinstance(error, dict) else error
    return details.strip() or None if isinstance(details, str) else None


def latest_attempt(message: WhatsAppMessage, *, engine: Engine | None = None) -> WhatsAppMessage:
    """The newest deliberate resend of `message` (following resends of resends), or itself.

    A resend of another tenant, or one that cannot be found, ends the chain.
    """
    current = message
    with Session(engine or get_engine()) as session:
        for _ in range(_MAX_CHAIN):
            resent = (current.meta or {}).get("resent_as")
            if not isinstance(resent, list) or not resent:
                break
            newer = session.get(WhatsAppMessage, str(resent[-1])[:36])
            if newer is None or newer.tenant_id != message.tenant_id:
                break
            current = newer
    return current
