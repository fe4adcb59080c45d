"""Dashboard users: add, remove, list and authenticate, with bcrypt-hashed passwords.

`wanotify users add/remove/list/unlock` call these functions. Passwords are never stored,
logged or returned; only their bcrypt hash is kept. Every login attempt does the same
work (one bcrypt check at `BCRYPT_ROUNDS`), whether the user exists, is disabled or is a
demo account outside sandbox mode. Failed attempts slow further ones per username and per
client address (core.login_guard.throttle: growing, capped delays, never a lock), and
demo accounts (sandbox mode only) are refused outside sandbox mode, so a demo password
can never open a live system.
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import bcrypt
from sqlalchemy import Engine, delete, func, update
from sqlmodel import Session, col, select

from core import clock
from core.db import session_scope
from core.i18n import N_, _
from core.login_guard import throttle
from core.login_guard.throttle import Scope
from core.models.types import utcnow
from core.models.users import Role, User, UserTenant

#: bcrypt work factor: about a quarter of a second per check on a small server.
BCRYPT_ROUNDS = 12
MIN_PASSWORD_CHARS = 10
MAX_PASSWORD_BYTES = 72  # bcrypt ignores anything past 72 bytes: refuse, never truncate
#: What every refused login says, whatever the reason (unknown, wrong, disabled).
WRONG = N_("Wrong username or password")  # translated where shown
#: The address recorded for a client Streamlit reports none for (the same machine).
LOCAL_CLIENT = "local"

_USERNAME = re.compile(r"[a-z0-9][a-z0-9._@-]{1,119}")
_TENANT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_NOT_ADDRESS = re.compile(r"[^0-9A-Za-z:.%_-]")
_dummy_lock = threading.Lock()
_dummy: list[str] = []


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
    #: Changes when the user is removed and re-created or their password changes: a
    #: session holding an older stamp ends (core.login_guard.session).
    session_stamp: str = field(default="", repr=False, compare=False)
    #: The email linked for single sign-on (core.sso), if any.
    email: str | None = None


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
    """Replace a user's password and lift any login delay; UserError if there is no such user.

    The user's open dashboard sessions end at their next click (the session stamp changes).
    """
    password_hash = hash_password(password)
    with session_scope(engine) as session:
        user = _require(session, username)
        user.password_hash = password_hash
        user.updated_at = utcnow()
        session.add(user)
        name, user_id = user.username, user.id
    throttle.clear(engine, Scope.ACCOUNT, name)
    _end_sessions(engine, user_id)


def unlock(engine: Engine, username: str) -> bool:
    """Lift the login delay on `username` (`wanotify users unlock`); UserError if no such user.

    True when there was a count or delay to clear.
    """
    with Session(engine) as session:
        name = _require(session, username).username
    return throttle.clear(engine, Scope.ACCOUNT, name)


def unlock_client(engine: Engine, address: str) -> bool:
    """Lift the login delay on one client address (`wanotify users unlock --client`)."""
    return throttle.clear(engine, Scope.CLIENT, client_key(address))


def set_active(engine: Engine, username: str, active: bool) -> None:
    """Enable or disable a user without deleting them; a disabled user's open sessions
    end at their next click."""
    with session_scope(engine) as session:
        user = _require(session, username)
        user.is_active = active
        user.updated_at = utcnow()
        session.add(user)
        user_id = user.id
    if not active:
        _end_sessions(engine, user_id)


def set_role(engine: Engine, username: str, role: str | Role) -> UserInfo:
    """Give a user another role; their open sessions use it from their next click."""
    parsed = parse_role(role)
    with session_scope(engine) as session:
        user = _require(session, username)
        user.role = parsed.value
        user.updated_at = utcnow()
        session.add(user)
        session.flush()
        return _info(session, user)


def get_user(engine: Engine, username: str) -> UserInfo | None:
    """The user named `username` (any case), or None."""
    with Session(engine) as session:
        user = _find(session, (username or "").strip().lower())
        return _info(session, user) if user is not None else None


def get_user_by_id(engine: Engine, user_id: int) -> UserInfo | None:
    """The user with this id as stored now, or None: the dashboard's per-rerun check.

    One indexed read (the user by primary key, their tenant grants joined).
    """
    with Session(engine) as session:
        rows = session.exec(
            select(User, UserTenant.tenant_id)
            .outerjoin(UserTenant, col(UserTenant.user_id) == col(User.id))
            .where(col(User.id) == user_id)
        ).all()
        if not rows:
            return None
        extras = sorted(tenant for _, tenant in rows if tenant is not None)
        return _info(session, rows[0][0], extras)


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


def client_key(address: str | None) -> str:
    """How a client address is recorded and counted: the address, or "local" for none.

    Anything but the characters of an IPv4/IPv6 address becomes "?" (and it is cut to 64
    characters), so an odd value can neither break a query nor pose as another address.
    """
    text = address.strip() if isinstance(address, str) else ""
    shown = _NOT_ADDRESS.sub("?", text[:64])
    return shown or LOCAL_CLIENT


def prepare_login() -> None:
    """Make the dummy hash now (once per process), so no attempt pays for it.

    The login form calls this before anyone submits: otherwise the first unknown
    username after a start would take twice as long as a real one.
    """
    _dummy_hash()


def login(
    engine: Engine,
    username: str,
    password: str,
    *,
    client: str | None = None,
    allow_demo: bool = True,
    now: datetime | None = None,
) -> LoginResult:
    """Check a login from `client` (an address): the user, or a reason safe to show.

    Every attempt the throttle lets through costs exactly one bcrypt check at
    `BCRYPT_ROUNDS` (against a dummy hash of the same cost for unknown usernames), and
    unknown, wrong, disabled all answer `WRONG`: neither the text nor the work says
    whether an account exists or is disabled. A demo account outside sandbox mode is
    refused after the same work, saying so (its password is public anyway).

    Failures are counted atomically per client address and per username, existing or
    not (core.login_guard.throttle); a waiting key is refused before any password check.
    A correct password from the address the user last signed in from passes a
    per-username wait, so guessing from elsewhere cannot keep the real user out.
    """
    now = now or clock.now()
    address = client_key(client)
    by_client = throttle.claim(engine, Scope.CLIENT, address, now)
    if not by_client.taken:
        return LoginResult(None, _wait_text(_("from this address"), by_client.wait))
    try:
        name = normalize_username(username)
    except UserError:
        name = ""
    with Session(engine) as session:
        user = _find(session, name) if name else None
        info = _info(session, user) if user is not None else None
        password_hash = user.password_hash if user is not None else _dummy_hash()
        trusted = user is not None and user.last_login_client == address
    by_name = throttle.claim(engine, Scope.ACCOUNT, name, now) if name else None
    if by_name is not None and not by_name.taken:
        if not trusted:
            throttle.succeeded(engine, by_client)  # no password was checked: no try used
            return LoginResult(None, _wait_text(_("for this username"), by_name.wait))
        by_name = throttle.claim(engine, Scope.ACCOUNT, name, now, force=True)
    claims = [c for c in (by_client, by_name) if c is not None]
    signed_in: UserInfo | None = None
    refusal = WRONG
    try:
        if verify_password(password or "", password_hash) and info is not None and info.is_active:
            if info.is_demo and not allow_demo:
                refusal = _("Demo accounts only work in sandbox mode")
            else:
                signed_in = info
    finally:  # counted whatever happens: an error mid-check is a failed try
        for taken in claims:
            if signed_in is not None:
                throttle.succeeded(engine, taken)
            else:
                throttle.failed(engine, taken, now)
    if signed_in is None:
        return LoginResult(None, refusal)
    with session_scope(engine) as session:
        session.execute(
            update(User)
            .where(col(User.id) == signed_in.id)
            .values(last_login_at=now, last_login_client=address)
        )
    return LoginResult(replace(signed_in, last_login_at=now))


def authenticate(
    engine: Engine, username: str, password: str, *, allow_demo: bool = True
) -> UserInfo | None:
    """The user if `password` is right and the account may log in now, else None."""
    return login(engine, username, password, allow_demo=allow_demo).user


def password_cost(password_hash: str) -> int:
    """The bcrypt work factor a hash was made with (its `$2b$NN$` field); 0 if malformed."""
    parts = password_hash.split("$")
    return int(parts[2]) if len(parts) > 3 and parts[2].isdigit() else 0


def _dummy_hash() -> str:
    """A hash of a random password at `BCRYPT_ROUNDS`, made once per process."""
    with _dummy_lock:
        if not _dummy:
            secret = secrets.token_bytes(32)
            _dummy.append(bcrypt.hashpw(secret, bcrypt.gensalt(BCRYPT_ROUNDS)).decode("ascii"))
        return _dummy[0]


def _wait_text(what: str, wait: timedelta | None) -> str:
    seconds = max(1, math.ceil((wait or timedelta(seconds=1)).total_seconds()))
    shown = f"{seconds} s" if seconds < 120 else f"{math.ceil(seconds / 60)} min"
    return _("Too many failed attempts {what}: try again in {wait}").format(what=what, wait=shown)


def _find(session: Session, name: str) -> User | None:
    return session.exec(select(User).where(col(User.username) == name)).first()


def _require(session: Session, username: str) -> User:
    user = _find(session, (username or "").strip().lower())
    if user is None:
        raise UserError(f"No user named {username!r}")
    return user


def _info(session: Session, user: User, extras: Sequence[str] | None = None) -> UserInfo:
    assert user.id is not None
    if extras is None:
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
        session_stamp=_stamp(user),
        email=user.email,
    )


def _end_sessions(engine: Engine, user_id: int | None) -> None:
    """Revoke the user's dashboard sessions now (disabled, new password): every tab ends."""
    # Imported here: core.login_guard.server_sessions reads users through this module.
    from core.login_guard.server_sessions import end_user_sessions

    if user_id is not None:
        end_user_sessions(engine, user_id, now=clock.now())


def _stamp(user: User) -> str:
    """A digest of who the row is (id, name, creation) and of its password hash."""
    created = user.created_at.isoformat() if user.created_at else ""
    seed = f"{user.id}|{user.username}|{created}|{user.password_hash}"
    return hashlib.sha256(seed.encode("utf-8")).hexdigest()[:32]


def _unique(values: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(values))
