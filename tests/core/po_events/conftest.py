"""Shared helpers of the PO-event tests: the template registry, events and outbox reads."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from core.models import WhatsAppMessage
from core.po_events.publish import example_po_event
from core.sandbox.catalog import DEFAULT_TEMPLATE_FIELDS, default_templates
from core.templates import upsert_templates

TENANT = "acme"


@pytest.fixture
def po_templates(engine: Engine) -> Engine:
    """The sandbox account's templates (po_notification in es and en) in the registry."""
    definitions = [t.as_graph(DEFAULT_TEMPLATE_FIELDS) for t in default_templates()]
    report = upsert_templates(engine, TENANT, definitions)
    assert report.added == len(definitions) and not report.skipped
    return engine


def po_event(**overrides: Any) -> dict[str, Any]:
    """A well-formed event for the test tenant; `overrides` replace top-level fields."""
    event = example_po_event(tenant_id=TENANT)
    event.update(overrides)
    return event


def outbox(engine: Engine, tenant: str = TENANT) -> list[WhatsAppMessage]:
    """Every outbox row of the tenant, oldest first."""
    with Session(engine) as session:
        query = select(WhatsAppMessage).where(WhatsAppMessage.tenant_id == tenant)
        return list(session.exec(query.order_by(col(WhatsAppMessage.created_at))))


async def wait_until(check: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    """Poll `check` (sync) until it returns something truthy; fail naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = await asyncio.to_thread(check)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


def body_parameters(row: WhatsAppMessage) -> dict[str, Any]:
    """The body parameters of the stored Cloud API request, by name, as the supplier sees
    them (a currency parameter as its `fallback_value`, plus its code and amount_1000)."""
    assert row.request_payload is not None
    found: dict[str, Any] = {}
    for component in row.request_payload["template"]["components"]:
        if component["type"] != "body":
            continue
        for parameter in component["parameters"]:
            if parameter["type"] == "currency":
                currency = parameter["currency"]
                found[parameter["parameter_name"]] = currency["fallback_value"]
                found["currency"] = (currency["code"], currency["amount_1000"])
            else:
                found[parameter["parameter_name"]] = parameter["text"]
    return found
