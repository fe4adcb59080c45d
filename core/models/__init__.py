"""Every table wanotify stores, imported here so `SQLModel.metadata` knows them all."""

import core.models.alerts  # alert events, outbox and choices
import core.models.analytics  # covering index for the dashboard's charts
import core.models.api_keys  # ERP keys, one tenant each
import core.models.consent  # consent history, per-tenant settings
import core.models.dashboard_sessions  # server-side dashboard sign-ins
import core.models.events
import core.models.rejections  # refused webhook signatures, for health
import core.models.rollup  # exact analytics rollups kept by triggers
import core.models.sender_numbers  # noqa: F401  (the numbers each tenant sends from)
from core.models.base import metadata
from core.models.batches import BatchRow, BatchStatus, SendBatch
from core.models.control import SenderBudgetMember, SenderControl
from core.models.messages import MessageStatus, WhatsAppMessage
from core.models.pricing import RateCardEntry
from core.models.suppliers import Supplier
from core.models.templates import WhatsAppTemplate
from core.models.types import new_id, utcnow
from core.models.users import Role, User, UserTenant

__all__ = [
    "BatchRow",
    "BatchStatus",
    "MessageStatus",
    "RateCardEntry",
    "Role",
    "SendBatch",
    "SenderBudgetMember",
    "SenderControl",
    "Supplier",
    "User",
    "UserTenant",
    "WhatsAppMessage",
    "WhatsAppTemplate",
    "metadata",
    "new_id",
    "utcnow",
]
