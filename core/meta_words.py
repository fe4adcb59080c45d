"""Meta's codes (quality ratings, categories, pricing types, number states) in words.

The Cloud API reports values such as GREEN, UTILITY, free_customer_service or
CONNECTED. Pages show them in the reader's language through these functions, so a
template's quality reads the same on Templates and Health and a category the same on
Templates, the rate card, the message timeline and Analytics. A code Meta adds later
is shown as Meta wrote it (title-cased), never dropped.
"""

from __future__ import annotations

from core.i18n import N_, _

#: Quality rating of a number or a template.
QUALITY = {
    "GREEN": N_("High"),
    "YELLOW": N_("Medium"),
    "RED": N_("Low"),
    "UNKNOWN": N_("Not rated yet"),
    "NA": N_("Not rated yet"),
}
#: Template categories, which are also the pricing categories (plus service).
CATEGORIES = {
    "MARKETING": N_("Marketing"),
    "MARKETING_LITE": N_("Marketing (lite)"),
    "UTILITY": N_("Utility"),
    "AUTHENTICATION": N_("Authentication"),
    "AUTHENTICATION_INTERNATIONAL": N_("Authentication (international)"),
    "SERVICE": N_("Service"),
    "REFERRAL_CONVERSION": N_("Referral conversion"),
}
#: Pricing types of a status webhook's `pricing.type`.
PRICING_TYPES = {
    "REGULAR": N_("charged"),
    "FREE_CUSTOMER_SERVICE": N_("free (customer service window)"),
    "FREE_ENTRY_POINT": N_("free (entry point)"),
}
#: A phone number's status in WhatsApp Manager.
NUMBER_STATUS = {
    "CONNECTED": N_("Connected"),
    "PENDING": N_("Pending"),
    "FLAGGED": N_("Flagged"),
    "RESTRICTED": N_("Restricted"),
    "DISCONNECTED": N_("Disconnected"),
    "BANNED": N_("Banned"),
    "DELETED": N_("Deleted"),
    "MIGRATED": N_("Migrated"),
    "UNVERIFIED": N_("Unverified"),
}
#: A phone number's throughput level.
THROUGHPUT = {"STANDARD": N_("standard"), "HIGH": N_("high")}


def _in_words(table: dict[str, str], code: str | None) -> str:
    if not code:
        return "—"
    known = table.get(code.strip().upper())
    return _(known) if known else code.replace("_", " ").title()


def quality_words(rating: str | None) -> str:
    """A quality rating (GREEN, RED…) in the reader's language; "—" when there is none."""
    return _in_words(QUALITY, rating)


def category_words(category: str | None) -> str:
    """A template or pricing category (utility, MARKETING…) in the reader's language."""
    return _in_words(CATEGORIES, category)


def pricing_type_words(pricing_type: str | None) -> str:
    """A pricing type (regular, free_customer_service…) in the reader's language."""
    return _in_words(PRICING_TYPES, pricing_type)


def number_status_words(status: str | None) -> str:
    """A phone number's status (CONNECTED, FLAGGED…) in the reader's language."""
    return _in_words(NUMBER_STATUS, status)


def throughput_words(level: str | None) -> str:
    """A phone number's throughput level (STANDARD, HIGH) in the reader's language."""
    return _in_words(THROUGHPUT, level)


#: Why Meta's review rejected a template (`rejected_reason`, the webhook's `reason`).
REJECTION_REASONS = {
    "INVALID_FORMAT": N_("the layout breaks WhatsApp's rules (parameters, lengths)"),
    "INCORRECT_CATEGORY": N_("the category does not match the content"),
    "TAG_CONTENT_MISMATCH": N_("the category does not match the content"),
    "PROMOTIONAL": N_("promotional content outside a marketing template"),
    "ABUSIVE_CONTENT": N_("content against WhatsApp's policies"),
    "SCAM": N_("content Meta takes for a scam"),
}


def rejection_words(reason: str | None) -> str:
    """Meta's rejection reason in the reader's language, Meta's code kept beside it
    (what Meta support asks for); an unknown code as Meta wrote it."""
    if not reason:
        return "—"
    known = REJECTION_REASONS.get(reason.strip().upper())
    return f"{_(known)} ({reason.strip()})" if known else reason
