"""The dashboard's pages: one module per `core.auth.Page`, each with `render(user)`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module

from core.auth import Page
from core.i18n import N_
from core.users import UserInfo


@dataclass(frozen=True)
class View:
    """How a page appears in the menu (`title` in English, shown through `_()`), and the
    module that draws it."""

    page: Page
    title: str
    icon: str
    module: str

    def renderer(self) -> Callable[[UserInfo], None]:
        """The module's `render(user)` function."""
        render: Callable[[UserInfo], None] = import_module(self.module).render
        return render


VIEWS: dict[Page, View] = {
    view.page: view
    for view in (
        View(Page.SEND, N_("Send PO notice"), ":material/send:", "dashboard.views.send"),
        View(Page.BULK, N_("Bulk send (CSV)"), ":material/upload_file:", "dashboard.views.bulk"),
        View(
            Page.FOLLOW_UP,
            N_("Awaiting answer"),
            ":material/pending_actions:",
            "dashboard.views.follow_up",
        ),
        View(Page.MESSAGES, N_("Messages"), ":material/forum:", "dashboard.views.messages"),
        View(Page.ANALYTICS, N_("Analytics"), ":material/monitoring:", "dashboard.views.analytics"),
        View(
            Page.TEMPLATES, N_("Templates"), ":material/description:", "dashboard.views.templates"
        ),
        View(Page.SUPPLIERS, N_("Suppliers"), ":material/store:", "dashboard.views.suppliers"),
        View(Page.HEALTH, N_("Health"), ":material/health_and_safety:", "dashboard.views.health"),
        View(Page.SETTINGS, N_("Settings"), ":material/settings:", "dashboard.views.settings"),
        View(Page.ALERTS, N_("My alerts"), ":material/notifications:", "dashboard.views.alerts"),
    )
}

#: The roles as the sidebar names them (`Role` values, shown through `_()`).
ROLE_NAMES = (N_("buyer"), N_("manager"), N_("admin"))
