"""The sandbox WABA's message templates, as Meta's template list API returns them.

Each template keeps Meta's component JSON verbatim (HEADER/BODY/FOOTER/BUTTONS with
`format`, `text`, `example`, `buttons`); what validation needs (placeholders, header
format, quick-reply labels) is derived from that JSON, never kept twice.
"""

from __future__ import annotations

import base64
import copy
import functools
import re
from dataclasses import dataclass, field
from typing import Any

NAMED_PLACEHOLDER = re.compile(r"\{\{\s*([a-z][a-z0-9_]*)\s*\}\}")
POSITIONAL_PLACEHOLDER = re.compile(r"\{\{\s*(\d+)\s*\}\}")

#: Fields the list API can return; `id` always comes back.
TEMPLATE_FIELDS = frozenset(
    {
        "id",
        "name",
        "language",
        "status",
        "category",
        "components",
        "parameter_format",
        "quality_score",
        "rejected_reason",
        "sub_category",
        "previous_category",
    }
)
DEFAULT_TEMPLATE_FIELDS = (
    "name",
    "parameter_format",
    "components",
    "language",
    "status",
    "category",
    "id",
)


@functools.lru_cache(maxsize=1024)
def _distinct_placeholders(text: str, named: bool) -> tuple[str, ...]:
    """The distinct placeholders of `text`, in order (cached: every send asks again)."""
    pattern = NAMED_PLACEHOLDER if named else POSITIONAL_PLACEHOLDER
    seen: list[str] = []
    for match in pattern.finditer(text):
        if match.group(1) not in seen:
            seen.append(match.group(1))
    return tuple(seen)


@dataclass
class Template:
    """One template in one language; `components` is Meta's JSON for it."""

    id: str
    name: str
    language: str
    category: str
    status: str
    components: list[dict[str, Any]]
    parameter_format: str = "POSITIONAL"
    rejected_reason: str = "NONE"
    quality_score: dict[str, Any] = field(
        default_factory=lambda: {"score": "GREEN", "date": 1767225600}
    )

    def component(self, kind: str) -> dict[str, Any] | None:
        """The component of `kind` (HEADER, BODY, FOOTER, BUTTONS), if the template has one."""
        for component in self.components:
            if component.get("type") == kind:
                return component
        return None

    @property
    def named(self) -> bool:
        """True for templates created with `{{name}}` parameters."""
        return self.parameter_format == "NAMED"

    def placeholders(self, kind: str) -> list[str]:
        """The distinct placeholders of a HEADER or BODY text, in order of appearance."""
        component = self.component(kind)
        if component is None or component.get("format", "TEXT") != "TEXT":
            return []
        return list(_distinct_placeholders(str(component.get("text", "")), self.named))

    @property
    def header_format(self) -> str | None:
        """TEXT, DOCUMENT, IMAGE, VIDEO or LOCATION; None without a header."""
        header = self.component("HEADER")
        return str(header.get("format", "TEXT")) if header else None

    @property
    def buttons(self) -> list[dict[str, Any]]:
        """The template's buttons, in index order."""
        component = self.component("BUTTONS")
        return list(component.get("buttons", [])) if component else []

    @property
    def body_only(self) -> bool:
        """True when BODY is the only component (Meta then allows 32,768 characters)."""
        return len(self.components) == 1 and self.components[0].get("type") == "BODY"

    def as_graph(self, fields: tuple[str, ...]) -> dict[str, Any]:
        """This template as the list API returns it with `fields` (plus `id`)."""
        values: dict[str, Any] = {
            "name": self.name,
            "parameter_format": self.parameter_format,
            "components": copy.deepcopy(self.components),
            "language": self.language,
            "status": self.status,
            "category": self.category,
            "sub_category": "CUSTOM",
            "quality_score": dict(self.quality_score),
            "rejected_reason": self.rejected_reason,
            "previous_category": self.category,
            "id": self.id,
        }
        wanted = [name for name in fields if name != "id"] + ["id"]
        return {name: values[name] for name in wanted}


def _named_body(text: str, examples: dict[str, str]) -> dict[str, Any]:
    return {
        "type": "BODY",
        "text": text,
        "example": {
            "body_text_named_params": [
                {"param_name": name, "example": value} for name, value in examples.items()
            ]
        },
    }


def _positional_body(text: str, examples: list[str]) -> dict[str, Any]:
    return {"type": "BODY", "text": text, "example": {"body_text": [examples]}}


def _quick_replies(*labels: str) -> dict[str, Any]:
    return {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": x} for x in labels]}


def _document_header() -> dict[str, Any]:
    return {
        "type": "HEADER",
        "format": "DOCUMENT",
        "example": {"header_handle": ["https://scontent.whatsapp.net/v/t61.29466-34/po.pdf"]},
    }


def default_templates() -> list[Template]:
    """The templates every sandbox starts with (a fresh copy each call)."""
    po_examples = {
        "supplier_name": "Harinas Martín",
        "po_number": "PO-2026-0042",
        "total_amount": "1.234,50 €",
    }
    return [
        Template(
            id="1029384756473821",
            name="po_notification",
            language="es",
            category="UTILITY",
            status="APPROVED",
            parameter_format="NAMED",
            components=[
                {"type": "HEADER", "format": "TEXT", "text": "Nuevo pedido de compra"},
                _named_body(
                    "Hola {{supplier_name}}, le enviamos el pedido {{po_number}} por un total "
                    "de {{total_amount}}. Por favor, confirme si puede servirlo.",
                    po_examples,
                ),
                {"type": "FOOTER", "text": "Departamento de Compras"},
                _quick_replies("Confirmar pedido", "Rechazar"),
            ],
        ),
        Template(
            id="1029384756473822",
            name="po_notification",
            language="en",
            category="UTILITY",
            status="APPROVED",
            parameter_format="NAMED",
            components=[
                {"type": "HEADER", "format": "TEXT", "text": "New purchase order"},
                _named_body(
                    "Hello {{supplier_name}}, here is purchase order {{po_number}} for a total "
                    "of {{total_amount}}. Please confirm whether you can fulfil it.",
                    {**po_examples, "total_amount": "€1,234.50"},
                ),
                {"type": "FOOTER", "text": "Purchasing Department"},
                _quick_replies("Confirm order", "Reject"),
            ],
        ),
        Template(
            id="1029384756473891",
            name="po_reminder",
            language="es",
            category="UTILITY",
            status="APPROVED",
            parameter_format="NAMED",
            components=[
                {"type": "HEADER", "format": "TEXT", "text": "Recordatorio de pedido"},
                _named_body(
                    "Hola {{supplier_name}}, le recordamos el pedido {{po_number}} que le "
                    "enviamos. Por favor, confirme si puede servirlo.",
                    {"supplier_name": "Harinas Martín", "po_number": "PO-2026-0042"},
                ),
                {"type": "FOOTER", "text": "Departamento de Compras"},
                _quick_replies("Confirmar pedido", "Rechazar"),
            ],
        ),
        Template(
            id="1029384756473892",
            name="po_reminder",
            language="en",
            category="UTILITY",
            status="APPROVED",
            parameter_format="NAMED",
            components=[
                {"type": "HEADER", "format": "TEXT", "text": "Purchase order reminder"},
                _named_body(
                    "Hello {{supplier_name}}, a reminder about purchase order {{po_number}} "
                    "we sent you. Please confirm whether you can fulfil it.",
                    {"supplier_name": "Harinas Martín", "po_number": "PO-2026-0042"},
                ),
                {"type": "FOOTER", "text": "Purchasing Department"},
                _quick_replies("Confirm order", "Reject"),
            ],
        ),
        Template(
            id="1029384756473831",
            name="po_document",
            language="es",
            category="UTILITY",
            status="APPROVED",
            components=[
                _document_header(),
                _positional_body(
                    "Adjuntamos el pedido {{1}}. Fecha de entrega solicitada: {{2}}.",
                    ["PO-2026-0042", "15/01/2026"],
                ),
                {"type": "FOOTER", "text": "Departamento de Compras"},
                _quick_replies("Recibido"),
            ],
        ),
        Template(
            id="1029384756473832",
            name="po_document",
            language="en",
            category="UTILITY",
            status="APPROVED",
            components=[
                _document_header(),
                _positional_body(
                    "Please find attached purchase order {{1}}. Requested delivery date: {{2}}.",
                    ["PO-2026-0042", "2026-01-15"],
                ),
                {"type": "FOOTER", "text": "Purchasing Department"},
                _quick_replies("Received"),
            ],
        ),
        Template(
            id="1029384756473841",
            name="delivery_reminder",
            language="es",
            category="UTILITY",
            status="APPROVED",
            components=[
                _positional_body(
                    "Recordatorio: el pedido {{1}} debe entregarse el {{2}} en {{3}}.",
                    ["PO-2026-0042", "lunes, 12 de enero de 2026", "Almacén Central"],
                ),
            ],
        ),
        Template(
            id="1029384756473842",
            name="delivery_reminder",
            language="en",
            category="UTILITY",
            status="APPROVED",
            components=[
                _positional_body(
                    "Reminder: purchase order {{1}} is due on {{2}} at {{3}}.",
                    ["PO-2026-0042", "Monday, 12 January 2026", "Central Warehouse"],
                ),
            ],
        ),
        Template(
            id="1029384756473851",
            name="payment_notice",
            language="es",
            category="UTILITY",
            status="APPROVED",
            components=[
                {
                    "type": "HEADER",
                    "format": "TEXT",
                    "text": "Pago {{1}}",
                    "example": {"header_text": ["PAG-2026-0007"]},
                },
                _positional_body(
                    "Hemos emitido un pago de {{1}} correspondiente a la factura {{2}}.",
                    ["1.234,50 €", "F-2026-118"],
                ),
                {"type": "FOOTER", "text": "Departamento de Compras"},
            ],
        ),
        Template(
            id="1029384756473852",
            name="payment_notice",
            language="en",
            category="UTILITY",
            status="APPROVED",
            components=[
                {
                    "type": "HEADER",
                    "format": "TEXT",
                    "text": "Payment {{1}}",
                    "example": {"header_text": ["PAY-2026-0007"]},
                },
                _positional_body(
                    "We have issued a payment of {{1}} for invoice {{2}}.",
                    ["€1,234.50", "F-2026-118"],
                ),
                {"type": "FOOTER", "text": "Purchasing Department"},
            ],
        ),
        Template(
            id="1029384756473861",
            name="old_po_notice",
            language="es",
            category="UTILITY",
            status="PAUSED",
            quality_score={"score": "RED", "date": 1767225600},
            components=[_positional_body("Pedido {{1}} enviado.", ["PO-2025-0999"])],
        ),
        Template(
            id="1029384756473871",
            name="legacy_order_alert",
            language="es",
            category="UTILITY",
            status="DISABLED",
            quality_score={"score": "RED", "date": 1767225600},
            components=[_positional_body("Aviso de pedido {{1}}.", ["PO-2024-0001"])],
        ),
        Template(
            id="1029384756473881",
            name="spring_promo",
            language="es",
            category="MARKETING",
            status="REJECTED",
            rejected_reason="PROMOTIONAL",
            quality_score={"score": "UNKNOWN", "date": 1767225600},
            components=[
                _positional_body("¡{{1}}% de descuento esta primavera!", ["20"]),
                _quick_replies("Ver ofertas", "No me interesa"),
            ],
        ),
    ]


class Catalog:
    """The WABA's templates: lookup for sends, cursor paging for the list API."""

    def __init__(self, templates: list[Template] | None = None) -> None:
        self._templates = sorted(
            templates if templates is not None else default_templates(),
            key=lambda t: (t.name, t.language),
        )
        self._index = {(t.name, t.language): t for t in self._templates}

    def get(self, name: str, language: str) -> Template | None:
        """The template `name` in `language`, whatever its status."""
        return self._index.get((name, language))

    def add(self, template: Template) -> None:
        """Add a newly created template (its name and language must be new)."""
        key = (template.name, template.language)
        if key in self._index:
            raise ValueError(f"template {template.name} in {template.language} exists")
        self._index[key] = template
        self._templates = sorted([*self._templates, template], key=lambda t: (t.name, t.language))

    def __iter__(self) -> Any:
        return iter(self._templates)

    def __len__(self) -> int:
        return len(self._templates)

    def filtered(self, filters: dict[str, str]) -> list[Template]:
        """Templates matching the list API's filters: name (substring), status, category,
        language."""
        result = self._templates
        if name := filters.get("name"):
            result = [t for t in result if name.lower() in t.name.lower()]
        if status := filters.get("status"):
            wanted = {s.strip().upper() for s in status.split(",")}
            result = [t for t in result if t.status in wanted]
        if category := filters.get("category"):
            wanted = {c.strip().upper() for c in category.split(",")}
            result = [t for t in result if t.category in wanted]
        if language := filters.get("language"):
            result = [t for t in result if t.language == language]
        return result


def encode_cursor(position: int) -> str:
    """An opaque paging cursor for a position in the list (Graph cursors are base64)."""
    return base64.urlsafe_b64encode(f"sandbox-cursor:{position}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int | None:
    """The position a cursor stands for; None if it is not one of ours."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        text = base64.urlsafe_b64decode(padded.encode()).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    prefix, _, number = text.partition(":")
    if prefix != "sandbox-cursor" or not number.isdigit():
        return None
    return int(number)
