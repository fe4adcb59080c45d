"""Whether a signed-in dashboard session still stands: the rules shared by every check.

A session ends when it has been idle for the configured time, or when the user it was
opened for is no longer the same in the database: removed (or removed and re-created
under the same name), disabled, given a new password, or a demo account outside sandbox
mode. A changed role, name or tenant grant simply takes effect. The sessions themselves
(kept on the server, checked on every rerun) are core.login_guard.server_sessions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Engine

from core.i18n import N_, _
from core.users import UserInfo, get_user_by_id

#: What a session that ended for any reason but idleness says (never which reason).
ENDED = N_("Your session has ended: sign in again")  # translated where shown


@dataclass(frozen=True)
class Verdict:
    """The user as stored now if the session stands, else None and a reason to show."""

    user: UserInfo | None
    reason: str | None = None


def idle_text(idle: timedelta) -> str:
    """What a session signed out for idleness says."""
    minutes = max(1, int(idle.total_seconds() // 60))
    return _("Signed out after {minutes} min without activity: sign in again").format(
        minutes=minutes
    )


def user_still_valid(
    engine: Engine, user_id: int, stamp: str, *, allow_demo: bool
) -> UserInfo | None:
    """The user as stored now if still the same active account a session was opened for
    (same stamp: not re-created, same password; not disabled; a demo account only in
    sandbox mode), else None. One indexed read."""
    fresh = get_user_by_id(engine, user_id)
    if (
        fresh is None
        or not stamp
        or fresh.session_stamp != stamp
        or not fresh.is_active
        or (fresh.is_demo and not allow_demo)
    ):
        return None
    return fresh
