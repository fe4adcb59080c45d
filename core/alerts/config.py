"""Alert delivery settings from the environment (and `.env`), checked when read.

E-mail is off until `ALERTS_SMTP_HOST` is set; once any `ALERTS_SMTP_*` variable is set,
the host and the sender address must be too, a user name needs its password (and the
reverse), and a password is never sent without TLS: a half-made configuration stops the
process with one line naming what is missing (`AlertConfigError`), never a silent
"mail is off". The chat webhook is a Slack-compatible incoming-webhook URL, one for the
whole installation (`ALERTS_CHAT_WEBHOOK_URL`) and/or one per tenant
(`ALERTS_CHAT_WEBHOOK_URLS`, a JSON object `{"tenant": "https://..."}`). The SMTP
password and the webhook URLs are secrets: kept as `SecretStr`, never logged nor shown.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from pydantic_settings import SettingsError as PydanticSettingsError

TlsMode = Literal["starttls", "tls", "none"]
#: The SMTP variables: setting any of them means "send e-mail", so all needed must be set.
SMTP_VARIABLES = (
    ("smtp_host", "ALERTS_SMTP_HOST"),
    ("smtp_from", "ALERTS_SMTP_FROM"),
    ("smtp_username", "ALERTS_SMTP_USERNAME"),
    ("smtp_password", "ALERTS_SMTP_PASSWORD"),
    ("smtp_port", "ALERTS_SMTP_PORT"),
    ("smtp_ca_file", "ALERTS_SMTP_CA_FILE"),
)


class AlertConfigError(ValueError):
    """The alert settings are incomplete or malformed; the message names the variable."""


class AlertSettings(BaseSettings):
    """Where alerts go and how often: SMTP server, chat webhooks, grouping window."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    smtp_host: str | None = Field(default=None, validation_alias="ALERTS_SMTP_HOST")
    #: Default: 587 with STARTTLS, 465 with implicit TLS, 25 without TLS.
    smtp_port: int | None = Field(default=None, ge=1, le=65535, validation_alias="ALERTS_SMTP_PORT")
    smtp_tls: TlsMode = Field(default="starttls", validation_alias="ALERTS_SMTP_TLS")
    smtp_username: str | None = Field(default=None, validation_alias="ALERTS_SMTP_USERNAME")
    smtp_password: SecretStr | None = Field(default=None, validation_alias="ALERTS_SMTP_PASSWORD")
    smtp_from: str | None = Field(default=None, validation_alias="ALERTS_SMTP_FROM")
    #: A CA bundle to trust for the server's certificate (a private CA); default: system's.
    smtp_ca_file: str | None = Field(default=None, validation_alias="ALERTS_SMTP_CA_FILE")
    smtp_timeout: float = Field(default=20.0, gt=0, le=300, validation_alias="ALERTS_SMTP_TIMEOUT")
    chat_webhook_url: SecretStr | None = Field(
        default=None, validation_alias="ALERTS_CHAT_WEBHOOK_URL"
    )
    chat_webhook_urls: dict[str, SecretStr] = Field(
        default_factory=dict, validation_alias="ALERTS_CHAT_WEBHOOK_URLS"
    )
    #: At most one message per kind per recipient in this many minutes; more become a digest.
    window_minutes: int = Field(
        default=15, ge=1, le=24 * 60, validation_alias="ALERTS_WINDOW_MINUTES"
    )
    #: Seconds between the delivery loop's passes in the sender worker.
    poll_seconds: float = Field(default=5.0, gt=0, le=3600, validation_alias="ALERTS_POLL_SECONDS")

    @field_validator("smtp_tls", mode="before")
    @classmethod
    def _tls_word(cls, value: object) -> object:
        if isinstance(value, str):
            word = value.strip().lower()
            if word not in ("starttls", "tls", "none"):
                raise ValueError("must be starttls, tls or none")
            return word
        return value

    @field_validator("chat_webhook_url")
    @classmethod
    def _one_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and value.get_secret_value().strip():
            _check_url(value.get_secret_value())
            return value
        return None

    @field_validator("chat_webhook_urls")
    @classmethod
    def _tenant_urls(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for tenant, url in value.items():
            if not tenant.strip():
                raise ValueError("a tenant name is empty")
            _check_url(url.get_secret_value(), tenant)
        return value

    @property
    def email_enabled(self) -> bool:
        """True when alerts can be sent by e-mail (an SMTP server is configured)."""
        return bool(self.smtp_host)

    @property
    def port(self) -> int:
        """The SMTP port: the one set, else the usual one for the TLS mode."""
        if self.smtp_port is not None:
            return self.smtp_port
        return {"starttls": 587, "tls": 465, "none": 25}[self.smtp_tls]

    def chat_url(self, tenant_id: str | None) -> str | None:
        """The chat webhook URL for `tenant_id` (its own, else the global one), or None."""
        if tenant_id is not None and tenant_id in self.chat_webhook_urls:
            return self.chat_webhook_urls[tenant_id].get_secret_value()
        if self.chat_webhook_url is not None:
            return self.chat_webhook_url.get_secret_value()
        return None

    def chat_target(self, tenant_id: str | None) -> str | None:
        """The name of the chat channel for `tenant_id` (`tenant:<id>` or `global`), the
        key the outbox stores instead of the secret URL; None when there is none."""
        if tenant_id is not None and tenant_id in self.chat_webhook_urls:
            return f"tenant:{tenant_id}"
        return "global" if self.chat_webhook_url is not None else None

    def url_for_target(self, target: str) -> str | None:
        """The URL a stored chat target (`chat_target`) names now, or None if it is gone."""
        if target.startswith("tenant:"):
            url = self.chat_webhook_urls.get(target.removeprefix("tenant:"))
            return url.get_secret_value() if url is not None else None
        if target == "global" and self.chat_webhook_url is not None:
            return self.chat_webhook_url.get_secret_value()
        return None


def _check_url(url: str, tenant: str | None = None) -> None:
    where = f" for tenant {tenant}" if tenant else ""
    if not url.startswith(("https://", "http://")) or len(url) < 12:
        raise ValueError(f"the chat webhook URL{where} must be an http(s):// URL")


def smtp_problem(settings: AlertSettings) -> str | None:
    """Why the SMTP settings are half made, in one line (None when coherent or all unset)."""
    present = [name for field, name in SMTP_VARIABLES if getattr(settings, field) not in (None, "")]
    if not present:
        return None
    missing = [
        name
        for field, name in (("smtp_host", "ALERTS_SMTP_HOST"), ("smtp_from", "ALERTS_SMTP_FROM"))
        if not (getattr(settings, field) or "").strip()
    ]
    user = bool((settings.smtp_username or "").strip())
    password = bool(settings.smtp_password and settings.smtp_password.get_secret_value())
    if user and not password:
        missing.append("ALERTS_SMTP_PASSWORD")
    if password and not user:
        missing.append("ALERTS_SMTP_USERNAME")
    if missing:
        return (
            f"incomplete alert e-mail configuration ({', '.join(present)} set): missing "
            f"{', '.join(missing)}; set them, or unset every ALERTS_SMTP_* variable to send "
            "no e-mail"
        )
    if password and settings.smtp_tls == "none":
        return (
            "ALERTS_SMTP_PASSWORD with ALERTS_SMTP_TLS=none would send the password in clear: "
            "use starttls or tls"
        )
    if settings.smtp_from and "@" not in settings.smtp_from:
        return f"ALERTS_SMTP_FROM must be an e-mail address (got {settings.smtp_from!r})"
    return None


def load_alert_settings(**overrides: object) -> AlertSettings:
    """Read the alert settings; raise AlertConfigError naming the bad or missing variable."""
    try:
        settings = AlertSettings(**overrides)  # type: ignore[arg-type]
    except PydanticSettingsError as exc:  # a value that is not JSON where JSON is read
        field = re.search(r'field "(\w+)"', str(exc))
        name = f"ALERTS_{field.group(1).upper()}" if field else "ALERTS_*"
        raise AlertConfigError(
            f'{name}: must be a JSON object such as {{"tenant": "https://..."}}'
        ) from None
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0]).upper() if first["loc"] else "ALERTS_*"
        if not name.startswith("ALERTS_"):
            name = f"ALERTS_{name}"
        secret = any(word in name for word in ("PASSWORD", "URL"))
        shown = "" if secret else f" (got {first.get('input')!r})"
        message = str(first.get("ctx", {}).get("error", first["msg"]))
        raise AlertConfigError(f"{name}: {message}{shown}") from None
    problem = smtp_problem(settings)
    if problem is not None:
        raise AlertConfigError(problem)
    return settings


@lru_cache(maxsize=1)
def get_alert_settings() -> AlertSettings:
    """The process-wide alert settings, read once; tests call `cache_clear()`."""
    return load_alert_settings()


def describe_alert_settings(settings: AlertSettings) -> list[tuple[str, str]]:
    """Every alert setting as (variable, safe value) for an admin's eyes: the password and
    webhook URLs only as set / not set (`core.config_summary.safe_value`), per-tenant
    webhooks by tenant name."""
    from core.config_summary import HIDDEN, NOT_SET, safe_value

    items: list[tuple[str, str]] = []
    for field, info in type(settings).model_fields.items():
        variable = str(info.validation_alias or field).upper()
        value = getattr(settings, field)
        if isinstance(value, dict):
            shown = ", ".join(f"{tenant}: {HIDDEN}" for tenant in sorted(value)) or NOT_SET
        elif field.startswith("chat_webhook"):
            shown = HIDDEN if value is not None else NOT_SET
        else:
            shown = safe_value(variable, value)
        items.append((variable, shown))
    return items
