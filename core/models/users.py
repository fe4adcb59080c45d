"""Dashboard users: who may log in, with which role, and which tenants' data they see."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, Index, PrimaryKeyConstraint, UniqueConstraint
from sqlmodel import Field, SQLModel

from core.models.types import UTCDateTime, utcnow


class Role(StrEnum):
    """What a user may do: buyers send, managers read analytics, admins configure."""

    BUYER = "buyer"
    MANAGER = "manager"
    ADMIN = "admin"


class User(SQLModel, table=True):
    """A person who logs in to the dashboard; the password is kept only as a bcrypt hash."""

    __tablename__ = "users"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=120, unique=True)  # stored lowercase
    display_name: str = Field(max_length=200)
    password_hash: str = Field(max_length=100)
    role: str = Field(max_length=20)
    tenant_id: str = Field(max_length=64, index=True)  # the tenant this user sends for
    is_active: bool = Field(default=True)
    is_demo: bool = Field(default=False)  # sandbox demo account: refused outside sandbox mode
    #: The language this user chose for the dashboard ("en", "es"); None: the browser's.
    locale: str | None = Field(default=None, max_length=16)
    #: The client address of the last successful login ("local" for the same machine): a
    #: correct password from there passes a per-account delay (see core.login_guard).
    last_login_client: str | None = Field(default=None, max_length=64)
    last_login_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    #: The email this user signs in with through single sign-on (stored lowercase), if any.
    email: str | None = Field(default=None, max_length=254, unique=True)
    #: The identity provider's issuer and subject ("iss sub") first seen for `email`: later
    #: sign-ins must come from the same identity (core.sso); cleared when the email changes.
    sso_subject: str | None = Field(default=None, max_length=400)
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
    updated_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )


class UserTenant(SQLModel, table=True):
    """A further tenant whose data a user may read (a manager of several companies)."""

    __tablename__ = "user_tenants"
    __table_args__ = (UniqueConstraint("user_id", "tenant_id"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    tenant_id: str = Field(max_length=64)


class LoginThrottle(SQLModel, table=True):
    """Failed logins of one username or one client address, and until when it must wait.

    `scope` is "account" (key: a normalised username, whether or not such a user exists,
    so unknown names answer exactly like real ones) or "client" (key: the client address).
    Counted with one atomic statement per attempt; rows idle for a day are pruned.
    """

    __tablename__ = "login_throttle"
    __table_args__ = (
        PrimaryKeyConstraint("scope", "key"),
        Index("ix_login_throttle_last_failed_at", "last_failed_at"),
    )

    scope: str = Field(max_length=10)
    key: str = Field(max_length=120)
    failures: int = Field(default=0)
    last_failed_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    blocked_until: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
