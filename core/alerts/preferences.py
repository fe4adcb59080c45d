"""Each user's choice of alerts: which kinds, by e-mail and/or in the chat channel.

No stored row means the default: every kind the user's role can receive, on both
channels (a channel the installation has not configured is simply not used). A user
turns kinds off in the dashboard's Settings > Alerts, or with `set_choices`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, Table, delete, insert, select

from core import clock
from core.alerts.kinds import AlertKind, kinds_for_role
from core.models.alerts import AlertPreference

PREFS: Table = AlertPreference.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Choice:
    """Whether one kind of alert reaches a user by e-mail and in the chat channel."""

    email: bool = True
    chat: bool = True


DEFAULT = Choice()


def stored_choices(conn: Connection, user_ids: Iterable[int]) -> dict[tuple[int, str], Choice]:
    """The stored choices of these users, by (user id, kind); missing pairs: `DEFAULT`."""
    ids = sorted(set(user_ids))
    if not ids:
        return {}
    rows = conn.execute(
        select(PREFS.c.user_id, PREFS.c.kind, PREFS.c.email, PREFS.c.chat).where(
            PREFS.c.user_id.in_(ids)
        )
    )
    return {(row.user_id, row.kind): Choice(bool(row.email), bool(row.chat)) for row in rows}


def user_choices(engine: Engine, user_id: int, role: str) -> dict[AlertKind, Choice]:
    """Every kind a user of `role` can receive, with the user's choice (or the default)."""
    with engine.connect() as conn:
        stored = stored_choices(conn, [user_id])
    return {kind: stored.get((user_id, kind.value), DEFAULT) for kind in kinds_for_role(role)}


def set_choices(
    engine: Engine,
    user_id: int,
    choices: Mapping[AlertKind, Choice],
    now: datetime | None = None,
) -> None:
    """Store a user's choices (replacing the ones stored for these kinds)."""
    if not choices:
        return
    at = now or clock.now()
    kinds = [kind.value for kind in choices]
    with engine.begin() as conn:
        conn.execute(delete(PREFS).where(PREFS.c.user_id == user_id, PREFS.c.kind.in_(kinds)))
        conn.execute(
            insert(PREFS),
            [
                {
                    "user_id": user_id,
                    "kind": kind.value,
                    "email": choice.email,
                    "chat": choice.chat,
                    "updated_at": at,
                }
                for kind, choice in choices.items()
            ],
        )
