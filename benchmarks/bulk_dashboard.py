"""A 100,000-row upload through the real dashboard in a real browser: time, memory, load.

    python -m benchmarks.bulk_dashboard [--rows 100000] [--port 9210] [--alone]

Starts the dashboard (`streamlit run dashboard/server.py`, its embedded sender off:
sending is not part of queuing) on a fresh SQLite file, logs a buyer in with Debian's
Chromium under Playwright, uploads a Spanish Excel CSV of `--rows` PO notices (its
consent column says yes), waits for the check, clicks Send and waits until the batch
has every row queued. Meanwhile it samples the dashboard process's resident memory
(/proc) every 0.1 s, and a manager in another browser tab loads other pages
(a manager's Messages, Analytics and Health), timing each; with `--alone` nobody else
uses the dashboard meanwhile (the upload's own time, without the second browser and
the pages it has the dashboard draw).

Prints: upload to checked, click to queued, their sum (the goal: ≤ 10 s for 100,000
rows), the dashboard's idle and peak memory (the goal: ≤ 500 MB above idle; resident
memory in all, and its anonymous part, the heap, apart from the database file pages
the analytics reads map), the other
pages' load times while the work ran beside those of an idle dashboard, and the load.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func
from sqlmodel import Session, col, select

from benchmarks._proc import TICK, children_cpu_seconds, cpu_seconds, rss_mb
from benchmarks.bulk_import import GOAL_ROWS, GOAL_SECONDS
from core import migrate
from core.db import get_engine
from core.models.batches import BatchRow, SendBatch
from core.sandbox.catalog import DEFAULT_TEMPLATE_FIELDS, default_templates
from core.templates import upsert_templates

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("WANOTIFY_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "bench-password-1"
MEMORY_GOAL_MB = 500


def consenting_csv(rows: int) -> bytes:
    """`rows` PO notices as Spanish Excel writes them, each with consent 'sí'."""
    lines = ["Proveedor;Teléfono;Nº Pedido;Importe;Moneda;Consentimiento"]
    lines += [
        f"Proveedor Núñez {n};6{10 + n % 89:02d} {n // 1000 % 1000:03d} {n % 1000:03d};"
        f"PO-DASH-{n:06d};{n},50;EUR;sí"
        for n in range(rows)
    ]
    return ("\r\n".join(lines) + "\r\n").encode("cp1252")


class Sampler(threading.Thread):
    """Samples a process's memory every 0.1 s until stopped; keeps the peaks of its
    resident memory and of its anonymous part."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self.peak_anon = pid, 0.0, 0.0
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            self.peak = max(self.peak, rss_mb(self.pid))
            self.peak_anon = max(self.peak_anon, rss_mb(self.pid, "RssAnon"))
            time.sleep(0.1)


def browsers_cpu_seconds() -> float:
    """CPU seconds used so far by the machine's running Chromium processes (both
    browsers of this benchmark: they share the 2 cores with the dashboard)."""
    total = 0.0
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if (proc / "comm").read_text().strip().startswith(("chromium", "chrome")):
                    total += cpu_seconds(int(proc.name))
            except OSError:
                continue
    return total


def machine_cpu_seconds() -> tuple[float, float]:
    """The machine's (busy, idle) CPU seconds since boot, all cores (/proc/stat)."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle and iowait
    return (sum(values) - idle) / TICK, idle / TICK


def cpu_now(dashboard: int) -> tuple[float, float, float, float, float]:
    """CPU seconds so far: the dashboard's, its check workers' (`core.cores`), the
    browsers', the machine's busy and idle."""
    return (
        cpu_seconds(dashboard),
        children_cpu_seconds(dashboard),
        browsers_cpu_seconds(),
        *machine_cpu_seconds(),
    )


def wait_idle(page: Any, timeout: float = 120_000) -> None:
    """Until the Streamlit script has finished and nothing is loading."""
    page.wait_for_selector(
        "[data-testid='stApp'][data-test-connection-state='CONNECTED']", timeout=timeout
    )
    page.wait_for_selector("[data-test-script-state='notRunning']", timeout=timeout)
    page.wait_for_function(
        "() => document.querySelectorAll(\"[data-testid='stSkeleton']\").length === 0",
        timeout=timeout,
    )


def log_in(page: Any, url: str, user: str) -> None:
    page.goto(url)
    wait_idle(page)
    page.get_by_label("Username").fill(user)
    page.get_by_role("textbox", name="Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_selector("[data-testid='stSidebarNav']")
    wait_idle(page)


#: Whether the page titled so has been drawn by a run that has finished: its title is
#: drawn by the new page's run (the page before has another), so once it shows, the
#: script state is that run's.
PAGE_DRAWN = """(title) => {
  const app = document.querySelector("[data-testid='stApp']");
  const titles = [...document.querySelectorAll("[data-testid='stMain'] h1")];
  return app && app.getAttribute("data-test-script-state") === "notRunning"
    && titles.some((h) => h.textContent.trim() === title)
    && document.querySelectorAll("[data-testid='stSkeleton']").length === 0;
}"""


def open_page(page: Any, name: str, title: str | None = None) -> float:
    """Seconds from clicking a page in the sidebar to that page drawn (its title shown
    and its run finished; waiting to see the run start would wait out a timeout on a
    page done before the poll saw it running)."""
    started = time.perf_counter()
    page.locator("[data-testid='stSidebarNav'] a", has_text=name).click()
    page.wait_for_function(PAGE_DRAWN, arg=title or name, polling=20, timeout=120_000)
    return time.perf_counter() - started


TOUR = ("Messages", "Analytics", "Health")


def page_tour(page: Any) -> list[float]:
    """Load times of a manager's three pages, one after the other."""
    return [open_page(page, name) for name in TOUR]


#: Seconds the touring manager looks at a page before opening the next (a person).
LOOK = 1.0


class Touring(threading.Thread):
    """A manager in a browser of its own loading the tour's pages over and over until
    stopped, looking at each for `LOOK` seconds; each load time is kept with the phase
    it happened in."""

    def __init__(self, base: str) -> None:
        super().__init__(daemon=True)
        self.base, self.phase, self.stopped = base, "idle", threading.Event()
        self.ready = threading.Event()
        self.times: dict[str, list[float]] = {}
        self.error: BaseException | None = None

    def run(self) -> None:
        from playwright.sync_api import sync_playwright

        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
                )
                tab = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
                tab.set_default_timeout(300_000)
                log_in(tab, self.base, "bench-other")
                self.ready.set()
                while not self.stopped.is_set():
                    for name in TOUR:
                        phase = self.phase
                        seconds = open_page(tab, name)
                        if phase == self.phase:  # not across a change of phase
                            self.times.setdefault(phase, []).append(seconds)
                        self.stopped.wait(LOOK)
                browser.close()
        except BaseException as exc:  # reported by the main thread
            self.error = exc
            self.ready.set()


def queued_rows(engine: Any, name: str) -> tuple[str | None, int]:
    """The batch's status and rows recorded so far."""
    with Session(engine) as session:
        batch = session.exec(select(SendBatch).where(col(SendBatch.name) == name)).first()
        if batch is None:
            return None, 0
        rows = session.exec(
            select(func.count()).select_from(BatchRow).where(col(BatchRow.batch_id) == batch.id)
        ).one()
        return batch.status, int(rows)


def main(argv: list[str] | None = None) -> int:
    """Run the scenario once and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=GOAL_ROWS)
    parser.add_argument("--port", type=int, default=9210)
    parser.add_argument(
        "--alone",
        action="store_true",
        help="no manager loading pages meanwhile: the upload's own time (by default a "
        "manager tours other pages all along, to time them under the upload)",
    )
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    workdir = Path(tempfile.mkdtemp(prefix="wanotify-bulk-dash-"))
    shutil.copytree(ROOT / ".streamlit", workdir / ".streamlit")
    url = f"sqlite:///{workdir / 'wanotify.db'}"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("WHATSAPP_", "SANDBOX_", "WEBHOOK_", "DATABASE_", "DASHBOARD_"))
    }
    env.update(DATABASE_URL=url, PYTHONPATH=str(ROOT), DASHBOARD_EMBEDDED_SENDER="false")
    migrate.upgrade(url)
    engine = get_engine(url)
    upsert_templates(
        engine, "default", [t.as_graph(DEFAULT_TEMPLATE_FIELDS) for t in default_templates()]
    )
    for user, role in (("bench-buyer", "buyer"), ("bench-other", "manager")):
        subprocess.run(
            [sys.executable, "-m", "core.cli", "users", "add", user, "--role", role,
             "--password", PASSWORD],
            cwd=workdir, env=env, check=True, capture_output=True,
        )  # fmt: skip
    log = (workdir / "dashboard.log").open("wb")
    dashboard = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "dashboard" / "server.py"),
         "--server.headless", "true", "--server.port", str(args.port),
         "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
         "--server.fileWatcherType", "none"],
        cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{args.port}"
    upload = workdir / "grande.csv"
    upload.write_bytes(consenting_csv(args.rows))
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/_stcore/health", timeout=2).text == "ok":
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
            )
            buyer = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
            buyer.set_default_timeout(600_000)
            log_in(buyer, base, "bench-buyer")
            open_page(buyer, "Bulk send", "Bulk send from CSV")
            touring = Touring(base)
            if not args.alone:
                touring.start()
                touring.ready.wait(timeout=300)
            time.sleep(8)  # a few idle tours
            idle, idle_anon = rss_mb(dashboard.pid), rss_mb(dashboard.pid, "RssAnon")
            sampler = Sampler(dashboard.pid)
            sampler.start()
            load_before = os.getloadavg()[0]
            cpu_before = cpu_now(dashboard.pid)

            touring.phase = "checking"
            started = time.perf_counter()
            dropzone = buyer.locator("[data-testid='stFileUploaderDropzone'] input[type=file]")
            dropzone.set_input_files(upload)  # a file on disk, as a buyer picks it
            buyer.get_by_text("Checking every row of the file").first.wait_for()
            uploaded = time.perf_counter() - started
            send = buyer.get_by_role("button", name=f"Send {args.rows:,} messages")
            send.wait_for()
            checked = time.perf_counter() - started
            touring.phase = "queuing"
            clicked = time.perf_counter()
            send.click()
            while True:
                status, rows = queued_rows(engine, "grande")
                if status not in (None, "importing") and rows == args.rows:
                    break
                time.sleep(0.05)
            queued = time.perf_counter() - clicked
            cpu_after = cpu_now(dashboard.pid)
            touring.phase = "after"
            sampler.stopped.set()
            sampler.join()
            touring.stopped.set()
            if touring.is_alive():
                touring.join(timeout=120)
            if touring.error is not None:
                raise touring.error
            buyer.wait_for_selector("[data-testid='stProgress']", timeout=120_000)
            shots = Path(os.environ.get("WANOTIFY_SCREENSHOTS", "/tmp/wanotify-screenshots"))
            shots.mkdir(parents=True, exist_ok=True)
            buyer.screenshot(path=str(shots / "bulk-100k-queued.png"), full_page=True)
            browser.close()
        load_after = os.getloadavg()[0]
        whole = checked + queued
        goal = GOAL_SECONDS * args.rows / GOAL_ROWS
        print(f"{args.rows:,} rows through the dashboard in Chromium (load {load_before:.2f} "
              f"before, {load_after:.2f} after, {os.cpu_count()} cores)")  # fmt: skip
        print(f"  upload to checked (Send button shown): {checked:7.2f} s, of which the "
              f"upload until the check began {uploaded:.2f} s")  # fmt: skip
        print(f"  click to every row queued:             {queued:7.2f} s")
        print(f"  upload to queued:                      {whole:7.2f} s = "
              f"{whole / goal:4.2f} x the goal's {goal:.1f} s")  # fmt: skip
        print(f"  dashboard memory: idle {idle:,.0f} MB, peak {sampler.peak:,.0f} MB, "
              f"+{sampler.peak - idle:,.0f} MB = {(sampler.peak - idle) / MEMORY_GOAL_MB:4.2f} "
              f"x the goal's +{MEMORY_GOAL_MB} MB")  # fmt: skip
        print(f"    of which its own heap (RssAnon): idle {idle_anon:,.0f} MB, peak "
              f"{sampler.peak_anon:,.0f} MB, +{sampler.peak_anon - idle_anon:,.0f} MB = "
              f"{(sampler.peak_anon - idle_anon) / MEMORY_GOAL_MB:4.2f} x the goal; the rest "
              f"is file pages mapped (the database, by the analytics reads)")  # fmt: skip
        dash, workers, browsers, busy, idle_cpu = (
            a - b for a, b in zip(cpu_after, cpu_before, strict=True)
        )
        print(f"  CPU during upload to queued, of {busy + idle_cpu:.1f} core-seconds: dashboard "
              f"{dash:.1f} s, its check workers {workers:.1f} s, the two Chromium browsers "
              f"{browsers:.1f} s, everything else {busy - dash - workers - browsers:.1f} s, "
              f"idle {idle_cpu:.1f} s")  # fmt: skip
        if args.alone:
            print("  no manager touring other pages meanwhile (--alone)")
        for phase in ("idle", "checking", "queuing") if not args.alone else ():
            times = touring.times.get(phase, [])
            shown = ", ".join(f"{t:.1f}" for t in times) or "none finished in this phase"
            print(f"  a manager's pages ({', '.join(TOUR)}, in turn) {phase}: {shown} s")
    finally:
        dashboard.terminate()
        try:
            dashboard.wait(timeout=20)
        except subprocess.TimeoutExpired:
            dashboard.kill()
        engine.dispose()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
