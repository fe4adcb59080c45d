"""`check_key`: which tenant a presented key may act for, against a real database; the
clock that dates "last used" is injected."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from core.api_keys import add_key, check_key, list_keys, revoke_key
from core.clock import frozen

T0 = datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC)
ENV_KEY = "an-operator-chosen-secret-0123456789"


def test_outcomes_with_stored_and_environment_keys(engine: Engine) -> None:
    def check(presented: str | None, env_key: str | None = ENV_KEY) -> tuple[str, str | None]:
        verdict = check_key(presented, env_key=env_key, default_tenant="main", engine=engine)
        return verdict.outcome, verdict.tenant_id

    # Nothing configured: the endpoint is off, whatever is presented.
    assert check(None, None) == check("anything", None) == ("disabled", None)
    assert check("anything", "") == ("disabled", None)
    # The environment's key is the default tenant's key.
    assert check(ENV_KEY) == ("ok", "main")
    assert check(None) == ("missing", None)
    assert check(ENV_KEY + " ") == check(ENV_KEY[:-1]) == check("") == ("invalid", None)
    assert check("x" * 100_000) == ("invalid", None)
    # A stored key is its own tenant's, with or without the environment's key.
    acme = add_key(engine, "acme")
    assert check(acme.key) == check(acme.key, None) == ("ok", "acme")
    assert check(None, None) == ("missing", None)
    assert check(ENV_KEY, None) == ("invalid", None)
    assert check(acme.key + "\u200b", None) == ("invalid", None)
    revoke_key(engine, acme.info.prefix)
    assert check(acme.key) == check(acme.key, None) == ("revoked", "acme")
    assert check("anything", None) == ("disabled", None)  # only revoked keys left


def test_last_used_is_recorded_at_most_once_a_minute(engine: Engine) -> None:
    """Dated by `core.clock` (what the HTTP endpoint uses), set here, never the wall clock."""
    issued = add_key(engine, "acme", now=T0)

    def use() -> datetime | None:
        verdict = check_key(issued.key, env_key=None, default_tenant="x", engine=engine)
        assert verdict.outcome == "ok" and verdict.label == issued.info.prefix
        [info] = list_keys(engine)
        return info.last_used_at

    with frozen(T0 + timedelta(hours=1)) as move:
        assert use() == T0 + timedelta(hours=1)
        move(T0 + timedelta(hours=1, seconds=59))
        assert use() == T0 + timedelta(hours=1)
        move(T0 + timedelta(hours=1, seconds=60))
        assert use() == T0 + timedelta(hours=1, seconds=60)
        move(T0 + timedelta(days=400))
        assert use() == T0 + timedelta(days=400)
