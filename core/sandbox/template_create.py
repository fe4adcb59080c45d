"""`POST /{version}/{waba_id}/message_templates`: creating a template, as Meta answers it.

A submission is checked the way Meta checks it on arrival (its own rules, written here
from Meta's side, not shared with wanotify's validator): a malformed one is refused at
once with Graph's error shape, code 100 with an `error_subcode`, `error_user_title` and
`error_user_msg` (2388024 name and language already exist, 2388299 a parameter at the
start or end of the body, 2388040 a text too long, 2388043 a parameter without a
sample, 2388047/2388072/2388073 a malformed header, body or footer, 2388019 the
account's 250 templates used up). A well-formed one is answered `{"id", "status":
"PENDING", "category"}`, joins the catalogue as PENDING (so the list API, and a sync,
sees it) and is reviewed `template_review_s` seconds later (times `time_scale`): the
review approves it, or rejects it as Meta's review does (INVALID_FORMAT for too many
parameters for its words or two side by side, INCORRECT_CATEGORY for promotional words
in a UTILITY template), updates the catalogue and posts a signed
`message_template_status_update` webhook.
"""

from __future__ import annotations

import asyncio
import copy
import re
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

import orjson

from core.sandbox.catalog import Template
from core.sandbox.planner import PlannedEvent
from core.sandbox.wire import SandboxError, template_status_envelope, unknown_object

if TYPE_CHECKING:
    from core.sandbox.app import Sandbox
    from core.sandbox.state import SandboxState

MAX_TEMPLATES = 250
_NAME = re.compile(r"[a-z0-9_]{1,512}")
_LANGUAGE = re.compile(r"[a-z]{2,3}(_[A-Z]{2})?")
_ANY_PARAM = re.compile(r"\{\{(.*?)\}\}")
_NAMED = re.compile(r"[a-z][a-z0-9_]*")
_PROMOTIONAL = re.compile(
    r"\b(discount|descuento|ofertas?|offers?|promo|promoci[oó]n|promotion)\b|\d+\s*%", re.I
)
_BUTTON_LIMITS = {"QUICK_REPLY": 10, "URL": 2, "PHONE_NUMBER": 1, "COPY_CODE": 1}
_LANGUAGE_NAMES = {"es": "Spanish", "en": "English", "en_US": "English (US)", "pt_BR": "Portuguese"}


class TemplateError(SandboxError):
    """A refused template creation: code 100 with Meta's user-facing title and message."""

    def __init__(self, user_msg: str, *, subcode: int | None = None, title: str | None = None):
        super().__init__(100, message="Invalid parameter", subcode=subcode)
        self.user_title = title or "Invalid parameter"
        self.user_msg = user_msg

    def payload(self, fbtrace_id: str) -> dict[str, Any]:
        """Graph's shape for template errors: no `error_data`, a user title and message."""
        error: dict[str, Any] = {"message": self.message, "type": "OAuthException", "code": 100}
        if self.subcode is not None:
            error["error_subcode"] = self.subcode
        error.update(
            is_transient=False,
            error_user_title=self.user_title,
            error_user_msg=self.user_msg,
            fbtrace_id=fbtrace_id,
        )
        return {"error": error}


def create_template(sandbox: Sandbox, waba_id: str, raw: bytes) -> dict[str, Any]:
    """Check a creation request, add the template as PENDING and plan its review."""
    state = sandbox.state
    if waba_id != state.config.waba_id:
        raise unknown_object(waba_id)
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise TemplateError("The request body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise TemplateError("The request body must be a JSON object.")
    name, language, category, named, parts = _check_top(data)
    if state.catalog.get(name, language) is not None:
        label = _LANGUAGE_NAMES.get(language, language)
        raise TemplateError(
            f"There is already {label} content for this template. You can create a new "
            "template and try again.",
            subcode=2388024,
            title="Content in this language already exists",
        )
    if len(state.catalog) >= MAX_TEMPLATES:
        raise TemplateError(
            f"This WhatsApp Business Account has reached its limit of {MAX_TEMPLATES} "
            "message templates.",
            subcode=2388019,
            title="Message template limit reached",
        )
    _check_components(parts, named)
    template = Template(
        id=str(_next_id(state)),
        name=name,
        language=language,
        category=category,
        status="PENDING",
        components=copy.deepcopy(list(data["components"])),
        parameter_format="NAMED" if named else "POSITIONAL",
        quality_score={"score": "UNKNOWN", "date": int(time.time())},
    )
    state.catalog.add(template)
    _plan_review(sandbox, template)
    return {"id": template.id, "status": "PENDING", "category": category}


def _next_id(state: SandboxState) -> int:
    """A template id: Meta's are 15-16 digits; ours count up from the seeded catalogue's."""
    highest = max((int(t.id) for t in state.catalog if t.id.isdigit()), default=10**15)
    return highest + 1


def _check_top(data: dict[str, Any]) -> tuple[str, str, str, bool, dict[str, dict[str, Any]]]:
    name = data.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise TemplateError(
            "Template name can only contain lowercase letters, numbers and underscores, "
            "up to 512 characters."
        )
    language = data.get("language")
    if not isinstance(language, str) or not _LANGUAGE.fullmatch(language):
        raise TemplateError("The language code is not one WhatsApp supports.")
    category = data.get("category")
    category = category.upper() if isinstance(category, str) else None
    if category not in ("UTILITY", "MARKETING", "AUTHENTICATION"):
        raise TemplateError("Param category must be one of {UTILITY, MARKETING, AUTHENTICATION}.")
    fmt = data.get("parameter_format", "POSITIONAL")
    if not isinstance(fmt, str) or fmt.upper() not in ("NAMED", "POSITIONAL"):
        raise TemplateError("Param parameter_format must be one of {NAMED, POSITIONAL}.")
    components = data.get("components")
    if not isinstance(components, list) or not components:
        raise TemplateError("The parameter components is required.")
    parts: dict[str, dict[str, Any]] = {}
    for component in components:
        kind = component.get("type") if isinstance(component, dict) else None
        kind = kind.upper() if isinstance(kind, str) else None
        if kind not in ("HEADER", "BODY", "FOOTER", "BUTTONS") or kind in parts:
            raise TemplateError("Components must be one HEADER, BODY, FOOTER and BUTTONS each.")
        parts[kind] = component
    if "BODY" not in parts:
        raise TemplateError("A template needs a BODY component.")
    return name, language, category, fmt.upper() == "NAMED", parts


def _params(text: str, named: bool, subcode: int, where: str) -> list[str]:
    names = _ANY_PARAM.findall(text)
    for token in names:
        if not (_NAMED.fullmatch(token) if named else token.isdigit()):
            raise TemplateError(
                f"The {where} has a variable parameter in an invalid format.",
                subcode=subcode,
                title=f"Message template {where} format is incorrect",
            )
    return names


def _samples(component: dict[str, Any], named: bool, key: str) -> set[str]:
    example = component.get("example")
    if not isinstance(example, dict):
        return set()
    if named:
        items = example.get(f"{key}_named_params")
        return {
            str(item.get("param_name"))
            for item in (items if isinstance(items, list) else [])
            if isinstance(item, dict) and isinstance(item.get("example"), str) and item["example"]
        }
    values = example.get(key)
    if key == "body_text" and isinstance(values, list) and values:
        values = values[0]
    if not isinstance(values, list):
        return set()
    return {str(i) for i, v in enumerate(values, start=1) if isinstance(v, str) and v}


def _need_samples(names: list[str], given: set[str], where: str) -> None:
    if set(names) - given:
        raise TemplateError(
            f"Your {where} has variable parameters: add sample values for every one of them.",
            subcode=2388043,
            title="Message template sample values are missing",
        )


def _too_long(where: str, limit: int) -> TemplateError:
    return TemplateError(
        f"The {where} is longer than the {limit} characters allowed.",
        subcode=2388040,
        title="Message template field too long",
    )


def _check_components(parts: dict[str, dict[str, Any]], named: bool) -> None:
    body = parts["BODY"]
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        raise TemplateError("The body text is required.", subcode=2388072)
    if len(text) > 1024:
        raise _too_long("body", 1024)
    names = _params(text, named, 2388072, "body")
    edge = text.strip(" \t\r\n.,;:!?¡¿()\"'-")
    if names and (edge.startswith("{{") or edge.endswith("}}")):
        raise TemplateError(
            "Variables can't be at the start or end of the template.",
            subcode=2388299,
            title="Variables can't be at the start or end of the template",
        )
    _need_samples(names, _samples(body, named, "body_text"), "body")
    header = parts.get("HEADER")
    if header is not None and str(header.get("format", "TEXT")).upper() == "TEXT":
        header_text = header.get("text")
        if not isinstance(header_text, str) or not header_text:
            raise TemplateError("The header text is required.", subcode=2388047)
        if len(header_text) > 60:
            raise _too_long("header", 60)
        header_names = _params(header_text, named, 2388047, "header")
        if len(header_names) > 1:
            raise TemplateError(
                "The header can have at most one variable parameter.",
                subcode=2388047,
                title="Message template header format is incorrect",
            )
        _need_samples(header_names, _samples(header, named, "header_text"), "header")
    footer = parts.get("FOOTER")
    if footer is not None:
        footer_text = footer.get("text")
        if not isinstance(footer_text, str) or not footer_text:
            raise TemplateError("The footer text is required.", subcode=2388073)
        if len(footer_text) > 60:
            raise _too_long("footer", 60)
        if "{{" in footer_text:
            raise TemplateError(
                "The footer can't have variable parameters.",
                subcode=2388073,
                title="Message template footer format is incorrect",
            )
    if "BUTTONS" in parts:
        _check_buttons(parts["BUTTONS"].get("buttons"))


def _check_buttons(buttons: Any) -> None:
    if not isinstance(buttons, list) or not 1 <= len(buttons) <= 10:
        raise TemplateError("A template has 1 to 10 buttons.")
    kinds = [str(b.get("type", "")).upper() if isinstance(b, dict) else "" for b in buttons]
    for kind, count in Counter(kinds).items():
        if kind not in _BUTTON_LIMITS:
            raise TemplateError(f"Button type {kind[:40]} is not supported.")
        if count > _BUTTON_LIMITS[kind]:
            raise TemplateError(f"A template has at most {_BUTTON_LIMITS[kind]} {kind} buttons.")
    quick = [i for i, kind in enumerate(kinds) if kind == "QUICK_REPLY"]
    if quick and quick[-1] - quick[0] + 1 != len(quick):
        raise TemplateError("Quick reply buttons must be grouped together.")
    for button in buttons:
        label = button.get("text")
        if button.get("type", "").upper() != "COPY_CODE" and (
            not isinstance(label, str) or not label or len(label) > 25
        ):
            raise TemplateError("Button text is required and at most 25 characters.")


def review(template: Template) -> tuple[str, str]:
    """Meta's review of a well-formed template: (event, reason)."""
    body = template.component("BODY") or {}
    text = str(body.get("text", ""))
    names = _ANY_PARAM.findall(text)
    words = len(re.findall(r"\w+", _ANY_PARAM.sub(" ", text)))
    if names and (words < 2 * len(names) + 1 or re.search(r"\}\}\s*\{\{", text)):
        return "REJECTED", "INVALID_FORMAT"
    if template.category == "UTILITY" and _PROMOTIONAL.search(text):
        return "REJECTED", "INCORRECT_CATEGORY"
    return "APPROVED", "NONE"


#: A pending review looks at the configured delay at least this often (seconds), so a
#: test that shortens `template_review_s` sees earlier submissions decided too.
REVIEW_POLL_S = 0.25


def _plan_review(sandbox: Sandbox, template: Template) -> None:
    submitted = time.monotonic()
    _schedule(sandbox, template, sandbox.state.generation, submitted)


def _schedule(sandbox: Sandbox, template: Template, generation: int, submitted: float) -> None:
    config = sandbox.state.config
    due = submitted + config.template_review_s * config.time_scale
    wait = max(0.0, min(due - time.monotonic(), REVIEW_POLL_S))
    asyncio.get_running_loop().call_later(wait, _decide, sandbox, template, generation, submitted)


def _decide(sandbox: Sandbox, template: Template, generation: int, submitted: float) -> None:
    state = sandbox.state
    if state.generation != generation or template.status != "PENDING":
        return  # the sandbox was reset, or a test set the status itself
    config = state.config
    if time.monotonic() < submitted + config.template_review_s * config.time_scale:
        _schedule(sandbox, template, generation, submitted)
        return
    event, reason = review(template)
    template.status = event
    template.rejected_reason = reason
    value = {
        "event": event,
        "message_template_id": int(template.id),
        "message_template_name": template.name,
        "message_template_language": template.language,
        "reason": reason,
    }
    envelope = template_status_envelope(state.config.waba_id, int(time.time()), value)
    sandbox.poster.schedule([PlannedEvent(0.0, "envelope", envelope)])
