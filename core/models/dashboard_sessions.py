"""Signed-in dashboard sessions kept on the server, so a reload or a second tab stays in.

The browser holds only a random token in an HttpOnly cookie; the table keeps its SHA-256
(a stolen database does not sign anyone in), who it is for, and when it was last used,
expires or was revoked. See core.login_guard.server_sessions.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, ForeignKey, Index, Integer
from sqlmodel import Field, SQLModel

from core.models.types import UTCDateTime


class DashboardSession(SQLModel, table=True):
    """One sign-in: a user, how they signed in, its cookie token's hash, its lifetime.

    `claim_hash` is the hash of a one-time code the signing-in page trades, within
    `claim_expires_at`, for the cookie (a Streamlit script cannot set cookies; a server
    route can). `user_stamp` is the user's session stamp at sign-in: a new password or a
    re-created account ends the session.
    """

    __tablename__ = "dashboard_sessions"
    __table_args__ = (
        Index("ix_dashboard_sessions_user_id", "user_id"),
        Index("ix_dashboard_sessions_expires_at", "expires_at"),
        # A tab holds its session by id: an id must never be given to a later session.
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str | None = Field(default=None, max_length=64, unique=True)
    claim_hash: str | None = Field(default=None, max_length=64, unique=True)
    claim_expires_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    user_id: int = Field(
        sa_column=Column(Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    )
    user_stamp: str = Field(max_length=64)
    method: str = Field(max_length=20)  # "password", "oidc", ...
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    last_seen_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    expires_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    revoked_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    revoked_reason: str | None = Field(default=None, max_length=20)
