"""`wanotify`: the command line over `core`. Each command translates argv into one core call.

Errors a user can fix are printed as one clear line and exit with a non-zero status.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from core.alerts.cli import alerts_app
from core.i18n import _, ngettext
from core.numbers.cli import numbers_app
from core.settings import Settings, SettingsError, get_settings

app = typer.Typer(
    help="Send purchase-order notices to suppliers over WhatsApp and track them.",
    epilog="Exit codes: 0 done; 1 an error you can fix (the reason is printed); 2 wrong "
    "usage; 3 (send, resend) the message failed, was cancelled or needs attention.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
templates_app = typer.Typer(help="Message templates.", no_args_is_help=True)
users_app = typer.Typer(help="Dashboard users and roles.", no_args_is_help=True)
api_keys_app = typer.Typer(help="ERP API keys, one tenant each.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(templates_app, name="templates")
app.add_typer(users_app, name="users")
app.add_typer(api_keys_app, name="api-keys")
app.add_typer(numbers_app, name="numbers")
app.add_typer(alerts_app, name="alerts")

console = Console(stderr=True, soft_wrap=True)  # an error stays one line, however long
out = Console()


class UserError(Exception):
    """A problem the user can fix; shown as one line, exit status 1."""


def _settings() -> Settings:
    """The settings (get_settings warns loudly, once, when running in sandbox mode)."""
    return get_settings()


def _service_logging() -> None:
    """Long-running commands say what they do (INFO) unless WANOTIFY_LOG_LEVEL says otherwise."""
    if "WANOTIFY_LOG_LEVEL" not in os.environ:
        logging.getLogger().setLevel(logging.INFO)
        logging.getLogger("httpx").setLevel(logging.WARNING)


def _tenant(tenant: str | None) -> str:
    return tenant or get_settings().default_tenant


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or update the database schema to the newest version."""
    from core.migrate import upgrade

    upgrade()
    out.print(f"Database is up to date ({_safe_url(get_settings().database_url)}).")


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@app.command()
def sandbox() -> None:
    """Serve the local Cloud API sandbox (what `run` starts when no credentials are set)."""
    _service_logging()
    from core.sandbox.server import run_sandbox

    run_sandbox(_settings())


@app.command()
def webhook(
    workers: Annotated[int, typer.Option(min=1, max=64, help="uvicorn worker processes")] = 1,
) -> None:
    """Serve the webhook app that receives Meta's status events and supplier replies."""
    _service_logging()
    from core.webhooks.server import run_webhook_app

    run_webhook_app(_settings(), workers=workers)


#: `--metrics-port` / `--metrics-host` of every long-running command.
MetricsPort = Annotated[
    int | None,
    typer.Option(
        min=1,
        max=65535,
        envvar="WANOTIFY_METRICS_PORT",
        help="Serve Prometheus metrics on this port at /metrics (off by default)",
    ),
]
MetricsHost = Annotated[
    str, typer.Option(envvar="WANOTIFY_METRICS_HOST", help="Address for --metrics-port")
]


@app.command()
def worker(
    worker_id: Annotated[str | None, typer.Option("--id", help="Name of this worker")] = None,
    metrics_port: MetricsPort = None,
    metrics_host: MetricsHost = "127.0.0.1",
) -> None:
    """Run a sender worker: claims pending messages and sends them under Meta's limits."""
    _service_logging()
    from core.db import get_engine
    from core.metrics_server import serve_metrics
    from core.sender import run_loop, run_worker
    from core.sender.metrics import QualityProbe, SenderMetrics

    settings = _settings()
    engine = get_engine()
    metrics = SenderMetrics(engine, settings)
    if metrics_port is not None:
        try:
            server, _thread = serve_metrics(metrics.registry(), metrics_port, metrics_host)
        except OSError as exc:  # fail closed: an asked-for endpoint must exist
            raise UserError(
                f"cannot serve metrics on {metrics_host}:{metrics_port}: {exc}"
            ) from None

    async def _serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)  # finish in-flight sends, then exit
        probe = None
        if metrics_port is not None:
            probe = asyncio.create_task(QualityProbe(metrics).run(stop))
        await run_worker(
            settings, engine, worker_id=worker_id, stop=stop, on_dispatcher=metrics.watch
        )
        if probe is not None:  # a read in flight is not worth waiting for
            probe.cancel()
            await asyncio.gather(probe, return_exceptions=True)

    try:
        run_loop(_serve())
    finally:
        if metrics_port is not None:
            server.shutdown()


EXIT_CODES_HELP = (
    "Exit codes: 0 the message is queued, being sent, sent, delivered or read; "
    "1 an error you can fix (input, setting, refusal: nothing was queued); "
    "2 wrong usage (unknown option, missing argument); "
    "3 the message failed, was cancelled or needs attention (the reason and the "
    "`wanotify resend` command are printed)."
)
#: Exit status when a message exists but is not on its way (failed, cancelled, unknown).
EXIT_NOT_SENT = 3
#: `--number` of the send commands.
NUMBER_HELP = (
    "Send from this one of the tenant's WhatsApp numbers (its phone number ID, "
    "`wanotify numbers list`); default: the tenant's default number"
)


@app.command(epilog=EXIT_CODES_HELP)
def send(
    to: Annotated[str, typer.Option(help="Supplier phone, any format (default region applies)")],
    template: Annotated[str, typer.Option(help="Approved template name")] = "po_notification",
    lang: Annotated[str, typer.Option(help="Template language code")] = "es",
    supplier_name: Annotated[str | None, typer.Option(help="For po_notification")] = None,
    po_number: Annotated[str | None, typer.Option(help="For po_notification")] = None,
    amount: Annotated[str | None, typer.Option(help="Total, e.g. 1234.50")] = None,
    currency: Annotated[str, typer.Option(help="ISO 4217 code")] = "EUR",
    param: Annotated[
        list[str] | None, typer.Option(help="Template parameter NAME=VALUE (repeatable)")
    ] = None,
    text: Annotated[
        str | None,
        typer.Option(
            help="Send this free-form text instead of a template (only within 24 hours "
            "of the supplier's last message)"
        ),
    ] = None,
    tenant: Annotated[str | None, typer.Option(help="Tenant id")] = None,
    number: Annotated[str | None, typer.Option(help=NUMBER_HELP)] = None,
    wait: Annotated[bool, typer.Option(help="Send now and wait for Meta's answer")] = True,
    consent: Annotated[
        bool,
        typer.Option(
            "--consent",
            help="The supplier agreed to receive WhatsApp messages: recorded as consent "
            "(source cli). Without it, a supplier with no recorded consent is refused "
            "unless the tenant allows it; an opted-out supplier is always refused",
        ),
    ] = False,
) -> None:
    """Send one template message (a PO notice by default), or a free-form --text, through
    the outbox. A supplier who opted out, or has no recorded consent (see --consent), is
    refused with the reason: nothing is queued, exit 1. Sending the same again does not
    send twice: it reports the first message, and exits 3 if that one failed or was
    cancelled."""
    from core import notify

    _settings()
    if text is not None:
        if supplier_name or po_number or amount or param:
            raise UserError(
                "--text sends a free-form text: leave out --supplier-name, --po-number, "
                "--amount and --param"
            )
        result = notify.send_text_message(
            tenant_id=_tenant(tenant), phone=to, body=text, source="cli", created_by="cli",
            phone_number_id=number,
        )  # fmt: skip
    elif supplier_name and po_number and amount:
        from core.csv_import import parse_amount

        result = notify.send_po_notice(
            notify.PoNotice(
                tenant_id=_tenant(tenant),
                supplier_name=supplier_name,
                phone=to,
                po_number=po_number,
                amount=parse_amount(amount, decimal="."),
                currency=currency,
                language=lang,
                template_name=template,
                source="cli",
                created_by="cli",
                consent_confirmed=consent,
                phone_number_id=number,
            )
        )
    else:
        result = notify.send_template_message(
            tenant_id=_tenant(tenant),
            phone=to,
            template_name=template,
            language=lang,
            params=_parse_params(param or []),
            source="cli",
            created_by="cli",
            consent=notify.ConsentGrant("cli", "cli") if consent else None,
            phone_number_id=number,
        )
    message = result.message
    if not result.created:
        _report_existing(message)
        return
    out.print(f"Queued message {message.id} to {message.recipient_phone}.")
    if wait:
        _wait_and_report(message.id)


def _report_existing(message: Any) -> None:
    """An earlier message (or its latest resend) for the same content: exit 0 only if it
    is on its way; else the reason and the resend command, exit EXIT_NOT_SENT."""
    from core.attempts import latest_attempt, verdict

    latest = latest_attempt(message)
    judged = verdict(latest)
    resent = f" (resent as {latest.id})" if latest.id != message.id else ""
    if judged.ok:
        out.print(
            f"Already queued before as message {message.id}{resent} (status {judged.status}).",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        return
    _not_sent(latest.id, judged.status, judged.reason, before=f"{message.id}{resent}")


def _not_sent(message_id: str, status: str, reason: str | None, *, before: str = "") -> None:
    what = f"Already sent before as message {before}: not sent now. " if before else ""
    console.print(
        f"{what}Message {message_id} is {status}: {reason}. "
        f"To try again once the cause is fixed: wanotify resend {message_id}",
        markup=False,
        highlight=False,
    )
    raise typer.Exit(EXIT_NOT_SENT)


def _wait_and_report(message_id: str) -> None:
    """Send now (a dispatcher in this process) and print the outcome; exit 3 if not sent."""
    from core import notify
    from core.attempts import verdict

    final = notify.dispatch_until_settled([message_id])[message_id]
    judged = verdict(final)
    if judged.ok:
        out.print(f"Status: {final.status}", markup=False, highlight=False)
        return
    out.print(
        f"Status: {final.status} ({judged.reason})", markup=False, highlight=False, soft_wrap=True
    )
    _not_sent(final.id, judged.status, judged.reason)


@app.command(epilog=EXIT_CODES_HELP)
def resend(
    message_id: Annotated[str, typer.Argument(help="The failed, cancelled or unknown message")],
    by: Annotated[str, typer.Option(help="Who resends (recorded with the new message)")] = "cli",
    tenant: Annotated[str | None, typer.Option(help="Only a message of this tenant")] = None,
    wait: Annotated[bool, typer.Option(help="Send now and wait for Meta's answer")] = True,
) -> None:
    """Send a failed, cancelled or needs-attention message again: a deliberate new
    attempt (a new message linked to the original, as the dashboard's Resend does)."""
    from core.outbox import resend as resend_message

    _settings()
    copy = resend_message(message_id.strip(), by, tenant_id=tenant)
    out.print(
        f"Resent message {message_id} as message {copy.id} to {copy.recipient_phone} "
        f"(attempt {(copy.meta or {}).get('resend_attempt', 1)}, by {by}).",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    if wait:
        _wait_and_report(copy.id)


@app.command("resend-attention")
def resend_attention(
    by: Annotated[str, typer.Option(help="Who resends (recorded with each new message)")] = "cli",
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's messages")] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation")] = False,
) -> None:
    """Resend every message that needs attention (its send may or may not have reached
    WhatsApp): a deliberate new attempt for each, as `wanotify resend` does for one."""
    from core import attention
    from core.db import get_engine

    _settings()
    engine = get_engine()
    items = attention.open_items(engine, None if tenant is None else [tenant])
    if not items:
        out.print("No message needs attention.")
        return
    for item in items:
        out.print(
            f"{item.id} to {item.recipient_phone} {item.po_number or ''}: {item.reason}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    if not yes and not typer.confirm(
        f"Resend these {len(items)} message(s)? Suppliers who already got one get it twice."
    ):
        raise typer.Exit(1)
    report = attention.resend_all(engine, by, tenant)
    for original, copy in report.resent:
        out.print(f"Resent {original} as {copy}.", markup=False, highlight=False)
    for original, reason in report.refused:
        out.print(f"Not resent {original}: {reason}", markup=False, highlight=False)
    out.print(f"{len(report.resent)} resent, {len(report.refused)} refused.")


def _parse_params(items: list[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise UserError(f"--param {item!r}: write it as NAME=VALUE")
        params[name.strip()] = value
    return params


@app.command("send-csv")
def send_csv(
    file: Annotated[Path, typer.Argument(help="CSV with supplier_name, phone, po_number, ...")],
    template: Annotated[str, typer.Option(help="Approved template name")] = "po_notification",
    lang: Annotated[
        str, typer.Option(help="Default template language (rows without their own)")
    ] = "es",
    decimal: Annotated[str, typer.Option(help="Decimal separator: auto, '.' or ','")] = "auto",
    results: Annotated[
        Path | None, typer.Option(help="Where to write one result row per input row")
    ] = None,
    results_separator: Annotated[
        str,
        typer.Option(help="Results file separator: upload (the file's own), ',', ';' or tab"),
    ] = "upload",
    dry_run: Annotated[
        bool, typer.Option(help="Validate only; send nothing (--results still written)")
    ] = False,
    fallback_to_default: Annotated[
        bool,
        typer.Option(
            help="Send rows whose language has no approved template in --lang "
            "(they are refused otherwise)"
        ),
    ] = False,
    allow_namesakes: Annotated[
        bool,
        typer.Option(
            help="Add suppliers named like existing ones with other numbers "
            "(the send is refused otherwise)"
        ),
    ] = False,
    consent_confirmed: Annotated[
        bool,
        typer.Option(
            help="Every supplier in the file agreed to receive WhatsApp messages (rows "
            "whose consent column says no are still refused); recorded as consent"
        ),
    ] = False,
    tenant: Annotated[str | None, typer.Option(help="Tenant id")] = None,
    number: Annotated[str | None, typer.Option(help=NUMBER_HELP)] = None,
) -> None:
    """Send a PO notice per CSV row with a progress bar, and write a results CSV.

    Each row goes out in its own language (its language column, else its supplier's,
    else --lang) when the template has an approved version in it. Rows are numbered as
    the spreadsheet shows them: the header is row 1.
    """
    from core import bulk
    from core.csv_export import ExportDialect

    _settings()
    if decimal not in ("auto", ".", ","):
        raise UserError("--decimal must be auto, '.' or ','")
    separators = {"upload": None, ",": ",", ";": ";", "tab": "\t", "\t": "\t"}
    if results_separator not in separators:
        raise UserError("--results-separator must be upload, ',', ';' or tab")
    if not file.is_file():
        raise UserError(f"{file}: no such file")
    if number is not None:  # refused before the file is read, dry run or not
        from core.db import get_engine
        from core.routing import route

        route(get_engine(), get_settings(), _tenant(tenant), number)
    plan = bulk.plan_csv(
        file.read_bytes(),
        tenant_id=_tenant(tenant),
        template_name=template,
        language=lang,
        decimal=decimal,  # type: ignore[arg-type]
        fallback_to_default=fallback_to_default,
        consent_confirmed=consent_confirmed,
    )
    for row in plan.rejected:
        console.print(f"row {row.row_number}: [red]{escape('; '.join(row.errors))}[/]")
    for row in plan.valid:
        for warning in row.warnings:
            console.print(f"row {row.row_number}: [yellow]{escape(warning)}[/]")
    out.print(f"{plan.valid_count} rows valid, {len(plan.rejected)} refused.")
    _print_namesakes(plan.namesakes_to_confirm, allowed=allow_namesakes)
    if dry_run:
        _print_previews(plan.previews())
    separator = separators[results_separator]
    dialect = None if separator is None else ExportDialect(separator, bom=True)
    if dry_run:  # nothing queued; the results file (if asked for) says what would be
        if results is not None:
            results.write_bytes(bulk.plan_results_csv(plan, dialect=dialect))
            out.print(f"Dry run: nothing sent. Results written to {results}")
        return
    if plan.namesakes_to_confirm and not allow_namesakes:
        raise UserError(
            "Nothing sent: check the rows above, then run again with --allow-namesakes "
            "to add those suppliers, or fix their names"
        )
    results_path = results or file.with_name(f"{file.stem}.results.csv")
    batch = bulk.start_batch(
        plan, name=file.name, created_by="cli", source="cli", allow_namesakes=allow_namesakes,
        phone_number_id=number,
    )  # fmt: skip
    _follow_batch(batch.id)
    results_path.write_bytes(bulk.results_csv_for(batch.id, dialect=dialect))
    out.print(f"Results written to {results_path}")


def _print_namesakes(namesakes: list[Any], *, allowed: bool) -> None:
    """List rows that would add a supplier named like another one (text, not markup)."""
    if not namesakes:
        return
    colour = "yellow" if allowed else "red"
    for item in namesakes:
        console.print(
            f"row {item.row_number}: [{colour}]would add {escape(item.name)} at "
            f"{escape(item.phone_e164)}; already named so: {escape('; '.join(item.others))}[/]"
        )


def _print_previews(previews: list[Any]) -> None:
    """One preview per language of a dry run: the first row's message in that language."""
    for item in previews:
        rows = ngettext("{n} row", "{n} rows", item.rows).format(n=item.rows)
        out.print(
            f"\n--- {escape(item.language)}: {rows}; row {item.row_number} "
            "as the supplier will read it ---"
        )
        out.print(escape(item.preview.body), highlight=False)


def _follow_batch(batch_id: str) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from core import bulk

    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=console
    ) as progress:
        task = progress.add_task("Sending", total=None)

        def on_progress(done: int, total: int, summary: str) -> None:
            progress.update(task, completed=done, total=total, description=f"Sending {summary}")

        bulk.dispatch_batch(batch_id, on_progress=on_progress)


@templates_app.command("sync")
def templates_sync(tenant: Annotated[str | None, typer.Option(help="Tenant id")] = None) -> None:
    """Copy the templates of the WhatsApp Business Account into the local registry."""
    from core import notify

    _settings()
    report = notify.sync_templates_now(_tenant(tenant))
    out.print(
        f"Templates synced: {report.added} added, {report.updated} updated, "
        f"{report.unchanged} unchanged, {report.deactivated} no longer on the account."
    )


#: A template file larger than this is refused unread (Meta's own limits are far lower).
MAX_TEMPLATE_FILE = 1024 * 1024


@templates_app.command("create")
def templates_create(
    file: Annotated[Path, typer.Argument(help="Meta's template JSON (name, language, ...)")],
    tenant: Annotated[str | None, typer.Option(help="Tenant id")] = None,
) -> None:
    """Check a template (Meta's create JSON) against Meta's rules and submit it for review.

    Its status then follows Meta: the webhook updates it, `wanotify templates sync` too.
    """
    from core.errors import GraphError
    from core.numbers.errors import NumberError
    from core.templates.submit import TemplateInvalid, refusal_text, submit_template_now

    template = _read_template_file(file)
    _settings()
    try:
        result = submit_template_now(_tenant(tenant), template)
    except TemplateInvalid as exc:
        for problem in exc.problems:
            console.print(f"  {problem}", markup=False, highlight=False)
        raise UserError(
            ngettext(
                "{n} problem to fix before submitting; nothing was sent",
                "{n} problems to fix before submitting; nothing was sent",
                len(exc.problems),
            ).format(n=len(exc.problems))
        ) from None
    except GraphError as exc:  # Meta's words, printed as text
        raise UserError(_("Meta refused the template: {reason}").format(
            reason=refusal_text(exc))) from None  # fmt: skip
    except NumberError as exc:  # the tenant has no number, hence no WABA to submit to
        raise UserError(str(exc)) from None
    for warning in result.warnings:
        console.print(_("warning: {problem}").format(problem=warning), markup=False)
    out.print(
        _("Submitted {name} ({language}) for review: {status}, Meta id {id}.").format(
            name=result.name, language=result.language, status=result.status, id=result.meta_id
        ),
        markup=False,
        highlight=False,
    )


def _read_template_file(file: Path) -> dict[str, Any]:
    """The JSON object in `file`; UserError saying what is wrong with it otherwise."""
    import json

    try:
        if file.stat().st_size > MAX_TEMPLATE_FILE:
            raise UserError(_("{file}: larger than 1 MB, not a template").format(file=file))
        raw = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(_("{file}: no such file").format(file=file)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(
            _("{file}: cannot be read: {reason}").format(file=file, reason=exc)
        ) from None
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise UserError(
            _("{file} is not valid JSON: {reason} (line {line}, column {column})").format(
                file=file, reason=exc.msg, line=exc.lineno, column=exc.colno
            )
        ) from None
    if not isinstance(data, dict):
        raise UserError(_("{file}: a template is a JSON object {{...}}").format(file=file))
    return data


@app.command()
def resume(
    by: Annotated[str, typer.Option(help="Who resumes sending")] = "cli",
    number: Annotated[
        str | None,
        typer.Option("--number", help="The paused number's id (default: the environment's)"),
    ] = None,
) -> None:
    """Resume sending after Meta paused it (token, account or quality problem fixed).
    Each number pauses on its own: `wanotify status` lists the paused ones."""
    from core.control import resume_sending
    from core.db import get_engine

    settings = _settings()
    if number is not None and not (number.isascii() and number.isdigit()):
        out.print("--number is a phone number id: digits only", markup=False)
        raise typer.Exit(2)
    resume_sending(get_engine(), number or settings.phone_number_id, by)
    out.print("Sending resumed.")


@app.command()
def status() -> None:
    """Show the mode, queue depth, whether sending is paused (and why), and the webhooks."""
    from core import attention
    from core.alerts.outbox import status_line as alerts_line
    from core.db import get_engine
    from core.system_health import status_lines

    engine = get_engine()
    lines = [*status_lines(engine, _settings()), *attention.status_lines(engine)]
    for line in [*lines, alerts_line(engine)]:
        out.print(line, markup=False, highlight=False, soft_wrap=True)


@users_app.command("add")
def users_add(
    username: str,
    role: Annotated[str, typer.Option(help="buyer, manager or admin")],
    tenant: Annotated[str | None, typer.Option(help="Tenant id")] = None,
    password: Annotated[
        str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)
    ] = "",
) -> None:
    """Add a dashboard user (the password is stored hashed)."""
    from core.db import get_engine
    from core.users import add_user

    add_user(get_engine(), username, password, role, _tenant(tenant))
    out.print(f"User {username} added as {role}.")


@users_app.command("remove")
def users_remove(username: str) -> None:
    """Remove a dashboard user."""
    from core.db import get_engine
    from core.users import remove_user

    if not remove_user(get_engine(), username):
        raise UserError(f"No user named {username!r}")
    out.print(f"User {username} removed.")


@users_app.command("disable")
def users_disable(username: str) -> None:
    """Disable a user: no login, and open sessions end at their next click."""
    from core.db import get_engine
    from core.users import set_active

    set_active(get_engine(), username, False)
    out.print(f"User {username} disabled.")


@users_app.command("enable")
def users_enable(username: str) -> None:
    """Enable a disabled user again."""
    from core.db import get_engine
    from core.users import set_active

    set_active(get_engine(), username, True)
    out.print(f"User {username} enabled.")


@users_app.command("role")
def users_role(
    username: str, role: Annotated[str, typer.Argument(help="buyer, manager or admin")]
) -> None:
    """Give a user another role (open sessions use it from their next click)."""
    from core.db import get_engine
    from core.users import set_role

    user = set_role(get_engine(), username, role)
    out.print(f"User {user.username} is now {user.role.value}.")


@users_app.command("email")
def users_email(
    username: str,
    email: Annotated[
        str, typer.Argument(help="The email the identity provider sends for this person")
    ] = "",
    remove: Annotated[bool, typer.Option("--remove", help="Unlink the email")] = False,
) -> None:
    """Link the email a user signs in with through single sign-on (or unlink it)."""
    from core.db import get_engine
    from core.sso import set_email

    if remove == bool(email):
        raise UserError("Give an email to link, or --remove to unlink (not both)")
    user = set_email(get_engine(), username, None if remove else email)
    if user.email is None:
        out.print(f"User {user.username} has no single sign-on email now.", markup=False)
    else:
        out.print(f"User {user.username} signs in as {user.email}.", markup=False)


@users_app.command("unlock")
def users_unlock(
    username: Annotated[str, typer.Argument(help="The user whose login delay to lift")] = "",
    client: Annotated[
        str | None, typer.Option(help="Lift the delay on this client address instead")
    ] = None,
) -> None:
    """Lift the login delay after failed attempts on a user (or on one client address)."""
    from core.db import get_engine
    from core.users import unlock, unlock_client

    if client is not None:
        cleared = unlock_client(get_engine(), client)
        what = f"client {client}"
    elif username:
        cleared = unlock(get_engine(), username)
        what = f"user {username}"
    else:
        raise UserError("Name a user, or a client address with --client")
    out.print(f"Login delay on {what} lifted." if cleared else f"No login delay on {what}.")


@users_app.command("list")
def users_list() -> None:
    """List dashboard users with their role and tenant."""
    from core.db import get_engine
    from core.users import list_users

    for user in list_users(get_engine()):
        email = f"\t{user.email}" if user.email else ""
        out.print(f"{user.username}\t{user.role}\t{user.tenant_id}{email}", markup=False)


@api_keys_app.command("add")
def api_keys_add(
    tenant: Annotated[str, typer.Option(help="The one tenant this key may send events for")],
    name: Annotated[str, typer.Option(help="What the key is for, e.g. the ERP's name")] = "ERP",
) -> None:
    """Make a key for `POST /api/v1/po-events`; it is printed once, only its hash is kept."""
    from core.api_keys import add_key
    from core.db import get_engine

    issued = add_key(get_engine(), tenant, name)
    info = issued.info
    typer.echo(issued.key)  # alone on standard output: `KEY=$(wanotify api-keys add ...)`
    console.print(
        f"API key {info.id} ({info.prefix}...) for tenant {info.tenant_id}, named"
        f" {info.name!r}. Store it now: it is not shown again.",
        markup=False,
        highlight=False,
    )


@api_keys_app.command("list")
def api_keys_list(
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's keys")] = None,
) -> None:
    """List ERP keys: id, prefix, name, tenant, created, last used, revoked (never the key)."""
    from core.api_keys import list_keys
    from core.db import get_engine

    def when(moment: datetime | None, otherwise: str) -> str:
        return moment.isoformat(timespec="seconds") if moment else otherwise

    typer.echo("id\tprefix\tname\ttenant\tcreated\tlast_used\trevoked")  # tabs kept as tabs
    for key in list_keys(get_engine(), tenant):
        fields = (str(key.id), key.prefix, key.name, key.tenant_id, when(key.created_at, "-"),
                  when(key.last_used_at, "never"), when(key.revoked_at, "active"))  # fmt: skip
        typer.echo("\t".join(fields))
    if _settings().po_events_api_key is not None:
        console.print(
            f"PO_EVENTS_API_KEY is also set: it is the key of tenant {_tenant(None)}.",
            markup=False,
            highlight=False,
        )


@api_keys_app.command("revoke")
def api_keys_revoke(
    key_id_or_prefix: Annotated[str, typer.Argument(help="The key's id or prefix (see list)")],
) -> None:
    """Revoke an ERP key: from now on it is refused (401). The row stays, for the record."""
    from core.api_keys import revoke_key
    from core.db import get_engine

    info, revoked_now = revoke_key(get_engine(), key_id_or_prefix)
    assert info.revoked_at is not None
    done = "revoked" if revoked_now else "was already revoked"
    out.print(
        f"API key {info.id} ({info.prefix}...) of tenant {info.tenant_id} {done}"
        f" at {info.revoked_at.isoformat(timespec='seconds')}.",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


@app.command("follow-up")
def follow_up(
    tenant: Annotated[str | None, typer.Option(help="Tenant id")] = None,
    supplier: Annotated[str, typer.Option(help="Part of the supplier's name or number")] = "",
    template: Annotated[str, typer.Option(help="Only notices sent with this template")] = "",
    state: Annotated[
        list[str] | None,
        typer.Option(help="rejected, replied or unanswered (repeat for several)"),
    ] = None,
    min_age: Annotated[
        int | None,
        typer.Option(
            help="At least this many hours since delivery (default: the tenant's "
            "waiting time; rejections of any age)"
        ),
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many notices")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines, one per notice")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="CSV with a header row")] = False,
) -> None:
    """List delivered PO notices the supplier has not confirmed: rejected first, then the
    longest waiting (issue 15)."""
    import csv
    import json

    from rich.table import Table
    from rich.text import Text

    from core.csv_export import safe_cell
    from core.db import get_engine
    from core.followup.query import (
        RECORD_FIELDS,
        AwaitingFilter,
        FollowUpQueryError,
        age_words,
        awaiting,
        notice_record,
        reminders_words,
        state_words,
    )

    if as_json and as_csv:
        raise UserError("Choose one of --json and --csv")
    try:
        search = AwaitingFilter(
            (_tenant(tenant),), supplier=supplier, template=template, states=tuple(state or ()),
            min_age_hours=min_age, page_size=max(1, min(limit, 500)),
        )  # fmt: skip
    except FollowUpQueryError as exc:
        raise UserError(str(exc)) from None
    listed = awaiting(get_engine(), search)
    if as_json:
        for notice in listed.rows:
            typer.echo(json.dumps(notice_record(notice), ensure_ascii=False))
        return
    if as_csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(RECORD_FIELDS)
        for notice in listed.rows:
            writer.writerow([safe_cell(v) for v in notice_record(notice).values()])
        return
    if not listed.rows:
        out.print("No PO notice is waiting for an answer.", markup=False, highlight=False)
        return
    table = Table(box=None, highlight=False)
    for column in ("PO", "Supplier", "State", "Status", "Age", "Reminders", "Reply"):
        table.add_column(column, overflow="fold")
    for n in listed.rows:
        reply = " ".join((n.reply_text or "").split())  # one line; never read as markup
        table.add_row(*(Text(v) for v in (
            n.po_number, n.supplier_name, state_words(n.state), n.status, age_words(n.age),
            reminders_words(n), reply[:80],
        )))  # fmt: skip
    out.print(table)
    said = ngettext("{n} notice waiting", "{n} notices waiting", listed.total)
    shown = said.format(n=listed.total)
    if listed.total > len(listed.rows):
        shown += f" (first {len(listed.rows)})"
    out.print(f"{shown}.", markup=False, highlight=False)


@app.command("consume-po-events")
def consume_po_events(
    metrics_port: MetricsPort = None,
    metrics_host: MetricsHost = "127.0.0.1",
) -> None:
    """Consume "PO approved" events from RabbitMQ and queue a PO notice for each, once."""
    _service_logging()
    from core.db import get_engine
    from core.metrics_server import serve_metrics
    from core.po_events.consumer import consume_po_events as consume
    from core.po_events.metrics import PoConsumerMetrics

    metrics = PoConsumerMetrics()
    server = None
    if metrics_port is not None:
        try:
            server, _thread = serve_metrics(metrics.registry, metrics_port, metrics_host)
        except OSError as exc:  # fail closed: an asked-for endpoint must exist
            raise UserError(
                f"cannot serve metrics on {metrics_host}:{metrics_port}: {exc}"
            ) from None
    try:
        asyncio.run(consume(_settings(), get_engine(), metrics=metrics))
    finally:
        if server is not None:
            server.shutdown()


@app.command()
def run() -> None:
    """Migrate, then start the product: sandbox (no credentials), webhook app, dashboard."""
    _service_logging()
    from core import launcher

    raise typer.Exit(launcher.run_product(_settings()))


def _known_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [UserError, SettingsError]
    for module, name in (
        ("core.notify", "NoticeRejected"),
        ("core.outbox", "OutboxError"),
        ("core.phones", "InvalidPhoneNumber"),
        ("core.csv_import", "CsvError"),
        ("core.csv_import", "InvalidAmount"),
        ("core.errors", "GraphError"),
        ("core.users", "UserError"),
        ("core.api_keys", "ApiKeyError"),
        ("core.numbers.errors", "NumberError"),  # also SecretKeyError
        ("core.alerts.config", "AlertConfigError"),
    ):
        try:
            errors.append(getattr(__import__(module, fromlist=[name]), name))
        except (ImportError, AttributeError):
            continue
    return tuple(errors)


def main() -> None:
    """Entry point: run the command; print known errors as one line and exit 1."""
    level = os.environ.get("WANOTIFY_LOG_LEVEL", "WARNING").upper()
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        app()
    except SystemExit:
        # click ends every command so (exit status 0 included): raised as it is, before
        # the clause below imports each module of _known_errors (0.7 s, core.notify's
        # imports mostly) only to compare its errors with this one
        raise
    except _known_errors() as exc:
        console.print(f"[red]error:[/] {escape(str(exc))}")
        sys.exit(1)
    except Exception as exc:
        from sqlalchemy.exc import OperationalError

        if isinstance(exc, OperationalError) and "no such table" in str(exc):
            console.print(
                "[red]error:[/] the database has no schema yet: run `wanotify db upgrade`"
            )
            sys.exit(1)
        raise


if __name__ == "__main__":
    main()
