"""Who may do what: dashboard pages and actions by role, and tenant scoping of every read.

The dashboard offers only the pages a role may use (pages not offered cannot be reached
by URL) and checks the role again inside every action that changes data. Reads are
scoped to the tenants a user may see; asking for another tenant is refused, not ignored.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from core.i18n import N_, _
from core.models.users import Role
from core.users import UserInfo


class Page(StrEnum):
    """The dashboard's pages, in menu order."""

    SEND = "send"
    BULK = "bulk"
    FOLLOW_UP = "follow_up"
    MESSAGES = "messages"
    ANALYTICS = "analytics"
    TEMPLATES = "templates"
    SUPPLIERS = "suppliers"
    HEALTH = "health"
    SETTINGS = "settings"
    ALERTS = "alerts"  # each user's own alert choices


class Action(StrEnum):
    """Things a user does that change data or reveal more than their own work."""

    SEND = "send"  # send a PO notice or a CSV batch
    MANAGE_BATCHES = "manage_batches"  # pause, resume, retry a batch
    RESEND = "resend"  # deliberately resend a failed or needs-attention message
    VIEW_ANALYTICS = "view_analytics"
    VIEW_MESSAGES = "view_messages"
    MANAGE_TEMPLATES = "manage_templates"  # sync templates from Meta
    MANAGE_SUPPLIERS = "manage_suppliers"  # add, edit, import, opt-in
    MANAGE_SETTINGS = "manage_settings"  # rate card, users overview
    RESUME_SENDING = "resume_sending"  # lift a queue-wide pause
    VIEW_HEALTH = "view_health"
    FOLLOW_UP = "follow_up"  # see unconfirmed PO notices and send reminders


#: Each role's pages. Admins configure and may do everything; managers read and resend;
#: buyers send.
ROLE_PAGES: dict[Role, frozenset[Page]] = {
    Role.BUYER: frozenset({Page.SEND, Page.BULK, Page.FOLLOW_UP, Page.ALERTS}),
    Role.MANAGER: frozenset(
        {Page.FOLLOW_UP, Page.ANALYTICS, Page.MESSAGES, Page.HEALTH, Page.ALERTS}
    ),
    Role.ADMIN: frozenset(Page),
}

ROLE_ACTIONS: dict[Role, frozenset[Action]] = {
    Role.BUYER: frozenset({Action.SEND, Action.MANAGE_BATCHES, Action.FOLLOW_UP}),
    Role.MANAGER: frozenset(
        {
            Action.VIEW_ANALYTICS,
            Action.VIEW_MESSAGES,
            Action.RESEND,
            Action.VIEW_HEALTH,
            Action.FOLLOW_UP,
        }
    ),
    Role.ADMIN: frozenset(Action),
}


#: Each action as a refusal names it ("The buyer role may not view analytics").
ACTION_NAMES: dict[Action, str] = {
    Action.SEND: N_("send"),
    Action.MANAGE_BATCHES: N_("manage batches"),
    Action.RESEND: N_("resend"),
    Action.VIEW_ANALYTICS: N_("view analytics"),
    Action.VIEW_MESSAGES: N_("view messages"),
    Action.MANAGE_TEMPLATES: N_("manage templates"),
    Action.MANAGE_SUPPLIERS: N_("manage suppliers"),
    Action.MANAGE_SETTINGS: N_("manage settings"),
    Action.RESUME_SENDING: N_("resume sending"),
    Action.VIEW_HEALTH: N_("view health"),
    Action.FOLLOW_UP: N_("follow up on POs"),
}


class PermissionDenied(PermissionError):
    """The user's role or tenants do not allow this; the message says which."""


def allowed_pages(role: Role | str) -> tuple[Page, ...]:
    """The pages `role` may use, in menu order."""
    granted = ROLE_PAGES[Role(role)]
    return tuple(page for page in Page if page in granted)


def may_open(user: UserInfo, page: Page | str) -> bool:
    """True when `user` may open `page`."""
    return Page(page) in ROLE_PAGES[user.role]


def can(user: UserInfo | None, action: Action | str) -> bool:
    """True when `user` (an active, logged-in user) may perform `action`."""
    if user is None or not user.is_active:
        return False
    return Action(action) in ROLE_ACTIONS[user.role]


def require(user: UserInfo | None, action: Action | str) -> UserInfo:
    """`user` if they may perform `action`, else PermissionDenied (checked in every action)."""
    if user is None:
        raise PermissionDenied(_("Log in first"))
    if not can(user, action):
        raise PermissionDenied(
            _("The {role} role may not {action}").format(
                role=_(user.role.value), action=_(ACTION_NAMES[Action(action)])
            )
        )
    return user


def visible_tenants(user: UserInfo) -> tuple[str, ...]:
    """Every tenant whose data `user` may read, home tenant first."""
    return user.tenants


def scope_tenants(user: UserInfo, requested: Iterable[str] | None = None) -> tuple[str, ...]:
    """The tenants a read may cover: `requested` (all visible ones if None or empty).

    A requested tenant the user may not see raises PermissionDenied: a forged widget
    value or URL never widens what a user reads.
    """
    allowed = visible_tenants(user)
    wanted = tuple(dict.fromkeys(requested or ()))
    if not wanted:
        return allowed
    foreign = [tenant for tenant in wanted if tenant not in allowed]
    if foreign:
        raise PermissionDenied(_("No access to tenant {tenant}").format(tenant=repr(foreign[0])))
    return wanted


def write_tenant(user: UserInfo) -> str:
    """The tenant a user's sends and edits belong to: always their home tenant."""
    return user.tenant_id
