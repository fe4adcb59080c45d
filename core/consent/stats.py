"""Consent in numbers, for analytics: who opted out (and how), who has no recorded
consent, and templates the dispatcher refused because the supplier opted out after
they were queued."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, and_, func, select

from core.consent.policy import CONSENT_ERROR_CLASS
from core.consent.record import WITHDRAWN
from core.models.consent import ConsentEvent
from core.models.messages import WhatsAppMessage
from core.models.suppliers import Supplier

_S = Supplier.__table__  # type: ignore[attr-defined]
_E = ConsentEvent.__table__  # type: ignore[attr-defined]
_M = WhatsAppMessage.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class ConsentSummary:
    """Consent counts of some tenants; `*_in_range` count the chosen days only."""

    opted_out: int = 0  # active suppliers opted out now
    opted_out_by_source: dict[str, int] = field(default_factory=dict)
    without_consent: int = 0  # active suppliers with no consent recorded (not opted out)
    opt_outs_in_range: int = 0  # opt-outs recorded in the range
    refused_in_range: int = 0  # queued templates not sent: the supplier opted out since


def consent_summary(
    engine: Engine, tenant_ids: Sequence[str], start: date, end: date, tz: str = "UTC"
) -> ConsentSummary:
    """The counts for `tenant_ids`, the range being days `start`..`end` in zone `tz`."""
    zone = ZoneInfo(tz)
    since = datetime.combine(start, time(0), zone)
    until = datetime.combine(end + timedelta(days=1), time(0), zone)
    tenants = list(tenant_ids)
    active = and_(_S.c.tenant_id.in_(tenants), _S.c.is_active.is_(True))
    with engine.connect() as conn:
        by_source = {
            str(source or "?"): int(n)
            for source, n in conn.execute(
                select(_S.c.opt_out_source, func.count())
                .where(active, _S.c.opted_out_at.is_not(None))
                .group_by(_S.c.opt_out_source)
            )
        }
        without = conn.execute(
            select(func.count()).where(
                active, _S.c.opted_out_at.is_(None), _S.c.opted_in.is_(False)
            )
        ).scalar_one()
        opt_outs = conn.execute(
            select(func.count()).where(
                _E.c.tenant_id.in_(tenants),
                _E.c.action == WITHDRAWN,
                _E.c.at >= since,
                _E.c.at < until,
            )
        ).scalar_one()
        refused = conn.execute(
            select(func.count()).where(
                _M.c.tenant_id.in_(tenants),
                _M.c.error_class == CONSENT_ERROR_CLASS,
                _M.c.created_at >= since,
                _M.c.created_at < until,
            )
        ).scalar_one()
    return ConsentSummary(
        opted_out=sum(by_source.values()),
        opted_out_by_source=by_source,
        without_consent=int(without),
        opt_outs_in_range=int(opt_outs),
        refused_in_range=int(refused),
    )
