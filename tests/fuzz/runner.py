"""Sending generated cases to a running app, and reading what the database holds.

`send_all` posts cases with a few in flight (httpx over real TCP; hang-ups over a raw
socket, since an HTTP client never stops mid-body on purpose) and tallies the answers.
`snapshot` counts the rows of every table (the SQLite inbox file's too) and digests the
rows of the outbox and the supplier directory, so a refused request that wrote, or
changed, anything shows as a difference.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import httpx
from sqlalchemy import Engine, inspect, text

from core.alerts.kinds import AlertKind
from core.webhooks.inbox import open_inbox
from tests.fuzz.cases import Case, Outcome, Tally

#: Tables whose rows the refusal digests cover (besides every table's row count).
DIGESTED = ("whatsapp_messages", "suppliers")


async def _hang_up(base_url: str, case: Case) -> Outcome:
    """Send the head and part of the body, then close: the client went away."""
    parts = urlsplit(base_url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    head = [f"POST {case.path} HTTP/1.1".encode(), f"host: {parts.netloc}".encode()]
    head += [name + b": " + value for name, value in case.headers]
    head.append(f"content-length: {len(case.body)}".encode())
    writer.write(b"\r\n".join(head) + b"\r\n\r\n" + case.body[: case.cut_at or 0])
    await writer.drain()
    writer.close()
    await writer.wait_closed()
    del reader
    return Outcome(case, None, "")


async def _post(client: httpx.AsyncClient, case: Case) -> Outcome:
    """One POST; a connection the server dropped without an answer is an outcome too."""
    try:
        response = await client.post(case.path, content=case.body, headers=list(case.headers))
    except httpx.TransportError as exc:
        return Outcome(case, None, f"no answer: {type(exc).__name__}: {exc}"[:300])
    return Outcome(case, response.status_code, response.text[:300])


async def send_all(
    base_url: str, cases: Sequence[Case], concurrency: int, tally: Tally
) -> list[Outcome]:
    """Post every case (at most `concurrency` at once); tally and return the outcomes in order.

    Each request has a connection of its own: a kept-alive connection the server closes
    for idling while the client reuses it would look like a dropped request.
    """
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=0)
    gate = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=base_url, timeout=120, limits=limits) as client:

        async def one(case: Case) -> Outcome:
            async with gate:
                if case.cut_at is not None:
                    return await _hang_up(base_url, case)
                return await _post(client, case)

        outcomes = await asyncio.gather(*(one(case) for case in cases))
    for outcome in outcomes:
        tally.add(outcome)
    return list(outcomes)


def post_all(base_url: str, cases: Sequence[Case], concurrency: int, tally: Tally) -> list[Outcome]:
    """`send_all` from synchronous code, on an event loop of its own in a worker thread:
    the calling thread may already run one (Playwright's sync API keeps one running in
    the main thread for the whole session once a browser test has run)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, send_all(base_url, cases, concurrency, tally)).result()


def _count_tables(engine: Engine, prefix: str = "") -> dict[str, int]:
    names = inspect(engine).get_table_names()
    with engine.connect() as conn:
        return {
            prefix + name: int(conn.execute(text(f'SELECT count(*) FROM "{name}"')).scalar_one())
            for name in names
        }


def snapshot(engine: Engine) -> dict[str, int | str]:
    """Row counts of every table (and the SQLite inbox's), digests of the outbox and suppliers.

    The admins' alert that a run of bad signatures began (core.webhooks.rejections) is
    the refusals' own bookkeeping, as `webhook_rejections` is: counted apart, under
    `signature_alerts`, so that any other alert a request writes is a change."""
    state: dict[str, int | str] = dict(_count_tables(engine))
    inbox = open_inbox(engine, create=False)
    if inbox is not None:
        state.update(_count_tables(inbox.engine, "inbox:"))
    with engine.connect() as conn:
        signature_alerts = conn.execute(
            text("SELECT count(*) FROM alert_events WHERE kind = :kind"),
            {"kind": AlertKind.WEBHOOK_SIGNATURES.value},
        ).scalar_one()
        state["signature_alerts"] = signature_alerts
        state["alert_events"] = int(state["alert_events"]) - signature_alerts
        for name in DIGESTED:
            digest = hashlib.sha256()
            for row in conn.execute(text(f'SELECT * FROM "{name}" ORDER BY id')):
                digest.update(repr(tuple(row)).encode())
            state[f"digest:{name}"] = digest.hexdigest()
    return state


def differences(
    before: dict[str, int | str], after: dict[str, int | str], ignore: Sequence[str]
) -> dict[str, tuple[int | str | None, int | str | None]]:
    """What changed between two snapshots (tables in `ignore` left out)."""
    keys = (set(before) | set(after)) - {
        k for k in set(before) | set(after) if k.split(":")[-1] in ignore
    }
    return {k: (before.get(k), after.get(k)) for k in sorted(keys) if before.get(k) != after.get(k)}
