"""Dashboard sessions kept on the server: sign in once, stay in across reloads and tabs.

A sign-in (a password today, single sign-on tomorrow: `start_session(engine, user,
method)` does not care how the person was identified) creates a `dashboard_sessions`
row. The browser gets a random 256-bit token in an HttpOnly cookie; the table keeps only
its SHA-256. Streamlit's page script cannot set cookies, so the row is born with a
one-time *claim code* (two minutes, also stored hashed) that the signing-in page trades
once, at a server route, for the cookie (`claim`); the token is made at that moment.

Every dashboard rerun checks its session by row id (`check`): revoked, past its absolute
lifetime (`LIFETIME`), idle for the configured time, or its user removed, disabled,
re-created or given a new password, and it ends with a reason; otherwise `last_seen_at`
moves on. A new tab or a reload finds its session from the cookie (`resume`). Signing
out revokes the row (`end_session`), so every tab holding it is out at its next click;
disabling a user, a new password or removing them revokes all theirs (`end_user_sessions`).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import Engine, delete, or_, select, update

from core.i18n import N_
from core.login_guard.session import ENDED, Verdict, idle_text, user_still_valid
from core.models.dashboard_sessions import DashboardSession
from core.users import UserInfo

TABLE = DashboardSession.__table__  # type: ignore[attr-defined]
#: The cookie that carries the token (HttpOnly, SameSite=Strict; Secure behind TLS).
COOKIE_NAME = "wanotify_session"
#: A session ends this long after sign-in however active it is (a working day and more).
LIFETIME = timedelta(hours=12)
#: How long the signing-in page has to trade its claim code for the cookie.
CLAIM_TTL = timedelta(minutes=2)
#: `last_seen_at` is written at most this often (a click is not a write each time; the
#: idle limit is counted in minutes, so ending up to this much early does not matter).
TOUCH_EVERY = timedelta(seconds=15)
#: Ended sessions are deleted this long after they ended (kept a while for support).
KEEP_ENDED = timedelta(days=7)
#: What another tab of a session signed out says at its next click.
SIGNED_OUT = N_("You signed out (perhaps in another tab): sign in again")
#: Tokens and claim codes: 32 random bytes, URL-safe text (43 characters).
_TOKEN_BYTES = 32
#: Longest token or code looked up: anything longer is not ours (and is not hashed).
MAX_TOKEN = 100


class EndReason(StrEnum):
    """Why a session was revoked (stored, and decides what the next screen says)."""

    SIGNED_OUT = "signed_out"
    IDLE = "idle"
    USER_CHANGED = "user_changed"  # removed, disabled, re-created, new password
    EXPIRED = "expired"


@dataclass(frozen=True)
class Started:
    """A new session: its row id (kept by the tab) and the one-time code for its cookie."""

    session_id: int
    claim_code: str


@dataclass(frozen=True)
class Resumed:
    """A session found from a cookie: its id and user, or why it no longer stands."""

    session_id: int | None
    verdict: Verdict


def digest(secret: str) -> str:
    """The stored form of a token or claim code (SHA-256, hex): enough for 256 random bits."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def start_session(engine: Engine, user: UserInfo, method: str, *, now: datetime) -> Started:
    """Open a session for `user`, identified by `method` ("password", "oidc", ...).

    Call only after the person was identified (and the throttle passed); returns the row
    id and a claim code for `claim`. Also deletes sessions ended or expired long ago.
    """
    code = secrets.token_urlsafe(_TOKEN_BYTES)
    with engine.begin() as conn:
        conn.execute(
            delete(TABLE).where(
                or_(TABLE.c.expires_at < now - KEEP_ENDED, TABLE.c.revoked_at < now - KEEP_ENDED)
            )
        )
        session_id = conn.execute(
            TABLE.insert()
            .values(
                claim_hash=digest(code),
                claim_expires_at=now + CLAIM_TTL,
                user_id=user.id,
                user_stamp=user.session_stamp,
                method=method[:20],
                created_at=now,
                last_seen_at=now,
                expires_at=now + LIFETIME,
            )
            .returning(TABLE.c.id)
        ).scalar_one()
    return Started(int(session_id), code)


def claim(engine: Engine, code: str, *, now: datetime) -> str | None:
    """Trade a claim code, once and in time, for the session's cookie token; else None.

    The token is made here and only its hash is stored: whoever held the code (the page
    that signed in) gets the cookie, and the code is spent whether or not it arrives.
    """
    if not code or len(code) > MAX_TOKEN:
        return None
    token = secrets.token_urlsafe(_TOKEN_BYTES)
    col = TABLE.c
    with engine.begin() as conn:
        done = conn.execute(
            update(TABLE)
            .where(
                col.claim_hash == digest(code),
                col.claim_expires_at > now,
                col.revoked_at.is_(None),
                col.expires_at > now,
            )
            .values(token_hash=digest(token), claim_hash=None, claim_expires_at=None)
        )
    return token if done.rowcount == 1 else None


def resume(
    engine: Engine, token: str | None, *, now: datetime, idle: timedelta, allow_demo: bool
) -> Resumed:
    """The session a cookie's token names, checked as `check` does (a reload, a new tab).

    An unknown token says nothing (Verdict(None)); a session signed out says nothing
    either; one that ended for another reason says why.
    """
    if not token or len(token) > MAX_TOKEN:
        return Resumed(None, Verdict(None))
    with engine.connect() as conn:
        found = conn.execute(
            select(TABLE.c.id).where(TABLE.c.token_hash == digest(token))
        ).scalar_one_or_none()
    if found is None:
        return Resumed(None, Verdict(None))
    verdict = check(engine, int(found), now=now, idle=idle, allow_demo=allow_demo)
    if verdict.user is None:
        # After a deliberate sign-out a reload just shows the sign-in form.
        return Resumed(
            None, Verdict(None, None if verdict.reason == SIGNED_OUT else verdict.reason)
        )
    return Resumed(int(found), verdict)


def check(
    engine: Engine, session_id: int, *, now: datetime, idle: timedelta, allow_demo: bool
) -> Verdict:
    """Whether session `session_id` stands at `now` (one read; a write when it moves on,
    at most every `TOUCH_EVERY`).

    Fails closed: a missing row, a revoked or expired one, an idle one, or a user who is
    no longer the same active account ends it (and revokes it, so other tabs end too).
    """
    with engine.connect() as conn:
        row = conn.execute(select(TABLE).where(TABLE.c.id == session_id)).mappings().first()
    if row is None:
        return Verdict(None, ENDED)
    if row["revoked_at"] is not None:
        return Verdict(None, _ended_text(row["revoked_reason"], idle))
    if row["expires_at"] <= now:
        _revoke(engine, session_id, EndReason.EXPIRED, now)
        return Verdict(None, ENDED)
    if now - row["last_seen_at"] >= idle:
        _revoke(engine, session_id, EndReason.IDLE, now)
        return Verdict(None, idle_text(idle))
    fresh = user_still_valid(engine, row["user_id"], row["user_stamp"], allow_demo=allow_demo)
    if fresh is None:
        _revoke(engine, session_id, EndReason.USER_CHANGED, now)
        return Verdict(None, ENDED)
    if now - row["last_seen_at"] >= TOUCH_EVERY:
        with engine.begin() as conn:
            conn.execute(
                update(TABLE)
                .where(TABLE.c.id == session_id, TABLE.c.last_seen_at < now)
                .values(last_seen_at=now)
            )
    return Verdict(fresh)


def end_session(
    engine: Engine,
    *,
    session_id: int | None = None,
    token: str | None = None,
    now: datetime,
    reason: EndReason = EndReason.SIGNED_OUT,
) -> bool:
    """Revoke one session, named by row id or by cookie token: signing out, in every tab.

    True when a standing session was revoked by this call.
    """
    if session_id is None:
        if not token or len(token) > MAX_TOKEN:
            return False
        with engine.connect() as conn:
            session_id = conn.execute(
                select(TABLE.c.id).where(TABLE.c.token_hash == digest(token))
            ).scalar_one_or_none()
        if session_id is None:
            return False
    return _revoke(engine, session_id, reason, now)


def end_user_sessions(
    engine: Engine, user_id: int, *, now: datetime, reason: EndReason = EndReason.USER_CHANGED
) -> int:
    """Revoke every standing session of a user (disabled, new password): how many."""
    with engine.begin() as conn:
        done = conn.execute(
            update(TABLE)
            .where(TABLE.c.user_id == user_id, TABLE.c.revoked_at.is_(None))
            .values(revoked_at=now, revoked_reason=reason.value, claim_hash=None)
        )
    return int(done.rowcount or 0)


def _revoke(engine: Engine, session_id: int, reason: EndReason, now: datetime) -> bool:
    with engine.begin() as conn:
        done = conn.execute(
            update(TABLE)
            .where(TABLE.c.id == session_id, TABLE.c.revoked_at.is_(None))
            .values(revoked_at=now, revoked_reason=reason.value, claim_hash=None)
        )
    return bool(done.rowcount)


def _ended_text(reason: str | None, idle: timedelta) -> str:
    """What the sign-in screen says about a session that was revoked."""
    if reason == EndReason.SIGNED_OUT:
        return SIGNED_OUT
    if reason == EndReason.IDLE:
        return idle_text(idle)
    return ENDED
