"""Where the seed interface's database work runs: the session's database, off the loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from sqlalchemy import Connection, Engine
from sqlmodel import Session

from core.db import get_engine

P = ParamSpec("P")
T = TypeVar("T")


def engine_of(session: Session | Engine | None) -> Engine:
    """The engine behind a caller's session (or the engine itself; None: DATABASE_URL's).

    wanotify writes in transactions of its own on that engine, never inside the caller's
    open transaction: its outbox rows must be committed when a send returns.
    """
    if session is None:
        return get_engine()
    if isinstance(session, Engine):
        return session
    bind = session.get_bind()
    if isinstance(bind, Connection):
        return bind.engine
    return bind


class Database:
    """The database of one service or repository; `run` keeps blocking calls off the loop."""

    def __init__(self, session: Session | Engine | None) -> None:
        self.engine = engine_of(session)

    async def run(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Call the synchronous `fn` on a worker thread and await its result."""
        return await asyncio.to_thread(fn, *args, **kwargs)
