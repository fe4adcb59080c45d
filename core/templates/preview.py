"""What the supplier will see: the template's texts with the parameters filled in."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
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
    body = body_of(defn, filled)
    return Preview(
        body=body,
        header=header,
        header_media=header_media,
        footer=defn.footer_text,
        buttons=tuple(button.text for button in defn.buttons),
    )


def body_of(defn: TemplateDefinition, filled: Filled) -> str:
    """The preview's body alone (what a CSV check keeps per row), without the rest."""
    return _substitute(defn.body_text, {name: v.text for name, v in filled.body.items()})


def _substitute(text: str, values: Mapping[str, str | None]) -> str:
    """Replace each `{{name}}` with its value in one pass (values are never re-expanded)."""
    parts = _parts(text)
    if len(parts) == 1:
        return text
    out = []
    for index, part in enumerate(parts):
        if index % 2:
            name, written = part
            value = values.get(name)
            out.append(value if value is not None else written)
        else:
            out.append(part)
    return "".join(out)


@lru_cache(maxsize=256)  # a template's texts, split once: a batch previews every row
def _parts(text: str) -> tuple[Any, ...]:
    """`text` split at its placeholders: text, (name, placeholder as written), text, ...
    (what `PLACEHOLDER.sub` walks on every call)."""
    parts: list[Any] = []
    end = 0
    for match in PLACEHOLDER.finditer(text):
        parts += [text[end : match.start()], (match.group(1), match.group(0))]
        end = match.end()
    parts.append(text[end:])
    return tuple(parts)
