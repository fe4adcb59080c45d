"""The bulk page with a big file (AppTest): checked and queued on the runner's thread.

Files above `INLINE_BYTES` are checked, and batches above `INLINE_ROWS` queued, by
`core.batch_jobs` beside the page; the thresholds are lowered here so a few rows take
that road.
"""

from __future__ import annotations

import time

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from core import cores, csv_import
from core.models.batches import SendBatch
from core.models.messages import WhatsAppMessage
from tests.dashboard.pages import dashboard_env, page, person, texts
from tests.dashboard.test_bulk import MODULE, _templates

__all__ = ["dashboard_env"]


def _until(at, condition, what: str):
    """Rerun the page until `condition(at)` holds (the runner's thread works meanwhile)."""
    deadline = time.monotonic() + 60
    while not condition(at):
        assert time.monotonic() < deadline, f"still waiting for {what}: {texts(at)[:500]}"
        time.sleep(0.2)
        at = at.run()
        assert not at.exception, at.exception
    return at


@pytest.mark.parametrize("workers", [1, 2], ids=["in-the-server", "in-worker-processes"])
def test_a_big_file_is_checked_and_queued_beside_the_page(
    dashboard_env: str,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
    workers: int,
) -> None:
    """With 2 workers the rows are checked in worker processes (`core.cores`), as a file
    of 20,000 rows or more is on a machine of two cores or more."""
    monkeypatch.setattr("dashboard.views.bulk.INLINE_BYTES", 0)
    monkeypatch.setattr("dashboard.views.bulk.INLINE_ROWS", 0)
    monkeypatch.setattr(csv_import, "SPREAD_FROM", 1)
    monkeypatch.setattr(cores, "workers", lambda: workers)
    cores.shutdown()
    request.addfinalizer(cores.shutdown)
    cores.warm(wait=True)  # as the page has them started by the time a file comes
    _templates(engine)
    data = (
        "Proveedor;Teléfono;Pedido;Importe;Consentimiento\n"
        + "".join(f"Proveedor {n};612 500 {n:03d};PO-BG-{n};{n},50;sí\n" for n in range(1, 6))
        + "Sin teléfono;;PO-BG-9;1,00;sí\n"
    ).encode("cp1252")
    at = page(MODULE, person("buyer", name="ana")).run()
    at.file_uploader(key="bulk_file").set_value(("grande.csv", data, "text/csv"))
    at = at.run()
    assert not at.exception

    def ready(at) -> bool:
        return any(b.key and b.key.startswith("bulk_go_") for b in at.button)

    at = _until(at, ready, "the check")
    assert "1 row will not be sent" in texts(at)
    assert len(cores.pids()) == (workers if workers > 1 else 0)
    go = next(b for b in at.button if b.key and b.key.startswith("bulk_go_"))
    assert go.label == "Send 5 messages"
    at = go.click().run()
    assert not at.exception
    at = _until(at, lambda at: "batch" in at.query_params, "the batch to be recorded")
    with Session(engine) as session:
        (batch,) = session.exec(select(SendBatch)).all()
    deadline = time.monotonic() + 60
    while batch.status == "importing" and time.monotonic() < deadline:
        time.sleep(0.2)
        with Session(engine) as session:
            batch = session.get(SendBatch, batch.id)  # type: ignore[assignment]
    with Session(engine) as session:
        messages = session.exec(select(WhatsAppMessage)).all()
    assert (batch.name, batch.created_by, batch.total_rows) == ("grande", "ana", 6)
    assert batch.status == "running" and len(messages) == 5
    at = at.run()
    assert "Batch: grande" in texts(at)
    sent = next(b for b in at.button if b.key and b.key.startswith("bulk_sent_"))
    assert sent.disabled  # the same file cannot start a second batch
