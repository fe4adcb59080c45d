"""The `api_keys` table: add a key for one tenant, list keys, revoke one, look one up.

Only a hash of each key is stored (`core.api_keys.secret`); `add_key` returns the key
itself once, for the person who asked for it. Revoking keeps the row (its prefix, name
and dates stay in `list_keys`, so a log line naming the prefix can still be traced).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Engine, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from core import clock
from core.api_keys.secret import KEY_PREFIX, PREFIX_CHARS, hash_key, key_prefix, new_key
from core.db import get_engine, session_scope
from core.models.api_keys import ApiKey
from core.users import UserError, check_tenant_id

MAX_NAME_CHARS = 80
#: `last_used_at` is written at most this often per key: a busy ERP costs one small
#: UPDATE a minute, not one per event, and "last used" stays true to the minute.
TOUCH_EVERY = timedelta(minutes=1)
#: Tries to draw a key whose visible prefix is not taken yet (48 random bits each).
_ADD_ATTEMPTS = 3


class ApiKeyError(ValueError):
    """A key cannot be added or revoked; the message says why in plain words."""


@dataclass(frozen=True)
class ApiKeyInfo:
    """A stored key as people see it: never the key, never its hash."""

    id: int
    prefix: str
    name: str
    tenant_id: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @property
    def revoked(self) -> bool:
        """True once the key was revoked: it then opens nothing."""
        return self.revoked_at is not None


@dataclass(frozen=True)
class IssuedKey:
    """A key just made: `key` is the secret, to be shown once and then forgotten."""

    key: str = field(repr=False)
    info: ApiKeyInfo


def check_name(name: str) -> str:
    """`name` stripped, if it is 1 to 80 visible characters; else ApiKeyError."""
    cleaned = name.strip() if isinstance(name, str) else ""
    if not cleaned or len(cleaned) > MAX_NAME_CHARS:
        raise ApiKeyError(f"A key name is 1 to {MAX_NAME_CHARS} characters (got {len(cleaned)})")
    if any(unicodedata.category(char)[0] == "C" for char in cleaned):
        raise ApiKeyError(
            "A key name may not contain control, format or invisible characters"
            f" (got {cleaned[:40]!r})"
        )
    return cleaned


def add_key(
    engine: Engine | None, tenant_id: str, name: str = "ERP", *, now: datetime | None = None
) -> IssuedKey:
    """Make a new key for `tenant_id` and store its hash; the key is in the result only.

    Raises ApiKeyError for an unusable tenant or name.
    """
    try:
        tenant = check_tenant_id(tenant_id)
    except UserError as exc:
        raise ApiKeyError(str(exc)) from None
    label = check_name(name)
    for attempt in range(1, _ADD_ATTEMPTS + 1):
        key = new_key()
        row = ApiKey(
            prefix=key_prefix(key),
            key_hash=hash_key(key),
            name=label,
            tenant_id=tenant,
            created_at=now or clock.now(),
        )
        try:
            with session_scope(engine) as session:
                session.add(row)
                session.flush()
                return IssuedKey(key=key, info=_info(row))
        except IntegrityError:  # the 48-bit visible prefix was taken: draw again
            if attempt == _ADD_ATTEMPTS:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def list_keys(engine: Engine | None, tenant_id: str | None = None) -> list[ApiKeyInfo]:
    """Every stored key (of one tenant if given), oldest first; revoked ones included."""
    with session_scope(engine) as session:
        query = select(ApiKey)
        if tenant_id is not None:
            query = query.where(col(ApiKey.tenant_id) == tenant_id)
        rows = session.exec(query.order_by(col(ApiKey.created_at), col(ApiKey.id))).all()
        return [_info(row) for row in rows]


def revoke_key(
    engine: Engine | None, id_or_prefix: str, *, now: datetime | None = None
) -> tuple[ApiKeyInfo, bool]:
    """Revoke the key named by its id, its visible prefix (or the whole key).

    Returns the key and whether this call revoked it (False: it already was; its first
    revocation time is kept). Raises ApiKeyError when no key matches.
    """
    wanted = id_or_prefix.strip() if isinstance(id_or_prefix, str) else ""
    with session_scope(engine) as session:
        query = select(ApiKey)
        if wanted.isascii() and wanted.isdigit() and len(wanted) <= 18:
            query = query.where(col(ApiKey.id) == int(wanted))
        elif wanted.startswith(KEY_PREFIX) and len(wanted) > PREFIX_CHARS:
            query = query.where(col(ApiKey.key_hash) == hash_key(wanted))
        else:
            query = query.where(col(ApiKey.prefix) == wanted)
        row = session.exec(query).first()
        if row is None:
            shown = wanted[:PREFIX_CHARS] + ("..." if len(wanted) > PREFIX_CHARS else "")
            raise ApiKeyError(f"No API key with id or prefix {shown!r}")
        if row.revoked_at is not None:
            return _info(row), False
        row.revoked_at = now or clock.now()
        session.add(row)
        session.flush()
        return _info(row), True


def find_key(engine: Engine | None, key: str) -> ApiKeyInfo | None:
    """The stored key whose hash is that of `key` (revoked or not), else None.

    The lookup is by hash through a unique index: its timing depends on the hash, which
    an attacker cannot steer towards a real key, never on how much of a key was right.
    """
    digest = hash_key(key)
    with session_scope(engine) as session:
        row = session.exec(select(ApiKey).where(col(ApiKey.key_hash) == digest)).first()
        return _info(row) if row is not None else None


def has_active_keys(engine: Engine | None) -> bool:
    """True when at least one stored key is not revoked."""
    with session_scope(engine) as session:
        query = select(ApiKey.id).where(col(ApiKey.revoked_at).is_(None)).limit(1)
        return session.exec(query).first() is not None


def touch_key(engine: Engine | None, key: ApiKeyInfo, now: datetime) -> bool:
    """Record that `key` was used at `now`, unless that was recorded under a minute ago.

    The age is judged first on the row already read, so most calls write nothing; the
    UPDATE repeats the condition, so two processes racing write once. True if written.
    """
    stale_before = now - TOUCH_EVERY
    if key.last_used_at is not None and key.last_used_at > stale_before:
        return False
    with (engine or get_engine()).begin() as connection:
        result = connection.execute(
            update(ApiKey)
            .where(col(ApiKey.id) == key.id)
            .where(col(ApiKey.last_used_at).is_(None) | (col(ApiKey.last_used_at) <= stale_before))
            .values(last_used_at=now)
        )
        return bool(result.rowcount)


def _info(row: ApiKey) -> ApiKeyInfo:
    assert row.id is not None
    return ApiKeyInfo(
        id=row.id,
        prefix=row.prefix,
        name=row.name,
        tenant_id=row.tenant_id,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )
