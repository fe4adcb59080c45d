"""Submitting a new template to Meta for review, and keeping it in the local registry.

`submit_template` checks the template against Meta's rules first (nothing is sent while
a blocking problem remains: `TemplateInvalid` lists them all, with field paths), posts
it with `POST /{waba_id}/message_templates`, and stores it in the registry with the
status Meta answered (normally PENDING) and Meta's template id. From then on its status
follows Meta: the `message_template_status_update` webhook (APPROVED, REJECTED with a
reason, ...) updates the row, and a sync copies whatever the account lists.

A refusal by Meta is a `GraphError`; `refusal_text` gives Meta's own explanation
(`error_user_msg`), which callers show as text, never as markup.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, select

from core.cloud_api import CloudApiClient
from core.db import get_engine, session_scope
from core.errors import GraphError
from core.models.templates import WhatsAppTemplate
from core.models.types import utcnow
from core.numbers.registry import number_for
from core.settings import Settings, get_settings
from core.templates.definition import TemplateDefinition
from core.templates.registry import _columns
from core.templates.rules import RuleProblem, blocking, check_template


class TemplateInvalid(ValueError):
    """The template breaks Meta's rules; nothing was sent. `problems` has them all."""

    def __init__(self, problems: list[RuleProblem]) -> None:
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


@dataclass(frozen=True)
class SubmitResult:
    """Meta's answer to a submission, plus the warnings the template was sent with."""

    meta_id: str
    status: str  # PENDING, or APPROVED / REJECTED when Meta decides at once
    category: str
    name: str
    language: str
    warnings: tuple[RuleProblem, ...] = ()


def refusal_text(error: GraphError) -> str:
    """Meta's own words for a refused submission (its user message, else its reason)."""
    return error.user_message or error.title or error.reason


async def submit_template(
    client: CloudApiClient,
    engine: Engine,
    tenant_id: str,
    template: Mapping[str, Any],
    *,
    waba_id: str | None = None,
) -> SubmitResult:
    """Check `template` (Meta's create JSON), submit it and record it for `tenant_id`.

    Raises TemplateInvalid before any request when a rule is broken, and GraphError when
    Meta refuses it (the registry is then as it was). A new template's row is written as
    PENDING before the request, so a review webhook that overtakes Meta's answer finds
    it; a status the webhook already set is kept.
    """
    problems = check_template(template)
    if errors := blocking(problems):
        raise TemplateInvalid(errors)
    body = dict(template)
    pending = {**body, "status": "PENDING", "category": str(body["category"]).upper()}
    reserved = await asyncio.to_thread(reserve_template, engine, tenant_id, pending, waba_id)
    try:
        answer = await client.create_template(body, waba_id=waba_id)
    except BaseException:
        if reserved is not None:
            await asyncio.to_thread(_drop_reserved, engine, reserved)
        raise
    meta_id = str(answer["id"])
    status = str(answer.get("status") or "PENDING").upper()
    category = str(answer.get("category") or body["category"]).upper()
    stored = {**body, "id": meta_id, "status": status, "category": category}
    await asyncio.to_thread(record_template, engine, tenant_id, stored, waba_id=waba_id)
    return SubmitResult(
        meta_id=meta_id,
        status=status,
        category=category,
        name=str(body["name"]),
        language=str(body["language"]),
        warnings=tuple(problems),
    )


def reserve_template(
    engine: Engine, tenant_id: str, data: Mapping[str, Any], waba_id: str | None
) -> int | None:
    """Write a PENDING row for a template about to be submitted; its id, or None when
    the tenant already has that name and language (that row is left alone)."""
    defn = TemplateDefinition.from_meta(data)
    values = _values(defn, data, waba_id)
    with session_scope(engine) as session:
        if _row(session, tenant_id, defn.name, defn.language) is not None:
            return None
        row = WhatsAppTemplate(tenant_id=tenant_id, **values)
        session.add(row)
        session.flush()
        return row.id


def _drop_reserved(engine: Engine, row_id: int) -> None:
    """Remove a reserved row Meta never acknowledged (no Meta id yet)."""
    with session_scope(engine) as session:
        row = session.get(WhatsAppTemplate, row_id)
        if row is not None and row.meta_template_id is None:
            session.delete(row)


def record_template(
    engine: Engine, tenant_id: str, data: Mapping[str, Any], *, waba_id: str | None = None
) -> None:
    """Store Meta's template object for `tenant_id` (insert, or update the same name and
    language), marked with the WABA it was submitted to; other templates are left alone,
    unlike a sync. A PENDING answer does not undo a decision a webhook already wrote."""
    defn = TemplateDefinition.from_meta(data)
    values = _values(defn, data, waba_id)
    now = utcnow()
    with session_scope(engine) as session:
        row = _row(session, tenant_id, defn.name, defn.language)
        if row is None:
            session.add(WhatsAppTemplate(tenant_id=tenant_id, synced_at=now, **values))
            return
        if values["status"] == "PENDING" and row.status != "PENDING":
            for decided in ("status", "rejected_reason"):
                values.pop(decided)
        else:
            row.held_reason = None
        for name, value in values.items():
            setattr(row, name, value)
        row.synced_at = now
        row.updated_at = now


def _values(
    defn: TemplateDefinition, data: Mapping[str, Any], waba_id: str | None
) -> dict[str, Any]:
    values = _columns(defn, data)
    if waba_id and "waba_id" in WhatsAppTemplate.model_fields:  # templates belong to a WABA
        values["waba_id"] = waba_id
    return values


def _row(session: Session, tenant_id: str, name: str, language: str) -> WhatsAppTemplate | None:
    return session.exec(
        select(WhatsAppTemplate).where(
            WhatsAppTemplate.tenant_id == tenant_id,
            WhatsAppTemplate.template_name == name,
            WhatsAppTemplate.language == language,
        )
    ).first()


def submit_template_now(
    tenant_id: str,
    template: Mapping[str, Any],
    *,
    engine: Engine | None = None,
    settings: Settings | None = None,
) -> SubmitResult:
    """`submit_template` from synchronous code (the CLI, the dashboard).

    The template goes to the WhatsApp Business Account of the tenant's default number
    (core.numbers.registry.number_for: templates belong to a WABA), with that number's
    token; the settings' account when the number names none. NumberError when the
    tenant has no usable number; the rules are checked before that, so a broken
    template is reported whatever the numbers.
    """
    if errors := blocking(check_template(template)):
        raise TemplateInvalid(errors)
    settings = settings or get_settings()
    engine = engine or get_engine()
    number = number_for(engine, settings, tenant_id)
    token = number.access_token.get_secret_value() if number.access_token else None
    waba_id = number.waba_id or settings.business_account_id

    async def _submit() -> SubmitResult:
        async with CloudApiClient(
            settings,
            max_connections=2,
            phone_number_id=number.phone_number_id,
            access_token=token,
        ) as client:
            return await submit_template(client, engine, tenant_id, template, waba_id=waba_id)

    return asyncio.run(_submit())
