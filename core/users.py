"""Dashboard users: add, remove, list and authenticate, with bcrypt-hashed passwords.

`wanotify users add/remove/list` call these functions. Passwords are never stored, logged
or returned; only their bcrypt hash is kept. Repeated wrong passwords lock the account
for a while, and demo accounts (sandbox mode only) are refused once real credentials
are configured, so a demo password can never open a live system.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import bcrypt
from sqlalchemy import Engine, delete, func
from sqlmodel import Session, col, select

from core.db import session_scope
from core.models.types import utcnow
from core.models.users import Role, User, UserTenant

#: bcrypt work factor: about a quarter of a second per check on a small server.
BCRYPT_ROUNDS = 12
MIN_PASSWORD_CHARS = 10
MAX_PASSWORD_BYTES = 72  # bcrypt ignores anything past 72 bytes: refuse, never truncate
#: Consecutive wrong passwords before the account is locked, and for how long.
MAX_FAILED_LOGINS = 5
LOCKOUT = timedelta(minutes=5)

_USERNAME = re.compile(r"[a-z0-9][a-z0-9._@-]{1,119}")
_TENANT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
#: A valid hash of a random password: unknown users cost as much time as known ones.
_DUMMY_HASH = bcrypt.hashpw(b"wanotify-no-such-user", bcrypt.gensalt(4))


class UserError(ValueError):
    """A user cannot be added or changed; the message says why in plain words."""


@dataclass(frozen=True)
class UserInfo:
    """A user as the rest of the program sees it: never the password hash."""

    id: int
    username: str
    display_name: str
    role: Role
    tenant_id: str
    tenants: tuple[str, ...]  # every tenant the user may read, home tenant first
    is_active: bool
    is_demo: bool
    last_login_at: datetime | None


@dataclass(frozen=True)
class LoginResult:
    """The outcome of a login attempt: the user, or a reason safe to show on screen."""

    user: UserInfo | None
    error: str | None = None


def normalize_username(username: str) -> str:
    """The stored form of a username (trimmed, lower case), or UserError if unusable."""
    name = (username or "").strip().lower()
    if not _USERNAME.fullmatch(name):
        raise UserError(
            "A username is 2 to 120 characters: letters, digits, '.', '_', '-' or '@', "
            "starting with a letter or digit"
        )
    return name


def check_tenant_id(tenant_id: str) -> str:
    """`tenant_id` if it is a usable tenant name, else UserError."""
    if not isinstance(tenant_id, str) or not _TENANT.fullmatch(tenant_id):
        raise UserError(
            "A tenant is 1 to 64 characters: letters, digits, '.', '_' or '-'"
            f" (got {str(tenant_id)[:70]!r})"
        )
    return tenant_id


def check_password(password: str) -> bytes:
    """The password as bytes if it is acceptable, else UserError saying what is wrong."""
    if not isinstance(password, str):
        raise UserError("The password must be text")
    if len(password) < MIN_PASSWORD_CHARS:
        raise UserError(f"The password must have at least {MIN_PASSWORD_CHARS} characters")
    encoded = password.encode("utf-8")
    if len(encoded) > MAX_PASSWORD_BYTES:
        raise UserError(f"The password must be at most {MAX_PASSWORD_BYTES} bytes long")
    if "\x00" in password:
        raise UserError("The password must not contain NUL characters")
    return encoded


def hash_password(password: str) -> str:
    """A bcrypt hash of an acceptable password (salted; different every call)."""
    return bcrypt.hashpw(check_password(password), bcrypt.gensalt(BCRYPT_ROUNDS)).decode("ascii")


def verify_password(password: str, password_hash: str) -> bool:
    """True when `password` matches `password_hash`; False for anything malformed."""
    try:
        encoded = password.encode("utf-8")
        if not encoded or len(encoded) > MAX_PASSWORD_BYTES:
            return False
        return bcrypt.checkpw(encoded, password_hash.encode("ascii"))
    except (ValueError, UnicodeError, AttributeError):
        return False


def parse_role(role: str | Role) -> Role:
    """The Role named by `role`, or UserError listing the valid ones."""
    try:
        return Role(str(role).strip().lower())
    except ValueError:
        valid = ", ".join(r.value for r in Role)
        raise UserError(f"Unknown role {str(role)[:30]!r}: use one of {valid}") from None


def add_user(
    engine: Engine,
    username: str,
    password: str,
    role: str | Role,
    tenant_id: str,
    *,
    display_name: str | None = None,
    extra_tenants: Sequence[str] = (),
    is_demo: bool = False,
) -> UserInfo:
    """Create a user who logs in with `password`, acts as `role` for `tenant_id`.

    `extra_tenants` are further tenants whose data the user may read in analytics and
    message search (sending always happens for the home tenant). Raises UserError when
    the username is taken or any value is unusable.
    """
    name = normalize_username(username)
    parsed_role = parse_role(role)
    home = check_tenant_id(tenant_id)
    extras = _unique([check_tenant_id(t) for t in extra_tenants if t != home])
    shown = (display_name or "").strip() or name
    if len(shown) > 200:
        raise UserError("The display name must be at most 200 characters")
    password_hash = hash_password(password)
    with session_scope(engine) as session:
        if _find(session, name) is not None:
            raise UserError(f"A user named {name!r} already exists")
        user = User(
            username=name,
            display_name=shown,
            password_hash=password_hash,
            role=parsed_role.value,
            tenant_id=home,
            is_demo=is_demo,
        )
        session.add(user)
        session.flush()
        assert user.id is not None
        for tenant in extras:
            session.add(UserTenant(user_id=user.id, tenant_id=tenant))
        session.flush()
        return _info(session, user)


def remove_user(engine: Engine, username: str) -> bool:
    """Delete a user and their tenant grants; False when there was no such user.

    Messages keep the username in `created_by`, so history stays readable.
    """
    name = (username or "").strip().lower()
    with session_scope(engine) as session:
        user = _find(session, name)
        if user is None:
            return False
        session.execute(delete(UserTenant).where(col(UserTenant.user_id) == user.id))
        session.delete(user)
        return True


def set_password(engine: Engine, username: str, password: str) -> None:
    """Replace a user's password and lift any lockout; UserError if there is no such user."""
    password_hash = hash_password(password)
    with session_scope(engine) as session:
        user = _require(session, username)
        user.password_hash = password_hash
        user.failed_logins = 0
        user.locked_until = None
        user.updated_at = utcnow()
        session.add(user)


def set_active(engine: Engine, username: str, active: bool) -> None:
    """Enable or disable a user's login without deleting them."""
    with session_scope(engine) as session:
        user = _require(session, username)
        user.is_active = active
        user.updated_at = utcnow()
        session.add(user)


def get_user(engine: Engine, username: str) -> UserInfo | None:
    """The user named `username` (any case), or None."""
    with Session(engine) as session:
        user = _find(session, (username or "").strip().lower())
        return _info(session, user) if user is not None else None


def list_users(engine: Engine, tenant_id: str | None = None) -> list[UserInfo]:
    """Every user (of one home tenant if given), sorted by username."""
    with Session(engine) as session:
        query = select(User).order_by(col(User.username))
        if tenant_id is not None:
            query = query.where(col(User.tenant_id) == tenant_id)
        return [_info(session, user) for user in session.exec(query).all()]


def count_users(engine: Engine, *, include_demo: bool = True) -> int:
    """How many users exist: zero means the login page explains how to create one."""
    with Session(engine) as session:
        query = select(func.count()).select_from(User)
        if not include_demo:
            query = query.where(col(User.is_demo).is_(False))
        return int(session.exec(query).one())


def login(
    engine: Engine,
    username: str,
    password: str,
    *,
    allow_demo: bool = True,
    now: datetime | None = None,
) -> LoginResult:
    """Check a login; count failures, lock after repeated ones, record the last login.

    The error text never says whether the username exists (apart from a lockout, which
    only an existing user can reach). Unknown users take as long as known ones.
    """
    now = now or utcnow()
    generic = "Wrong username or password"
    try:
        name = normalize_username(username)
    except UserError:
        verify_password(password or "", _DUMMY_HASH.decode("ascii"))
        return LoginResult(None, generic)
    with session_scope(engine) as session:
        user = _find(session, name)
        if user is None:
            verify_password(password or "", _DUMMY_HASH.decode("ascii"))
            return LoginResult(None, generic)
        if user.locked_until is not None and user.locked_until > now:
            minutes = max(1, int((user.locked_until - now).total_seconds() // 60) + 1)
            return LoginResult(None, f"Too many failed attempts: try again in {minutes} min")
        if not verify_password(password or "", user.password_hash):
            user.failed_logins += 1
            if user.failed_logins >= MAX_FAILED_LOGINS:
                user.locked_until = now + LOCKOUT
                user.failed_logins = 0
            session.add(user)
            return LoginResult(None, generic)
        if not user.is_active:
            return LoginResult(None, "This account is disabled: ask an administrator")
        if user.is_demo and not allow_demo:
            return LoginResult(None, "Demo accounts only work in sandbox mode")
        user.failed_logins = 0
        user.locked_until = None
        user.last_login_at = now
        session.add(user)
        session.flush()
        return LoginResult(_info(session, user))


def authenticate(
    engine: Engine, username: str, password: str, *, allow_demo: bool = True
) -> UserInfo | None:
    """The user if `password` is right and the account may log in now, else None."""
    return login(engine, username, password, allow_demo=allow_demo).user


def _find(session: Session, name: str) -> User | None:
    return session.exec(select(User).where(col(User.username) == name)).first()


def _require(session: Session, username: str) -> User:
    user = _find(session, (username or "").strip().lower())
    if user is None:
        raise UserError(f"No user named {username!r}")
    return user


def _info(session: Session, user: User) -> UserInfo:
    assert user.id is not None
    extras = session.exec(
        select(UserTenant.tenant_id)
        .where(col(UserTenant.user_id) == user.id)
        .order_by(col(UserTenant.tenant_id))
    ).all()
    return UserInfo(
        id=user.id,
        username=user.username,
        display_name=user.display_name,
        role=Role(user.role),
        tenant_id=user.tenant_id,
        tenants=(user.tenant_id, *[t for t in extras if t != user.tenant_id]),
        is_active=user.is_active,
        is_demo=user.is_demo,
        last_login_at=user.last_login_at,
    )


def _unique(values: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(values))
