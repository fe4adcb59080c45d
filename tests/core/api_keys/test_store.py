"""`core.api_keys`: keys are made for one tenant, stored as a hash only, listed and
revoked; a real database (SQLite file, or PostgreSQL in the second pass)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, text

from core.api_keys import ApiKeyError, add_key, hash_key, list_keys, new_key, revoke_key
from core.api_keys.secret import KEY_PREFIX, PREFIX_CHARS

T0 = datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC)


def test_a_key_is_long_random_and_hashed_one_way() -> None:
    keys = {new_key() for _ in range(200)}
    assert len(keys) == 200
    assert all(k.startswith(KEY_PREFIX) and len(k) == 47 for k in keys)
    digest = hash_key("wnk_example")
    assert digest == hash_key("wnk_example") != hash_key("wnk_examplf")
    assert len(digest) == 64 and "example" not in digest
    # Lone surrogates and other odd text hash without error, and apart from each other.
    assert hash_key("a\udcff") != hash_key("a\udcfe") != hash_key("a?")


def test_the_key_is_shown_once_and_only_its_hash_is_stored(engine: Engine) -> None:
    issued = add_key(engine, "acme", "  SAP prod  ", now=T0)
    assert issued.key.startswith(issued.info.prefix) and len(issued.info.prefix) == PREFIX_CHARS
    assert issued.key not in repr(issued)
    info = issued.info
    assert (info.name, info.tenant_id, info.created_at) == ("SAP prod", "acme", T0)
    assert info.last_used_at is None and not info.revoked
    with engine.connect() as connection:
        [stored] = connection.execute(text("SELECT * FROM api_keys")).mappings().all()
    assert issued.key not in " ".join(str(value) for value in stored.values())
    assert issued.key[PREFIX_CHARS:] not in " ".join(str(value) for value in stored.values())
    assert stored["key_hash"] == hash_key(issued.key)


def test_keys_are_listed_oldest_first_by_tenant_and_revoked_by_id_prefix_or_key(
    engine: Engine,
) -> None:
    a = add_key(engine, "acme", "one", now=T0)
    b = add_key(engine, "acme", "two", now=T0 + timedelta(seconds=1))
    c = add_key(engine, "other", now=T0 + timedelta(seconds=2))
    assert [k.id for k in list_keys(engine)] == [a.info.id, b.info.id, c.info.id]
    assert [k.name for k in list_keys(engine, "acme")] == ["one", "two"]
    assert [k.name for k in list_keys(engine, "other")] == ["ERP"]

    by_id, newly = revoke_key(engine, str(a.info.id), now=T0 + timedelta(hours=1))
    assert newly and by_id.revoked_at == T0 + timedelta(hours=1)
    by_prefix, _ = revoke_key(engine, f" {b.info.prefix} ", now=T0)
    by_key, _ = revoke_key(engine, c.key, now=T0)
    assert (by_prefix.id, by_key.id) == (b.info.id, c.info.id)
    again, newly = revoke_key(engine, a.info.prefix, now=T0 + timedelta(days=9))
    assert not newly and again.revoked_at == T0 + timedelta(hours=1)  # the first time stays
    assert all(k.revoked for k in list_keys(engine))


def test_revoking_an_unknown_key_says_so(engine: Engine) -> None:
    add_key(engine, "acme")
    for wanted, shown in [
        ("nope", "'nope'"), ("999", "'999'"), ("wnk_" + "x" * 43, "'wnk_xxxxxxxx...'"),
        ("", "''"), ("9" * 40, "'999999999999...'"), ("\u202e1", "'\\u202e1'"),
    ]:  # fmt: skip
        with pytest.raises(ApiKeyError, match="No API key with id or prefix") as caught:
            revoke_key(engine, wanted)
        assert shown in str(caught.value)
    assert not any(k.revoked for k in list_keys(engine))


def test_bad_tenants_and_names_are_refused_with_the_reason(engine: Engine) -> None:
    for tenant, name, reason in [
        ("../x", "ERP", "A tenant is"),
        ("", "ERP", "A tenant is"),
        ("a" * 65, "ERP", "A tenant is"),
        ("acme", "   ", "A key name is 1 to 80"),
        ("acme", "x" * 81, "A key name is 1 to 80"),
        ("acme", "SAP\u202eetirw", "control, format or invisible"),
        ("acme", "SAP\u200b", "control, format or invisible"),
        ("acme", "SAP\nprod", "control, format or invisible"),
    ]:
        with pytest.raises(ApiKeyError, match=reason):
            add_key(engine, tenant, name)
    assert list_keys(engine) == []
