"""The seed interface's pydantic schemas: requests, responses, webhook payloads, statistics.

Requests are checked on construction (a bad one raises pydantic's ValidationError
naming the field); what wanotify itself decides (a template's parameters, the 24 h
window, the number) comes back in a response's `errors`, in a buyer's words. Response
models read wanotify's rows and dataclasses (`from_attributes`).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from core.models.types import utcnow
from core.webhooks.parse import ParsedPayload, parse_payload

Params = dict[str, Any] | list[Any]


class TemplateMessage(BaseModel):
    """A template to send: its name, language (None: the supplier's) and parameters.

    `template_params` maps parameter names to values, or lists values in order (for
    named templates in the order their body uses them).
    """

    model_config = ConfigDict(extra="forbid")

    template_name: str = Field(min_length=1, max_length=512)
    language: str | None = Field(default=None, min_length=2, max_length=15)
    template_params: Params | None = None


class SendWhatsAppMessageRequest(BaseModel):
    """One message to send: a template (`template_name`) or a free-form text (`message`)."""

    model_config = ConfigDict(extra="forbid")

    to_phone: str = Field(min_length=1, max_length=64)
    message: str | None = Field(default=None, max_length=4096)
    template_name: str | None = Field(default=None, min_length=1, max_length=512)
    template_params: Params | None = None
    language: str | None = Field(default=None, min_length=2, max_length=15)
    message_type: Literal["template", "text"] | None = None  # None: template if named
    tenant_id: str | None = Field(default=None, min_length=1, max_length=64)
    po_number: str | None = Field(default=None, min_length=1, max_length=64)
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=200)

    @model_validator(mode="after")
    def _one_kind(self) -> SendWhatsAppMessageRequest:
        kind = self.message_type or ("template" if self.template_name else "text")
        if kind == "template" and not self.template_name:
            raise ValueError("a template message needs template_name")
        if kind == "text" and not (self.message and self.message.strip()):
            raise ValueError("a text message needs a non-empty message")
        if kind == "text" and self.template_name:
            raise ValueError("a text message takes no template_name")
        self.message_type = kind
        return self


class SendWhatsAppMessageResponse(BaseModel):
    """The outcome of one send request: queued (with the message) or refused (`errors`).

    `created` is False when the same message had been queued before (idempotency): then
    `status` says how far that one got.
    """

    success: bool
    message_id: str | None = None
    status: str | None = None
    whatsapp_message_id: str | None = None
    created: bool = False
    errors: list[str] = Field(default_factory=list)

    @property
    def error(self) -> str | None:
        """All refusal reasons in one line, or None."""
        return "; ".join(self.errors) or None


class BulkSendResponse(BaseModel):
    """A bulk send: its batch (shown in the dashboard like an upload) and each request's
    outcome, in request order."""

    batch_id: str | None  # None when nothing was recorded (notifications disabled)
    total: int
    queued: int
    refused: int
    results: list[SendWhatsAppMessageResponse]


class WhatsAppMessageResponse(BaseModel):
    """A message as stored: the seed's columns and wanotify's delivery facts."""

    model_config = ConfigDict(from_attributes=True, populate_by_name=True)

    id: str
    tenant_id: str
    notification_id: str | None = None
    whatsapp_message_id: str | None = None
    idempotency_key: str
    recipient_phone: str
    message_type: str
    status: str
    template_name: str | None = None
    template_language: str | None = None
    template_parameters: dict[str, Any] | None = None
    body_text: str | None = None
    po_number: str | None = None
    po_id: str | None = None
    supplier_id: int | None = None
    batch_id: str | None = None
    attempt_count: int = 0
    sent_at: datetime | None = None
    delivered_at: datetime | None = None
    read_at: datetime | None = None
    failed_at: datetime | None = None
    error_code: int | None = None
    error_message: str | None = None
    pricing_category: str | None = None
    pricing_type: str | None = None
    replied_at: datetime | None = None
    acknowledged_at: datetime | None = None
    ack_action: str | None = None
    metadata: dict[str, Any] | None = Field(default=None, validation_alias="meta")
    created_at: datetime
    updated_at: datetime


class MessageSummary(BaseModel):
    """One line of a message list (`core.message_log.MessageRow`)."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    tenant_id: str
    created_at: datetime
    recipient_phone: str
    supplier: str | None = None
    po_number: str | None = None
    template_name: str | None = None
    status: str
    error: str | None = None
    delivered_at: datetime | None = None
    read_at: datetime | None = None
    replied_at: datetime | None = None


class MessagePageResponse(BaseModel):
    """One page of a tenant's messages, newest first, and how many match in all."""

    items: list[MessageSummary]
    total: int
    page: int
    page_size: int


class WhatsAppTemplateResponse(BaseModel):
    """A template of the local registry (synced from the WhatsApp Business Account)."""

    model_config = ConfigDict(from_attributes=True)

    id: int | None = None
    tenant_id: str
    template_name: str
    template_key: str
    category: str
    language: str
    status: str
    parameter_format: str
    body_text: str
    parameter_count: int
    parameter_names: list[str] | None = None
    sent_count: int
    is_active: bool
    held_reason: str | None = None
    synced_at: datetime | None = None


class DeliveryStats(BaseModel):
    """How a tenant's messages created on days `since`..`until` (in zone `tz`) fared.

    Counts come from `core.stats.funnel` (cancelled messages left out), cost from
    `core.stats.cost` (per currency, from Meta's reported pricing and the rate card).
    """

    tenant_id: str
    since: date
    until: date
    tz: str
    total: int
    sent: int
    delivered: int
    read: int
    replied: int
    failed: int
    queued: int
    delivery_rate: float | None  # delivered / sent
    read_rate: float | None  # read / delivered
    reply_rate: float | None  # replied / delivered
    cost: dict[str, Decimal]  # currency -> amount


class HealthCheckResponse(BaseModel):
    """Whether wanotify can send and track messages now, and what stands in the way."""

    healthy: bool
    sandbox_mode: bool
    api_reachable: bool
    token_ok: bool
    sending_paused: bool
    pause_reason: str | None = None
    queue_pending: int
    queue_needs_attention: int
    database_ok: bool
    webhook_backlog: int
    last_webhook_at: datetime | None = None
    templates_approved: int
    problems: list[str] = Field(default_factory=list)


class _Open(BaseModel):
    """Meta adds fields over time: keep unknown ones instead of refusing the payload."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


class WebhookError(_Open):
    """An error reported with a status (or a whole change)."""

    code: int | None = None
    title: str | None = None
    message: str | None = None
    error_data: dict[str, Any] | None = None


class WebhookPricing(_Open):
    """What Meta says a message costs: model, category, type (`billable` is deprecated)."""

    billable: bool | None = None
    pricing_model: str | None = None
    category: str | None = None
    type: str | None = None


class WebhookStatus(_Open):
    """A status of one of our messages (`value.statuses[]`)."""

    id: str
    status: str
    timestamp: str | int | None = None
    recipient_id: str | None = None
    biz_opaque_callback_data: str | None = None
    conversation: dict[str, Any] | None = None
    pricing: WebhookPricing | None = None
    errors: list[WebhookError] = Field(default_factory=list)


class WebhookInboundMessage(_Open):
    """A supplier's message (`value.messages[]`): text, button press, media, ..."""

    from_: str = Field(alias="from")
    id: str
    timestamp: str | int | None = None
    type: str
    text: dict[str, Any] | None = None
    button: dict[str, Any] | None = None
    interactive: dict[str, Any] | None = None
    context: dict[str, Any] | None = None


class WebhookContact(_Open):
    """Who wrote (`value.contacts[]`): wa_id and WhatsApp profile name."""

    wa_id: str | None = None
    profile: dict[str, Any] | None = None


class WebhookValue(_Open):
    """A change's value; for `field: messages`, statuses or inbound messages."""

    messaging_product: str | None = None
    metadata: dict[str, Any] | None = None
    statuses: list[WebhookStatus] = Field(default_factory=list)
    messages: list[WebhookInboundMessage] = Field(default_factory=list)
    contacts: list[WebhookContact] = Field(default_factory=list)
    errors: list[WebhookError] = Field(default_factory=list)


class WebhookChange(_Open):
    """One change of an entry: its `field` and `value`."""

    field: str
    value: WebhookValue


class WebhookEntry(_Open):
    """One entry: the WhatsApp Business Account's id and its changes."""

    id: str
    changes: list[WebhookChange]


class WhatsAppWebhookPayload(_Open):
    """A webhook POST body as Meta sends it (`object: whatsapp_business_account`).

    For typing a host's own code; wanotify's webhook routes read bodies with
    `core.webhooks.parse` (lenient, never refusing a whole POST for one odd event), and
    `parsed()` hands this payload to that same parser.
    """

    object: str
    entry: list[WebhookEntry]

    def statuses(self) -> Iterator[WebhookStatus]:
        """Every status in the payload."""
        for entry in self.entry:
            for change in entry.changes:
                yield from change.value.statuses

    def messages(self) -> Iterator[WebhookInboundMessage]:
        """Every inbound message in the payload."""
        for entry in self.entry:
            for change in entry.changes:
                yield from change.value.messages

    def parsed(self, received_at: datetime | None = None) -> ParsedPayload:
        """The payload as wanotify's webhook applier reads it (`core.webhooks.parse`)."""
        doc = self.model_dump(mode="json", by_alias=True, exclude_unset=True)
        return parse_payload(doc, received_at or utcnow())
