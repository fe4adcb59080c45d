"""What the supplier will see: the template's texts with the parameters filled in."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from core.templates.definition import PLACEHOLDER, TemplateDefinition
from core.templates.fill import Filled, fill


@dataclass(frozen=True)
class Preview:
    """The message as shown on the supplier's phone (placeholders still unfilled stay
    visible as `{{name}}`, so a partial form previews honestly)."""

    body: str
    header: str | None = None
    header_media: dict[str, Any] | None = None  # {"type": "document", "link", "filename"}
    footer: str | None = None
    buttons: tuple[str, ...] = ()


def render_preview(defn: TemplateDefinition, params: Mapping[str, Any] | None) -> Preview:
    """The supplier's view of `defn` sent with `params` (currency shown as its fallback)."""
    return preview_of(defn, fill(defn, params))


def preview_of(defn: TemplateDefinition, filled: Filled) -> Preview:
    """The preview from an already resolved `Filled` (avoids resolving twice)."""
    header: str | None = None
    header_media: dict[str, Any] | None = None
    if defn.header_format == "TEXT" and defn.header_text is not None:
        header_value = filled.header.text if filled.header is not None else None
        header = _substitute(defn.header_text, {n: header_value for n in defn.header_params})
    elif filled.header is not None:
        kind = filled.header.parameter["type"]
        header_media = {"type": kind, **filled.header.parameter[kind]}
    body = _substitute(defn.body_text, {name: v.text for name, v in filled.body.items()})
    return Preview(
        body=body,
        header=header,
        header_media=header_media,
        footer=defn.footer_text,
        buttons=tuple(button.text for button in defn.buttons),
    )


def _substitute(text: str, values: Mapping[str, str | None]) -> str:
    """Replace each `{{name}}` with its value in one pass (values are never re-expanded)."""

    def replace(match: Any) -> str:
        value = values.get(match.group(1))
        return value if value is not None else str(match.group(0))

    return PLACEHOLDER.sub(replace, text)
