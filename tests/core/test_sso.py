"""core.sso on a real SQLite file: matching OIDC claims to users, refusals, group rules,
and the `[auth]` configuration check.

The whole sign-in through Streamlit's st.login against a real OIDC provider is tested in
tests/e2e/test_sso.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, text

from core.models.users import Role
from core.sso import (
    EXPIRED,
    FRESH_FOR,
    SsoConfigError,
    parse_group_rules,
    read_auth_config,
    resolve_sso_user,
    set_email,
)
from core.users import UserError, add_user, get_user, login, set_active

PASSWORD = "correct horse battery"
NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
ISSUER = "https://idp.example"


def claims(email: object = "ana@acme.example", **extra: Any) -> dict[str, Any]:
    """ID-token claims as st.user holds them, issued a few seconds before NOW."""
    base: dict[str, Any] = {
        "email": email,
        "iss": ISSUER,
        "sub": "subject-ana",
        "iat": int((NOW - timedelta(seconds=5)).timestamp()),
        "is_logged_in": True,
        "provider": "default",
    }
    base.update(extra)
    return base


def test_a_linked_email_signs_in_as_its_user_with_role_and_tenants(engine: Engine) -> None:
    add_user(engine, "ana", PASSWORD, "manager", "acme", extra_tenants=["acme-mx"])
    set_email(engine, "ana", "  Ana@ACME.example ")
    result = resolve_sso_user(engine, claims("ANA@acme.example"), client="10.0.0.7", now=NOW)
    assert result.refusal is None and result.user is not None
    assert (result.user.username, result.user.role) == ("ana", Role.MANAGER)
    assert result.user.tenants == ("acme", "acme-mx")
    assert result.user.last_login_at == NOW
    with engine.connect() as conn:
        row = conn.execute(text("SELECT sso_subject, last_login_client FROM users")).one()
    assert tuple(row) == (f"{ISSUER} subject-ana", "10.0.0.7")


def test_an_unknown_email_is_refused_and_nothing_is_created(engine: Engine) -> None:
    add_user(engine, "admin", PASSWORD, "admin", "acme")
    result = resolve_sso_user(engine, claims("stranger@elsewhere.example"), now=NOW)
    assert result.user is None and not result.stale
    assert "stranger@elsewhere.example has no wanotify account" in (result.refusal or "")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM users")).scalar_one() == 1


@pytest.mark.parametrize(
    ("changed", "reason"),
    [({"email": None}, "did not send a usable email"),
     ({"email": ["ana@acme.example"]}, "did not send a usable email"),
     ({"email": "not an email"}, "did not send a usable email"),
     ({"email": "a" * 250 + "@acme.example"}, "did not send a usable email"),
     ({"email_verified": False}, "not verified"),
     ({"email_verified": "false"}, "not verified"),
     ({"sub": ""}, "no issuer or subject"),
     ({"iss": None}, "no issuer or subject")],
)  # fmt: skip
def test_unusable_claims_are_refused_with_a_reason(
    engine: Engine, changed: dict[str, Any], reason: str
) -> None:
    add_user(engine, "ana", PASSWORD, "buyer", "acme")
    set_email(engine, "ana", "ana@acme.example")
    result = resolve_sso_user(engine, {**claims(), **changed}, now=NOW)
    assert result.user is None and reason in (result.refusal or "")


@pytest.mark.parametrize(
    "iat",
    [None, "1700000000", True, (NOW - FRESH_FOR - timedelta(seconds=1)).timestamp(),
     (NOW + timedelta(minutes=5)).timestamp(), 10**20],
)  # fmt: skip
def test_an_old_missing_or_future_issue_time_is_stale_not_an_error(
    engine: Engine, iat: object
) -> None:
    add_user(engine, "ana", PASSWORD, "buyer", "acme")
    set_email(engine, "ana", "ana@acme.example")
    result = resolve_sso_user(engine, claims(iat=iat), now=NOW)
    assert result.user is None and result.stale and result.refusal == EXPIRED


def test_an_identity_is_used_once(engine: Engine) -> None:
    """Streamlit keeps the claims in a 30-day cookie: after a session ends (sign-out,
    idle), the same identity must not start another without the provider."""
    add_user(engine, "ana", PASSWORD, "buyer", "acme")
    set_email(engine, "ana", "ana@acme.example")
    assert resolve_sso_user(engine, claims(), now=NOW).user is not None
    again = resolve_sso_user(engine, claims(), now=NOW + timedelta(seconds=30))
    assert again.user is None and again.stale
    later = claims(iat=int((NOW + timedelta(seconds=40)).timestamp()))
    assert resolve_sso_user(engine, later, now=NOW + timedelta(seconds=41)).user is not None


def test_another_identity_with_the_same_email_is_refused(engine: Engine) -> None:
    add_user(engine, "ana", PASSWORD, "buyer", "acme")
    set_email(engine, "ana", "ana@acme.example")
    assert resolve_sso_user(engine, claims(), now=NOW).user is not None
    later = int((NOW + timedelta(minutes=1)).timestamp())
    for other in ({"sub": "someone-else"}, {"iss": "https://evil.example"}):
        result = resolve_sso_user(
            engine, claims(iat=later, **other), now=NOW + timedelta(minutes=1, seconds=1)
        )
        assert result.user is None and "linked to another sign-in identity" in (
            result.refusal or ""
        )
    set_email(engine, "ana", "ana@acme.example")  # an admin links it again: binds anew
    result = resolve_sso_user(
        engine, claims(iat=later, sub="someone-else"), now=NOW + timedelta(minutes=1)
    )
    assert result.user is not None


def test_disabled_and_demo_accounts_are_refused(engine: Engine) -> None:
    add_user(engine, "ana", PASSWORD, "buyer", "acme")
    set_email(engine, "ana", "ana@acme.example")
    set_active(engine, "ana", False)
    assert "disabled" in (resolve_sso_user(engine, claims(), now=NOW).refusal or "")
    add_user(engine, "buyer", PASSWORD, "buyer", "acme", is_demo=True)
    with pytest.raises(UserError, match="Demo accounts"):
        set_email(engine, "buyer", "demo@acme.example")


def test_linking_an_email_checks_it_and_keeps_it_unique(engine: Engine) -> None:
    add_user(engine, "ana", PASSWORD, "buyer", "acme")
    add_user(engine, "luis", PASSWORD, "buyer", "acme")
    set_email(engine, "ana", "ana@acme.example")
    with pytest.raises(UserError, match="already linked to user 'ana'"):
        set_email(engine, "luis", "ANA@acme.example")
    with pytest.raises(UserError, match="Not an email address"):
        set_email(engine, "luis", "luis at acme")
    with pytest.raises(UserError, match="No user named"):
        set_email(engine, "nobody", "n@acme.example")
    assert set_email(engine, "ana", None).email is None
    assert resolve_sso_user(engine, claims(), now=NOW).user is None
    assert set_email(engine, "luis", "ana@acme.example").email == "ana@acme.example"


def test_a_password_login_keeps_working_for_a_linked_user(engine: Engine) -> None:
    add_user(engine, "ana", PASSWORD, "buyer", "acme")
    set_email(engine, "ana", "ana@acme.example")
    assert login(engine, "ana", PASSWORD, now=NOW).user is not None


def test_group_rules_let_in_buyers_and_managers_never_admins(engine: Engine) -> None:
    rules = parse_group_rules("wa-buyers=buyer@acme; wa-leads = manager@acme,acme-mx ;")
    assert [(r.group, r.role, r.tenants) for r in rules] == [
        ("wa-buyers", Role.BUYER, ("acme",)),
        ("wa-leads", Role.MANAGER, ("acme", "acme-mx")),
    ]
    lead = claims("Lead@acme.example", groups=["other", "wa-leads"], sub="lead")
    result = resolve_sso_user(engine, lead, rules=rules, now=NOW)
    assert result.user is not None
    assert (result.user.username, result.user.role) == ("lead@acme.example", Role.MANAGER)
    assert result.user.tenants == ("acme", "acme-mx")
    # the made account cannot be entered with any password
    assert login(engine, "lead@acme.example", "", now=NOW).user is None
    no_group = claims("x@acme.example", groups="wa-leads", sub="x")  # not a list: no groups
    assert resolve_sso_user(engine, no_group, rules=rules, now=NOW).user is None
    add_user(engine, "y@acme.example", PASSWORD, "buyer", "acme")  # name taken, email not linked
    taken = resolve_sso_user(
        engine, claims("y@acme.example", groups=["wa-buyers"], sub="y"), rules=rules, now=NOW
    )
    assert taken.user is None and "exists without this email linked" in (taken.refusal or "")
    assert get_user(engine, "y@acme.example") is not None


@pytest.mark.parametrize(
    ("text_", "problem"),
    [("wa=admin@acme", "never admin"), ("wa=boss@acme", "Unknown role"),
     ("wa=buyer", "group=role@tenant"), ("=buyer@acme", "group=role@tenant"),
     ("wa=buyer@ac me", "A tenant is")],
)  # fmt: skip
def test_bad_group_rules_are_refused(text_: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_group_rules(text_)


GOOD: Mapping[str, Any] = {
    "redirect_uri": "https://wanotify.acme.example/oauth2callback",
    "cookie_secret": "s" * 40,
    "client_id": "wanotify",
    "client_secret": "secret",
    "server_metadata_url": "https://accounts.google.com/.well-known/openid-configuration",
}


def test_a_complete_auth_section_names_its_providers() -> None:
    assert read_auth_config(None) is None and read_auth_config({}) is None
    config = read_auth_config(GOOD)
    assert config is not None and [p.name for p in config.providers] == ["default"]
    named = {k: v for k, v in GOOD.items() if k in ("redirect_uri", "cookie_secret")}
    entra = {
        "client_id": "a",
        "client_secret": "b",
        "server_metadata_url": "https://login.microsoftonline.com/t/v2.0/.well-known/openid-configuration",
    }
    config = read_auth_config({**named, "microsoft": entra, "client_kwargs": {"prompt": "login"}})
    assert config is not None and [(p.name, p.label) for p in config.providers] == [
        ("microsoft", "Microsoft")
    ]
    local = {**GOOD, "server_metadata_url": "http://127.0.0.1:9400/.well-known/x"}
    assert read_auth_config(local) is not None  # plain http only on this machine (tests)


@pytest.mark.parametrize(
    ("changed", "problem"),
    [({"redirect_uri": None}, "redirect_uri is missing"),
     ({"redirect_uri": "https://wanotify.acme.example/"}, "end with /oauth2callback"),
     ({"redirect_uri": "javascript:alert(1)//oauth2callback"}, "http(s) URL"),
     ({"cookie_secret": None}, "cookie_secret must be"),
     ({"cookie_secret": "short"}, "cookie_secret must be"),
     ({"client_secret": None}, "[auth] client_secret is missing"),
     ({"client_id": ""}, "[auth] client_id is missing"),
     ({"server_metadata_url": "http://idp.example/.well-known/x"}, "must be an https URL"),
     ({"client_id": None, "client_secret": None, "server_metadata_url": None},
      "names no provider"),
     ({"bad_name": {"client_id": "a"}}, "not a usable provider name"),
     ({"okta": {"client_id": "a", "client_secret": "b"}},
      "[auth.okta] server_metadata_url is missing")],
)  # fmt: skip
def test_a_half_made_auth_section_fails_closed_in_one_line(
    changed: dict[str, Any], problem: str
) -> None:
    section = {k: v for k, v in {**GOOD, **changed}.items() if v is not None}
    with pytest.raises(SsoConfigError) as raised:
        read_auth_config(section)
    assert problem in str(raised.value) and "\n" not in str(raised.value)
    assert "secret" not in str(raised.value).replace("client_secret", "").replace(
        "cookie_secret", ""
    ).replace("secrets.toml", "")  # never the secret's value
