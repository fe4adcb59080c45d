"""The local registry of templates: a copy of what the WhatsApp Business Account holds.

`sync_templates` pages through Meta's list API and `upsert_templates` stores each
template in one language as one `WhatsAppTemplate` row ("name:language"), Meta's
components verbatim beside the derived columns. Templates that disappeared from the
account are deactivated, never deleted (messages refer to them and `sent_count` stays).
A hold set by the sender (`held_reason`, after 132015/132016) is left alone: only a
person lifts it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from core.db import session_scope
from core.models.templates import WhatsAppTemplate
from core.models.types import utcnow
from core.templates.definition import APPROVED, TemplateDefinition, TemplateDefinitionError

if TYPE_CHECKING:
    from core.cloud_api import CloudApiClient

log = logging.getLogger(__name__)

#: The columns a sync writes, compared to tell "updated" from "unchanged".
_SYNCED_FIELDS = (
    "meta_template_id",
    "category",
    "status",
    "parameter_format",
    "header_format",
    "header_text",
    "body_text",
    "footer_text",
    "buttons",
    "components",
    "parameter_names",
    "parameter_count",
    "quality_score",
    "rejected_reason",
    "is_active",
    "waba_id",  # only when the sync names WABAs
)


@dataclass(frozen=True)
class SyncReport:
    """What a sync changed, in counts, plus the definitions it could not read."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    deactivated: int = 0
    skipped: tuple[str, ...] = ()  # one reason per malformed definition


def upsert_templates(
    engine: Engine,
    tenant_id: str,
    definitions: Sequence[Mapping[str, Any]],
    *,
    wabas: Mapping[tuple[str, str], str] | None = None,
) -> SyncReport:
    """Store Meta's template objects for a tenant; deactivate the tenant's others.

    `wabas` names the WhatsApp Business Account each (name, language) came from
    (core.numbers.templates syncs per WABA): templates belong to their WABA, and a
    number sends only its own WABA's. Idempotent: the same definitions twice leave
    every row unchanged.
    """
    now = utcnow()
    columns: dict[tuple[str, str], dict[str, Any]] = {}
    skipped: list[str] = []
    for data in definitions:
        try:
            defn = TemplateDefinition.from_meta(data)
            key = (defn.name, defn.language)
            columns[key] = _columns(defn, data)
            if wabas is not None:
                columns[key]["waba_id"] = wabas.get(key)
        except TemplateDefinitionError as exc:
            skipped.append(str(exc))
    counts = {"added": 0, "updated": 0, "unchanged": 0, "deactivated": 0}
    with session_scope(engine) as session:
        rows = session.exec(
            select(WhatsAppTemplate).where(WhatsAppTemplate.tenant_id == tenant_id)
        ).all()
        existing = {(row.template_name, row.language): row for row in rows}
        for key, values in columns.items():
            row = existing.get(key)
            if row is None:
                session.add(WhatsAppTemplate(tenant_id=tenant_id, synced_at=now, **values))
                counts["added"] += 1
                continue
            changed = any(
                getattr(row, name) != values[name] for name in _SYNCED_FIELDS if name in values
            )
            for name, value in values.items():
                setattr(row, name, value)
            row.synced_at = now
            if changed:
                row.updated_at = now
            counts["updated" if changed else "unchanged"] += 1
        for key, row in existing.items():
            if key not in columns and row.is_active:
                row.is_active = False
                row.updated_at = now
                counts["deactivated"] += 1
    if skipped:
        log.warning("template sync skipped %d malformed definitions", len(skipped))
    return SyncReport(**counts, skipped=tuple(skipped))


async def sync_templates(client: CloudApiClient, engine: Engine, tenant_id: str) -> SyncReport:
    """Fetch every template of the account (all pages) and store them for `tenant_id`.

    A failed fetch (GraphError) changes nothing: no template is deactivated on a partial
    list.
    """
    definitions = await client.list_templates()
    return await asyncio.to_thread(upsert_templates, engine, tenant_id, definitions)


def get_template(
    session: Session, tenant_id: str, name: str, language: str
) -> WhatsAppTemplate | None:
    """The tenant's template `name` in `language`, active or not; None when unknown."""
    return session.exec(
        select(WhatsAppTemplate).where(
            WhatsAppTemplate.tenant_id == tenant_id,
            WhatsAppTemplate.template_name == name,
            WhatsAppTemplate.language == language,
        )
    ).first()


def list_templates(
    session: Session,
    tenant_id: str,
    *,
    approved_only: bool = False,
    include_inactive: bool = False,
) -> list[WhatsAppTemplate]:
    """The tenant's templates by name and language; `approved_only` keeps the sendable
    ones (approved, active, not held)."""
    query = select(WhatsAppTemplate).where(WhatsAppTemplate.tenant_id == tenant_id)
    if not include_inactive or approved_only:
        query = query.where(col(WhatsAppTemplate.is_active).is_(True))
    if approved_only:
        query = query.where(
            WhatsAppTemplate.status == APPROVED, col(WhatsAppTemplate.held_reason).is_(None)
        )
    query = query.order_by(col(WhatsAppTemplate.template_name), col(WhatsAppTemplate.language))
    return list(session.exec(query).all())


def definition_of(row: WhatsAppTemplate) -> TemplateDefinition:
    """The typed definition of a registry row (status, hold and activity included)."""
    return TemplateDefinition.from_row(row)


def _columns(defn: TemplateDefinition, data: Mapping[str, Any]) -> dict[str, Any]:
    """The row's values for a parsed definition and Meta's original object."""
    if len(defn.name) > 512 or len(defn.language) > 15 or len(defn.meta_id or "") > 64:
        raise TemplateDefinitionError(f"{defn.name[:80]}: name, language or id too long")
    components = data.get("components")
    buttons_component = next(
        (c for c in components or [] if str(c.get("type", "")).upper() == "BUTTONS"), None
    )
    return {
        "template_name": defn.name,
        "language": defn.language,
        "template_key": defn.key,
        "meta_template_id": defn.meta_id,
        "category": defn.category[:40],
        "status": defn.status[:30],
        "parameter_format": defn.parameter_format,
        "header_format": defn.header_format,
        "header_text": defn.header_text,
        "body_text": defn.body_text,
        "footer_text": defn.footer_text,
        "buttons": list(buttons_component.get("buttons") or []) if buttons_component else None,
        "components": list(components) if components else None,
        "parameter_names": list(defn.body_params),
        "parameter_count": defn.parameter_count,
        "quality_score": _quality(data.get("quality_score")),
        "rejected_reason": _short(data.get("rejected_reason"), 120),
        "is_active": True,
    }


def _quality(value: Any) -> str | None:
    """Meta sends `{"score": "GREEN", ...}` (older versions a bare string)."""
    if isinstance(value, Mapping):
        value = value.get("score")
    return _short(value, 20)


def _short(value: Any, limit: int) -> str | None:
    if value is None or value == "":
        return None
    return str(value)[:limit]
