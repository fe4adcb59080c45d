"""The tenant setting: may templates go to suppliers without recorded consent?

Stored in `tenant_settings` under `consent.allow_unrecorded` ("true" or "false"). The
default, and any value other than exactly "true", is *refuse*: fail closed. Opted-out
suppliers are refused whatever this says.
"""

from __future__ import annotations

from sqlalchemy import Connection, Engine, select
from sqlmodel import Session

from core.auth import Action, require, write_tenant
from core.db import session_scope
from core.models.consent import TenantSetting
from core.models.types import utcnow
from core.users import UserInfo

ALLOW_UNRECORDED = "consent.allow_unrecorded"
_TABLE = TenantSetting.__table__  # type: ignore[attr-defined]


def allows_unrecorded(db: Session | Connection, tenant_id: str) -> bool:
    """True only when the tenant chose to send to suppliers without recorded consent."""
    value = db.execute(
        select(_TABLE.c.value).where(
            _TABLE.c.tenant_id == tenant_id, _TABLE.c.key == ALLOW_UNRECORDED
        )
    ).scalar()
    return value == "true"


def set_allows_unrecorded(engine: Engine, user: UserInfo, allow: bool) -> bool:
    """An admin's choice for their tenant (role checked); returns the value now stored."""
    tenant = write_tenant(require(user, Action.MANAGE_SETTINGS))
    with session_scope(engine) as session:
        row = session.get(TenantSetting, (tenant, ALLOW_UNRECORDED))
        if row is None:
            row = TenantSetting(tenant_id=tenant, key=ALLOW_UNRECORDED, value="false")
        row.value = "true" if allow else "false"
        row.updated_by = user.username[:120]
        row.updated_at = utcnow()
        session.add(row)
    return allow
