"""Single sign-on: who an OpenID Connect identity is in wanotify, or why they may not enter.

Streamlit's `st.login` does the OIDC exchange and hands over the ID token's claims
(`st.user`); this module decides what they are worth. A sign-in is matched on the
`email` claim against `users.email` (set with `wanotify users email`), and, for people
without an account of their own, optionally on a `groups` claim against group rules
(`SSO_GROUP_RULES`, never granting admin). Anyone else is refused with a reason to show:
no account is ever made up for an unknown person.

The first sign-in binds the account to the provider's issuer and subject; later
sign-ins must come from that same identity, so an email address reassigned at the
provider does not open the account. Only a freshly issued identity is accepted
(`FRESH_FOR`): Streamlit keeps the claims in a 30-day cookie, and a wanotify session that
ended (sign-out, idle timeout) must not start again without the provider.

`read_auth_config` checks the `[auth]` section of `.streamlit/secrets.toml` and fails
closed with one line when it is half made.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import bcrypt
from sqlalchemy import Engine, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from core import clock
from core.db import session_scope
from core.i18n import _
from core.models.types import utcnow
from core.models.users import Role, User, UserTenant
from core.users import (
    BCRYPT_ROUNDS,
    UserError,
    UserInfo,
    check_tenant_id,
    client_key,
    normalize_username,
    parse_role,
)
from core.users import _info as user_info

#: An identity issued longer ago than this is not taken: sign in at the provider again.
FRESH_FOR = timedelta(minutes=5)
#: Clock difference tolerated between the provider and this server.
CLOCK_SKEW = timedelta(minutes=1)
MAX_EMAIL_CHARS = 254
#: Group rules may give these roles; an administrator is always a named account.
RULE_ROLES = (Role.BUYER, Role.MANAGER)

#: Why an identity too old (or already used) is not taken; not shown as an error.
EXPIRED = "Your sign-in has expired: sign in again"
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]{1,190}")
_PROVIDER_KEYS = ("client_id", "client_secret", "server_metadata_url")
_MIN_COOKIE_SECRET = 32
_LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")


class SsoConfigError(ValueError):
    """The `[auth]` configuration cannot be used; the message says what to fix, in one line."""


@dataclass(frozen=True)
class Provider:
    """One identity provider configured for `st.login`: its name there and its label."""

    name: str  # "default" for the keys directly under [auth], else the [auth.<name>] name
    label: str  # shown on the button: "Sign in with <label>"


@dataclass(frozen=True)
class SsoConfig:
    """A usable `[auth]` configuration: the providers to offer, in configured order."""

    providers: tuple[Provider, ...]


@dataclass(frozen=True)
class GroupRule:
    """People in `group` (the provider's `groups` claim) get `role` for `tenants`."""

    group: str
    role: Role
    tenants: tuple[str, ...]  # the first is the home tenant


@dataclass(frozen=True)
class SsoResult:
    """The outcome of a sign-in: the wanotify user, or a reason safe to show on screen."""

    user: UserInfo | None
    refusal: str | None = None
    #: The identity is too old or already used: offer the sign-in again, no error.
    stale: bool = False


@dataclass(frozen=True)
class Identity:
    """What wanotify uses from the ID token's claims."""

    email: str
    subject: str  # "<issuer> <subject>"
    groups: tuple[str, ...]
    issued_at: datetime


def read_auth_config(section: Mapping[str, Any] | None) -> SsoConfig | None:
    """The providers of a complete `[auth]` section; None when there is no `[auth]` at all.

    Raises SsoConfigError with one line naming what is missing or wrong (a half-made
    configuration offers no single sign-on rather than a broken one): `redirect_uri`
    must be an http(s) URL ending in `/oauth2callback`, `cookie_secret` at least 32
    characters, and every provider needs `client_id`, `client_secret` and an https
    `server_metadata_url` (http only on this machine, for tests).
    """
    if section is None:
        return None
    if not isinstance(section, Mapping):
        raise SsoConfigError(_("Single sign-on: [auth] in secrets.toml must be a table"))
    if not section:
        return None
    redirect = section.get("redirect_uri")
    if not isinstance(redirect, str) or not redirect.strip():
        raise SsoConfigError(_("Single sign-on: [auth] redirect_uri is missing"))
    parts = urlsplit(redirect.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SsoConfigError(_("Single sign-on: [auth] redirect_uri must be an http(s) URL"))
    if not parts.path.endswith("/oauth2callback"):
        raise SsoConfigError(_("Single sign-on: [auth] redirect_uri must end with /oauth2callback"))
    cookie_secret = section.get("cookie_secret")
    if not isinstance(cookie_secret, str) or len(cookie_secret.strip()) < _MIN_COOKIE_SECRET:
        raise SsoConfigError(
            _(
                "Single sign-on: [auth] cookie_secret must be a random text of at least {n}"
                " characters"
            ).format(n=_MIN_COOKIE_SECRET)
        )
    providers: list[Provider] = []
    if any(key in section for key in _PROVIDER_KEYS):
        _check_provider("[auth]", section)
        providers.append(Provider("default", _("single sign-on")))
    for name, value in section.items():
        if not isinstance(value, Mapping) or name == "client_kwargs":
            continue
        where = f"[auth.{name}]"
        if not re.fullmatch(r"[A-Za-z0-9-]{1,40}", str(name)) or name == "default":
            raise SsoConfigError(
                _(
                    "Single sign-on: {where} is not a usable provider name (letters, digits"
                    " and '-')"
                ).format(where=where[:60])
            )
        _check_provider(where, value)
        providers.append(Provider(str(name), str(name).replace("-", " ").title()))
    if not providers:
        raise SsoConfigError(
            _(
                "Single sign-on: [auth] names no provider (client_id, client_secret and"
                " server_metadata_url, directly or in [auth.<name>])"
            )
        )
    try:
        import authlib  # noqa: F401  # st.login needs it
    except ImportError:
        raise SsoConfigError(
            _("Single sign-on: the Authlib package is not installed (pip install Authlib)")
        ) from None
    return SsoConfig(tuple(providers))


def _check_provider(where: str, section: Mapping[str, Any]) -> None:
    for key in _PROVIDER_KEYS:
        value = section.get(key)
        if not isinstance(value, str) or not value.strip():
            raise SsoConfigError(
                _("Single sign-on: {where} {key} is missing").format(where=where, key=key)
            )
    url = urlsplit(str(section["server_metadata_url"]).strip())
    local = url.hostname in _LOCAL_HOSTS
    if not (url.scheme == "https" or (url.scheme == "http" and local)) or not url.netloc:
        raise SsoConfigError(
            _("Single sign-on: {where} server_metadata_url must be an https URL").format(
                where=where
            )
        )


def parse_group_rules(text: str | None) -> tuple[GroupRule, ...]:
    """Group rules from their setting: `group=role@tenant[,tenant...]`, separated by `;`.

    For example `wanotify-buyers=buyer@acme; purchasing-leads=manager@acme,acme-mx`.
    Raises ValueError naming the bad rule; admin is refused (an administrator is always
    a named account), so a group claim can never make someone an admin.
    """
    rules: list[GroupRule] = []
    for raw in (text or "").split(";"):
        item = raw.strip()
        if not item:
            continue
        group, sep, rest = item.partition("=")
        role_text, at, tenants_text = rest.partition("@")
        group = group.strip()
        if not sep or not at or not group or len(group) > 200:
            raise ValueError(f"SSO group rule {item[:80]!r}: write group=role@tenant[,tenant]")
        try:
            role = parse_role(role_text)
            tenants = tuple(
                dict.fromkeys(check_tenant_id(t.strip()) for t in tenants_text.split(","))
            )
        except UserError as exc:
            raise ValueError(f"SSO group rule {item[:80]!r}: {exc}") from None
        if role not in RULE_ROLES:
            raise ValueError(
                f"SSO group rule {item[:80]!r}: a group may give buyer or manager, never"
                " admin (add administrators by name and link their email)"
            )
        rules.append(GroupRule(group, role, tenants))
    return tuple(rules)


def normalize_email(email: str) -> str:
    """The stored form of an email address (trimmed, lower case), or UserError."""
    text = (email or "").strip().lower() if isinstance(email, str) else ""
    if len(text) > MAX_EMAIL_CHARS or not _EMAIL.fullmatch(text):
        raise UserError(f"Not an email address: {str(email)[:80]!r}")
    return text


def read_identity(claims: Mapping[str, Any], *, now: datetime) -> Identity | str:
    """The identity in an ID token's claims, or a reason it cannot be used (to show).

    Needs a verified-or-unmarked `email`, the issuer and subject, and an issue time
    within `FRESH_FOR` of `now`. `groups` is read when it is a list of texts.
    """
    try:
        email = normalize_email(claims.get("email", ""))
    except UserError:
        return _(
            "Your identity provider did not send a usable email address, which wanotify"
            " needs to find your account"
        )
    if claims.get("email_verified") in (False, "false", "False", 0):
        return _("Your identity provider says this email address is not verified")
    issuer, subject = claims.get("iss"), claims.get("sub")
    if not isinstance(issuer, str) or not isinstance(subject, str) or not issuer or not subject:
        return _("Your identity provider's answer has no issuer or subject: sign in again")
    issued = claims.get("iat")
    if isinstance(issued, bool) or not isinstance(issued, int | float):
        return EXPIRED
    try:
        issued_at = datetime.fromtimestamp(float(issued), tz=UTC)
    except (OverflowError, OSError, ValueError):
        return EXPIRED
    if issued_at > now + CLOCK_SKEW or issued_at < now - FRESH_FOR:
        return EXPIRED
    raw_groups = claims.get("groups")
    groups = (
        tuple(g for g in raw_groups if isinstance(g, str))[:500]
        if isinstance(raw_groups, list)
        else ()
    )
    return Identity(email, f"{issuer} {subject}"[:400], groups, issued_at)


def resolve_sso_user(
    engine: Engine,
    claims: Mapping[str, Any],
    *,
    rules: Sequence[GroupRule] = (),
    client: str | None = None,
    now: datetime | None = None,
) -> SsoResult:
    """The wanotify user an OIDC sign-in (`st.user`'s claims) stands for, or a refusal.

    Matched on `users.email`; bound at the first sign-in to the provider's issuer and
    subject, refused from any other. Demo and disabled accounts are refused. Someone
    with no account is let in only when a group rule matches their `groups` claim
    (a buyer or manager account named after their email is made once); everyone else
    is refused, never created. A successful sign-in is recorded like a password login.
    """
    now = now or clock.now()
    identity = read_identity(claims, now=now)
    if isinstance(identity, str):
        return SsoResult(None, identity, stale=identity == EXPIRED)
    if not _email_known(engine, identity.email):
        rule = next((r for r in rules if r.group in identity.groups), None)
        if rule is None:
            return SsoResult(None, _no_account(identity.email))
        refusal = _add_from_rule(engine, identity, rule)
        if refusal is not None:
            return SsoResult(None, refusal)
    with session_scope(engine) as session:
        user = session.exec(select(User).where(col(User.email) == identity.email)).first()
        if user is None:  # unlinked between the two reads
            return SsoResult(None, _no_account(identity.email))
        if not user.is_active:
            return SsoResult(None, _("Your wanotify account is disabled"))
        if user.is_demo:
            return SsoResult(None, _("Demo accounts cannot sign in with single sign-on"))
        if user.sso_subject is not None and user.sso_subject != identity.subject:
            return SsoResult(
                None,
                _(
                    "This email address is linked to another sign-in identity. An administrator"
                    " can link it again: wanotify users email {user} {email}"
                ).format(user=user.username, email=identity.email),
            )
        last = user.last_login_at
        if last is not None and last.replace(tzinfo=last.tzinfo or UTC) >= identity.issued_at:
            return SsoResult(None, EXPIRED, stale=True)  # used already, or older than a login
        session.execute(
            update(User)
            .where(col(User.id) == user.id)
            .values(
                sso_subject=identity.subject,
                last_login_at=now,
                last_login_client=client_key(client),
            )
        )
        session.flush()
        session.refresh(user)
        return SsoResult(replace(user_info(session, user), last_login_at=now))


def _email_known(engine: Engine, email: str) -> bool:
    with Session(engine) as session:
        return session.exec(select(User.id).where(col(User.email) == email)).first() is not None


def _no_account(email: str) -> str:
    return _(
        "{email} has no wanotify account. Ask an administrator to link it: wanotify users"
        " email <username> {email}"
    ).format(email=email)


def _add_from_rule(engine: Engine, identity: Identity, rule: GroupRule) -> str | None:
    """Make a buyer or manager account for someone a group rule lets in; None when made.

    Otherwise the reason, to show. Two first sign-ins at once make one account (the
    unique email decides; the loser finds the winner's account).
    """
    try:
        name = normalize_username(identity.email)
    except UserError:
        return _(
            "{email} cannot be a wanotify username: ask an administrator to add an account"
            " and link this email"
        ).format(email=identity.email)
    unguessable = bcrypt.hashpw(secrets.token_bytes(32), bcrypt.gensalt(BCRYPT_ROUNDS))
    try:
        with session_scope(engine) as session:
            if session.exec(select(User.id).where(col(User.username) == name)).first():
                return _(
                    "A wanotify user named {name} exists without this email linked: ask an"
                    " administrator to link it"
                ).format(name=name)
            user = User(
                username=name,
                display_name=name,
                password_hash=unguessable.decode("ascii"),  # signs in only through the provider
                role=rule.role.value,
                tenant_id=rule.tenants[0],
                email=identity.email,
            )
            session.add(user)
            session.flush()
            assert user.id is not None
            for tenant in rule.tenants[1:]:
                session.add(UserTenant(user_id=user.id, tenant_id=tenant))
    except IntegrityError:
        if not _email_known(engine, identity.email):
            return _no_account(identity.email)
    return None


def set_email(engine: Engine, username: str, email: str | None) -> UserInfo:
    """Link `email` to a user for single sign-on (None: unlink); UserError if unusable.

    The sign-in identity bound to the old email is forgotten: the next sign-in with the
    new one binds again. Demo accounts cannot be linked. The user's open sessions are
    unaffected (their password and role are unchanged).
    """
    address = normalize_email(email) if email is not None else None
    with session_scope(engine) as session:
        user = session.exec(
            select(User).where(col(User.username) == (username or "").strip().lower())
        ).first()
        if user is None:
            raise UserError(f"No user named {username!r}")
        if user.is_demo and address is not None:
            raise UserError("Demo accounts cannot sign in with single sign-on")
        if address is not None:
            taken = session.exec(
                select(User.username).where(col(User.email) == address, col(User.id) != user.id)
            ).first()
            if taken is not None:
                raise UserError(f"{address} is already linked to user {taken!r}")
        user.email = address
        user.sso_subject = None
        user.updated_at = utcnow()
        session.add(user)
        try:
            session.flush()
        except IntegrityError:
            raise UserError(f"{address} is already linked to another user") from None
        return user_info(session, user)
