"""The alert delivery loop: fan events out, group them per recipient, send, retry.

One pass (`deliver_pending`, also `wanotify alerts send-pending`):

1. new events become outbox rows by each person's choices (`core.alerts.rules`);
2. due rows are grouped by channel, recipient and kind. A group whose recipient was sent
   this kind less than `ALERTS_WINDOW_MINUTES` ago waits for the window's end; otherwise
   its rows go out as one message: the alert itself, or a digest of several;
3. a failed delivery keeps its rows with a later retry (`core.alerts.outbox.backoff`);
   once a server failed in a pass, the rest of its groups wait for the next try too.

The sender worker runs passes every `ALERTS_POLL_SECONDS` beside its dispatcher
(`start`/`finish`, called from `core.sender.worker.run_worker`), off the event loop.
Time comes from `core.clock`, so tests move it.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine

from core import clock
from core.alerts import outbox
from core.alerts.chat import post_chat
from core.alerts.config import AlertSettings, get_alert_settings
from core.alerts.render import AlertText, compose
from core.alerts.rules import fan_out
from core.alerts.smtp import DeliveryError, send_mail
from core.i18n import set_locale
from core.models.types import new_id

log = logging.getLogger(__name__)

Mailer = Callable[[AlertSettings, str, AlertText], None]
Poster = Callable[[str, str, AlertText], None]


@dataclass
class DeliveryReport:
    """What one pass did."""

    fanned_out: int = 0  # outbox rows written from new events
    messages: int = 0  # mails and chat posts that went out
    alerts: int = 0  # outbox rows they carried (more than messages when digests went)
    digests: int = 0
    held: int = 0  # rows waiting for their grouping window to end
    failed: int = 0  # deliveries that failed (their rows are retried later)

    def describe(self) -> str:
        """One line for the CLI and the log."""
        return (
            f"{self.messages} message(s) sent carrying {self.alerts} alert(s) "
            f"({self.digests} digest(s)), {self.held} held for grouping, "
            f"{self.failed} failed delivery(ies) to retry"
        )


def _text(items: list[outbox.OutboxItem], window: int) -> AlertText:
    def render() -> AlertText:
        set_locale(items[0].locale)
        return compose(items[0].kind, [item.facts for item in items], window)

    return contextvars.copy_context().run(render)


def deliver_pending(
    engine: Engine,
    settings: AlertSettings,
    *,
    now: datetime | None = None,
    mailer: Mailer = send_mail,
    poster: Poster = post_chat,
) -> DeliveryReport:
    """Run one delivery pass (module docstring); blocking, so call it off the event loop."""
    at = now or clock.now()
    report = DeliveryReport(fanned_out=fan_out(engine, settings, at))
    window = timedelta(minutes=settings.window_minutes)
    broken: dict[str, str] = {}  # a server that failed this pass -> its error
    with engine.connect() as conn:
        keys = outbox.due_keys(conn, at)
    for key in keys:
        channel, recipient, kind = key
        with engine.begin() as conn:
            if outbox.in_flight(conn, key, at):  # another process is sending this group
                continue
            last = outbox.last_sent(conn, channel, recipient, kind)
            if last is not None and at < last + window:
                report.held += outbox.hold_until(conn, key, last + window, at)
                continue
            token = new_id()
            items = outbox.claim(conn, key, token, at)
        if not items:
            continue
        server = "email" if channel == "email" else f"chat:{recipient}"
        error = broken.get(server)
        if error is None:
            try:
                _send(settings, channel, recipient, _text(items, settings.window_minutes),
                      mailer, poster)  # fmt: skip
            except DeliveryError as exc:
                error = str(exc)
                if exc.whole_channel:  # the server itself failed: its other groups wait
                    broken[server] = error
                log.warning("alert delivery to %s failed: %s", _who(channel, recipient), error)
            except Exception as exc:  # a bug or a bad address: this group only, retried
                error = f"could not deliver: {type(exc).__name__}"
                log.exception("alert delivery to %s failed", _who(channel, recipient))
        with engine.begin() as conn:
            if error is not None:
                outbox.mark_failed(conn, items, error, at)
                report.failed += 1
                continue
            outbox.mark_sent(conn, token, at)
        report.messages += 1
        report.alerts += len(items)
        report.digests += int(len(items) > 1)
    return report


def _who(channel: str, recipient: str) -> str:
    return recipient if channel == "chat" else "an e-mail recipient"


def _send(
    settings: AlertSettings,
    channel: str,
    recipient: str,
    text: AlertText,
    mailer: Mailer,
    poster: Poster,
) -> None:
    if channel == "email":
        if not settings.email_enabled:
            raise DeliveryError("e-mail is not configured in this process (ALERTS_SMTP_HOST)")
        mailer(settings, recipient, text)
        return
    url = settings.url_for_target(recipient)
    if url is None:
        raise DeliveryError(f"no chat webhook is configured for {recipient}")
    poster(url, recipient, text)


#: How often the delivery loop deletes old sent alerts (`core.alerts.outbox.prune`).
PRUNE_EVERY = 3600.0


async def run_delivery(engine: Engine, settings: AlertSettings, stop: asyncio.Event) -> None:
    """Deliver alerts every `poll_seconds` until `stop` is set (a failed pass is logged
    and the next one tries again); once an hour, delete alerts sent long ago."""
    pruned_at = -PRUNE_EVERY
    while not stop.is_set():
        try:
            if time.monotonic() - pruned_at >= PRUNE_EVERY:
                pruned_at = time.monotonic()
                await asyncio.to_thread(outbox.prune, engine, clock.now())
            report = await asyncio.to_thread(deliver_pending, engine, settings)
            if report.messages or report.failed:
                log.info("alerts: %s", report.describe())
        except Exception:
            log.exception("alert delivery pass failed; trying again later")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), settings.poll_seconds)


#: Delivery loops running beside workers (a task nobody references may be collected).
_running: set[asyncio.Task[None]] = set()


def start(engine: Engine, stop: asyncio.Event) -> asyncio.Task[None] | None:
    """Start the delivery loop beside a sender worker; it ends when `stop` is set (None
    when no channel is configured). Raises AlertConfigError on a half-made
    configuration: the worker does not start (fail closed)."""
    settings = get_alert_settings()
    if not (settings.email_enabled or settings.chat_webhook_url or settings.chat_webhook_urls):
        log.info("alerts: no e-mail (ALERTS_SMTP_HOST) nor chat webhook configured; none sent")
        return None
    task = asyncio.create_task(run_delivery(engine, settings, stop), name="alert-delivery")
    _running.add(task)
    task.add_done_callback(_running.discard)
    return task


async def finish(task: asyncio.Task[None] | None, stop: asyncio.Event) -> None:
    """Stop the delivery loop started by `start` (a pass in flight ends first, bounded)."""
    if task is None:
        return
    stop.set()
    try:
        await asyncio.wait_for(asyncio.shield(task), 30)
    except TimeoutError:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
