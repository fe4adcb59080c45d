"""Validation of a send request's body, as Meta does it, with Meta's error codes.

`validate_message` either returns what the sandbox needs to accept the message (the
recipient, the template, the text the supplier would see, the quick-reply payloads) or
raises `SandboxError` with the code Meta answers that mistake with.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from core.sandbox.catalog import NAMED_PLACEHOLDER, POSITIONAL_PLACEHOLDER, Catalog, Template
from core.sandbox.numbers import recipient_digits, wa_id_for
from core.sandbox.wire import SandboxError

MAX_BIZ_OPAQUE = 512
MAX_TEXT_BODY = 4096
MAX_BODY = 1024
MAX_BODY_ALONE = 32768
MAX_HEADER = 60
#: Free-form types Meta sends inside the customer-service window (besides text).
FREE_FORM_TYPES = frozenset(
    {"image", "audio", "video", "document", "sticker", "location", "contacts", "interactive"}
)
#: Template statuses a send can name; PAUSED/DISABLED answer 132015/132016, others 132001.
SENDABLE_OR_HELD = frozenset({"APPROVED", "FLAGGED", "PAUSED", "DISABLED"})
MEDIA_FORMATS = frozenset({"DOCUMENT", "IMAGE", "VIDEO"})
_BAD_PARAM_TEXT = re.compile(r"[\n\t]| {5,}")
_CURRENCY_CODE = re.compile(r"[A-Z]{3}")
_BUTTON_TYPES = {"quick_reply": "QUICK_REPLY", "url": "URL", "copy_code": "COPY_CODE"}


@dataclass(slots=True)
class ValidatedMessage:
    """A send request that passed validation: everything needed to accept it."""

    to: str
    digits: str
    wa_id: str
    type: str
    biz_opaque: str | None
    template: Template | None = None
    rendered: str | None = None
    button_payloads: dict[int, str] = field(default_factory=dict)

    @property
    def free_form(self) -> bool:
        """True for messages that need an open customer-service window (not templates)."""
        return self.template is None

    @property
    def pricing_category(self) -> str:
        """The `pricing.category` Meta reports: the template's category, else `service`."""
        return self.template.category.lower() if self.template else "service"


def _required(name: str) -> SandboxError:
    return SandboxError(100, f"The parameter {name} is required.")


def validate_message(body: Any, catalog: Catalog) -> ValidatedMessage:
    """Check a `/messages` body as Meta does; SandboxError with Meta's code if it is wrong."""
    if not isinstance(body, dict):
        raise SandboxError(100, "The request body must be a JSON object.")
    if body.get("messaging_product") != "whatsapp":
        raise SandboxError(
            100,
            "The parameter messaging_product is required and must be 'whatsapp'.",
            message="(#100) The parameter messaging_product is required.",
        )
    recipient_type = body.get("recipient_type", "individual")
    if recipient_type != "individual":
        raise SandboxError(100, "Param recipient_type must be 'individual'.")
    if "to" not in body:
        raise _required("to")
    to = body["to"]
    digits = recipient_digits(to)
    biz_opaque = body.get("biz_opaque_callback_data")
    if biz_opaque is not None:
        if not isinstance(biz_opaque, str):
            raise SandboxError(100, "Param biz_opaque_callback_data must be a string.")
        if len(biz_opaque) > MAX_BIZ_OPAQUE:
            raise SandboxError(
                100,
                f"Param biz_opaque_callback_data must be at most {MAX_BIZ_OPAQUE} characters "
                f"long (got {len(biz_opaque)}).",
            )
    context = body.get("context")
    if context is not None and not (
        isinstance(context, dict) and isinstance(context.get("message_id"), str)
    ):
        raise SandboxError(100, "Param context must be an object with a message_id.")
    kind = body.get("type", "text")
    message = ValidatedMessage(
        to=to, digits=digits, wa_id=wa_id_for(digits), type=str(kind), biz_opaque=biz_opaque
    )
    if kind == "template":
        _validate_template(body.get("template"), catalog, message)
    elif kind == "text":
        message.rendered = _validate_text(body.get("text"))
    elif kind in FREE_FORM_TYPES:
        if not isinstance(body.get(kind), dict):
            raise _required(str(kind))
    else:
        allowed = ", ".join(sorted({"template", "text", *FREE_FORM_TYPES}))
        raise SandboxError(100, f"Param type must be one of {{{allowed}}} - got {kind!r}.")
    return message


def _validate_text(text: Any) -> str:
    if not isinstance(text, dict) or not isinstance(text.get("body"), str) or not text["body"]:
        raise _required("text['body']")
    if len(text["body"]) > MAX_TEXT_BODY:
        raise SandboxError(
            100, f"Param text['body'] must be at most {MAX_TEXT_BODY} characters long."
        )
    if "preview_url" in text and not isinstance(text["preview_url"], bool):
        raise SandboxError(100, "Param text['preview_url'] must be a boolean.")
    return str(text["body"])


def _validate_template(spec: Any, catalog: Catalog, message: ValidatedMessage) -> None:
    if not isinstance(spec, dict):
        raise _required("template")
    name = spec.get("name")
    if not isinstance(name, str) or not name:
        raise _required("template['name']")
    language = spec.get("language")
    if not isinstance(language, dict) or not isinstance(language.get("code"), str):
        raise _required("template['language']['code']")
    code = language["code"]
    template = catalog.get(name, code)
    if template is None or template.status not in SENDABLE_OR_HELD:
        raise SandboxError(132001, f"template name ({name}) does not exist in {code}")
    if template.status == "PAUSED":
        raise SandboxError(132015, f"Template {name} ({code}) is paused for low quality.")
    if template.status == "DISABLED":
        raise SandboxError(132016, f"Template {name} ({code}) is disabled for low quality.")
    components = spec.get("components", [])
    if not isinstance(components, list) or not all(isinstance(c, dict) for c in components):
        raise SandboxError(100, "Param template['components'] must be a list of objects.")
    header: dict[str, Any] | None = None
    body: dict[str, Any] | None = None
    buttons: list[dict[str, Any]] = []
    for component in components:
        kind = component.get("type")
        kind = kind.lower() if isinstance(kind, str) else kind
        if kind == "header" and header is None:
            header = component
        elif kind == "body" and body is None:
            body = component
        elif kind == "button":
            buttons.append(component)
        else:
            raise SandboxError(
                100, f"Invalid or repeated component type {component.get('type')!r}."
            )
    _check_header(template, header)
    message.template = template
    message.rendered = _fill_body(template, body)
    message.button_payloads = _check_buttons(template, buttons)


def _parameters(component: dict[str, Any] | None, where: str) -> list[dict[str, Any]]:
    if component is None:
        return []
    params = component.get("parameters", [])
    if not isinstance(params, list) or not all(isinstance(p, dict) for p in params):
        raise SandboxError(100, f"{where}: parameters must be a list of objects.")
    return params


def _param_text(param: dict[str, Any], where: str) -> str:
    kind = param.get("type")
    if kind == "text":
        value = param.get("text")
        if not isinstance(value, str) or not value:
            raise SandboxError(131008, f"{where}: Parameter of type text is missing text value")
    elif kind == "currency":
        value = _currency(param.get("currency"), where)
    elif kind == "date_time":
        spec = param.get("date_time")
        value = spec.get("fallback_value") if isinstance(spec, dict) else None
        if not isinstance(value, str) or not value:
            raise SandboxError(
                131008, f"{where}: Parameter of type date_time is missing fallback_value"
            )
    elif isinstance(kind, str) and kind.upper() in (*MEDIA_FORMATS, "LOCATION"):
        raise SandboxError(
            132012, f"{where}: Format mismatch, expected TEXT, received {kind.upper()}"
        )
    else:
        raise SandboxError(
            100, f"{where}: Param type must be one of text, currency, date_time - got {kind!r}"
        )
    if _BAD_PARAM_TEXT.search(value):
        raise SandboxError(
            132018,
            f"{where}: Param text cannot have new-line/tab characters or more than 4 "
            "consecutive spaces",
        )
    return value


def _currency(spec: Any, where: str) -> str:
    fallback = spec.get("fallback_value") if isinstance(spec, dict) else None
    code = spec.get("code") if isinstance(spec, dict) else None
    amount = spec.get("amount_1000") if isinstance(spec, dict) else None
    if (
        not isinstance(fallback, str)
        or not fallback
        or not isinstance(code, str)
        or not _CURRENCY_CODE.fullmatch(code)
        or isinstance(amount, bool)
        or not isinstance(amount, int)
    ):
        raise SandboxError(
            131009,
            f"{where}: a currency parameter needs fallback_value, an ISO 4217 code and an "
            "integer amount_1000",
        )
    return fallback


def _values(template: Template, kind: str, params: list[dict[str, Any]]) -> dict[str, str]:
    """Parameter values by placeholder, after the count/name checks Meta makes."""
    where = kind.lower()
    expected = template.placeholders(kind)
    if template.named:
        names: list[str] = []
        for param in params:
            name = param.get("parameter_name")
            if not isinstance(name, str) or not name:
                raise SandboxError(100, f"{where}: Parameter name is missing or empty")
            names.append(name)
        if sorted(names) != sorted(expected):
            raise SandboxError(
                132000,
                f"{where}: parameter names {names} do not match the template's "
                f"parameters {expected}",
            )
        return {p["parameter_name"]: _param_text(p, where) for p in params}
    if len(params) != len(expected):
        raise SandboxError(
            132000,
            f"{where}: number of localizable_params ({len(params)}) does not match the "
            f"expected number of params ({len(expected)})",
        )
    return {str(i + 1): _param_text(p, where) for i, p in enumerate(params)}


def _fill(template: Template, text: str, values: dict[str, str]) -> str:
    pattern = NAMED_PLACEHOLDER if template.named else POSITIONAL_PLACEHOLDER
    return pattern.sub(lambda m: values.get(m.group(1), m.group(0)), text)


def _check_header(template: Template, header: dict[str, Any] | None) -> None:
    fmt = template.header_format
    params = _parameters(header, "header")
    if fmt is None or fmt == "TEXT":
        values = _values(template, "HEADER", params)
        if fmt == "TEXT":
            text = _fill(template, (template.component("HEADER") or {}).get("text", ""), values)
            if len(text) > MAX_HEADER:
                raise SandboxError(
                    132005, f"header: text is {len(text)} characters once filled; max {MAX_HEADER}"
                )
        return
    if fmt not in MEDIA_FORMATS:
        return
    if not params:
        raise SandboxError(132012, f"header: Format mismatch, expected {fmt}, received UNKNOWN")
    if len(params) != 1:
        raise SandboxError(
            132000,
            f"header: number of localizable_params ({len(params)}) does not match the "
            "expected number of params (1)",
        )
    kind = params[0].get("type")
    received = kind.upper() if isinstance(kind, str) else "UNKNOWN"
    if received != fmt:
        raise SandboxError(132012, f"header: Format mismatch, expected {fmt}, received {received}")
    media = params[0].get(fmt.lower())
    link = media.get("link") if isinstance(media, dict) else None
    media_id = media.get("id") if isinstance(media, dict) else None
    has_link = isinstance(link, str) and urlsplit(link).scheme in ("http", "https")
    if not has_link and not (isinstance(media_id, str) and media_id):
        raise SandboxError(
            132012, f"header: the {fmt.lower()} parameter needs an http(s) link or a media id"
        )
    if fmt == "DOCUMENT" and isinstance(media, dict):
        _check_pdf(media, link)


def _check_pdf(media: dict[str, Any], link: Any) -> None:
    filename = media.get("filename")
    if filename is not None and not isinstance(filename, str):
        raise SandboxError(100, "header: document filename must be a string")
    name = filename or (urlsplit(link).path.rsplit("/", 1)[-1] if isinstance(link, str) else "")
    if "." in name and not name.lower().endswith(".pdf"):
        raise SandboxError(131053, f"header: template documents must be PDF files (got {name!r})")


def _fill_body(template: Template, body: dict[str, Any] | None) -> str:
    values = _values(template, "BODY", _parameters(body, "body"))
    component = template.component("BODY")
    text = _fill(template, component.get("text", "") if component else "", values)
    limit = MAX_BODY_ALONE if template.body_only else MAX_BODY
    if len(text) > limit:
        raise SandboxError(
            132005, f"body: text is {len(text)} characters once filled; the limit is {limit}"
        )
    return text


def _check_buttons(template: Template, components: list[dict[str, Any]]) -> dict[int, str]:
    defined = template.buttons
    payloads: dict[int, str] = {}
    seen: set[int] = set()
    for component in components:
        index = _button_index(component.get("index"))
        sub_type = component.get("sub_type")
        if index in seen:
            raise SandboxError(100, f"buttons: index {index} given twice")
        seen.add(index)
        if index >= len(defined):
            raise SandboxError(131009, f"buttons: the template has no button at index {index}")
        expected = defined[index]["type"]
        if not isinstance(sub_type, str) or _BUTTON_TYPES.get(sub_type.lower()) != expected:
            raise SandboxError(131009, f"buttons: button {index} is {expected}, not {sub_type!r}")
        params = _parameters(component, f"button {index}")
        if expected == "QUICK_REPLY":
            if len(params) > 1:
                raise SandboxError(132000, f"button {index}: at most one payload parameter")
            for param in params:
                payload = param.get("payload")
                if param.get("type") != "payload" or not isinstance(payload, str) or not payload:
                    raise SandboxError(
                        131008, f"button {index}: quick_reply parameters need a payload"
                    )
                payloads[index] = payload
    return payloads


def _button_index(value: Any) -> int:
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 10:
        raise SandboxError(100, "buttons: index must be a number from 0 to 9")
    return value
