"""Bulk send from a CSV: upload, map columns, see every refused row, send, follow, download.

Widgets only. Reading, mapping and checking the file is `core.bulk.plan_csv`; the
batch lives in the database and the embedded sender does the sending, so progress
survives closing the tab (the batch id is in the URL and in "Recent batches").
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pandas as pd
import streamlit as st
from sqlalchemy import Engine

from core import cores, csv_import
from core.auth import PermissionDenied, write_tenant
from core.batch_jobs import Report
from core.batches import BatchError, BatchProgress
from core.bulk import (
    BulkPlan,
    pause_batch_for,
    plan_csv,
    progress_for,
    recent_batches,
    results_csv_for_user,
    resume_batch_for,
    retry_failed_for,
    start_batch_for,
    wanted_fields,
)
from core.compose import TemplateChoice, sendable_templates
from core.csv_import import CsvError
from core.formatting import format_number
from core.heap import give_back_free_memory
from core.i18n import N_, _, ngettext
from core.money import DecimalMark
from core.notify import DEFAULT_LANGUAGE, NoticeRejected
from core.users import UserInfo
from dashboard import runtime
from dashboard.number_select import sending_number
from dashboard.widgets import local_time, md_escape, paged, pager, whatsapp_bubble

NOT_IN_FILE = "— not in the file —"  # the column picker's "no column" option (translated)
DECIMALS: dict[str, str] = {
    "auto": N_("Detect"),
    ".": N_("Dot (1234.50)"),
    ",": N_("Comma (1234,50)"),
}
FIELD_LABELS = {
    "phone": N_("Phone"),
    "supplier_name": N_("Supplier name"),
    "po_number": N_("PO number"),
    "total_amount": N_("Amount"),
    "currency": N_("Currency (EUR if missing)"),
    "language": N_("Language (optional)"),
    "document_link": N_("PDF link"),
    "header": N_("Header"),
}
#: A batch's status as the list of recent batches names it.
BATCH_STATUS = {
    "importing": N_("Queuing"),
    "running": N_("Sending"),
    "paused": N_("Paused"),
    "cancelled": N_("Cancelled"),
    "done": N_("Done"),
    "completed": N_("Done"),
}


def _field_label(field: str) -> str:
    """A column's name for the buyer; a template's own field names stay as Meta wrote them."""
    known = FIELD_LABELS.get(field)
    return _(known) if known else field


def _batch_status(status: str) -> str:
    known = BATCH_STATUS.get(status)
    return _(known) if known else status
#: The upload limit shown and enforced by the browser: what `read_csv` accepts.
MAX_UPLOAD_MB = max(1, csv_import.MAX_BYTES // (1024 * 1024))
#: Checked files kept per session (a plan of 100,000 rows takes seconds to make)...
PLANS_KEPT = 4
#: ... and at most this many rows in all (a plan of 100,000 rows is kept alone).
ROWS_KEPT = 120_000
#: Files up to this size are checked, and batches up to this many rows queued, on the
#: page's own run (a second at most); bigger ones on the runner's thread with progress.
INLINE_BYTES = 256 * 1024
INLINE_ROWS = 2_000
#: How the file's encoding is named to a buyer.
ENCODINGS = {
    "utf-8": "UTF-8",
    "utf-8-sig": "UTF-8 (BOM)",
    "cp1252": "Windows (ANSI)",
    "latin-1": "Latin-1",
    "utf-16": "UTF-16",
}
#: Refused rows shown as a plain table up to this many (a scrolling grid beyond).
TABLE_ROWS = 100
#: A batch sending more messages than this is redrawn every 5 s, not every second:
#: counting 100,000 messages by status takes 0.2 s of the server (a fifth of a core
#: for each buyer watching it, for the half hour it sends at 80 a second).
EVERY_SECOND_UP_TO = 20_000
#: Session key: the label of the template the buyer had picked, once it can no longer be
#: sent, until they pick another (`_template_choice`).
TEMPLATE_GONE = "bulk_template_gone"
#: Fields a file may leave out.
OPTIONAL_FIELDS = frozenset({"currency", "language"})


def render(user: UserInfo) -> None:
    """Draw the bulk page for `user` (buyers and admins)."""
    db = runtime.engine()
    st.title(_("Bulk send from CSV"))
    st.caption(
        _("Upload a CSV exported from your spreadsheet or ERP (commas or semicolons, decimal "
          "commas and accents are fine). Every row is checked before anything is sent.")
    )  # fmt: skip
    batch_id = _open_batch_id()
    panel = st.container()  # always drawn, so opening or closing a batch keeps the tabs put
    if batch_id:
        with panel.container(border=True):
            _open_batch(db, user, batch_id)
    # Keyed and tracked: the tab a buyer is on survives reruns (closing a batch opened
    # from Recent batches returns there, not to New batch).
    upload_tab, batches_tab = st.tabs(
        [_("New batch"), _("Recent batches")], key="bulk_tabs", on_change="rerun"
    )
    with upload_tab:
        _new_batch(db, user)
    with batches_tab:
        _recent(db, user)


def _open_batch_id() -> str | None:
    value = st.query_params.get("batch")
    return value[:36] if isinstance(value, str) and value else None


def _new_batch(db: Engine, user: UserInfo) -> None:
    templates = sendable_templates(db, write_tenant(user))
    if not templates:
        st.info(
            _("**No approved template yet.** An administrator syncs the templates approved in "
              "WhatsApp Manager on the *Templates* page; then you can send batches here."),
            icon=":material/description:",
        )
        return
    po_first = sorted(
        templates,
        key=lambda t: (not t.po_notice, t.needs_document, t.name, t.language != DEFAULT_LANGUAGE),
    )
    left, right = st.columns([1, 1])
    with left:
        template = _template_choice(po_first)
    decimal_key = right.radio(
        _("Decimal separator of the amounts"),
        list(DECIMALS),
        format_func=lambda key: _(DECIMALS[key]),
        horizontal=True,
        key="bulk_decimal",
        help=_("Detect reads 1.234,50 and 1,234.50 and refuses amounts such as 2.750"),
    )
    cores.warm()  # the check workers (core.cores), up before the first big file comes
    upload = st.file_uploader(
        _("CSV file"), type=["csv", "txt"], key="bulk_file", max_upload_size=MAX_UPLOAD_MB
    )
    gone = st.session_state.get(TEMPLATE_GONE) if template is None else None
    if gone:
        st.warning(
            _("**{label} can no longer be sent** (Meta paused it, or it was removed). "
              "Choose a template and the file is checked again for it.")
            .format(label=md_escape(gone)),
            icon=":material/pause_circle:",
        )  # fmt: skip
        return
    if upload is None or template is None:
        st.caption(
            _("Columns the file needs for a PO notice: supplier name, phone, PO number and "
              "amount; currency and language are optional. Names in Spanish work too "
              "(proveedor, teléfono, pedido, importe…).")
        )
        return
    data = upload.getvalue()
    decimal: DecimalMark = "." if decimal_key == "." else "," if decimal_key == "," else "auto"
    fallback = st.checkbox(
        _("Send rows whose language has no approved version of the template in {language}")
        .format(language=template.language),
        key="bulk_fallback",
        help=_(
            "Each row is sent in its own language (its language column, else the "
            "supplier's). Without this, rows in a language the template is not approved "
            "in are refused and listed below."
        ),
    )
    consent = st.checkbox(
        _("Every supplier in this file agreed to receive WhatsApp messages from us"),
        key="bulk_consent",
        help=_(
            "WhatsApp requires each supplier's opt-in. Ticking this records consent for "
            "the file's suppliers with your name (a consent column saying no still "
            "refuses its row). Without it, only suppliers with recorded consent, or rows "
            "whose consent column says yes, are sent; opted-out suppliers never are."
        ),
    )
    plan = _plan(db, user, data, template, decimal, fallback=fallback, consent=consent)
    if plan is None:
        return
    file_id = hashlib.sha256(data + template.label.encode()).hexdigest()[:16]
    mapping = _mapping(plan, file_id)
    if mapping != plan.mapping:
        plan = _plan(db, user, data, template, decimal, mapping, fallback=fallback, consent=consent)
        if plan is None:
            return
    _checks(plan)
    _start(db, user, plan, upload.name, file_id)


def _template_choice(templates: list[TemplateChoice]) -> TemplateChoice | None:
    """The template the buyer picked. When the one picked can no longer be sent (Meta
    paused it mid-send, an administrator removed it), none is picked in its place: the
    attached file would be checked against a template nobody chose (100,000 rows: seconds
    of both cores and hundreds of MB, while the batch sends), so the page asks."""
    before = st.session_state.get("bulk_template")
    if before is not None and all(choice.label != before.label for choice in templates):
        st.session_state[TEMPLATE_GONE] = before.label
    template: TemplateChoice | None = st.selectbox(
        _("Template"),
        templates,
        index=None if TEMPLATE_GONE in st.session_state else 0,
        format_func=lambda t: t.label,
        placeholder=_("Choose a template"),
        key="bulk_template",
    )
    if template is not None:
        st.session_state.pop(TEMPLATE_GONE, None)
    return template


def _plan(
    db: Engine,
    user: UserInfo,
    data: bytes,
    template: TemplateChoice,
    decimal: DecimalMark,
    mapping: dict[str, str | None] | None = None,
    *,
    fallback: bool = False,
    consent: bool = False,
) -> BulkPlan | None:
    """The checked file, or None while it is being checked (on the runner's thread:
    `core.batch_jobs`, progress redrawn every second) or when it cannot be. The last
    plans are kept for the session, as checking 100,000 rows takes seconds and every
    click reruns the page (the send re-checks duplicates)."""
    key = (
        write_tenant(user),
        hashlib.sha256(data).hexdigest(),
        template.label,
        decimal,
        tuple(sorted((mapping or {}).items(), key=lambda item: item[0])),
        fallback,
        consent,
    )
    kept: dict[tuple[object, ...], BulkPlan] = st.session_state.setdefault("bulk_plans", {})
    if key in kept:
        return kept[key]
    tenant = write_tenant(user)

    def check(report: Report | None = None) -> BulkPlan:
        return plan_csv(
            data,
            tenant_id=tenant,
            template_name=template.name,
            language=template.language,
            decimal=decimal,
            mapping=mapping,
            fallback_to_default=fallback,
            consent_confirmed=consent,
            engine=db,
        )

    if len(data) <= INLINE_BYTES:  # a small file: checked at once, here
        try:
            plan = check()
        except (CsvError, NoticeRejected) as exc:
            _refused(type(exc).__name__, str(exc))
            return None
    else:  # checked on the runner's thread: the page (and every other) stays free
        checking: dict[tuple[object, ...], str] = st.session_state.setdefault(
            "bulk_checking", {}
        )
        jobs = runtime.bulk_jobs()
        job = jobs.job(checking[key]) if key in checking else None
        if job is None:
            # Room first: the plan this file replaces (another template or choice) would
            # otherwise stay alive through the check and double the page's memory. Its
            # rows, about: lines end in LF, CRLF or (an old Mac Excel's) CR.
            _make_room(kept, key, max(data.count(b"\n"), data.count(b"\r")))
            checking[key] = jobs.submit("check", 0, check, (CsvError, NoticeRejected))
            job = jobs.job(checking[key])
        assert job is not None
        if not job.finished:
            _wait_for_job(job.id, _("Checking every row of the file…"))
            return None
        del checking[key]
        jobs.forget(job.id)  # the page keeps the plan (below), the runner need not
        if job.error is not None:  # CsvError or NoticeRejected, in words for the buyer
            _refused(job.error_kind, job.error)
            return None
        plan = job.result
    _make_room(kept, key, len(plan.checks))
    kept[key] = plan
    return plan


def _make_room(
    kept: dict[tuple[object, ...], BulkPlan], key: tuple[object, ...], rows: int
) -> None:
    """Drop kept plans, oldest first, until a plan of `rows` rows kept under `key` fits
    in `PLANS_KEPT` plans and `ROWS_KEPT` rows. The guessed and the chosen mapping of
    this file are both needed on every rerun (evicting one would check it again, and
    that would evict the other): other files go first, this file's plans only beyond
    `PLANS_KEPT`."""
    dropped = False
    while kept and (len(kept) >= PLANS_KEPT or _rows(kept) + rows > ROWS_KEPT):
        others = [k for k in kept if _file_of(k) != _file_of(key)]
        if not others and len(kept) < PLANS_KEPT:
            break
        kept.pop((others or list(kept))[0])
        dropped = True
    if dropped:
        give_back_free_memory()


def _file_of(key: tuple[object, ...]) -> tuple[object, ...]:
    """A kept plan's key without its mapping: which file, template and choices."""
    return key[:4] + key[5:]


def _refused(kind: str | None, reason: str) -> None:
    """Why the file cannot be sent: its template (NoticeRejected), else the file itself."""
    if kind == NoticeRejected.__name__:
        st.error("**" + _("This template cannot be sent:") + "** " + md_escape(_(reason)),
                 icon=":material/block:")  # fmt: skip
    else:
        st.error("**" + _("This file cannot be read:") + "** " + md_escape(_(reason)),
                 icon=":material/block:")  # fmt: skip


def _rows(plans: dict[tuple[object, ...], BulkPlan]) -> int:
    return sum(len(plan.checks) for plan in plans.values())


@st.fragment(run_every="0.5s")
def _wait_for_job(job_id: str, label: str) -> None:
    """A job's progress, redrawn twice a second (it only reads the job's state); the
    whole page reruns once it is done, half a second after on average, not one."""
    job = runtime.bulk_jobs().job(job_id)
    if job is None or job.finished or job.batch_id is not None:
        st.rerun(scope="app")
        return
    if job.total:
        st.progress(
            min(job.done_rows / job.total, 1.0),
            text=_("{label} {done} of {total} rows").format(
                label=label, done=format_number(job.done_rows), total=format_number(job.total)
            ),
        )
    else:
        st.info(label, icon=":material/hourglass_top:")


def _mapping(plan: BulkPlan, file_id: str) -> dict[str, str | None]:
    st.markdown(_("**Columns** — checked automatically; change any that are wrong"))
    headers = plan.table.headers
    fields = wanted_fields(plan.definition)
    cells = st.columns(min(len(fields), 6) or 1)
    chosen: dict[str, str | None] = {}
    for i, field in enumerate(fields):
        guess = plan.mapping.get(field)
        options = [NOT_IN_FILE, *headers]
        picked = cells[i % len(cells)].selectbox(  # a label reads Markdown, options do not
            md_escape(_field_label(field)),
            options,
            format_func=lambda o: _("— not in the file —") if o == NOT_IN_FILE else o,
            index=options.index(guess) if guess in options else 0,
            key=f"bulk_map_{file_id}_{field}",
        )
        chosen[field] = None if picked == NOT_IN_FILE else picked
    missing = [
        md_escape(_field_label(f))  # a template's field names come from Meta
        for f, h in chosen.items()
        if h is None and f not in OPTIONAL_FIELDS
    ]
    if missing:
        st.warning(_("No column chosen for: {fields}").format(fields=", ".join(missing)),
                   icon=":material/warning:")  # fmt: skip
    return chosen


def _checks(plan: BulkPlan) -> None:
    rejected = plan.rejected
    warned = [check for check in plan.valid if check.warnings]
    cols = st.columns(4)
    cols[0].metric(_("Rows in the file"), format_number(len(plan.checks)))
    cols[1].metric(_("Ready to send"), format_number(plan.valid_count))
    cols[2].metric(_("Refused"), format_number(len(rejected)))
    # Words, not a count: as text of the body's size (a metric's large figure cut
    # "Windows (ANSI)" to "Windows (A…" in a quarter of the page).
    cols[3].caption(_("Read as"))
    cols[3].markdown(
        "**" + md_escape(ENCODINGS.get(plan.table.encoding, plan.table.encoding)) + "**  \n"
        + md_escape(_sep(plan.table.delimiter))
    )  # fmt: skip
    if rejected:
        st.error(
            ngettext(
                "**{n} row will not be sent.** Fix it in the file and upload it again, or "
                "send the others now.",
                "**{n} rows will not be sent.** Fix them in the file and upload it again, or "
                "send the others now.",
                len(rejected),
            ).format(n=format_number(len(rejected))),
            icon=":material/error:",
        )
        frame = pd.DataFrame(
            {
                _("Row"): [c.row_number for c in rejected],
                _("Supplier"): [c.values.get("supplier_name", "") for c in rejected],
                _("Phone"): [c.values.get("phone", "") for c in rejected],
                _("Reason"): ["; ".join(c.errors) for c in rejected],
            }
        )
        if len(frame) <= TABLE_ROWS:  # a plain table: readable, searchable, printable
            # st.table reads Markdown in every cell (st.dataframe does not): the file's
            # own cells are escaped.
            st.table(frame.map(lambda v: md_escape(v) if isinstance(v, str) else v),
                     hide_index=True)  # fmt: skip
        else:
            st.dataframe(frame, hide_index=True, width="stretch", key="bulk_rejected")
    if warned:
        with st.expander(ngettext("{n} row with a warning (it will be sent)",
                                  "{n} rows with a warning (they will be sent)",
                                  len(warned)).format(n=len(warned))):  # fmt: skip
            for check in warned:
                warnings = md_escape("; ".join(check.warnings))
                st.markdown("- " + _("Row {row}: {warnings}").format(
                    row=check.row_number, warnings=warnings))  # fmt: skip
    if plan.valid:
        _previews(plan)
        dry_run = ngettext("Dry run: the message that would be sent",
                           "Dry run: the {n} messages that would be sent",
                           plan.valid_count).format(n=format_number(plan.valid_count))  # fmt: skip
        with st.expander(dry_run):
            shown = paged(plan.valid, "bulk_dry_run")
            st.dataframe(
                pd.DataFrame(
                    {
                        _("Row"): [c.row_number for c in shown.rows],
                        _("Language"): [c.language or "" for c in shown.rows],
                        _("To"): [c.phone_e164 for c in shown.rows],
                        _("Message"): [(c.preview or "")[:160] for c in shown.rows],
                    }
                ),
                hide_index=True,
                width="stretch",
                height="content",
            )
            pager(shown, "bulk_dry_run")


def _previews(plan: BulkPlan) -> None:
    """The dry run's previews: one per language the rows go out in, side by side."""
    previews = plan.previews()
    st.markdown(
        _("**What the suppliers will read** — one preview per language ({n})").format(
            n=len(previews)
        )
    )
    for start in range(0, len(previews), 3):
        cells = st.columns(3)
        for cell, item in zip(cells, previews[start : start + 3], strict=False):
            with cell.container(border=True, key=f"bulk_preview_{item.language}"):
                st.caption(
                    ngettext(
                        "{language} · {n} row · row {row} as its supplier will see it",
                        "{language} · {n} rows · row {row} as its supplier will see it",
                        item.rows,
                    ).format(
                        language=md_escape(item.language),
                        n=format_number(item.rows),
                        row=item.row_number,
                    )
                )
                whatsapp_bubble(item.preview)


def _sep(delimiter: str) -> str:
    names = {",": _("commas"), ";": _("semicolons"), "\t": _("tabs")}
    return names.get(delimiter, delimiter)


def _start(db: Engine, user: UserInfo, plan: BulkPlan, file_name: str, file_id: str) -> None:
    started: dict[str, str] = st.session_state.setdefault("bulk_started", {})
    # the namesakes question comes before the (disabled until answered) send button
    namesakes_ok = file_id in started or _namesakes(plan, file_id)
    # one number for the whole batch (shown when the tenant has several)
    sender = None if file_id in started else sending_number(plan.tenant_id, "bulk_from")
    name_col, go_col = st.columns([2, 1], vertical_alignment="bottom")
    name = name_col.text_input(
        _("Batch name"), value=file_name.rsplit(".", 1)[0][:200], key=f"bulk_name_{file_id}"
    )
    if file_id in started:
        go_col.button(_("Sent ✓"), disabled=True, width="stretch", key=f"bulk_sent_{file_id}")
        _follow_import(started, file_id)
        return
    count = plan.valid_count
    clicked = go_col.button(
        ngettext("Send {n} message", "Send {n} messages", count).format(n=format_number(count)),
        type="primary",
        icon=":material/send:",
        disabled=count == 0 or not namesakes_ok,
        width="stretch",
        key=f"bulk_go_{file_id}",
    )
    if not clicked:
        return
    batch_name = name.strip() or file_name

    def queue(report: Report | None = None) -> str:
        return start_batch_for(
            user, plan, batch_name, engine=db, allow_namesakes=namesakes_ok,
            on_progress=report, phone_number_id=sender,
        ).id  # fmt: skip

    if len(plan.checks) > INLINE_ROWS:
        # Queued on the runner's thread, chunk by chunk: the page (and every other page)
        # stays free, and a second click (or rerun) follows it, never sends again.
        started[file_id] = runtime.bulk_jobs().submit(
            "import", len(plan.checks), queue, (PermissionDenied, NoticeRejected, BatchError)
        )
        st.rerun()
    try:
        with st.spinner(_("Queuing {n} messages…").format(n=format_number(count))):
            batch_id = queue()
    except (PermissionDenied, NoticeRejected, BatchError) as exc:  # e.g. template paused
        st.error(md_escape(_(str(exc))))
        return
    started[file_id] = batch_id  # a second click (or rerun) opens it, never sends again
    st.query_params["batch"] = batch_id
    st.rerun()


def _follow_import(started: dict[str, str], file_id: str) -> None:
    """The import of a file sent from this page: its progress until its batch is recorded,
    then the batch itself (opened by its id, which the URL keeps); or why it failed."""
    job = runtime.bulk_jobs().job(started[file_id])
    if job is None:
        return  # from before a restart: its batch is in Recent batches
    if job.batch_id is not None:
        if st.query_params.get("batch") != job.batch_id:
            st.query_params["batch"] = job.batch_id
            st.rerun()
        return
    if job.error is not None:  # e.g. the template was paused since the file was checked
        st.error(md_escape(_(job.error)))
        del started[file_id]  # the buyer may try again
        return
    if not job.finished:
        _wait_for_job(job.id, _("Queuing…"))


def _namesakes(plan: BulkPlan, file_id: str) -> bool:
    """Ask before adding suppliers named like existing ones: list those rows (as text)
    and return whether the buyer confirmed (True when there are none)."""
    namesakes = plan.namesakes_to_confirm
    if not namesakes:
        return True
    st.warning(
        ngettext(
            "**{n} row would add a new supplier with the name of another one** (a "
            "different number). Check it is not the same supplier at a new number.",
            "**{n} rows would add a new supplier with the name of another one** (a "
            "different number). Check they are not the same supplier at a new number.",
            len(namesakes),
        ).format(n=len(namesakes)),
        icon=":material/group:",
    )
    st.dataframe(
        pd.DataFrame(
            {
                _("Row"): [n.row_number for n in namesakes],
                _("New supplier"): [n.name for n in namesakes],
                _("Phone"): [n.phone_e164 for n in namesakes],
                _("Already named so"): ["; ".join(n.others) for n in namesakes],
            }
        ),
        hide_index=True,
        width="stretch",
        key=f"bulk_namesakes_{file_id}",
    )
    return st.checkbox(
        _("Add them as new suppliers: they are different suppliers"),
        key=f"bulk_namesakes_ok_{file_id}",
    )


def _recent(db: Engine, user: UserInfo) -> None:
    batches = recent_batches(db, write_tenant(user), limit=200)  # paged below
    if not batches:
        st.info(_("No batches yet: your uploads will be listed here."), icon=":material/inbox:")
        return
    shown = paged(batches, "bulk_batches")
    st.dataframe(
        pd.DataFrame(
            {
                _("Started"): [local_time(b.created_at, labelled=False) for b in shown.rows],
                _("Name"): [b.name for b in shown.rows],
                _("Template"): [b.template for b in shown.rows],
                _("Rows"): [b.total_rows for b in shown.rows],
                _("Status"): [_batch_status(b.status) for b in shown.rows],
                _("By"): [b.created_by or "" for b in shown.rows],
            }
        ),
        hide_index=True,
        width="stretch",
        height="content",
        key="bulk_batches_table",
    )
    pager(shown, "bulk_batches")
    labels = {
        b.id: f"{b.name} · {local_time(b.created_at, labelled=False)} · {_batch_status(b.status)}"
        for b in batches
    }
    pick_col, open_col = st.columns([3, 1], vertical_alignment="bottom")
    # Keyed by the newest batch: a batch just started is what the picker offers first,
    # not whichever one it showed before (a widget keeps its choice while its key lives).
    picked = pick_col.selectbox(
        _("Open a batch"),
        list(labels),
        format_func=labels.__getitem__,
        key=f"bulk_pick_{batches[0].id}",
    )
    if open_col.button(_("Open"), key="bulk_open", width="stretch") and picked:
        st.query_params["batch"] = picked
        st.rerun()


def _batch_panel(db: Engine, user: UserInfo, batch_id: str, every_second: bool = False) -> None:
    """The batch's progress and its actions, counted from its messages in the database.

    Redrawn `every_second`, a batch that has become big (its import just finished) has
    the whole page drawn again, which redraws it every 5 s instead (`_open_batch`)."""
    try:
        progress = progress_for(user, batch_id, engine=db)
    except BatchError:
        st.warning(_("That batch does not exist or belongs to another tenant."))
        return
    if every_second and progress.counted and progress.enqueued > EVERY_SECOND_UP_TO:
        st.rerun(scope="app")
    title, close = st.columns([5, 1])
    title.subheader(_("Batch: {name}").format(name=md_escape(progress.name)), anchor=False)
    if close.button(_("Close"), key="bulk_close", width="stretch"):
        st.query_params.pop("batch", None)
        st.rerun(scope="app")
    settled = progress.enqueued - progress.queued
    label = _state_label(progress)
    if progress.importing or progress.interrupted:
        recorded, total = progress.recorded_rows, progress.total_rows
        st.progress(
            recorded / total if total else 1.0,
            text=_("{state} — {recorded} of {total} rows recorded").format(
                state=label, recorded=format_number(recorded), total=format_number(total)
            ),
        )
        if progress.interrupted:
            st.warning(
                _("The import stopped before every row was recorded: the rows listed in the "
                  "results file were recorded and their messages are sent. Upload the file "
                  "again to send the rest; rows already sent are recognised and not sent "
                  "twice."),
                icon=":material/warning:",
            )  # fmt: skip
    else:
        st.progress(
            progress.percent / 100,
            text=_("{state} — {settled} of {total} messages settled").format(
                state=label, settled=format_number(settled), total=format_number(progress.enqueued)
            ),
        )
    if not progress.counted:  # rows still being recorded: their messages are not counted yet
        _actions(db, user, progress)
        return
    counts = progress.counts
    cols = st.columns(7)
    for cell, (name, value) in zip(
        cols,
        (
            (_("Queued"), progress.queued),
            (_("Accepted"), counts.get("accepted", 0) + counts.get("sent", 0)),
            (_("Delivered"), counts.get("delivered", 0)),
            (_("Read"), counts.get("read", 0)),
            (_("Failed"), progress.failed),
            (_("Need attention"), progress.needs_attention),
            (_("Refused at upload"), progress.invalid_rows),
        ),
        strict=True,
    ):
        cell.metric(name, format_number(value))
    _actions(db, user, progress)


def _open_batch(db: Engine, user: UserInfo, batch_id: str) -> None:
    """The batch panel: live (every second) while it sends, drawn once when it is done;
    its downloads below it, outside the part that refreshes itself (see `_downloads`)."""
    try:
        progress = progress_for(user, batch_id, engine=db)
    except BatchError:
        _batch_panel(db, user, batch_id)  # says the batch cannot be shown
        return
    if progress.done:
        _batch_panel(db, user, batch_id)
    elif progress.enqueued > EVERY_SECOND_UP_TO:
        _live_big_batch_panel(db, user, batch_id)
    else:
        _live_batch_panel(db, user, batch_id, every_second=True)
    _downloads(db, user, progress)


def _downloads(db: Engine, user: UserInfo, progress: BatchProgress) -> None:
    """The results and errors files, built when clicked (so they are current then).

    Drawn by full reruns only, never inside the fragment that refreshes every second: a
    download button with a callable registers a new placeholder id each time it is drawn
    and Streamlit forgets the previous one when that run ends (MediaFileManager
    `add_deferred` / `remove_orphaned_files`), so a button redrawn every second held an
    id that was often gone by the time a click reached the server ("Deferred file ...
    not found", nothing downloaded). Drawn here, an id lives until the next full rerun,
    and a click on it causes none (`on_click="ignore"`).
    """
    batch_id, name = progress.batch_id, _safe_name(progress.name)

    def results() -> bytes:
        return results_csv_for_user(user, batch_id, engine=db)

    def problems() -> bytes:
        return results_csv_for_user(user, batch_id, engine=db, problems_only=True)

    buttons = st.container(horizontal=True)
    buttons.download_button(
        _("Download results (CSV)"),
        data=results,
        file_name=f"{name}-results.csv",
        mime="text/csv",
        icon=":material/download:",
        on_click="ignore",
        key="bulk_download",
        help=_("One row per row of the upload, with what happened to it."),
    )
    buttons.download_button(
        _("Download errors (CSV)"),
        data=problems,
        file_name=f"{name}-errors.csv",
        mime="text/csv",
        icon=":material/error:",
        on_click="ignore",
        key="bulk_download_errors",
        help=_("Only the rows refused, failed or needing attention: fix them, upload again."),
    )


#: The batch panel, redrawn every second while messages are still queued.
_live_batch_panel = st.fragment(run_every="1s")(_batch_panel)
_live_big_batch_panel = st.fragment(run_every="5s")(_batch_panel)


def _state_label(progress: BatchProgress) -> str:
    if progress.interrupted:
        return _("Import interrupted")
    if progress.importing:
        return _("Queuing")
    if progress.status == "paused":
        return _("Paused")
    if progress.status == "cancelled":
        return _("Cancelled")
    return _("Done") if progress.done else _("Sending")


def _act(action: Callable[..., object], user: UserInfo, batch_id: str, db: Engine) -> None:
    """Run a batch action from a button's callback, before the panel redraws."""
    try:
        action(user, batch_id, engine=db)
    except (PermissionDenied, BatchError) as exc:
        st.session_state["bulk_action_error"] = _(str(exc))


def _actions(db: Engine, user: UserInfo, progress: BatchProgress) -> None:
    buttons = st.container(horizontal=True)
    retryable = progress.failed + progress.needs_attention
    args = (user, progress.batch_id, db)
    if progress.status == "running" and not progress.done:
        buttons.button(
            _("Pause"),
            icon=":material/pause:",
            key="bulk_pause",
            on_click=_act,
            args=(pause_batch_for, *args),
        )
    elif progress.status == "paused":
        buttons.button(
            _("Resume"),
            icon=":material/play_arrow:",
            type="primary",
            key="bulk_resume",
            on_click=_act,
            args=(resume_batch_for, *args),
        )
    buttons.button(
        _("Retry failed ({n})").format(n=format_number(retryable)),
        icon=":material/replay:",
        disabled=retryable == 0,
        key="bulk_retry",
        on_click=_act,
        args=(retry_failed_for, *args),
    )
    error = st.session_state.pop("bulk_action_error", None)
    if error:
        st.error(md_escape(error))


def _safe_name(name: str) -> str:
    kept = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in name).strip("-")
    return kept[:60] or "batch"
