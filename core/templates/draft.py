"""A new template as an admin fills it in, and the JSON Meta takes to create it.

The Templates page's form gives a `TemplateDraft`: name, category, language, an
optional text header, the body with named parameters (`{{supplier_name}}`), one sample
value per parameter, an optional footer and quick-reply buttons. `build_template` turns
it into Meta's own create body (`parameter_format` NAMED, components HEADER/BODY/
FOOTER/BUTTONS with `example.header_text_named_params` / `body_text_named_params`),
which `core.templates.rules.check_template` then checks and `core.templates.submit`
posts. Texts are kept exactly as typed (Meta shows them as typed).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from core.templates.definition import TemplateDefinition, TemplateDefinitionError
from core.templates.rules import TOKEN


@dataclass(frozen=True)
class TemplateDraft:
    """A template before submission; parameters are named, samples keyed by name."""

    name: str
    language: str
    category: str
    body: str
    examples: Mapping[str, str] = field(default_factory=dict)
    header: str = ""
    footer: str = ""
    quick_replies: tuple[str, ...] = ()

    def parameter_names(self) -> list[str]:
        """The parameters of the header and the body, in order, each once."""
        seen: dict[str, None] = {}
        for text in (self.header, self.body):
            for match in TOKEN.finditer(text[:5000]):
                seen.setdefault(match.group(1).strip(), None)
        return list(seen)


def build_template(draft: TemplateDraft) -> dict[str, Any]:
    """Meta's create body for `draft` (`POST /{waba_id}/message_templates`).

    Empty header, footer and button labels are left out; parameters' samples go with the
    component that uses them (a name in both header and body gets the sample in both).
    """
    components: list[dict[str, Any]] = []
    if draft.header.strip():
        header: dict[str, Any] = {"type": "HEADER", "format": "TEXT", "text": draft.header}
        params = _named_params(draft.header, draft.examples)
        if params:
            header["example"] = {"header_text_named_params": params}
        components.append(header)
    body: dict[str, Any] = {"type": "BODY", "text": draft.body}
    params = _named_params(draft.body, draft.examples)
    if params:
        body["example"] = {"body_text_named_params": params}
    components.append(body)
    if draft.footer.strip():
        components.append({"type": "FOOTER", "text": draft.footer})
    labels = [label for label in draft.quick_replies if label.strip()]
    if labels:
        components.append(
            {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": x} for x in labels]}
        )
    return {
        "name": draft.name.strip(),
        "language": draft.language.strip(),
        "category": draft.category.strip().upper(),
        "parameter_format": "NAMED",
        "components": components,
    }


def _named_params(text: str, examples: Mapping[str, str]) -> list[dict[str, str]]:
    names = dict.fromkeys(m.group(1).strip() for m in TOKEN.finditer(text[:5000]))
    return [{"param_name": name, "example": examples.get(name, "")} for name in names]


def form_field(path: str) -> str:
    """Which field of the form a problem's path is about: name, language, category,
    header, body, footer, buttons, `example:<param>`, or "" (the template as a whole)."""
    head, _, rest = path.partition(".")
    if rest.startswith("example.") and head in ("header", "body"):
        return "example:" + rest.removeprefix("example.")
    head = head.partition("[")[0]
    if head in ("name", "language", "category", "header", "body", "footer", "buttons"):
        return head
    return ""


def preview_definition(template: Mapping[str, Any]) -> TemplateDefinition | None:
    """The built template as a definition for the preview bubble; None when it cannot be
    read yet (half typed)."""
    try:
        return TemplateDefinition.from_meta({**template, "status": "PENDING"})
    except (TemplateDefinitionError, ValueError):
        return None
