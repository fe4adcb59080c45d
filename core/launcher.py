"""What `wanotify run` starts: everything a new user needs, on the embedded defaults."""

from __future__ import annotations

import logging
import sys
from dataclasses import replace
from pathlib import Path

from core import migrate
from core.settings import Settings
from core.supervisor import Part, supervise, wanotify_argv

log = logging.getLogger(__name__)

#: Streamlit serving dashboard/app.py plus the sign-in cookie routes (dashboard/server.py).
DASHBOARD_APP = Path(__file__).resolve().parent.parent / "dashboard" / "server.py"


def product_parts(settings: Settings, *, dashboard: bool = True) -> list[Part]:
    """The processes of the product: sandbox (sandbox mode only), webhook app, dashboard.

    The dashboard's server process runs the sender itself, so no separate worker is needed.
    `dashboard=False` leaves it out (headless runs and tests, with `wanotify worker`).
    """
    parts: list[Part] = []
    if settings.sandbox_mode:
        sandbox_ready = f"{settings.api_base_url}/_sandbox/stats"
        parts.append(Part("sandbox", wanotify_argv("sandbox"), sandbox_ready))
    webhook_ready = f"http://{settings.webhook_host}:{settings.webhook_port}/api/v1/whatsapp/health"
    parts.append(Part("webhook app", wanotify_argv("webhook"), webhook_ready))
    if not dashboard:
        return parts
    dashboard_argv = [
        sys.executable, "-m", "streamlit", "run", str(DASHBOARD_APP),
        "--server.port", str(settings.dashboard_port),
        "--server.headless", "true",
        "--browser.gatherUsageStats", "false",
    ]  # fmt: skip
    dashboard_ready = f"http://127.0.0.1:{settings.dashboard_port}/_stcore/health"
    parts.append(Part("dashboard", dashboard_argv, dashboard_ready))
    return parts


def sync_and_seed(settings: Settings) -> None:
    """Sync every tenant's templates, once per WABA (from the accounts or the sandbox);
    in sandbox mode first register the demo's second tenant's number, then seed demo data.
    """
    import asyncio

    from core.db import get_engine
    from core.numbers.templates import sync_by_waba

    if settings.sandbox_mode:
        from core.numbers.demo import seed_demo_numbers

        try:
            seed_demo_numbers(get_engine(), settings)
        except Exception as exc:  # the product still runs without the second tenant
            log.warning("could not add the demo numbers: %s", exc)
    try:
        for result in asyncio.run(sync_by_waba(get_engine(), settings)):
            if result.report is None:
                log.warning("templates of tenant %s not synced: %s", result.tenant_id, result.error)
                continue
            log.info(
                "templates of tenant %s synced from WABA %s: %s added, %s updated",
                result.tenant_id, ", ".join(result.wabas), result.report.added,
                result.report.updated,
            )  # fmt: skip
    except Exception as exc:  # the product still runs; the dashboard's health page shows it
        log.warning("could not sync templates: %s", exc)
    if settings.sandbox_mode:
        from core.demo import seed_demo

        seed_demo(get_engine(), settings.default_tenant)
        log.warning("SANDBOX MODE: demo data seeded (marked as demo in the dashboard)")


def run_product(settings: Settings, *, dashboard: bool = True) -> int:
    """Migrate once, start every part in order, and supervise them until Ctrl-C."""
    migrate.upgrade()
    log.info("database schema is up to date")
    parts = product_parts(settings, dashboard=dashboard)
    first = replace(parts[0], after_ready=lambda: sync_and_seed(settings))
    return supervise([first, *parts[1:]])
