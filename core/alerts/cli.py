"""`wanotify alerts ...`: run a delivery pass now, and list the alert outbox.

The sender worker delivers alerts on its own (`core.alerts.delivery`); these commands
are for an operator who wants them out now (`send-pending`, e.g. from cron without a
worker) or wants to see what waits and why (`list`). Recipients and errors are printed
as text, never as markup; chat webhooks are named by channel, never by their URL.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from core.i18n import _

alerts_app = typer.Typer(help="Alerts to people by e-mail and chat.", no_args_is_help=True)
_out = Console(soft_wrap=True)


@alerts_app.command("send-pending")
def send_pending() -> None:
    """Deliver the alerts that are due now (grouping windows and retry times respected)."""
    from core.alerts.config import get_alert_settings
    from core.alerts.delivery import deliver_pending
    from core.db import get_engine

    settings = get_alert_settings()  # a half-made configuration stops here, in one line
    report = deliver_pending(get_engine(), settings)
    _out.print(
        _("{messages} sent ({alerts} alerts, {digests} digests), {held} held for grouping, "
          "{failed} failed and kept for a retry").format(
            messages=report.messages, alerts=report.alerts, digests=report.digests,
            held=report.held, failed=report.failed,
        ),
        markup=False, highlight=False,
    )  # fmt: skip
    if report.failed:
        raise typer.Exit(1)


@alerts_app.command("list")
def list_command(
    status: Annotated[str | None, typer.Option(help="Only this status: pending or sent")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="How many, newest first")] = 50,
) -> None:
    """The newest alerts in the outbox: kind, channel, recipient, status, attempts, error."""
    from core.alerts.outbox import list_alerts
    from core.db import get_engine

    rows = list_alerts(get_engine(), status=status, limit=limit)
    if not rows:
        _out.print(_("No alerts."), markup=False)
        return
    for row in rows:
        when = row.sent_at or row.next_attempt_at or row.created_at
        line = (
            f"{row.id}\t{row.created_at:%Y-%m-%d %H:%M}\t{row.kind}\t{row.channel}\t"
            f"{row.recipient}\t{row.status}\t{row.attempts}\t{when:%Y-%m-%d %H:%M}"
        )
        if row.last_error and row.status != "sent":
            line += f"\t{row.last_error}"
        _out.print(line, markup=False, highlight=False)
