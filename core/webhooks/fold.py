"""Folding status events into a message row, as a pure function of the row and the events.

Stage times and the status come from `core.status.apply_stage` (earliest time per stage,
furthest stage wins). The facts that are not stage times — the failure's error, the
pricing, the conversation — are each chosen by a fixed total order over the candidates
(the row's current value and the events'), so folding is a join: the result depends only
on the *set* of events, never on their order or on how they were split into batches,
and no earlier event has to be read back:

- error: an error with a code beats one without, then the lowest code, title, words;
- pricing and conversation: the greatest value (Meta reports the same one on every
  status of a message; the order only has to be fixed when it does not);
- the recipient's wa_id: the smallest reported (there is one; again only a fixed order).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from core.errors import classify, human_reason
from core.models.messages import MessageStatus
from core.status import WEBHOOK_STAGES, Progress, apply_stage
from core.webhooks.parse import Conversation, EventError, Pricing, StatusUpdate


@dataclass(frozen=True, slots=True)
class StatusFact:
    """What one status event says about its message (from a webhook or the timeline)."""

    key: str
    status: str
    at: datetime
    recipient_id: str | None = None
    error: EventError | None = None
    pricing: Pricing | None = None
    conversation: Conversation | None = None

    @classmethod
    def of(cls, update: StatusUpdate) -> StatusFact:
        """The facts of a parsed status update (the error as the timeline keeps it)."""
        error = update.error
        if error is not None:
            error = EventError(error.code, error.title or error.message, None, error.details)
        return cls(
            key=update.key,
            status=update.status,
            at=update.at,
            recipient_id=update.recipient_id,
            error=error,
            pricing=update.pricing,
            conversation=update.conversation,
        )


@dataclass(frozen=True, slots=True)
class MessageState:
    """The columns of a whatsapp_messages row that status webhooks write."""

    id: str
    status: str
    sent_at: datetime | None = None
    delivered_at: datetime | None = None
    read_at: datetime | None = None
    failed_at: datetime | None = None
    error_code: int | None = None
    error_title: str | None = None
    error_message: str | None = None
    error_class: str | None = None
    pricing_category: str | None = None
    pricing_type: str | None = None
    pricing_model: str | None = None
    billable: bool | None = None
    conversation_id: str | None = None
    conversation_origin: str | None = None
    wa_id: str | None = None


def fold(state: MessageState, facts: Iterable[StatusFact]) -> MessageState:
    """The row after `facts`: idempotent, monotonic, independent of the facts' order."""
    progress = Progress(
        status=state.status,
        sent_at=state.sent_at,
        delivered_at=state.delivered_at,
        read_at=state.read_at,
        failed_at=state.failed_at,
    )
    facts = list(facts)
    error = _RowError.of(state)
    if state.status in _BEFORE_WEBHOOKS and any(f.status in WEBHOOK_STAGES for f in facts):
        # Meta has the message: an error the sender noted while unsure (a timeout, a
        # retry) no longer describes it. Only a `failed` event sets an error from here on.
        error = _NO_ERROR
    pricing = _row_pricing(state)
    conversation = _row_conversation(state)
    wa_id = state.wa_id
    for fact in facts:
        progress = apply_stage(progress, fact.status, fact.at)
        if fact.status == "failed" and fact.error is not None:
            candidate = _RowError.from_event(fact.error)
            if error is None or error is _NO_ERROR or candidate.order < error.order:
                error = candidate
        if fact.pricing is not None and (pricing is None or _order(fact.pricing) > _order(pricing)):
            pricing = fact.pricing
        if fact.conversation is not None:
            talk = (fact.conversation.id, fact.conversation.origin)
            if conversation is None or _order(talk) > _order(conversation):
                conversation = talk
        if fact.recipient_id is not None:  # one recipient per message; min() if Meta disagrees
            wa_id = fact.recipient_id if wa_id is None else min(wa_id, fact.recipient_id)
    return MessageState(
        id=state.id,
        status=progress.status,
        sent_at=progress.sent_at,
        delivered_at=progress.delivered_at,
        read_at=progress.read_at,
        failed_at=progress.failed_at,
        error_code=error.code if error else None,
        error_title=error.title if error else None,
        error_message=error.message if error else None,
        error_class=error.error_class if error else None,
        pricing_category=pricing.category if pricing else None,
        pricing_type=pricing.type if pricing else None,
        pricing_model=pricing.model if pricing else None,
        billable=pricing.billable if pricing else None,
        conversation_id=conversation[0] if conversation else None,
        conversation_origin=conversation[1] if conversation else None,
        wa_id=wa_id,
    )


def describe_error(error: EventError) -> str:
    """Plain words for a failure, with Meta's own details kept after a dash."""
    reason = human_reason(error.code, error.title or error.message)
    details = (error.details or "").strip()
    if details and details.rstrip(".").lower() not in reason.lower():
        return f"{reason} — {details}"
    return reason


@dataclass(frozen=True, slots=True)
class _RowError:
    code: int | None
    title: str | None
    message: str | None
    error_class: str | None

    @property
    def order(self) -> tuple[bool, int, str, str]:
        return (self.code is None, self.code or 0, self.title or "", self.message or "")

    @classmethod
    def from_event(cls, error: EventError) -> _RowError:
        error_class = classify(error.code).value if error.code is not None else None
        return cls(error.code, error.title, describe_error(error), error_class)

    @classmethod
    def of(cls, state: MessageState) -> _RowError | None:
        if state.error_code is None and state.error_title is None and not state.error_message:
            return None
        return cls(state.error_code, state.error_title, state.error_message, state.error_class)


def _row_pricing(state: MessageState) -> Pricing | None:
    pricing = Pricing(
        state.billable, state.pricing_model, state.pricing_category, state.pricing_type
    )
    return None if pricing == _NO_PRICING else pricing


def _row_conversation(state: MessageState) -> tuple[str | None, str | None] | None:
    if state.conversation_id is None and state.conversation_origin is None:
        return None
    return (state.conversation_id, state.conversation_origin)


def _order(value: Pricing | tuple[str | None, ...]) -> tuple[Any, ...]:
    """A total order on optional fields: a value beats none, then the natural order."""
    if isinstance(value, Pricing):
        fields: tuple[Any, ...] = (value.category, value.type, value.model, value.billable)
    else:
        fields = value
    return tuple((v is not None, v if v is not None else 0) for v in fields)


_NO_PRICING = Pricing(None, None, None, None)
_NO_ERROR = _RowError(None, None, None, None)
#: Statuses a message has before Meta reports on it (see core.status).
_BEFORE_WEBHOOKS = frozenset(
    {
        MessageStatus.PENDING,
        MessageStatus.SENDING,
        MessageStatus.NEEDS_ATTENTION,
        MessageStatus.ACCEPTED,
    }
)
