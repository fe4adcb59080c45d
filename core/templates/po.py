"""Parameters of a purchase-order notice (the `po_notification` template and its likes).

A PO notice tells a supplier who it is for, which PO and how much, and offers two quick
replies whose payloads (`ack:<po>`, `reject:<po>`) come back in the reply webhook.
"""

from __future__ import annotations

from decimal import Decimal

from core.templates.definition import NAMED, TemplateDefinition
from core.templates.values import BUTTONS_KEY, HEADER_KEY, TemplateParams

#: The body parameters of a NAMED PO notice template.
PO_FIELDS = ("supplier_name", "po_number", "total_amount")
_PO_FIELD_SET = frozenset(PO_FIELDS)
#: Quick-reply payload prefixes, by button order: first accepts, second rejects.
REPLY_ACTIONS = ("ack", "reject")


def is_po_notice_template(defn: TemplateDefinition) -> bool:
    """True when `defn` takes a PO notice's values: the named supplier_name, po_number and
    total_amount (and nothing else), or a positional `po_notification*` with three."""
    if defn.parameter_format == NAMED:
        return set(defn.body_params) == _PO_FIELD_SET
    return defn.name.startswith("po_notification") and defn.parameter_count == len(PO_FIELDS)


def build_po_notice_params(
    defn: TemplateDefinition,
    supplier_name: str,
    po_number: str,
    amount: Decimal,
    currency: str,
    *,
    document_link: str | None = None,
    document_filename: str | None = None,
) -> TemplateParams:
    """The parameters of a PO notice for `defn`.

    NAMED templates take supplier_name, po_number and total_amount by name; POSITIONAL
    ones named po_notification* take them as {{1}}, {{2}}, {{3}}. The amount is sent as a
    currency parameter (formatted for the template's language). Quick replies get the
    payloads ack:<po> and reject:<po>; a document header gets `document_link`, a text
    header's parameter gets the PO number. Raises ValueError when the template cannot
    carry a PO notice. Values are checked later by `validate_parameters`.
    """
    if not is_po_notice_template(defn):
        raise ValueError(
            f"The template {defn.name} ({defn.language}) cannot carry a PO notice: it takes "
            f"{_describe(defn.body_params)}, a PO notice needs {', '.join(PO_FIELDS)}"
        )
    keys = PO_FIELDS if defn.parameter_format == NAMED else ("1", "2", "3")
    money = {"type": "currency", "amount": _plain(amount), "currency": currency}
    params: TemplateParams = {keys[0]: supplier_name, keys[1]: po_number, keys[2]: money}
    header = _header_value(defn, po_number, document_link, document_filename)
    if header is not None:
        params[HEADER_KEY] = header
    replies = [button for button in defn.buttons if button.type == "QUICK_REPLY"]
    if len(replies) > len(REPLY_ACTIONS):
        raise ValueError(
            f"The template {defn.name} has {len(replies)} quick replies; a PO notice uses "
            f"{len(REPLY_ACTIONS)} (accept, reject)"
        )
    if replies:
        payload = po_number.strip()
        params[BUTTONS_KEY] = {
            str(button.index): f"{action}:{payload}"
            for button, action in zip(replies, REPLY_ACTIONS, strict=False)
        }
    return params


def _header_value(
    defn: TemplateDefinition, po_number: str, link: str | None, filename: str | None
) -> object:
    if defn.header_format == "TEXT" and defn.header_params:
        return po_number
    if defn.header_format == "DOCUMENT":
        if not link:
            raise ValueError(
                f"The template {defn.name} shows the PO as a PDF: give the document's link"
            )
        document = {"type": "document", "link": link}
        if filename:
            document["filename"] = filename
        return document
    if defn.header_format in ("IMAGE", "VIDEO", "LOCATION"):
        raise ValueError(
            f"The template {defn.name} has a {defn.header_format.lower()} header, "
            "which a PO notice cannot fill"
        )
    return None


def _plain(amount: Decimal) -> str:
    """The amount as plain digits ("1000", never "1E+3"); checked later like any value."""
    return format(amount, "f") if isinstance(amount, Decimal) else str(amount)


def _describe(names: tuple[str, ...]) -> str:
    if not names:
        return "no parameters"
    return ", ".join(f"{{{{{name}}}}}" for name in names)
