"""A message template as Meta defines it, parsed once into a typed, immutable value.

The source is either Meta's own template object (as the list API returns it, components
and all) or a `WhatsAppTemplate` row of the local registry. Everything else in
`core.templates` (preview, validation, payload building) works from this value, so the
rules about placeholders live in one place.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from core.models.templates import WhatsAppTemplate

#: `{{1}}` (positional) or `{{supplier_name}}` (named) in a template text.
PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")
MEDIA_FORMATS = frozenset({"IMAGE", "DOCUMENT", "VIDEO"})
NAMED = "NAMED"
POSITIONAL = "POSITIONAL"
APPROVED = "APPROVED"


class TemplateDefinitionError(ValueError):
    """A template object that is not shaped like Meta's; the message says what is wrong."""


@dataclass(frozen=True)
class TemplateButton:
    """One button of a template, with its position (Meta's `index` at send time)."""

    index: int
    type: str  # QUICK_REPLY, URL, PHONE_NUMBER, COPY_CODE, FLOW, ...
    text: str
    url: str | None = None

    @property
    def takes_parameter(self) -> bool:
        """True when a send must supply a value: a quick-reply payload (optional), a
        dynamic URL suffix or a copy code."""
        return self.type == "QUICK_REPLY" or self.has_url_parameter or self.type == "COPY_CODE"

    @property
    def has_url_parameter(self) -> bool:
        """True for a URL button whose URL ends in a placeholder filled at send time."""
        return self.type == "URL" and bool(self.url and PLACEHOLDER.search(self.url))


@dataclass(frozen=True)
class TemplateDefinition:
    """A template in one language: its texts, placeholders, buttons and whether it may be sent."""

    name: str
    language: str
    body_text: str
    category: str = "UTILITY"
    status: str = APPROVED
    parameter_format: str = POSITIONAL
    header_format: str | None = None  # TEXT, IMAGE, DOCUMENT, VIDEO, LOCATION
    header_text: str | None = None
    footer_text: str | None = None
    buttons: tuple[TemplateButton, ...] = ()
    body_params: tuple[str, ...] = ()
    header_params: tuple[str, ...] = ()
    held_reason: str | None = None  # sending stopped by us after 132015/132016
    active: bool = True  # still on the WhatsApp Business Account
    meta_id: str | None = None

    @property
    def key(self) -> str:
        """The registry key, "name:language"."""
        return f"{self.name}:{self.language}"

    @property
    def parameter_count(self) -> int:
        """How many body parameters a send must fill."""
        return len(self.body_params)

    @property
    def has_media_header(self) -> bool:
        """True when the header is an image, document or video supplied at send time."""
        return self.header_format in MEDIA_FORMATS

    @property
    def body_is_only_component(self) -> bool:
        """True when there is no header, footer or button (the body may then be longer)."""
        return self.header_format is None and self.footer_text is None and not self.buttons

    @property
    def unsendable_reason(self) -> str | None:
        """Why this template cannot be sent now, in plain words; None when it can."""
        if not self.active:
            return f"The template {self.name} ({self.language}) is no longer on the account"
        if self.held_reason:
            return f"The template {self.name} ({self.language}) is on hold: {self.held_reason}"
        if self.status != APPROVED:
            return (
                f"The template {self.name} ({self.language}) is {self.status.lower()}, not approved"
            )
        return None

    @property
    def is_sendable(self) -> bool:
        """True when the template is approved, active and not held."""
        return self.unsendable_reason is None

    @classmethod
    def from_meta(cls, data: Mapping[str, Any]) -> TemplateDefinition:
        """Parse Meta's template object (name, language, status, components, ...)."""
        if not isinstance(data, Mapping):
            raise TemplateDefinitionError("A template must be a JSON object")
        name = _required_text(data, "name")
        language = _required_text(data, "language")
        components = data.get("components") or []
        if not isinstance(components, Sequence) or isinstance(components, str | bytes):
            raise TemplateDefinitionError(f"{name}: components must be a list")
        parts = _components_by_type(name, components)
        return _build(
            name=name,
            language=language,
            parts=parts,
            category=_ident(data.get("category")) or "UTILITY",
            status=(_ident(data.get("status")) or APPROVED).upper(),
            declared_format=_ident(data.get("parameter_format")),
            meta_id=_ident(data.get("id")),
        )

    @classmethod
    def from_row(cls, row: WhatsAppTemplate) -> TemplateDefinition:
        """Parse a registry row: Meta's components when stored, else the row's columns."""
        if row.components:
            parts = _components_by_type(row.template_name, row.components)
        else:
            parts = _parts_from_columns(row)
        return _build(
            name=row.template_name,
            language=row.language,
            parts=parts,
            category=row.category,
            status=(row.status or APPROVED).upper(),
            declared_format=row.parameter_format,
            meta_id=row.meta_template_id,
            held_reason=row.held_reason,
            active=row.is_active,
        )


def placeholders(text: str | None) -> tuple[str, ...]:
    """The placeholder names in a text, in order of first appearance, without repeats."""
    seen: dict[str, None] = {}
    for match in PLACEHOLDER.finditer(text or ""):
        seen.setdefault(match.group(1), None)
    return tuple(seen)


def _build(
    *,
    name: str,
    language: str,
    parts: dict[str, Mapping[str, Any]],
    category: str,
    status: str,
    declared_format: str | None,
    meta_id: str | None,
    held_reason: str | None = None,
    active: bool = True,
) -> TemplateDefinition:
    body = parts.get("BODY")
    if body is None:
        raise TemplateDefinitionError(f"{name}: the template has no BODY component")
    body_text = _text(body.get("text")) or ""
    header = parts.get("HEADER")
    header_format = (_ident(header.get("format")) or "TEXT").upper() if header else None
    header_text = _text(header.get("text")) if header else None
    body_names = placeholders(body_text)
    parameter_format = _parameter_format(declared_format, body_names + placeholders(header_text))
    if parameter_format == POSITIONAL:
        body_names = tuple(sorted(body_names, key=_position))
    footer = parts.get("FOOTER")
    return TemplateDefinition(
        name=name,
        language=language,
        body_text=body_text,
        category=category.upper(),
        status=status,
        parameter_format=parameter_format,
        header_format=header_format,
        header_text=header_text if header_format == "TEXT" else None,
        footer_text=_text(footer.get("text")) if footer else None,
        buttons=_buttons(name, parts.get("BUTTONS")),
        body_params=body_names,
        header_params=placeholders(header_text) if header_format == "TEXT" else (),
        held_reason=held_reason,
        active=active,
        meta_id=meta_id,
    )


def _parameter_format(declared: str | None, names: tuple[str, ...]) -> str:
    if declared and declared.upper() in (NAMED, POSITIONAL):
        return declared.upper()
    return POSITIONAL if all(name.isdigit() for name in names) else NAMED


def _position(name: str) -> tuple[int, str]:
    return (int(name), name) if name.isdigit() else (10**6, name)


def _components_by_type(name: str, components: Sequence[Any]) -> dict[str, Mapping[str, Any]]:
    parts: dict[str, Mapping[str, Any]] = {}
    for component in components:
        if not isinstance(component, Mapping):
            raise TemplateDefinitionError(f"{name}: a component is not an object")
        kind = (_ident(component.get("type")) or "").upper()
        if not kind:
            raise TemplateDefinitionError(f"{name}: a component has no type")
        parts.setdefault(kind, component)
    return parts


def _buttons(name: str, component: Mapping[str, Any] | None) -> tuple[TemplateButton, ...]:
    if component is None:
        return ()
    raw = component.get("buttons") or []
    if not isinstance(raw, Sequence) or isinstance(raw, str | bytes):
        raise TemplateDefinitionError(f"{name}: buttons must be a list")
    buttons = []
    for index, button in enumerate(raw):
        if not isinstance(button, Mapping):
            raise TemplateDefinitionError(f"{name}: button {index} is not an object")
        buttons.append(
            TemplateButton(
                index=index,
                type=(_ident(button.get("type")) or "").upper(),
                text=_text(button.get("text")) or "",
                url=_text(button.get("url")),
            )
        )
    return tuple(buttons)


def _parts_from_columns(row: WhatsAppTemplate) -> dict[str, Mapping[str, Any]]:
    parts: dict[str, Mapping[str, Any]] = {"BODY": {"type": "BODY", "text": row.body_text}}
    if row.header_format:
        parts["HEADER"] = {"type": "HEADER", "format": row.header_format, "text": row.header_text}
    if row.footer_text:
        parts["FOOTER"] = {"type": "FOOTER", "text": row.footer_text}
    if row.buttons:
        parts["BUTTONS"] = {"type": "BUTTONS", "buttons": row.buttons}
    return parts


def _required_text(data: Mapping[str, Any], field: str) -> str:
    value = _ident(data.get(field))
    if not value:
        raise TemplateDefinitionError(f"The template has no {field}")
    return value


def _ident(value: Any) -> str | None:
    """An identifier-like field (name, language, status, type, id), stripped."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise TemplateDefinitionError(f"expected text, got {type(value).__name__}")
    return str(value).strip() or None


def _text(value: Any) -> str | None:
    """A text shown to the supplier, kept exactly as written."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise TemplateDefinitionError(f"expected text, got {type(value).__name__}")
    return value
