"""Bulk sends from a CSV: plan (read, map, check every row), start a batch, follow it.

The CLI's `send-csv` and the dashboard's bulk page both use these steps, so a file is
judged the same way wherever it is uploaded. Nothing is queued until `start_batch`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import cached_property

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from core.auth import Action, PermissionDenied, require, visible_tenants, write_tenant
from core.batch_import import LOOKED_UP, ImportProgress, record_plan
from core.batches import (
    ROW_NUMBERS,
    SOURCES,
    SPREADSHEET_ROWS,
    BatchError,
    BatchProgress,
    batch_progress,
    batch_results,
    batch_upload_format,
    pause_batch,
    resume_batch,
    retry_failed,
)
from core.consent import batch as consent_batch
from core.csv_export import DEFAULT_DIALECT, ExportDialect, results_csv
from core.csv_import import (
    PO_FIELDS,
    CsvTable,
    RowCheck,
    guess_mapping,
    read_csv,
    validate_rows,
)
from core.db import (
    by_unique_key,
    get_engine,
    plan_each_statement,
    refresh_statistics,
    session_scope,
)
from core.formatting import format_moment
from core.heap import fewer_collections
from core.i18n import _, ngettext
from core.models.batches import SendBatch
from core.models.suppliers import Supplier
from core.money import DecimalMark
from core.namesakes import Namesake, find_namesakes
from core.notify import (
    resolve_template,
)
from core.outbox import key_holders
from core.sender import drain
from core.settings import get_settings
from core.templates import (
    Preview,
    TemplateDefinition,
    definition_of,
    is_po_notice_template,
    list_templates,
    render_preview,
)
from core.users import UserInfo

_SUPPLIERS = Supplier.__table__  # type: ignore[attr-defined]

#: Phones per `IN (...)` lookup: well under SQLite's variable limit.
_IN_CHUNK = 500
#: Columns of the results file, after the input's own columns (where the phone stays as
#: the buyer wrote it; `phone_e164` is the number it was read as).
RESULT_COLUMNS = ["phone_e164", "outcome", "status", "message_id", "wamid", "error"]
#: The outcome of a row a dry run would queue.
READY = "ready"
#: Outcomes that are not problems: the errors file leaves these rows out.
NOT_PROBLEMS = frozenset({"queued", "sent"})


@dataclass(frozen=True)
class BulkPlan:
    """A checked CSV: every row with what it would send or why it cannot be sent."""

    tenant_id: str
    definition: TemplateDefinition
    table: CsvTable
    mapping: dict[str, str | None]
    checks: list[RowCheck]
    #: The template's sendable versions by language (the default's among them).
    versions: dict[str, TemplateDefinition] = field(default_factory=dict)
    #: Rows whose language has no version are sent in the default (the buyer chose so).
    fallback_to_default: bool = False
    #: Valid rows that would add a supplier named like another one (asked first).
    namesakes: list[Namesake] = field(default_factory=list)
    #: The buyer confirmed that every supplier in the file agreed to WhatsApp messages.
    consent_confirmed: bool = False
    #: Valid rows whose consent is confirmed (by their `consent` cell or the buyer), by
    #: row number: recorded when the batch starts (`core.consent.batch`).
    consent: dict[int, bool] = field(default_factory=dict)

    # Worked out once per plan (the checks never change; a changed plan is a new one,
    # `replace`): the bulk page reads them several times on every rerun, 100,000 rows each.
    @cached_property
    def valid(self) -> list[RowCheck]:
        """Rows that will be queued (read only: shared by every reader)."""
        return [check for check in self.checks if check.ok]

    @cached_property
    def rejected(self) -> list[RowCheck]:
        """Rows refused, each with its reasons (read only: shared by every reader)."""
        return [check for check in self.checks if not check.ok]

    @property
    def valid_count(self) -> int:
        """How many rows will be queued."""
        return len(self.valid)

    @property
    def namesakes_to_confirm(self) -> list[Namesake]:
        """The namesakes among the rows still to be queued (a row refused since, for
        consent say, adds nobody): what the buyer is asked to confirm."""
        valid = {check.row_number for check in self.valid}
        return [item for item in self.namesakes if item.row_number in valid]

    def version(self, language: str | None) -> TemplateDefinition:
        """The template version a row in `language` is checked against."""
        return self.versions.get(language or "", self.definition)

    def previews(self) -> list[LanguagePreview]:
        """One preview per language the valid rows are sent in (the first such row's
        message as its supplier will see it), the default language first."""
        firsts: dict[str, RowCheck] = {}
        counts: dict[str, int] = {}
        for check in self.valid:
            language = check.language or self.definition.language
            counts[language] = counts.get(language, 0) + 1
            if check.params is not None:
                firsts.setdefault(language, check)
        order = sorted(counts, key=lambda code: (code != self.definition.language, code))
        return [
            LanguagePreview(
                language,
                counts[language],
                firsts[language].row_number,
                render_preview(self.version(language), firsts[language].params),
            )
            for language in order
            if language in firsts
        ]


@dataclass(frozen=True)
class LanguagePreview:
    """What the rows sent in one language look like: the first one's message."""

    language: str
    rows: int
    row_number: int
    preview: Preview


class NamesakesNotConfirmed(BatchError):
    """The file would add suppliers named like existing ones and nobody confirmed it."""


def wanted_fields(definition: TemplateDefinition) -> list[str]:
    """The fields a CSV must map for this template (PO notice fields, or its parameters)."""
    if is_po_notice_template(definition):
        return list(PO_FIELDS)
    header = ["header"] if definition.header_params or definition.has_media_header else []
    return ["phone", *definition.body_params, *header]


@fewer_collections()  # a 100,000-row file: millions of small containers made and dropped
def plan_csv(
    data: bytes,
    *,
    tenant_id: str,
    template_name: str,
    language: str,
    decimal: DecimalMark = "auto",
    mapping: Mapping[str, str | None] | None = None,
    default_currency: str | None = "EUR",
    fallback_to_default: bool = False,
    consent_confirmed: bool = False,
    engine: Engine | None = None,
) -> BulkPlan:
    """Read and check a CSV for a send of one template; rows already sent are refused.

    `language` is the batch's default: each row goes out in its own language (its
    cell, else its supplier's, else the default) when the template has an approved
    version in it, and is refused otherwise, unless `fallback_to_default` (the buyer's
    explicit choice) sends it in the default. Rows that would add a supplier named
    like another one are listed in `namesakes`. Each row's WhatsApp consent is checked
    (`core.consent.batch`: its `consent` cell, else `consent_confirmed`, the buyer's
    confirmation for the whole file); refused rows say why.

    Raises CsvError when the file cannot be read for certain, NoticeRejected when the
    template cannot be sent at all.
    """
    table = read_csv(data)
    engine = engine or get_engine()
    refresh_statistics(engine, LOOKED_UP)
    with session_scope(engine) as session:
        plan_each_statement(session)  # hundreds of lookups by phone and key
        definition = resolve_template(session, tenant_id, template_name, language)
        versions = _versions(session, tenant_id, definition)
        directory: dict[str, str | None] = {}  # the file's known numbers: their language

        def kept_languages(phones: Sequence[str]) -> dict[str, str]:
            directory.update(_languages_at(session, tenant_id, phones))
            return {phone: language for phone, language in directory.items() if language}

        chosen = (
            dict(mapping) if mapping else guess_mapping(table.headers, wanted_fields(definition))
        )
        checks = validate_rows(
            table,
            chosen,
            definition,
            region=get_settings().whatsapp_default_region,
            decimal=decimal,
            default_currency=default_currency,
            versions=versions,
            supplier_languages=kept_languages,
            fallback_to_default=fallback_to_default,
        )
        keys = [check.idempotency_key for check in checks if check.ok and check.idempotency_key]
        earlier = key_holders(session, tenant_id, keys)
        namesakes = _namesakes(session, tenant_id, [c for c in checks if c.ok], directory)
    marked = [
        replace(
            check,
            errors=[
                _("Already sent as message {id} on {date} UTC").format(
                    id=earlier[check.idempotency_key].id,
                    date=format_moment(earlier[check.idempotency_key].created_at, "UTC"),
                )
            ],
        )
        if check.ok and check.idempotency_key in earlier
        else check
        for check in checks
    ]
    plan = BulkPlan(
        tenant_id, definition, table, chosen, marked, versions, fallback_to_default, namesakes
    )
    return _with_consent(plan, consent_confirmed, engine)


def _with_consent(plan: BulkPlan, confirmed: bool, engine: Engine) -> BulkPlan:
    """The plan with each valid row's consent checked: refusals added to its errors."""
    with Session(engine) as session:
        plan_each_statement(session)
        consent, refused = consent_batch.check_rows(
            session,
            plan.tenant_id,
            plan.checks,
            plan.table.rows,
            plan.table.headers,
            batch_confirmed=confirmed,
        )
    checks = [
        replace(check, errors=[*check.errors, refused[check.row_number]])
        if check.row_number in refused
        else check
        for check in plan.checks
    ]
    return replace(plan, checks=checks, consent_confirmed=confirmed, consent=consent)


def _versions(
    session: Session, tenant_id: str, definition: TemplateDefinition
) -> dict[str, TemplateDefinition]:
    """The template's sendable versions by language, `definition` (the default) among them."""
    versions = {definition.language: definition}
    for row in list_templates(session, tenant_id, approved_only=True):
        if row.template_name == definition.name and row.language not in versions:
            candidate = definition_of(row)
            if candidate.unsendable_reason is None:
                versions[candidate.language] = candidate
    return versions


def _languages_at(
    session: Session, tenant_id: str, phones: Sequence[str]
) -> dict[str, str | None]:
    """The language kept for each of the tenant's suppliers at these E.164 numbers (None
    when it has none), in a few `IN (...)` queries of those two columns: a file of
    100,000 known numbers needs neither whole supplier objects nor their bookkeeping."""
    found: dict[str, str | None] = {}
    unique = list(dict.fromkeys(phones))
    for start in range(0, len(unique), _IN_CHUNK):
        chunk = unique[start : start + _IN_CHUNK]
        for phone, language in session.execute(
            by_unique_key(
                session,
                [_SUPPLIERS.c.phone_e164, _SUPPLIERS.c.language],
                _SUPPLIERS.c.tenant_id == tenant_id,
                _SUPPLIERS.c.phone_e164,
                chunk,
            )
        ).all():
            found[phone] = language
    return found


def _namesakes(
    session: Session, tenant_id: str, valid: list[RowCheck], directory: Mapping[str, object]
) -> list[Namesake]:
    """Valid rows that would add a supplier (their number is not in the directory) named
    like another one (`core.namesakes.find_namesakes`)."""
    new: dict[str, RowCheck] = {}
    for check in valid:
        if check.phone_e164 and check.phone_e164 not in directory:
            new.setdefault(check.phone_e164, check)
    return find_namesakes(
        session,
        tenant_id,
        [
            (check.row_number, check.values.get("supplier_name") or "", phone)
            for phone, check in new.items()
        ],
    )


def start_batch(
    plan: BulkPlan,
    *,
    name: str,
    created_by: str | None,
    source: str = "csv",
    allow_namesakes: bool = False,
    engine: Engine | None = None,
    on_progress: ImportProgress | None = None,
    phone_number_id: str | None = None,
) -> SendBatch:
    """Record the batch (every input row) and queue its valid rows, chunk by chunk
    (`core.batch_import.record_plan`: each chunk one transaction, set-based lookups and
    inserts; `on_progress` hears (rows recorded, rows in the file, the batch id)).

    Every message goes out from `phone_number_id` when given (one of the plan's
    tenant's numbers: NoticeRejected, and no batch, otherwise), else from the tenant's
    default number.

    Each language's version of the template is looked up once, as it is now (the
    default's NoticeRejected, and no batch, if it was paused or removed since the file
    was checked; another language's refuses its rows with the reason), and the rows'
    suppliers in a few queries per chunk. A file that would add suppliers named like
    others (`namesakes_to_confirm`) is refused with NamesakesNotConfirmed unless
    `allow_namesakes` (someone confirmed).
    """
    namesakes = plan.namesakes_to_confirm
    if namesakes and not allow_namesakes:
        raise NamesakesNotConfirmed(
            ngettext(
                "{n} row would add a supplier with the name of another one: row {rows}",
                "{n} rows would add a supplier with the name of another one: rows {rows}",
                len(namesakes),
            ).format(
                n=len(namesakes),
                rows=", ".join(str(n.row_number) for n in namesakes[:20])
                + ("…" if len(namesakes) > 20 else ""),
            )
        )
    if source not in SOURCES:
        raise BatchError(f"source must be one of {', '.join(SOURCES)}")
    dialect = ExportDialect.of_upload(plan.table.encoding, plan.table.delimiter)
    return record_plan(
        plan,
        name=name,
        created_by=created_by,
        source=source,
        upload_format={
            "columns": list(plan.table.headers),
            "dialect": dialect.to_json(),
            ROW_NUMBERS: SPREADSHEET_ROWS,
        },
        engine=engine or get_engine(),
        on_progress=on_progress,
        phone_number_id=phone_number_id,
    )


ProgressCallback = Callable[[int, int, str], None]


def dispatch_batch(
    batch_id: str,
    *,
    on_progress: ProgressCallback | None = None,
    timeout: float = 3600.0,
    engine: Engine | None = None,
) -> BatchProgress:
    """Send the queue here until it is drained, reporting the batch's progress as it goes.

    For the CLI: the dashboard's embedded sender (or `wanotify worker`) does this in
    long-running deployments.
    """
    engine = engine or get_engine()

    async def _follow() -> None:
        while True:
            _report(batch_progress(engine, batch_id), on_progress)
            await asyncio.sleep(0.5)

    async def _run() -> None:
        follower = asyncio.create_task(_follow())
        try:
            await drain(get_settings(), engine, timeout=timeout)
        finally:
            follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await follower

    asyncio.run(_run())
    final = batch_progress(engine, batch_id)
    _report(final, on_progress)
    return final


def _report(progress: BatchProgress, on_progress: ProgressCallback | None) -> None:
    if on_progress is None:
        return
    settled = progress.enqueued - progress.queued
    summary = (
        f"{progress.reached_meta} sent, {progress.failed} failed, "
        f"{progress.needs_attention} need attention"
    )
    on_progress(settled, progress.enqueued, summary)


def results_csv_for(
    batch_id: str,
    *,
    dialect: ExportDialect | None = None,
    engine: Engine | None = None,
    problems_only: bool = False,
) -> bytes:
    """The results file of a batch: one row per input row, safe to open in a spreadsheet.

    Written in `dialect`, by default the upload's own (`ExportDialect.of_upload`, kept
    with the batch), with the upload's columns in the upload's order. `problems_only`
    keeps the rows that were not sent and will not be (the errors file: refused, failed,
    needing attention, cancelled), to fix and upload again; the columns stay the same.
    """
    engine = engine or get_engine()
    rows = batch_results(engine, batch_id)
    if problems_only:
        rows = [row for row in rows if row["outcome"] not in NOT_PROBLEMS]
    upload_format = batch_upload_format(engine, batch_id) or {}
    uploaded = upload_format.get("columns")
    input_columns = ["row_number"]
    if isinstance(uploaded, list):  # the stored row dicts may not keep the file's order
        input_columns += [
            f"input_{column}" if column in RESULT_COLUMNS or column == "row_number" else column
            for column in map(str, uploaded)
        ]
    for row in rows:
        for column in row:
            if column not in input_columns and column not in RESULT_COLUMNS:
                input_columns.append(column)
    chosen = dialect or ExportDialect.from_json(upload_format.get("dialect")) or DEFAULT_DIALECT
    return results_csv(rows, [*input_columns, *RESULT_COLUMNS], chosen)


def plan_results_csv(plan: BulkPlan, *, dialect: ExportDialect | None = None) -> bytes:
    """The results file of a dry run: one row per input row, as `results_csv_for` writes
    a batch's, with outcome `ready` (would be queued) or `refused` and the reasons.

    Written in `dialect`, by default the upload's own.
    """
    clashing = {"row_number", *RESULT_COLUMNS}
    rows = []
    for check, raw in zip(plan.checks, plan.table.rows, strict=True):
        entry: dict[str, object] = {"row_number": check.row_number}
        for column, value in raw.items():
            entry[f"input_{column}" if column in clashing else column] = value
        entry.update(
            phone_e164=check.phone_e164 or "",
            outcome=READY if check.ok else "refused",
            error="; ".join(check.errors),
        )
        rows.append(entry)
    input_columns = [
        f"input_{column}" if column in clashing else column for column in plan.table.headers
    ]
    chosen = dialect or ExportDialect.of_upload(plan.table.encoding, plan.table.delimiter)
    return results_csv(rows, ["row_number", *input_columns, *RESULT_COLUMNS], chosen)


@dataclass(frozen=True)
class BatchSummary:
    """One line of the "recent batches" list: enough to pick a batch and come back to it."""

    id: str
    name: str
    status: str
    template: str
    total_rows: int
    created_by: str | None
    created_at: datetime


def recent_batches(engine: Engine, tenant_id: str, *, limit: int = 20) -> list[BatchSummary]:
    """The tenant's latest batches, newest first (at most `limit`, capped at 200)."""
    limit = max(1, min(limit, 200))
    with Session(engine) as session:
        rows = session.exec(
            select(SendBatch)
            .where(col(SendBatch.tenant_id) == tenant_id)
            .order_by(col(SendBatch.created_at).desc(), col(SendBatch.id))
            .limit(limit)
        ).all()
    return [
        BatchSummary(
            row.id,
            row.name,
            row.status,
            f"{row.template_name or '?'} ({_languages_sent(row)})",
            row.total_rows,
            row.created_by,
            row.created_at,
        )
        for row in rows
    ]


def _languages_sent(batch: SendBatch) -> str:
    """The languages a batch's rows went out in ("en, es"), else its default language."""
    kept = (batch.upload_format or {}).get("languages")
    if isinstance(kept, dict) and kept:
        return ", ".join(sorted(map(str, kept)))
    return batch.template_language or "?"


def start_batch_for(
    user: UserInfo,
    plan: BulkPlan,
    name: str,
    *,
    engine: Engine,
    allow_namesakes: bool = False,
    on_progress: ImportProgress | None = None,
    phone_number_id: str | None = None,
) -> SendBatch:
    """`start_batch` on behalf of a dashboard user: role and tenant checked first (the
    chosen `phone_number_id` must be one of that tenant's numbers)."""
    require(user, Action.SEND)
    if plan.tenant_id != write_tenant(user):
        raise PermissionDenied(_("This file was checked for another tenant"))
    return start_batch(
        plan,
        name=name,
        created_by=user.username,
        allow_namesakes=allow_namesakes,
        engine=engine,
        on_progress=on_progress,
        phone_number_id=phone_number_id,
    )


def pause_batch_for(user: UserInfo, batch_id: str, *, engine: Engine) -> bool:
    """Pause one of the user's tenant's batches (role checked); False if not running."""
    require(user, Action.MANAGE_BATCHES)
    return pause_batch(engine, batch_id, tenant_id=write_tenant(user))


def resume_batch_for(user: UserInfo, batch_id: str, *, engine: Engine) -> bool:
    """Resume one of the user's tenant's batches (role checked); False if not paused."""
    require(user, Action.MANAGE_BATCHES)
    return resume_batch(engine, batch_id, tenant_id=write_tenant(user))


def retry_failed_for(user: UserInfo, batch_id: str, *, engine: Engine) -> int:
    """Re-send a batch's failed rows as deliberate resends (role checked); how many."""
    require(user, Action.MANAGE_BATCHES)
    return retry_failed(engine, batch_id, user.username, tenant_id=write_tenant(user))


def progress_for(user: UserInfo, batch_id: str, *, engine: Engine) -> BatchProgress:
    """A batch's progress, if it belongs to a tenant the user may see (BatchError if not)."""
    for tenant in visible_tenants(user):
        try:
            return batch_progress(engine, batch_id, tenant_id=tenant)
        except BatchError:
            continue
    raise BatchError(f"no batch {batch_id}")


def results_csv_for_user(
    user: UserInfo,
    batch_id: str,
    *,
    dialect: ExportDialect | None = None,
    engine: Engine,
    problems_only: bool = False,
) -> bytes:
    """The results file (or with `problems_only` the errors file) of a batch the user
    may see (BatchError if not), in `dialect` or the upload's own."""
    progress_for(user, batch_id, engine=engine)
    return results_csv_for(batch_id, dialect=dialect, engine=engine, problems_only=problems_only)
