"""The dashboard's pages: one module per `core.auth.Page`, each with `render(user)`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module

from core.auth import Page
from core.users import UserInfo


@dataclass(frozen=True)
class View:
    """How a page appears in the menu, and the module that draws it."""

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
        View(Page.SEND, "Send PO notice", ":material/send:", "dashboard.views.send"),
        View(Page.BULK, "Bulk send (CSV)", ":material/upload_file:", "dashboard.views.bulk"),
        View(Page.MESSAGES, "Messages", ":material/forum:", "dashboard.views.messages"),
        View(Page.ANALYTICS, "Analytics", ":material/monitoring:", "dashboard.views.analytics"),
        View(Page.TEMPLATES, "Templates", ":material/description:", "dashboard.views.templates"),
        View(Page.SUPPLIERS, "Suppliers", ":material/store:", "dashboard.views.suppliers"),
        View(Page.HEALTH, "Health", ":material/health_and_safety:", "dashboard.views.health"),
        View(Page.SETTINGS, "Settings", ":material/settings:", "dashboard.views.settings"),
    )
}
