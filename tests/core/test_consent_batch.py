"""Consent in CSV batches, read in bulk: the tenant's setting once, suppliers' consent by column."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

import core.consent.batch as consent_batch
from core.bulk import plan_csv
from core.sandbox.catalog import DEFAULT_TEMPLATE_FIELDS, default_templates
from core.templates import upsert_templates
from tests.fixtures.consent import allow_unrecorded, consenting_supplier

TENANT = "default"
CSV = "supplier,phone,po,amount,currency,language\n" + "".join(
    f"Prov {n},612 000 0{n:02d},PO-{n},10.00,EUR,es\n" for n in range(12)
)


@pytest.fixture
def db(engine: Engine) -> Engine:
    upsert_templates(
        engine, TENANT, [t.as_graph(DEFAULT_TEMPLATE_FIELDS) for t in default_templates()]
    )
    return engine


def _plan(db: Engine, confirmed: bool) -> dict[int, str]:
    plan = plan_csv(CSV.encode(), tenant_id=TENANT, template_name="po_notification",
                    language="es", engine=db, consent_confirmed=confirmed)  # fmt: skip
    return {check.row_number: "; ".join(check.errors) for check in plan.checks}


def test_the_tenant_setting_is_read_once_for_a_file(
    db: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[str] = []
    real = consent_batch.allows_unrecorded

    def counted(session: object, tenant_id: str) -> bool:
        reads.append(tenant_id)
        return real(session, tenant_id)  # type: ignore[arg-type]

    monkeypatch.setattr(consent_batch, "allows_unrecorded", counted)
    consenting_supplier(db, "+34612000003")
    errors = _plan(db, confirmed=False)
    assert reads == [TENANT]  # twelve rows, one read
    assert errors[5] == "" and all("no recorded consent" in errors[r] for r in errors if r != 5)
    reads.clear()
    assert set(_plan(db, confirmed=True).values()) == {""}
    assert reads == []  # every row confirmed: not needed
    allow_unrecorded(db, TENANT)
    assert set(_plan(db, confirmed=False).values()) == {""}
    assert reads == [TENANT]


def test_suppliers_are_read_as_their_consent_columns(db: Engine) -> None:
    from sqlmodel import Session

    consenting_supplier(db, "+34612000001")
    with Session(db) as session:
        found = consent_batch.suppliers_at(session, TENANT, ["+34612000001", "+34600000000"])
        assert set(found) == {"+34612000001"}
        held = found["+34612000001"]
        assert held.opted_in is True and held.opted_out_at is None and held.name
        assert consent_batch.suppliers_at(session, "other", ["+34612000001"]) == {}
