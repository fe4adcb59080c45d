"""A tenant's follow-up settings, kept in `tenant_settings` under `followup.*` keys.

Absent or unreadable values mean the defaults: notices are listed as awaiting an answer
24 hours after delivery, at most 2 reminders go to one PO, and automatic reminders are
off (any value other than exactly "true" is off: fail closed). The scheduler's last run
is kept here too, so every page and process reads the same moment.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from core.auth import Action, require, write_tenant
from core.db import session_scope
from core.i18n import _
from core.models.consent import TenantSetting
from core.models.types import utcnow
from core.users import UserInfo

AFTER_HOURS = "followup.after_hours"
MAX_REMINDERS = "followup.max_reminders"
AUTO = "followup.auto"
AUTO_EVERY_HOURS = "followup.auto_every_hours"
LAST_RUN = "followup.last_run"

DEFAULT_AFTER_HOURS = 24
DEFAULT_MAX_REMINDERS = 2
DEFAULT_AUTO_EVERY_HOURS = 6
#: Bounds a person may set (a week of waiting at most; no reminder storms).
AFTER_HOURS_RANGE = (1, 24 * 14)
MAX_REMINDERS_RANGE = (0, 5)
AUTO_EVERY_RANGE = (1, 24 * 7)

_TABLE = TenantSetting.__table__  # type: ignore[attr-defined]
_KEYS = (AFTER_HOURS, MAX_REMINDERS, AUTO, AUTO_EVERY_HOURS, LAST_RUN)


class FollowUpSettingsError(ValueError):
    """A follow-up setting out of its range; the message says the range."""


@dataclass(frozen=True)
class FollowUpSettings:
    """One tenant's follow-up settings (defaults filled in)."""

    tenant_id: str
    after_hours: int = DEFAULT_AFTER_HOURS
    max_reminders: int = DEFAULT_MAX_REMINDERS
    auto: bool = False
    auto_every_hours: int = DEFAULT_AUTO_EVERY_HOURS
    last_run: datetime | None = None

    @property
    def after(self) -> timedelta:
        """How long after delivery an unconfirmed notice is listed (and reminders wait)."""
        return timedelta(hours=self.after_hours)

    @property
    def every(self) -> timedelta:
        """How often the automatic reminders run for this tenant."""
        return timedelta(hours=self.auto_every_hours)

    def next_run(self, now: datetime) -> datetime | None:
        """When the scheduler runs next for this tenant; None while switched off."""
        if not self.auto:
            return None
        if self.last_run is None:
            return now
        return max(now, self.last_run + self.every)


def _int(value: str | None, default: int, bounds: tuple[int, int]) -> int:
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        return default
    return number if bounds[0] <= number <= bounds[1] else default


def _moment(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        return None
    return at if at.tzinfo is not None else None


def load(db: Session | Connection, tenant_id: str) -> FollowUpSettings:
    """The tenant's follow-up settings; a missing or garbled row reads as its default."""
    rows = dict(
        db.execute(
            select(_TABLE.c.key, _TABLE.c.value).where(
                _TABLE.c.tenant_id == tenant_id, _TABLE.c.key.in_(_KEYS)
            )
        ).all()
    )
    return FollowUpSettings(
        tenant_id=tenant_id,
        after_hours=_int(rows.get(AFTER_HOURS), DEFAULT_AFTER_HOURS, AFTER_HOURS_RANGE),
        max_reminders=_int(rows.get(MAX_REMINDERS), DEFAULT_MAX_REMINDERS, MAX_REMINDERS_RANGE),
        auto=rows.get(AUTO) == "true",
        auto_every_hours=_int(
            rows.get(AUTO_EVERY_HOURS), DEFAULT_AUTO_EVERY_HOURS, AUTO_EVERY_RANGE
        ),
        last_run=_moment(rows.get(LAST_RUN)),
    )


def get_settings(engine: Engine, tenant_id: str) -> FollowUpSettings:
    """`load` in a connection of its own (pages and the CLI)."""
    with engine.connect() as conn:
        return load(conn, tenant_id)


def _check(value: int, bounds: tuple[int, int], what: str) -> int:
    if not bounds[0] <= value <= bounds[1]:
        raise FollowUpSettingsError(
            _("{what} must be from {low} to {high}").format(
                what=what, low=bounds[0], high=bounds[1]
            )
        )
    return value


def save_settings(
    engine: Engine,
    user: UserInfo,
    *,
    after_hours: int,
    max_reminders: int,
    auto: bool,
    auto_every_hours: int,
) -> FollowUpSettings:
    """An admin's follow-up settings for their tenant (role and ranges checked)."""
    tenant = write_tenant(require(user, Action.MANAGE_SETTINGS))
    values = {
        AFTER_HOURS: str(_check(after_hours, AFTER_HOURS_RANGE, _("Hours before listing"))),
        MAX_REMINDERS: str(_check(max_reminders, MAX_REMINDERS_RANGE, _("Reminders per PO"))),
        AUTO: "true" if auto else "false",
        AUTO_EVERY_HOURS: str(
            _check(auto_every_hours, AUTO_EVERY_RANGE, _("Hours between automatic runs"))
        ),
    }
    with session_scope(engine) as session:
        for key, value in values.items():
            _put(session, tenant, key, value, user.username)
    return get_settings(engine, tenant)


def set_auto(engine: Engine, user: UserInfo, on: bool) -> FollowUpSettings:
    """Switch the tenant's automatic reminders on or off (admins); the rest is kept."""
    tenant = write_tenant(require(user, Action.MANAGE_SETTINGS))
    with session_scope(engine) as session:
        _put(session, tenant, AUTO, "true" if on else "false", user.username)
    return get_settings(engine, tenant)


def _put(session: Session, tenant: str, key: str, value: str, by: str | None) -> None:
    row = session.get(TenantSetting, (tenant, key))
    if row is None:
        row = TenantSetting(tenant_id=tenant, key=key, value=value)
    row.value = value
    row.updated_by = by[:120] if by else None
    row.updated_at = utcnow()
    session.add(row)


def claim_run(engine: Engine, tenant_id: str, previous: datetime | None, now: datetime) -> bool:
    """Record that the scheduler runs for `tenant_id` at `now`, only if nobody else did
    since `previous` (compare and set): of several sender processes, one runs a tenant."""
    stamp = now.isoformat()
    if previous is None:
        try:
            with session_scope(engine) as session:
                session.add(TenantSetting(tenant_id=tenant_id, key=LAST_RUN, value=stamp,
                                          updated_by="scheduler", updated_at=now))  # fmt: skip
        except IntegrityError:  # another process ran it first
            return False
        return True
    with engine.begin() as conn:
        done = conn.execute(
            update(_TABLE)
            .where(
                _TABLE.c.tenant_id == tenant_id,
                _TABLE.c.key == LAST_RUN,
                _TABLE.c.value == previous.isoformat(),
            )
            .values(value=stamp, updated_by="scheduler", updated_at=now)
        )
        return done.rowcount == 1


def auto_tenants(engine: Engine) -> list[str]:
    """The tenants whose automatic reminders are switched on."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(_TABLE.c.tenant_id).where(_TABLE.c.key == AUTO, _TABLE.c.value == "true")
        )
        return sorted(str(r[0]) for r in rows)
