"""Bulk send from a CSV at volume: upload to every row queued, beside the per-row paths.

    python -m benchmarks.bulk_import [--rows 10000 100000] [--baseline-rows 2000]
                                     [--database-url URL]

Builds CSVs of PO notices as a Spanish Excel writes them (semicolons, decimal commas,
Windows-1252) and times, on a fresh SQLite file (or the PostgreSQL database given by
`--database-url`, in a tenant of its own per run):

- `plan_csv`: read, map and check every row (what the bulk page does on upload), its
  rows in one worker process per core (`core.cores`, started first, as the dashboard
  starts them with its bulk page), and for 20,000 rows or more once more in this process
  alone, for a tenant of its own, as it was checked before;
- `start_batch`: record the batch and queue every valid row, chunk by chunk
  (`core.batch_import`: set-based lookups, each row's checked request body reused,
  COPY on PostgreSQL and one executemany on SQLite, one transaction per chunk);
- baseline 1, the per-row batch path this replaced (`start_batch` up to 552728c): per
  row a consent grant, the gate with its queries, ORM rows, all in one transaction, on
  `--baseline-rows` rows, scaled per row;
- baseline 2, one-by-one sends (`send_po_notice`, one transaction per row), scaled.

It prints seconds, rows per second and CPU seconds per 10,000 rows (the machine is
shared: CPU time compares runs better than wall time), upload-to-queued against the
goal (≤ 10 s for 100,000 rows) and against the baselines measured in the same run, this
process's peak memory, and the machine's load (a shared 2-core machine: figures move
with it).
Nothing is sent: the outbox only gets pending rows.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import resource
import sys
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from benchmarks._proc import cpu_seconds, rss_mb
from core import cores, csv_import, migrate
from core.batch_import import LOOKED_UP, new_supplier_language
from core.batches import ROW_NUMBERS, SPREADSHEET_ROWS, BatchInput, create_batch
from core.bulk import BulkPlan, plan_csv, start_batch
from core.consent import batch as consent_batch
from core.db import get_engine, refresh_statistics, session_scope
from core.models.suppliers import Supplier
from core.models.types import utcnow
from core.notify import (
    NoticeRejected,
    PoNotice,
    prepare_template_message,
    resolve_template,
    send_po_notice,
)
from core.sandbox.catalog import DEFAULT_TEMPLATE_FIELDS, default_templates
from core.templates import upsert_templates

GOAL_SECONDS = 10.0  # issue 13: upload to every row queued, 100,000 rows
GOAL_ROWS = 100_000


def spanish_csv(rows: int, prefix: str, first_phone: int = 0) -> bytes:
    """`rows` PO notices, semicolon separated with decimal commas, in Windows-1252."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(["Proveedor", "Teléfono", "Nº Pedido", "Importe", "Moneda"])
    for n in range(first_phone, first_phone + rows):
        phone = f"6{10 + n % 89:02d} {n // 1000 % 1000:03d} {n % 1000:03d}"
        writer.writerow([f"Proveedor Núñez {n}", phone, f"{prefix}-{n:06d}", f"{n},50", "EUR"])
    return out.getvalue().encode("cp1252")


def _suppliers_at(session: Session, tenant_id: str, phones: list[str]) -> dict[str, Supplier]:
    """The tenant's suppliers at these numbers, whole, 500 numbers a query (as the path
    before `core.batch_import` read them)."""
    found: dict[str, Supplier] = {}
    unique = list(dict.fromkeys(phones))
    for start in range(0, len(unique), 500):
        for supplier in session.exec(
            select(Supplier).where(
                col(Supplier.tenant_id) == tenant_id,
                col(Supplier.phone_e164).in_(unique[start : start + 500]),
            )
        ).all():
            found[supplier.phone_e164] = supplier
    return found


def per_row_start(plan: BulkPlan, engine: Engine) -> None:
    """`start_batch` as it was before `core.batch_import` (up to 552728c): suppliers
    read and added in bulk, but per row a consent grant (a flush each), the gate
    (`prepare_template_message`, a query each), an ORM message and batch row, and
    every row in one transaction."""
    rows: list[BatchInput] = []
    with session_scope(engine) as session:
        definition = resolve_template(session, plan.tenant_id, "po_notification", "es")
        suppliers = _suppliers_at(session, plan.tenant_id, [c.phone_e164 or "" for c in plan.valid])
        now = utcnow()
        added = [
            Supplier(
                tenant_id=plan.tenant_id,
                name=(check.values.get("supplier_name") or "").strip()[:200],
                phone_e164=check.phone_e164 or "",
                language=new_supplier_language(check),
                opted_in=False,
                created_at=now,
                updated_at=now,
            )
            for check in plan.valid
            if check.phone_e164 not in suppliers
        ]
        session.add_all(added)
        session.flush()
        suppliers.update((s.phone_e164, s) for s in added)
        consent_batch.record_confirmed(session, suppliers, plan.checks, plan.consent, "bench")
        for check, raw in zip(plan.checks, plan.table.rows, strict=True):
            if not check.ok or check.phone_e164 is None:
                rows.append(BatchInput(check.row_number, raw, error="; ".join(check.errors)))
                continue
            try:
                prepared = prepare_template_message(
                    session,
                    tenant_id=plan.tenant_id,
                    phone=check.phone_e164,
                    template_name=definition.name,
                    language=definition.language,
                    params=check.params,
                    idempotency_key=check.idempotency_key,
                    supplier=suppliers[check.phone_e164],
                    po_number=check.values.get("po_number"),
                    created_by="bench",
                    source="csv",
                    definition=definition,
                )
            except NoticeRejected as exc:
                rows.append(BatchInput(check.row_number, raw, error=str(exc)))
                continue
            rows.append(BatchInput(check.row_number, raw, message=prepared.outbound))
    create_batch(
        engine, plan.tenant_id, "baseline", "po_notification", "es", rows, "bench",
        upload_format={ROW_NUMBERS: SPREADSHEET_ROWS},
    )  # fmt: skip


def _line(label: str, rows: int, seconds: float, cpu: float | None = None) -> float:
    rate = rows / seconds if seconds > 0 else float("inf")
    spent = f"   cpu {cpu:6.2f} s = {cpu * 10_000 / rows:5.2f} s per 10k rows" if cpu else ""
    print(f"  {label:<44} {rows:>8,} rows {seconds:8.2f} s {rate:9,.0f} rows/s{spent}")
    return rate


def _workers_mb() -> str:
    """The check workers' resident memory now, in MB, each."""
    return ", ".join(f"{rss_mb(pid):,.0f}" for pid in cores.pids()) or "none"


def _peak_mb() -> float:
    """This process's peak resident memory so far, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu() -> float:
    """CPU seconds used so far by this process and by its workers (`core.cores`)."""
    return time.process_time() + sum(cpu_seconds(pid) for pid in cores.pids())


def _templates(engine: Engine, tenant: str) -> None:
    """The sandbox's approved templates, for `tenant`."""
    upsert_templates(
        engine, tenant, [t.as_graph(DEFAULT_TEMPLATE_FIELDS) for t in default_templates()]
    )


def _load() -> str:
    one, five, _fifteen = os.getloadavg()
    return f"load {one:.2f} / {five:.2f} (1 / 5 min) on {os.cpu_count()} cores"


def _plan(data: bytes, tenant: str, engine: Engine) -> BulkPlan:
    return plan_csv(
        data,
        tenant_id=tenant,
        template_name="po_notification",
        language="es",
        consent_confirmed=True,  # the buyer ticks "every supplier agreed"
        engine=engine,
    )


def run(engine: Engine, tenant: str, sizes: list[int], baseline_rows: int) -> None:
    """Time both baselines on `baseline_rows`, then the chunked path at each size."""
    _templates(engine, tenant)
    cores.warm(wait=True)  # as the dashboard has them, started with its bulk page
    print(f"baselines on {baseline_rows:,} rows ({_load()}):")
    plan = _plan(spanish_csv(baseline_rows, "PO-BASE", 500_000), tenant, engine)
    assert plan.valid_count == baseline_rows, [c.errors for c in plan.rejected][:3]
    started = time.perf_counter()
    per_row_start(plan, engine)
    spent = time.perf_counter() - started
    per_row_rate = _line("per-row batch path (before)", baseline_rows, spent)
    started = time.perf_counter()
    one_by_one = max(1, baseline_rows // 4)
    for n in range(one_by_one):
        send_po_notice(
            PoNotice(
                tenant_id=tenant,
                supplier_name=f"Proveedor Solo {n}",
                phone=f"6{10 + n % 89:02d} 9{n // 100 % 100:02d} {n % 100:02d}1",
                po_number=f"PO-ONE-{n:06d}",
                amount=Decimal(f"{n}.50"),
                currency="EUR",
                language="es",
                consent_confirmed=True,
            ),
            engine=engine,
        )
    naive_rate = _line("one-by-one send_po_notice", one_by_one, time.perf_counter() - started)
    for size in sizes:
        print(f"\n{size:,} rows ({_load()}):")
        data = spanish_csv(size, f"PO-{size}")
        rss_before = rss_mb(os.getpid())
        cpu_started, started = _cpu(), time.perf_counter()
        plan = _plan(data, tenant, engine)
        checked = time.perf_counter() - started
        checked_cpu = _cpu() - cpu_started
        _line(f"plan_csv (read + check, {cores.workers()} workers)", size, checked, checked_cpu)
        assert plan.valid_count == size, [c.errors for c in plan.rejected][:3]
        cpu_started, started = _cpu(), time.perf_counter()
        batch = start_batch(plan, name=f"bench {size}", created_by="bench", engine=engine)
        queued = time.perf_counter() - started
        queued_cpu = _cpu() - cpu_started
        _line("start_batch (record + queue, chunked)", size, queued, queued_cpu)
        assert batch.total_rows == size
        whole, whole_cpu = checked + queued, checked_cpu + queued_cpu
        goal = GOAL_SECONDS * size / GOAL_ROWS
        before = checked + size / per_row_rate
        _line("upload to queued", size, whole, whole_cpu)
        print(
            f"  ratio to the goal's {goal:.1f} s: wall {whole / goal:4.2f}x, cpu "
            f"{whole_cpu / goal:4.2f}x; per-row batch path (before): {before:6.1f} s "
            f"({before / whole:4.1f}x slower), one by one: {size / naive_rate:6.1f} s "
            f"({size / naive_rate / whole:4.1f}x slower)"
        )
        print(
            f"  memory: {rss_before:,.0f} MB before the file, peak {_peak_mb():,.0f} MB "
            f"(+{_peak_mb() - rss_before:,.0f} MB; goal for the dashboard: +500 MB); check "
            f"workers idle since: {_workers_mb()} MB; {_load()}"
        )
        del plan, batch
        if size >= csv_import.SPREAD_FROM and cores.workers() > 1:
            _alone(engine, data, size, checked)
        del data
    print(f"\npeak memory of this process: {_peak_mb():,.0f} MB ({_load()})")


def _alone(engine: Engine, data: bytes, size: int, checked: float) -> None:
    """The same check in this process alone, without the workers (as before they were),
    for a tenant of its own (the same database, none of the rows queued): after the
    figures above, so their memory is not this run's."""
    tenant = f"bench-alone-{uuid.uuid4().hex[:8]}"
    _templates(engine, tenant)
    # The rows queued since changed the tables: their statistics are taken now, outside
    # the timing, as the check with the workers found them taken (PostgreSQL).
    refresh_statistics(engine, LOOKED_UP)
    with cores.in_this_process():
        started = time.perf_counter()
        _plan(data, tenant, engine)
        alone = time.perf_counter() - started
    _line("plan_csv in this process alone (before)", size, alone)
    print(f"  the check with {cores.workers()} workers: {alone / checked:4.2f}x as fast; {_load()}")


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, prepare a database, run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--baseline-rows", type=int, default=2_000)
    parser.add_argument("--database-url", default=None, help="PostgreSQL (default: SQLite)")
    args = parser.parse_args(argv)
    tenant = f"bench-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory(prefix="wanotify-bulk-bench-") as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        print(f"database: {url.split('@')[-1] if '@' in url else url}")
        migrate.upgrade(url)
        engine = get_engine(url)
        run(engine, tenant, args.rows, args.baseline_rows)
        engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
