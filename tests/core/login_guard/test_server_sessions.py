"""core.login_guard.server_sessions on a real database (SQLite file, or PostgreSQL when
WANOTIFY_TEST_DATABASE_URL is set): claim once, resume by cookie, idle, lifetime,
revocation by signing out (every holder) and by changes to the user."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select

from core.login_guard import server_sessions as ss
from core.login_guard.session import ENDED, idle_text
from core.models.dashboard_sessions import DashboardSession
from core.users import UserInfo, add_user, remove_user, set_active, set_password

PASSWORD = "correct horse battery"
T0 = datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC)
IDLE = timedelta(minutes=60)
TABLE = DashboardSession.__table__  # type: ignore[attr-defined]


@pytest.fixture
def ana(engine: Engine) -> UserInfo:
    return add_user(engine, "ana", PASSWORD, "buyer", "acme")


def _open(engine: Engine, user: UserInfo, at: datetime = T0) -> tuple[int, str]:
    """A session for `user` with its cookie claimed: (row id, cookie token)."""
    started = ss.start_session(engine, user, "password", now=at)
    token = ss.claim(engine, started.claim_code, now=at)
    assert token is not None
    return started.session_id, token


def _resume(engine: Engine, token: str | None, at: datetime) -> ss.Resumed:
    return ss.resume(engine, token, now=at, idle=IDLE, allow_demo=False)


def _check(engine: Engine, session_id: int, at: datetime) -> ss.Verdict:
    return ss.check(engine, session_id, now=at, idle=IDLE, allow_demo=False)


def test_only_hashes_are_stored_and_a_claim_code_works_once_in_time(
    engine: Engine, ana: UserInfo
) -> None:
    started = ss.start_session(engine, ana, "oidc", now=T0)
    late = ss.start_session(engine, ana, "password", now=T0)
    assert ss.claim(engine, late.claim_code, now=T0 + ss.CLAIM_TTL) is None  # too late
    assert ss.claim(engine, "not-a-code", now=T0) is None
    assert ss.claim(engine, "x" * 5000, now=T0) is None
    token = ss.claim(engine, started.claim_code, now=T0 + timedelta(seconds=5))
    assert token is not None and len(token) >= 43
    assert ss.claim(engine, started.claim_code, now=T0) is None  # spent
    with engine.connect() as conn:
        row = conn.execute(select(TABLE).where(TABLE.c.id == started.session_id)).mappings().one()
    assert row["token_hash"] == ss.digest(token) and token not in row.values()
    assert row["claim_hash"] is None and row["method"] == "oidc"
    assert row["user_id"] == ana.id and row["expires_at"] == T0 + ss.LIFETIME


def test_a_cookie_resumes_its_session_in_a_new_tab_and_keeps_it_alive(
    engine: Engine, ana: UserInfo
) -> None:
    session_id, token = _open(engine, ana)
    resumed = _resume(engine, token, T0 + timedelta(minutes=59))
    assert resumed.session_id == session_id and resumed.verdict.user == ana
    # activity in one tab counts for all: 59 minutes after the last click, not the first
    assert _check(engine, session_id, T0 + timedelta(minutes=118)).user == ana
    # clicks closer together than TOUCH_EVERY are not written (nor needed: minutes count)
    at = T0 + timedelta(minutes=118)
    assert _check(engine, session_id, at + ss.TOUCH_EVERY / 2).user == ana
    assert _check(engine, session_id, at + IDLE - timedelta(seconds=1)).user == ana
    assert _resume(engine, None, T0).verdict == ss.Verdict(None)
    assert _resume(engine, "forged", T0).verdict == ss.Verdict(None)
    assert _resume(engine, "y" * 500, T0).verdict == ss.Verdict(None)


def test_an_idle_session_ends_for_every_tab_with_the_reason(engine: Engine, ana: UserInfo) -> None:
    session_id, token = _open(engine, ana)
    ended = _check(engine, session_id, T0 + IDLE)
    assert ended.user is None and ended.reason == idle_text(IDLE)
    # revoked: coming back sooner by another tab or a reload does not revive it
    assert _check(engine, session_id, T0 + timedelta(minutes=1)).reason == idle_text(IDLE)
    resumed = _resume(engine, token, T0 + timedelta(minutes=1))
    assert resumed.session_id is None and resumed.verdict.reason == idle_text(IDLE)


def test_a_session_ends_after_its_lifetime_however_active(engine: Engine, ana: UserInfo) -> None:
    session_id, _token = _open(engine, ana)
    at = T0
    while at + timedelta(minutes=30) < T0 + ss.LIFETIME:
        at += timedelta(minutes=30)
        assert _check(engine, session_id, at).user is not None
    assert _check(engine, session_id, T0 + ss.LIFETIME).reason == ENDED


def test_signing_out_ends_the_session_in_every_tab(engine: Engine, ana: UserInfo) -> None:
    session_id, token = _open(engine, ana)
    other = _resume(engine, token, T0).session_id
    assert other == session_id
    assert ss.end_session(engine, session_id=session_id, now=T0)
    assert not ss.end_session(engine, session_id=session_id, now=T0)  # already
    assert _check(engine, session_id, T0).reason == ss.SIGNED_OUT  # the other tab
    assert _resume(engine, token, T0) == ss.Resumed(None, ss.Verdict(None))  # a reload
    assert ss.claim(engine, "anything", now=T0) is None


def test_the_sign_out_route_ends_a_session_by_its_cookie(engine: Engine, ana: UserInfo) -> None:
    session_id, token = _open(engine, ana)
    assert not ss.end_session(engine, token="forged", now=T0)
    assert ss.end_session(engine, token=token, now=T0)
    assert _check(engine, session_id, T0).user is None


def test_disabling_a_new_password_or_removal_end_all_of_a_users_sessions(
    engine: Engine, ana: UserInfo
) -> None:
    first, _ = _open(engine, ana)
    second, token = _open(engine, ana)
    bo = add_user(engine, "bo", PASSWORD, "buyer", "acme")
    bos, _ = _open(engine, bo)
    unclaimed = ss.start_session(engine, ana, "password", now=T0)
    set_active(engine, "ana", False)
    set_active(engine, "ana", True)  # enabling again does not bring them back
    assert _check(engine, first, T0).reason == ENDED
    assert _check(engine, second, T0).reason == ENDED
    assert _resume(engine, token, T0).session_id is None
    assert ss.claim(engine, unclaimed.claim_code, now=T0) is None
    assert _check(engine, bos, T0).user == bo  # someone else's stays
    fresh, _ = _open(engine, ana)
    set_password(engine, "ana", "a brand new password")
    assert _check(engine, fresh, T0).reason == ENDED
    assert remove_user(engine, "bo")
    assert _check(engine, bos, T0).reason == ENDED  # row gone with the user


def test_a_changed_user_row_ends_a_session_even_without_revocation(
    engine: Engine, ana: UserInfo
) -> None:
    """The stamp check holds when a user row is changed behind the API's back."""
    session_id, _ = _open(engine, ana)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE users SET is_active = false WHERE username = 'ana'")
    assert _check(engine, session_id, T0).reason == ENDED


def test_old_ended_sessions_are_deleted_when_a_new_one_starts(
    engine: Engine, ana: UserInfo
) -> None:
    old, _ = _open(engine, ana)
    ss.end_session(engine, session_id=old, now=T0)
    ss.start_session(engine, ana, "password", now=T0 + ss.KEEP_ENDED + timedelta(seconds=1))
    with engine.connect() as conn:
        ids = conn.execute(select(TABLE.c.id)).scalars().all()
    assert old not in ids and len(ids) == 1
    assert ids[0] > old  # ids are never reused (a tab holding the old one stays out)
