"""What every page shares, once per server process: settings, the engine, the sender.

The dashboard's server process runs the spine's dispatcher itself, in a thread of its
own started once (an `st.cache_resource` singleton), so a batch keeps going when the tab
closes and `make run` needs no separate worker.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from wsgiref.simple_server import WSGIServer

import streamlit as st
from sqlalchemy import Engine

from core.batch_jobs import JobRunner
from core.db import get_engine
from core.metrics_server import serve_metrics
from core.sender.metrics import QualityProbe, SenderMetrics
from core.sender.worker import run_worker
from core.settings import Settings, get_settings

log = logging.getLogger(__name__)


def settings() -> Settings:
    """The process's settings (from the environment and `.env`)."""
    return get_settings()


def engine() -> Engine:
    """The shared engine of the configured database."""
    return get_engine(settings().database_url)


@dataclass
class EmbeddedSender:
    """The dispatcher running in a background thread of the dashboard's process."""

    thread: threading.Thread
    loop: asyncio.AbstractEventLoop | None = None
    stop: asyncio.Event | None = None
    error: str | None = None
    started: threading.Event = field(default_factory=threading.Event)
    metrics_server: WSGIServer | None = None  # DASHBOARD_METRICS_PORT's, when set

    @property
    def running(self) -> bool:
        """True while the dispatcher thread is alive."""
        return self.thread.is_alive()

    def shutdown(self) -> None:
        """Ask the dispatcher to finish in-flight sends and stop."""
        if self.loop is not None and self.stop is not None and not self.loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                self.loop.call_soon_threadsafe(self.stop.set)

    def stop_and_wait(self, timeout: float = 15.0) -> bool:
        """Stop the dispatcher and wait for it (claimed rows go back to pending)."""
        self.shutdown()
        self.thread.join(timeout)
        if self.metrics_server is not None:
            self.metrics_server.shutdown()
            self.metrics_server.server_close()
            self.metrics_server = None
        return not self.thread.is_alive()


def _at_shutdown(callback: Callable[[], object]) -> None:
    """Run `callback` when the process exits, before thread pools refuse new work.

    Plain `atexit` runs too late: by then `concurrent.futures` has stopped accepting
    work and the dispatcher's database calls would fail mid-shutdown, leaving claimed
    rows as "sending". `threading`'s exit hooks run first (newest first).
    """
    register = getattr(threading, "_register_atexit", None)
    if register is not None:
        try:
            register(callback)
            return
        except RuntimeError:  # the interpreter is already shutting down
            return
    atexit.register(callback)


def _run_sender(
    sender: EmbeddedSender, cfg: Settings, db: Engine, metrics: SenderMetrics | None = None
) -> None:
    async def main() -> None:
        sender.loop = asyncio.get_running_loop()
        sender.stop = asyncio.Event()
        sender.started.set()
        watch = metrics.watch if metrics is not None else None
        probe = None
        if metrics is not None:
            probe = asyncio.create_task(QualityProbe(metrics).run(sender.stop))
        await run_worker(cfg, db, stop=sender.stop, worker_id="dashboard", on_dispatcher=watch)
        if probe is not None:  # a read in flight is not worth waiting for
            probe.cancel()
            await asyncio.gather(probe, return_exceptions=True)

    try:
        asyncio.run(main())
    except Exception as exc:  # shown on the health page; the dashboard still serves reads
        log.exception("embedded sender stopped")
        sender.error = f"{type(exc).__name__}: {exc}"
    finally:
        sender.started.set()


def _serve_sender_metrics(sender: EmbeddedSender, cfg: Settings) -> SenderMetrics | None:
    """The embedded sender's metrics on 127.0.0.1:DASHBOARD_METRICS_PORT/metrics (unset:
    none). A port that cannot be bound raises: the operator asked for the endpoint."""
    if cfg.dashboard_metrics_port is None:
        return None
    metrics = SenderMetrics(engine(), cfg)
    sender.metrics_server, _ = serve_metrics(metrics.registry(), cfg.dashboard_metrics_port)
    return metrics


@st.cache_resource(show_spinner=False)
def bulk_jobs() -> JobRunner:
    """The server process's runner of long bulk work (checking and queuing big files
    off the pages' threads, `core.batch_jobs`), started once."""
    return JobRunner()


@st.cache_resource(show_spinner=False)
def embedded_sender() -> EmbeddedSender | None:
    """Start the dispatcher once per server process (None when disabled in settings)."""
    cfg = settings()
    if not cfg.dashboard_embedded_sender:
        log.info("embedded sender disabled (DASHBOARD_EMBEDDED_SENDER=false)")
        return None
    sender = EmbeddedSender(thread=threading.Thread(name="wanotify-sender", daemon=True))
    metrics = _serve_sender_metrics(sender, cfg)
    sender.thread = threading.Thread(
        target=_run_sender,
        args=(sender, cfg, engine(), metrics),
        name="wanotify-sender",
        daemon=True,
    )
    sender.thread.start()
    sender.started.wait(timeout=5)
    _at_shutdown(sender.stop_and_wait)
    log.info("embedded sender started in the dashboard process")
    return sender
