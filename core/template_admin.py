"""The templates page's rules: what the registry holds (with previews) and an admin's sync.

A summary is everything a person needs to judge a template at a glance: status in plain
words (held, paused, rejected and why), category, language, parameter count and format,
how often it was used, and the supplier's view with its placeholders still visible.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from core.auth import Action, require, write_tenant
from core.notify import sync_templates_now
from core.templates import Preview, SyncReport, definition_of, list_templates, render_preview
from core.templates.definition import TemplateDefinitionError
from core.templates.submit import SubmitResult, submit_template_now
from core.users import UserInfo


@dataclass(frozen=True)
class TemplateSummary:
    """One template in one language as the templates page lists it."""

    id: int
    name: str
    language: str
    category: str
    status: str
    parameter_count: int
    parameter_format: str
    parameter_names: tuple[str, ...]
    sent_count: int
    quality: str | None
    active: bool
    sendable: bool
    problem: str | None  # why it cannot be sent now (held, paused, rejected...)
    rejected_reason: str | None
    synced_at: datetime | None
    preview: Preview | None  # None when the stored definition cannot be read


def template_summaries(
    engine: Engine, tenant_id: str, *, include_inactive: bool = False
) -> list[TemplateSummary]:
    """The tenant's templates by name and language, each with its preview."""
    with Session(engine) as session:
        rows = list_templates(session, tenant_id, include_inactive=include_inactive)
    summaries = []
    for row in rows:
        assert row.id is not None
        preview: Preview | None
        problem: str | None
        try:
            definition = definition_of(row)
            preview = render_preview(definition, None)
            problem = definition.unsendable_reason
        except (TemplateDefinitionError, ValueError) as exc:
            preview, problem = None, f"The stored definition cannot be read: {exc}"
        rejected = row.rejected_reason if row.rejected_reason not in (None, "NONE") else None
        summaries.append(
            TemplateSummary(
                id=row.id,
                name=row.template_name,
                language=row.language,
                category=row.category,
                status=row.status,
                parameter_count=row.parameter_count,
                parameter_format=row.parameter_format,
                parameter_names=tuple(row.parameter_names or ()),
                sent_count=row.sent_count,
                quality=row.quality_score,
                active=row.is_active,
                sendable=problem is None,
                problem=problem,
                rejected_reason=rejected,
                synced_at=row.synced_at,
                preview=preview,
            )
        )
    return summaries


def sync_templates_as(engine: Engine, user: UserInfo | None) -> SyncReport:
    """Copy the templates of every WABA of the tenant's numbers into its registry, on an
    admin's request.

    The role is checked here; the sync is for the admin's home tenant. A failed fetch
    (GraphError) changes nothing and propagates with Meta's reason. While no number is
    registered every tenant reads the environment's number's WABA (the number it sends
    from); once any is, a tenant with no number of its own (hence no WABA) gets
    `NumberError`.
    """
    who = require(user, Action.MANAGE_TEMPLATES)
    return sync_templates_now(write_tenant(who), engine=engine)


def create_template_as(
    engine: Engine, user: UserInfo | None, template: dict[str, Any]
) -> SubmitResult:
    """Submit a new template (Meta's create JSON) for an admin's tenant.

    The role is checked here; TemplateInvalid (our checks, nothing sent) and GraphError
    (Meta's refusal, see `core.templates.submit.refusal_text`) propagate.
    """
    who = require(user, Action.MANAGE_TEMPLATES)
    return submit_template_now(write_tenant(who), template, engine=engine)
