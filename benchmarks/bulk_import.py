"""Bulk send from a CSV at volume: check a file and queue its batch, beside one-by-one sends.

    python -m benchmarks.bulk_import [--rows 10000] [--baseline-rows 500] [--db PATH]

Builds a CSV of `--rows` PO notices as a Spanish Excel writes it (semicolons, decimal
commas, Windows-1252), then times, on a fresh SQLite file:

- `plan_csv`: read, map and check every row (what the bulk page does on upload);
- `start_batch`: record the batch and queue every valid row in one transaction (the
  click on "Send N messages");
- the naive baseline: the single-notice path (`send_po_notice`, one transaction per
  row, as a loop over the file would do), on `--baseline-rows` rows, scaled per row.

It prints rows per second for each and the ratio of the batch path to the baseline,
measured in the same run. Nothing is sent: the outbox only gets pending rows.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from sqlalchemy import Engine

from core import migrate
from core.bulk import plan_csv, start_batch
from core.db import get_engine
from core.notify import PoNotice, send_po_notice
from core.sandbox.catalog import DEFAULT_TEMPLATE_FIELDS, default_templates
from core.templates import upsert_templates

TENANT = "bench"


def spanish_csv(rows: int, prefix: str) -> bytes:
    """`rows` PO notices, semicolon separated with decimal commas, in Windows-1252."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(["Proveedor", "Teléfono", "Nº Pedido", "Importe", "Moneda"])
    for n in range(rows):
        phone = f"6{10 + n % 89:02d} {n // 1000 % 1000:03d} {n % 1000:03d}"
        writer.writerow([f"Proveedor Núñez {n}", phone, f"{prefix}-{n:06d}", f"{n},50", "EUR"])
    return out.getvalue().encode("cp1252")


def _timed(label: str, rows: int, seconds: float) -> float:
    rate = rows / seconds if seconds > 0 else float("inf")
    print(f"{label:<38} {rows:>7,} rows  {seconds:8.2f} s  {rate:9,.0f} rows/s")
    return rate


def run(engine: Engine, rows: int, baseline_rows: int) -> None:
    """Time the batch path and the one-by-one baseline on `engine`; print the ratios."""
    data = spanish_csv(rows, "PO-BATCH")
    started = time.perf_counter()
    plan = plan_csv(
        data, tenant_id=TENANT, template_name="po_notification", language="es", engine=engine
    )
    plan_rate = _timed("plan_csv (read + check every row)", rows, time.perf_counter() - started)
    assert plan.valid_count == rows, [c.errors for c in plan.rejected][:3]

    started = time.perf_counter()
    batch = start_batch(plan, name="bench", created_by="bench", engine=engine)
    batch_rate = _timed("start_batch (record + queue)", rows, time.perf_counter() - started)
    assert batch.total_rows == rows

    started = time.perf_counter()
    for n in range(baseline_rows):
        send_po_notice(
            PoNotice(
                tenant_id=TENANT,
                supplier_name=f"Proveedor Solo {n}",
                phone=f"6{10 + n % 89:02d} 9{n // 100 % 100:02d} {n % 100:02d}1",
                po_number=f"PO-ONE-{n:06d}",
                amount=Decimal(f"{n}.50"),
                currency="EUR",
                language="es",
            ),
            engine=engine,
        )
    naive_rate = _timed(
        "baseline: send_po_notice per row", baseline_rows, time.perf_counter() - started
    )
    print()
    print(f"start_batch vs one-by-one sends:   {batch_rate / naive_rate:5.1f}x faster per row")
    whole = rows / plan_rate + rows / batch_rate
    print(f"upload to queued, {rows:,} rows:       {whole:5.1f} s "
          f"(one-by-one would take {rows / naive_rate:5.1f} s)")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, prepare a fresh database, run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--baseline-rows", type=int, default=500)
    parser.add_argument("--db", type=Path, default=None, help="SQLite file (default: temporary)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="wanotify-bulk-bench-") as tmp:
        path = args.db or Path(tmp) / "bench.db"
        url = f"sqlite:///{path}"
        migrate.upgrade(url)
        engine = get_engine(url)
        upsert_templates(
            engine, TENANT, [t.as_graph(DEFAULT_TEMPLATE_FIELDS) for t in default_templates()]
        )
        run(engine, args.rows, args.baseline_rows)
        engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
