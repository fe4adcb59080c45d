"""The template sync per WhatsApp Business Account: templates belong to their WABA.

Each tenant's numbers name the WABAs it sends from; every distinct WABA's template list
is fetched once (with the token of one of its numbers: a WABA shared by tenants is read
once, within Meta's 200 management requests per hour), and each tenant's registry gets
the union of its WABAs' templates, each row marked with the WABA it came from (the
default number's WABA first when two hold the same name and language). A WABA that
cannot be read leaves its tenants' registries as they were: no template is deactivated
on a partial list. While no number is registered at all, every tenant shares the
environment's number and so its WABA (the rule `core.routing` sends by); once any is
registered, a tenant without a number of its own gets `NumberError`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Engine

from core.cloud_api import CloudApiClient
from core.errors import GraphError
from core.numbers.errors import NumberError
from core.numbers.registry import SenderNumber, sending_numbers, shared_environment_number
from core.settings import Settings
from core.templates.registry import SyncReport, upsert_templates


@dataclass(frozen=True)
class TenantSync:
    """One tenant's sync: the report, or why its registry was left as it was."""

    tenant_id: str
    wabas: tuple[str, ...]
    report: SyncReport | None
    error: str | None
    #: the first WABA's refusal, as Meta gave it (None when the sync ran)
    graph_error: GraphError | None = None


def tenant_wabas(numbers: Sequence[SenderNumber], tenant_id: str) -> list[SenderNumber]:
    """One number per distinct WABA of the tenant (its default number's WABA first).

    While no number is registered at all, every tenant sends from the environment's
    number (`core.routing`), so every tenant reads that number's WABA: a tenant that can
    send has templates to send. Once numbers are registered, only the tenant's own count.
    """
    shared = shared_environment_number(numbers)
    if shared is not None:
        numbers = [replace(shared, tenant_id=tenant_id)]
    chosen: dict[str, SenderNumber] = {}
    for number in sorted(numbers, key=lambda n: not n.is_default):
        if number.tenant_id == tenant_id and number.waba_id and number.access_token:
            chosen.setdefault(number.waba_id, number)
    return list(chosen.values())


async def sync_by_waba(
    engine: Engine, settings: Settings, tenant_ids: Sequence[str] | None = None
) -> list[TenantSync]:
    """Sync the templates of `tenant_ids` (every tenant with a number when None)."""
    numbers = sending_numbers(engine, settings)
    tenants = list(tenant_ids) if tenant_ids is not None else sorted(
        {n.tenant_id for n in numbers}
    )  # fmt: skip
    fetched: dict[str, list[dict[str, Any]] | GraphError] = {}
    results = []
    for tenant in tenants:
        readers = tenant_wabas(numbers, tenant)
        if not readers:
            results.append(TenantSync(tenant, (), None, _no_waba(tenant)))
            continue
        for number in readers:
            assert number.waba_id is not None
            if number.waba_id not in fetched:
                fetched[number.waba_id] = await _fetch(settings, number)
        failed = [
            (n.waba_id, f) for n in readers if isinstance(f := fetched[n.waba_id or ""], GraphError)
        ]
        wabas = tuple(n.waba_id or "" for n in readers)
        if failed:
            said = "; ".join(f"WABA {waba}: {error}" for waba, error in failed)
            results.append(TenantSync(tenant, wabas, None, said, failed[0][1]))
            continue
        definitions: list[dict[str, Any]] = []
        origin: dict[tuple[str, str], str] = {}
        for number in readers:
            listed = fetched[number.waba_id or ""]
            assert not isinstance(listed, GraphError)
            for data in listed:
                key = (str(data.get("name")), str(data.get("language")))
                if key not in origin:
                    origin[key] = number.waba_id or ""
                    definitions.append(data)
        report = await asyncio.to_thread(
            upsert_templates, engine, tenant, definitions, wabas=origin
        )
        results.append(TenantSync(tenant, wabas, report, None))
    return results


def sync_tenant_now(engine: Engine, settings: Settings, tenant_id: str) -> SyncReport:
    """Sync one tenant's templates from every WABA of its numbers; its report.

    Raises the first WABA's `GraphError` when one cannot be read (nothing changed), or
    `NumberError` when the tenant has no number with a WABA (numbers are registered and
    none is the tenant's: `tenant_wabas`).
    """

    async def _run() -> list[TenantSync]:
        return await sync_by_waba(engine, settings, [tenant_id])

    (result,) = asyncio.run(_run())
    if result.report is not None:
        return result.report
    if result.graph_error is not None:
        raise result.graph_error
    raise NumberError(result.error or _no_waba(tenant_id))


async def _fetch(settings: Settings, number: SenderNumber) -> list[dict[str, Any]] | GraphError:
    assert number.access_token is not None
    async with CloudApiClient(
        settings, max_connections=4, phone_number_id=number.phone_number_id,
        access_token=number.access_token.get_secret_value(),
    ) as client:  # fmt: skip
        try:
            return await client.list_templates(waba_id=number.waba_id)
        except GraphError as exc:
            return exc


def _no_waba(tenant_id: str) -> str:
    return (
        f"tenant {tenant_id} has no number with a WhatsApp Business Account id: templates "
        "live in a WABA (`wanotify numbers add --waba ...`)"
    )
