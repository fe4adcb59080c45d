"""A lenient parser from Meta's webhook JSON to typed events.

Meta adds fields and event kinds without notice and omits optional ones (a failed status
whose contact has only `wa_id`, no `pricing` after v24, no `conversation`). So the parser
never raises on a well-formed JSON object: a part it cannot use is skipped with a note in
`ParsedPayload.issues`, and every other part of the body still comes through. Strings are
clipped to the sizes the tables store, so no outside value can make a database write fail.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

WHATSAPP_OBJECT = "whatsapp_business_account"
TEMPLATE_STATUS_FIELD = "message_template_status_update"
TEMPLATE_QUALITY_FIELD = "message_template_quality_update"
#: Status words wanotify folds into a message; others are kept in the timeline only.
KNOWN_STATUSES = frozenset({"sent", "delivered", "read", "failed", "played", "deleted"})
#: Inbound message types Meta documents; anything else is stored as it came.
KNOWN_MESSAGE_TYPES = frozenset(
    {
        "text",
        "button",
        "interactive",
        "image",
        "video",
        "audio",
        "document",
        "sticker",
        "location",
        "contacts",
        "reaction",
        "order",
        "system",
        "unsupported",
        "request_welcome",
    }
)
_MEDIA_TYPES = ("image", "video", "audio", "document", "sticker")
_MIN_UNIX = 946_684_800  # 2000-01-01: older is not a WhatsApp event
_MAX_UNIX = 32_503_680_000  # 3000-01-01
_MAX_ID = 128
#: The deepest nesting a body may have. Meta's bodies nest about 8 levels; JSON parsers
#: accept 1,024, but walking (and storing) a value that deep exceeds Python's recursion
#: limit, which would set a correctly signed body aside after it was acknowledged.
MAX_DEPTH = 64


class InvalidBody(ValueError):
    """The body is not a webhook at all (bad JSON, or no `entry` list); `reason` is a label."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class EventError:
    """One entry of an `errors` list: Meta's code, title, message and details."""

    code: int | None
    title: str | None
    message: str | None
    details: str | None


@dataclass(frozen=True, slots=True)
class Pricing:
    """What Meta reported it charges for a message (`pricing`)."""

    billable: bool | None
    model: str | None
    category: str | None
    type: str | None


@dataclass(frozen=True, slots=True)
class Conversation:
    """The conversation a message was billed in (`conversation`, rare since v24)."""

    id: str | None
    origin: str | None
    expires_at: datetime | None


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    """One status of one outbound message (`value.statuses[]`)."""

    wamid: str
    status: str  # lowercased; may be a word we do not know yet
    at: datetime  # Meta's `timestamp` (the receipt time if Meta's was unusable)
    recipient_id: str | None
    callback_data: str | None
    phone_number_id: str | None
    errors: tuple[EventError, ...]
    pricing: Pricing | None
    conversation: Conversation | None
    raw: dict[str, Any]

    @property
    def key(self) -> str:
        """Identity for deduplication: Meta's retries of this event share it.

        It covers every fact the status carries into its message (time, recipient, error,
        pricing, conversation), so two events that differ in any of them are both kept and
        folded: what a message ends with never depends on which of them came first.
        """
        error, pricing, talk = self.error, self.pricing, self.conversation
        parts = [self.wamid, self.status, repr(self.at.timestamp()), self.recipient_id]
        if error is not None:
            codes = ",".join(str(e.code) for e in self.errors)
            parts += [codes, error.title or error.message, error.details]
        if pricing is not None:
            parts += ["p", pricing.category, pricing.type, pricing.model, str(pricing.billable)]
        if talk is not None:
            expires = talk.expires_at.isoformat() if talk.expires_at else None
            parts += ["c", talk.id, talk.origin, expires]
        text = "\x1f".join(p or "" for p in parts)
        return hashlib.blake2b(text.encode(), digest_size=20).hexdigest()

    @property
    def error(self) -> EventError | None:
        """The first error reported with this status, if any."""
        return self.errors[0] if self.errors else None


@dataclass(frozen=True, slots=True)
class InboundMessageEvent:
    """One message a user sent to the business (`value.messages[]`)."""

    wamid: str
    from_wa_id: str
    at: datetime
    type: str
    text: str | None  # text body, button label, reply title, caption, emoji...
    payload: str | None  # quick-reply payload or interactive reply id
    media_id: str | None
    media_mime_type: str | None
    context_wamid: str | None  # the message this one answers (or reacts to)
    profile_name: str | None
    errors: tuple[EventError, ...]
    phone_number_id: str | None
    raw: dict[str, Any]

    @property
    def is_button_reply(self) -> bool:
        """True for a quick-reply button press or an interactive reply."""
        return self.type in ("button", "interactive") and (
            self.payload is not None or self.text is not None
        )


@dataclass(frozen=True, slots=True)
class TemplateChange:
    """A template status or quality change (`message_template_*_update`)."""

    kind: str  # "status" or "quality"
    name: str
    language: str | None
    template_id: str | None
    value: str  # the new status (APPROVED, PAUSED, ...) or quality score (GREEN, ...)
    reason: str | None


@dataclass(frozen=True, slots=True)
class OtherChange:
    """A change of a field wanotify does not act on; kept raw in the receipt."""

    field: str


@dataclass
class ParsedPayload:
    """Everything usable in one webhook body, plus notes on what was skipped and why."""

    object: str | None
    statuses: list[StatusUpdate] = field(default_factory=list)
    messages: list[InboundMessageEvent] = field(default_factory=list)
    template_changes: list[TemplateChange] = field(default_factory=list)
    other_changes: list[OtherChange] = field(default_factory=list)
    change_errors: list[EventError] = field(default_factory=list)
    issues: list[str] = field(default_factory=list)

    @property
    def event_count(self) -> int:
        """How many events the body carried that wanotify recognised."""
        return (
            len(self.statuses)
            + len(self.messages)
            + len(self.template_changes)
            + len(self.other_changes)
        )


def decode_body(body: bytes | str) -> dict[str, Any]:
    """Decode a webhook body; raise InvalidBody unless it is a JSON object with `entry`."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidBody("invalid_json", f"the body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise InvalidBody("not_webhook", "the body must be a JSON object")
    if not isinstance(doc.get("entry"), list):
        raise InvalidBody("not_webhook", "the body has no `entry` list")
    if _too_deep(body, doc):
        raise InvalidBody("too_deep", f"the body nests deeper than {MAX_DEPTH} levels")
    return doc


def _too_deep(body: bytes | str, doc: dict[str, Any]) -> bool:
    """True if `doc` nests objects and arrays more than MAX_DEPTH levels deep."""
    if isinstance(body, bytes):
        brackets = body.count(b"{") + body.count(b"[")
    else:
        brackets = body.count("{") + body.count("[")
    if brackets <= MAX_DEPTH:
        return False  # not enough brackets to nest that deep (most bodies): no walk
    stack: list[tuple[Any, int]] = [(doc, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            return True
        children = node.values() if isinstance(node, dict) else node
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return False


def count_events(doc: dict[str, Any]) -> int:
    """How many events a decoded body carries (statuses, messages, other changes), cheaply.

    Used to size applier batches; the full, lenient parse happens once, in the applier.
    """
    count = 0
    entries = doc.get("entry")
    for entry in entries if isinstance(entries, list) else ():
        changes = entry.get("changes") if isinstance(entry, dict) else None
        for change in changes if isinstance(changes, list) else ():
            value = change.get("value") if isinstance(change, dict) else None
            if not isinstance(value, dict):
                continue
            statuses, messages = value.get("statuses"), value.get("messages")
            found = (len(statuses) if isinstance(statuses, list) else 0) + (
                len(messages) if isinstance(messages, list) else 0
            )
            count += found or 1
    return count


def parse_payload(doc: dict[str, Any], received_at: datetime) -> ParsedPayload:
    """Every event in a decoded body; `received_at` stands in for unusable timestamps."""
    obj = doc.get("object")
    parsed = ParsedPayload(object=obj if isinstance(obj, str) else None)
    if parsed.object != WHATSAPP_OBJECT:
        parsed.issues.append(f"object {_show(obj)} is not {WHATSAPP_OBJECT}: ignored")
        return parsed
    entries = doc.get("entry")
    if not isinstance(entries, list):
        parsed.issues.append("`entry` is not a list")
        return parsed
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            parsed.issues.append(f"entry[{i}] is not an object")
            continue
        changes = entry.get("changes")
        if not isinstance(changes, list):
            parsed.issues.append(f"entry[{i}].changes is not a list")
            continue
        for j, change in enumerate(changes):
            _parse_change(change, f"entry[{i}].changes[{j}]", received_at, parsed)
    return parsed


def _parse_change(change: Any, where: str, received_at: datetime, out: ParsedPayload) -> None:
    if not isinstance(change, dict):
        out.issues.append(f"{where} is not an object")
        return
    value = change.get("value")
    if not isinstance(value, dict):
        out.issues.append(f"{where}.value is not an object")
        return
    field_name = change.get("field")
    if not isinstance(field_name, str):
        field_name = "messages" if ("statuses" in value or "messages" in value) else "unknown"
    if field_name == "messages":
        _parse_messages_value(value, f"{where}.value", received_at, out)
    elif field_name in (TEMPLATE_STATUS_FIELD, TEMPLATE_QUALITY_FIELD):
        _parse_template_change(field_name, value, where, out)
    else:
        out.other_changes.append(OtherChange(field=_clip(field_name, 64) or "unknown"))


def _parse_messages_value(
    value: dict[str, Any], where: str, received_at: datetime, out: ParsedPayload
) -> None:
    metadata = value.get("metadata")
    phone_number_id = (
        _string(metadata.get("phone_number_id"), 64) if isinstance(metadata, dict) else None
    )
    out.change_errors.extend(_errors(value.get("errors")))
    statuses = value.get("statuses")
    if statuses is not None:
        if isinstance(statuses, list):
            for k, item in enumerate(statuses):
                status = _status(item, f"{where}.statuses[{k}]", phone_number_id, received_at, out)
                if status is not None:
                    out.statuses.append(status)
        else:
            out.issues.append(f"{where}.statuses is not a list")
    messages = value.get("messages")
    if messages is not None:
        if isinstance(messages, list):
            names = _profile_names(value.get("contacts"))
            for k, item in enumerate(messages):
                message = _inbound(
                    item, f"{where}.messages[{k}]", phone_number_id, names, received_at, out
                )
                if message is not None:
                    out.messages.append(message)
        else:
            out.issues.append(f"{where}.messages is not a list")


def _status(
    item: Any, where: str, phone_number_id: str | None, received_at: datetime, out: ParsedPayload
) -> StatusUpdate | None:
    if not isinstance(item, dict):
        out.issues.append(f"{where} is not an object")
        return None
    wamid = _identifier(item.get("id"))
    if wamid is None:
        out.issues.append(f"{where} has no usable message id")
        return None
    word = _string(item.get("status"), 20)
    if word is None:
        out.issues.append(f"{where} has no status word")
        return None
    return StatusUpdate(
        wamid=wamid,
        status=word.lower(),
        at=_timestamp(item.get("timestamp"), f"{where}.timestamp", received_at, out),
        recipient_id=_string(item.get("recipient_id"), 32),
        callback_data=_string(item.get("biz_opaque_callback_data"), 512),
        phone_number_id=phone_number_id,
        errors=tuple(_errors(item.get("errors"))),
        pricing=_pricing(item.get("pricing")),
        conversation=_conversation(item.get("conversation")),
        raw=item,
    )


def _inbound(
    item: Any,
    where: str,
    phone_number_id: str | None,
    names: dict[str, str],
    received_at: datetime,
    out: ParsedPayload,
) -> InboundMessageEvent | None:
    if not isinstance(item, dict):
        out.issues.append(f"{where} is not an object")
        return None
    wamid = _identifier(item.get("id"))
    sender = _identifier(item.get("from"), 32)
    if wamid is None or sender is None:
        out.issues.append(f"{where} has no usable id or sender")
        return None
    kind = (_string(item.get("type"), 30) or "unknown").lower()
    text, payload, media_id, mime, reacted_to = _content(kind, item)
    context = item.get("context")
    context_wamid = _identifier(context.get("id")) if isinstance(context, dict) else None
    return InboundMessageEvent(
        wamid=wamid,
        from_wa_id=sender,
        at=_timestamp(item.get("timestamp"), f"{where}.timestamp", received_at, out),
        type=kind,
        text=text,
        payload=_clip(payload, 512),
        media_id=_clip(media_id, 128),
        media_mime_type=_clip(mime, 100),
        context_wamid=context_wamid or reacted_to,
        profile_name=_clip(names.get(sender), 200),
        errors=tuple(_errors(item.get("errors"))),
        phone_number_id=phone_number_id,
        raw=_storable(item),
    )


def _storable(value: Any) -> Any:
    """`value` with NUL characters removed from every string (PostgreSQL's JSONB refuses
    them), so a hostile escaped NUL cannot stop a message from being stored."""
    if isinstance(value, str):
        return value.replace("\x00", "") if "\x00" in value else value
    if isinstance(value, dict):
        return {_storable(k): _storable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_storable(v) for v in value]
    return value


ContentParts = tuple[str | None, str | None, str | None, str | None, str | None]


def _content(kind: str, item: dict[str, Any]) -> ContentParts:
    """(text, payload, media id, mime type, reacted-to wamid) of one inbound message."""
    body = item.get(kind)
    part = body if isinstance(body, dict) else {}
    if kind == "text":
        return _string(part.get("body")), None, None, None, None
    if kind == "button":
        return _string(part.get("text"), 200), _string(part.get("payload")), None, None, None
    if kind == "interactive":
        reply_type = _string(part.get("type")) or ""
        reply = part.get(reply_type)
        reply = reply if isinstance(reply, dict) else {}
        if reply_type == "nfm_reply":
            return _string(reply.get("body")), _string(reply.get("response_json")), None, None, None
        return _string(reply.get("title"), 200), _string(reply.get("id")), None, None, None
    if kind in _MEDIA_TYPES:
        text = _string(part.get("caption")) or _string(part.get("filename"))
        return text, None, _string(part.get("id")), _string(part.get("mime_type")), None
    if kind == "location":
        label = _string(part.get("name")) or _string(part.get("address"))
        where = f"{part.get('latitude')},{part.get('longitude')}"
        return label or (where if "latitude" in part else None), None, None, None, None
    if kind == "reaction":
        return _string(part.get("emoji"), 32), None, None, None, _identifier(part.get("message_id"))
    if kind == "system":
        return _string(part.get("body")), None, None, None, None
    if kind == "order":
        return _string(part.get("text")), None, None, None, None
    return None, None, None, None, None


def _parse_template_change(
    field_name: str, value: dict[str, Any], where: str, out: ParsedPayload
) -> None:
    name = _string(value.get("message_template_name"), 512)
    if field_name == TEMPLATE_STATUS_FIELD:
        kind, new_value = "status", _string(value.get("event"), 30)
    else:
        kind, new_value = "quality", _string(value.get("new_quality_score"), 20)
    if name is None or new_value is None:
        out.issues.append(f"{where}: {field_name} without template name or new value")
        return
    template_id = value.get("message_template_id")
    out.template_changes.append(
        TemplateChange(
            kind=kind,
            name=name,
            language=_string(value.get("message_template_language"), 15),
            template_id=_clip(str(template_id), 64) if isinstance(template_id, int | str) else None,
            value=new_value.upper(),
            reason=_string(value.get("reason"), 500),
        )
    )


def _profile_names(contacts: Any) -> dict[str, str]:
    names: dict[str, str] = {}
    if not isinstance(contacts, list):
        return names
    for contact in contacts:
        if not isinstance(contact, dict):
            continue
        wa_id = _string(contact.get("wa_id"), 32)
        profile = contact.get("profile")
        name = _string(profile.get("name"), 200) if isinstance(profile, dict) else None
        if wa_id and name:
            names[wa_id] = name
    return names


def _errors(value: Any) -> list[EventError]:
    if not isinstance(value, list):
        return []
    errors = []
    for item in value:
        if not isinstance(item, dict):
            continue
        data = item.get("error_data")
        details = _string(data.get("details"), 2000) if isinstance(data, dict) else None
        errors.append(
            EventError(
                code=_integer(item.get("code")),
                title=_string(item.get("title"), 255),
                message=_string(item.get("message"), 2000),
                details=details,
            )
        )
    return errors


def _pricing(value: Any) -> Pricing | None:
    if not isinstance(value, dict):
        return None
    billable = value.get("billable")
    pricing = Pricing(
        billable=billable if isinstance(billable, bool) else None,
        model=_string(value.get("pricing_model"), 10),
        category=_string(value.get("category"), 40),
        type=_string(value.get("type"), 40),
    )
    return None if pricing == Pricing(None, None, None, None) else pricing


def _conversation(value: Any) -> Conversation | None:
    if not isinstance(value, dict):
        return None
    origin = value.get("origin")
    expires = _unix(value.get("expiration_timestamp"))
    conversation = Conversation(
        id=_string(value.get("id"), 128),
        origin=_string(origin.get("type"), 40) if isinstance(origin, dict) else None,
        expires_at=datetime.fromtimestamp(expires, UTC) if expires is not None else None,
    )
    return None if conversation == Conversation(None, None, None) else conversation


def _timestamp(value: Any, where: str, received_at: datetime, out: ParsedPayload) -> datetime:
    seconds = _unix(value)
    if seconds is None:
        out.issues.append(f"{where} {_show(value)} is not a usable time: receipt time used")
        return received_at
    return datetime.fromtimestamp(seconds, UTC)


def _unix(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if not isinstance(value, int | float) or value != value:  # NaN
        return None
    return float(value) if _MIN_UNIX <= value <= _MAX_UNIX else None


def _string(value: Any, limit: int | None = None) -> str | None:
    if type(value) is str:  # the usual case, first
        if "\x00" in value:
            value = value.replace("\x00", "")
        value = value.strip()
        return (value[:limit] if limit is not None else value) if value else None
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        value = str(value)
    if not isinstance(value, str):
        return None
    value = value.strip().replace("\x00", "")
    return _clip(value, limit) if value else None


def _identifier(value: Any, limit: int = _MAX_ID) -> str | None:
    """An id Meta gave (wamid, wa_id); None if absent or longer than any real one."""
    text = _string(value)
    return text if text is not None and len(text) <= limit else None


def _integer(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if -(2**31) <= value < 2**31 else None
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return _integer(int(value.strip()))
    return None


def _clip(value: str | None, limit: int | None) -> str | None:
    if value is None or limit is None:
        return value
    return value[:limit]


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
