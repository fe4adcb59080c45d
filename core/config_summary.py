"""The configuration as an admin may see it: every setting's variable and value, secrets
never shown (only whether they are set), passwords cut out of URLs."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from pydantic import SecretStr

from core.i18n import N_, _
from core.settings import Settings

HIDDEN = N_("set (hidden)")
NOT_SET = N_("not set")
#: Words the table shows as they are but in the reader's language.
_WORDS = {HIDDEN: HIDDEN, NOT_SET: NOT_SET, "True": N_("yes"), "False": N_("no")}
#: Words in a variable name that make its value a secret, whatever its type.
_SECRET_WORDS = ("TOKEN", "SECRET", "PASSWORD", "API_KEY")


@dataclass(frozen=True)
class ConfigItem:
    """One setting as shown: its environment variable, a safe value, and what it does."""

    variable: str
    value: str
    meaning: str


def _variable(settings: Settings, field: str) -> str:
    info = type(settings).model_fields[field]
    alias = info.validation_alias
    choices = getattr(alias, "choices", None)
    if choices:
        return str(choices[0])
    return str(alias or field).upper()


def mask_url(url: str) -> str:
    """`url` with any password (user info or a secret-looking query value) replaced by ***."""
    try:
        parts = urlsplit(url)
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(unreadable URL)"
    netloc = parts.netloc
    if parts.password is not None:
        netloc = f"{parts.username or ''}:***@{parts.hostname or ''}{port}"
    query = "&".join(
        f"{name}=***" if any(w in name.upper() for w in (*_SECRET_WORDS, "PASS", "KEY")) else
        f"{name}={value}" if sep else name
        for name, sep, value in (pair.partition("=") for pair in parts.query.split("&") if pair)
    )  # fmt: skip
    if netloc == parts.netloc and query == parts.query:
        return url  # nothing secret (urlunsplit would also drop sqlite's empty "//")
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def safe_value(variable: str, value: object) -> str:
    """How a setting's value may be shown: secrets only as set / not set."""
    if isinstance(value, SecretStr) or any(word in variable for word in _SECRET_WORDS):
        return HIDDEN if value not in (None, "") else NOT_SET
    if value is None or value == "":
        return NOT_SET
    text = str(value)
    if variable.endswith("_URL") or "://" in text:
        return mask_url(text)
    return text


def shown_value(value: str) -> str:
    """A safe value in the reader's language: "not set", "set (hidden)" and booleans are
    words of ours, so they are translated; every other value is the setting's own text."""
    word = _WORDS.get(value)
    return _(word) if word is not None else value


def describe_settings(settings: Settings) -> list[ConfigItem]:
    """Every setting with a safe value and its description, by variable name."""
    items = []
    for field, info in type(settings).model_fields.items():
        variable = _variable(settings, field)
        value = getattr(settings, field)
        items.append(ConfigItem(variable, safe_value(variable, value), info.description or ""))
    items.sort(key=lambda item: item.variable)
    return items


def effective_summary(settings: Settings) -> list[ConfigItem]:
    """What the settings resolve to at run time (mode, API base, number), secrets hidden."""
    return [
        ConfigItem(N_("mode"), settings.mode or NOT_SET,
                   "Sandbox or live: WANOTIFY_MODE, else the credentials"),
        ConfigItem(N_("API base URL"), mask_url(settings.api_base_url) or NOT_SET,
                   "Where sends go"),
        ConfigItem(N_("API version"), settings.whatsapp_api_version or NOT_SET,
                   "Graph API version"),
        ConfigItem(N_("phone number id"), settings.phone_number_id or NOT_SET,
                   "The sending number"),
        ConfigItem(N_("business account id"), settings.business_account_id or NOT_SET,
                   "Where templates live"),
        ConfigItem(N_("webhook URL"), mask_url(settings.webhook_url) or NOT_SET,
                   "Where Meta posts events"),
        ConfigItem(N_("database"), mask_url(settings.database_url) or NOT_SET,
                   "Where everything is stored"),
    ]  # fmt: skip
