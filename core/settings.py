"""Configuration from the environment and `.env`, with the seed system's variable names.

The mode is explicit and checked when the settings are read, so every process (dashboard,
webhook app, worker, CLI, consumer, `wanotify run`) stops at start on an incoherent one:

- *sandbox*: no live credential (`LIVE_CREDENTIALS`) and no `WHATSAPP_API_BASE_URL` is
  set, or `WANOTIFY_MODE=sandbox` says so (then no live credential may be set; the base
  URL may point at a sandbox elsewhere). The built-in Cloud API sandbox stands in for
  Meta; only here are its public secret, verify token and the demo accounts honoured.
- *live*: any of those variables is set, or `WANOTIFY_MODE=live`; then every live
  credential must be set, none empty and none equal to the sandbox's public values.

Anything else is one `SettingsError` line naming what is missing or in the way.
"""

from __future__ import annotations

import logging
import os
import warnings
from functools import lru_cache
from typing import Any, Literal

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

log = logging.getLogger(__name__)

#: Deprecated seed names and the current name each stands for.
DEPRECATED_NAMES: dict[str, str] = {
    "WHATSAPP_API_KEY": "WHATSAPP_ACCESS_TOKEN",
    "WHATSAPP_BASE_URL": "WHATSAPP_API_BASE_URL",
    "WHATSAPP_FROM_NUMBER": "WHATSAPP_PHONE_NUMBER_ID",
}

SANDBOX_TOKEN = "sandbox-token"  # noqa: S105 - a public, fixed token for the local sandbox
SANDBOX_APP_SECRET = "sandbox-app-secret"  # noqa: S105 - signs sandbox webhooks only
SANDBOX_PHONE_NUMBER_ID = "106540352242922"
SANDBOX_WABA_ID = "102290129340398"
SANDBOX_VERIFY_TOKEN = "sandbox-verify-token"  # noqa: S105

Mode = Literal["sandbox", "live"]

#: The live credentials (field, variable): all set in live mode, none in sandbox mode.
#: The deprecated names (`DEPRECATED_NAMES`) count as the variable they stand for.
LIVE_CREDENTIALS: tuple[tuple[str, str], ...] = (
    ("whatsapp_access_token", "WHATSAPP_ACCESS_TOKEN"),
    ("whatsapp_phone_number_id", "WHATSAPP_PHONE_NUMBER_ID"),
    ("whatsapp_business_account_id", "WHATSAPP_BUSINESS_ACCOUNT_ID"),
    ("whatsapp_app_secret", "WHATSAPP_APP_SECRET"),
    ("whatsapp_webhook_verify_token", "WHATSAPP_WEBHOOK_VERIFY_TOKEN"),
)
#: Not a credential, but set without `WANOTIFY_MODE=sandbox` it means "live".
LIVE_BASE_URL = ("whatsapp_api_base_url", "WHATSAPP_API_BASE_URL")
#: The sandbox's published values, refused as live credentials.
_PUBLIC_VALUES = {
    "whatsapp_access_token": SANDBOX_TOKEN,
    "whatsapp_app_secret": SANDBOX_APP_SECRET,
    "whatsapp_webhook_verify_token": SANDBOX_VERIFY_TOKEN,
}


class SettingsError(ValueError):
    """A configuration value is missing or malformed; the message names the variable."""


class Settings(BaseSettings):
    """Every setting wanotify reads, with its environment variable name."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    whatsapp_access_token: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("WHATSAPP_ACCESS_TOKEN", "WHATSAPP_API_KEY"),
    )
    whatsapp_phone_number_id: str | None = Field(
        default=None,
        validation_alias=AliasChoices("WHATSAPP_PHONE_NUMBER_ID", "WHATSAPP_FROM_NUMBER"),
    )
    whatsapp_business_account_id: str | None = Field(
        default=None, validation_alias="WHATSAPP_BUSINESS_ACCOUNT_ID"
    )
    whatsapp_api_version: str = Field(default="v25.0", validation_alias="WHATSAPP_API_VERSION")
    whatsapp_api_base_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("WHATSAPP_API_BASE_URL", "WHATSAPP_BASE_URL"),
    )
    whatsapp_webhook_verify_token: SecretStr | None = Field(
        default=None, validation_alias="WHATSAPP_WEBHOOK_VERIFY_TOKEN"
    )
    whatsapp_app_secret: SecretStr | None = Field(
        default=None, validation_alias="WHATSAPP_APP_SECRET"
    )
    enable_whatsapp_notifications: bool = Field(
        default=True, validation_alias="ENABLE_WHATSAPP_NOTIFICATIONS"
    )
    whatsapp_max_mps: int = Field(default=80, ge=1, le=10_000, validation_alias="WHATSAPP_MAX_MPS")
    whatsapp_default_region: str = Field(default="ES", validation_alias="WHATSAPP_DEFAULT_REGION")
    whatsapp_max_attempts: int = Field(
        default=6, ge=1, le=50, validation_alias="WHATSAPP_MAX_ATTEMPTS"
    )
    whatsapp_inflight_grace_seconds: float = Field(
        default=600.0, gt=0, validation_alias="WHATSAPP_INFLIGHT_GRACE_SECONDS"
    )
    whatsapp_request_timeout: float = Field(
        default=20.0, gt=0, validation_alias="WHATSAPP_REQUEST_TIMEOUT"
    )
    #: seconds added to the one-second window our limiter counts in: absorbs the jitter
    #: between starting a send here and Meta counting it (costs margin/1 s of throughput)
    whatsapp_rate_margin_seconds: float = Field(
        default=0.02, ge=0, le=1, validation_alias="WHATSAPP_RATE_MARGIN_SECONDS"
    )
    #: how long a worker may hold a claimed message before others presume it dead
    #: (default: 3 × the request timeout, at least 60 s)
    whatsapp_claim_lease_seconds: float | None = Field(
        default=None, gt=0, validation_alias="WHATSAPP_CLAIM_LEASE_SECONDS"
    )
    database_url: str = Field(default="sqlite:///wanotify.db", validation_alias="DATABASE_URL")
    rabbitmq_url: str = Field(
        default="amqp://guest:guest@127.0.0.1:5672/", validation_alias="RABBITMQ_URL"
    )
    default_tenant: str = Field(default="default", validation_alias="WANOTIFY_DEFAULT_TENANT")
    sandbox_host: str = Field(default="127.0.0.1", validation_alias="SANDBOX_HOST")
    sandbox_port: int = Field(default=8700, ge=1, le=65535, validation_alias="SANDBOX_PORT")
    sandbox_webhook_url: str | None = Field(default=None, validation_alias="SANDBOX_WEBHOOK_URL")
    sandbox_seed: int = Field(default=1, validation_alias="SANDBOX_SEED")
    sandbox_latency_ms: float = Field(default=0.0, ge=0, validation_alias="SANDBOX_LATENCY_MS")
    webhook_host: str = Field(default="127.0.0.1", validation_alias="WEBHOOK_HOST")
    webhook_port: int = Field(default=8000, ge=1, le=65535, validation_alias="WEBHOOK_PORT")
    webhook_max_body_bytes: int = Field(
        default=4 * 1024 * 1024, ge=1024, validation_alias="WEBHOOK_MAX_BODY_BYTES"
    )
    dashboard_port: int = Field(default=8501, ge=1, le=65535, validation_alias="DASHBOARD_PORT")
    dashboard_embedded_sender: bool = Field(
        default=True, validation_alias="DASHBOARD_EMBEDDED_SENDER"
    )
    #: Serve the embedded sender's Prometheus metrics on this port (127.0.0.1; off when unset).
    dashboard_metrics_port: int | None = Field(
        default=None, ge=1, le=65535, validation_alias="DASHBOARD_METRICS_PORT"
    )
    #: A dashboard session with no click for this long is signed out (1 minute to 7 days).
    dashboard_idle_minutes: int = Field(
        default=60, ge=1, le=7 * 24 * 60, validation_alias="DASHBOARD_IDLE_MINUTES"
    )
    #: Single sign-on group rules (core.sso.parse_group_rules): `group=role@tenant[,tenant]`
    #: separated by `;`. People without an account are let in only through these.
    sso_group_rules: str = Field(default="", validation_alias="SSO_GROUP_RULES")
    po_events_api_key: SecretStr | None = Field(default=None, validation_alias="PO_EVENTS_API_KEY")
    #: Replies that withdraw WhatsApp consent, per language, over the defaults
    #: (core.consent.stopwords): `es=baja,parar;pt=baixa;en=stop,unsubscribe`.
    consent_stop_words: str = Field(default="", validation_alias="CONSENT_STOP_WORDS")
    wanotify_mode: Mode | None = Field(default=None, validation_alias="WANOTIFY_MODE")
    #: Fernet key(s) encrypting the access tokens of numbers stored in the database
    #: (core.numbers.secrets): comma-separated, the first encrypts, every one decrypts.
    wanotify_secret_key: SecretStr | None = Field(
        default=None, validation_alias="WANOTIFY_SECRET_KEY"
    )

    @field_validator("wanotify_mode", mode="before")
    @classmethod
    def _mode_word(cls, value: object) -> object:
        if isinstance(value, str):
            word = value.strip().lower()
            if not word:
                return None
            if word not in ("sandbox", "live"):
                raise ValueError("must be sandbox or live")
            return word
        return value

    @model_validator(mode="after")
    def _coherent_mode(self) -> Settings:
        problem = mode_problem(self)
        if problem is not None:
            raise ValueError(problem)
        return self

    @field_validator("wanotify_secret_key")
    @classmethod
    def _secret_key_shape(cls, value: SecretStr | None) -> SecretStr | None:
        from core.numbers.secrets import SecretKeyError, parse_keys  # not at import

        if value is not None and value.get_secret_value().strip():
            try:
                parse_keys(value.get_secret_value())
            except SecretKeyError as exc:  # named once, by load_settings
                raise ValueError(str(exc).removeprefix("WANOTIFY_SECRET_KEY: ")) from None
        return value

    @field_validator("sso_group_rules")
    @classmethod
    def _group_rules_shape(cls, value: str) -> str:
        from core.sso import parse_group_rules  # core.sso reads the database: not at import

        parse_group_rules(value)
        return value

    @field_validator("consent_stop_words")
    @classmethod
    def _stop_words_shape(cls, value: str) -> str:
        from core.consent.stopwords import parse_stop_words

        parse_stop_words(value)
        return value

    @field_validator("whatsapp_api_version")
    @classmethod
    def _version_shape(cls, value: str) -> str:
        if not (value.startswith("v") and value[1:].replace(".", "", 1).isdigit()):
            raise ValueError("must look like v25.0")
        return value

    @field_validator("database_url")
    @classmethod
    def _database_scheme(cls, value: str) -> str:
        if not value.startswith(("sqlite", "postgresql", "postgres")):
            raise ValueError("must be a sqlite:/// or postgresql:// URL")
        return value

    @field_validator("whatsapp_default_region")
    @classmethod
    def _region_shape(cls, value: str) -> str:
        if len(value) != 2 or not value.isalpha():
            raise ValueError("must be a two-letter region code such as ES")
        return value.upper()

    @property
    def mode(self) -> Mode:
        """`sandbox` or `live`, as the module docstring decides (checked when read)."""
        if self.wanotify_mode is not None:
            return self.wanotify_mode
        return "live" if _set_variables(self, with_base_url=True) else "sandbox"

    @property
    def sandbox_mode(self) -> bool:
        """True in sandbox mode: the local sandbox plays Meta, nothing reaches it."""
        return self.mode == "sandbox"

    @property
    def api_base_url(self) -> str:
        """The Graph API base URL: Meta's, the configured one, or the local sandbox."""
        if self.whatsapp_api_base_url:
            return self.whatsapp_api_base_url.rstrip("/")
        if self.sandbox_mode:
            return f"http://{self.sandbox_host}:{self.sandbox_port}"
        return "https://graph.facebook.com"

    @property
    def access_token(self) -> str:
        """The bearer token for the Graph API (the sandbox's fixed one in sandbox mode)."""
        if self.sandbox_mode:
            return SANDBOX_TOKEN
        assert self.whatsapp_access_token is not None
        return self.whatsapp_access_token.get_secret_value()

    @property
    def phone_number_id(self) -> str:
        """The business phone number id messages are sent from."""
        if self.sandbox_mode:
            return SANDBOX_PHONE_NUMBER_ID
        assert self.whatsapp_phone_number_id is not None
        return self.whatsapp_phone_number_id

    @property
    def business_account_id(self) -> str | None:
        """The WhatsApp Business Account id (templates live there)."""
        if self.sandbox_mode:
            return SANDBOX_WABA_ID
        return self.whatsapp_business_account_id

    @property
    def app_secret(self) -> str | None:
        """The secret webhook signatures are checked with: the sandbox's public one only
        in sandbox mode, else the Meta app's (None if unset: every event is refused)."""
        if self.sandbox_mode:
            return SANDBOX_APP_SECRET
        return _secret(self.whatsapp_app_secret)

    @property
    def verify_token(self) -> str | None:
        """The token Meta's webhook verification GET must carry (the sandbox's public one
        only in sandbox mode)."""
        if self.sandbox_mode:
            return SANDBOX_VERIFY_TOKEN
        return _secret(self.whatsapp_webhook_verify_token)

    @property
    def webhook_url(self) -> str:
        """Where the sandbox posts its signed webhooks (our own webhook app by default)."""
        return self.sandbox_webhook_url or (
            f"http://{self.webhook_host}:{self.webhook_port}/api/v1/whatsapp/webhook"
        )


def _secret(value: SecretStr | None) -> str | None:
    text = value.get_secret_value() if value is not None else None
    return text or None


def _text(value: object) -> str | None:
    if value is None:
        return None
    return value.get_secret_value() if isinstance(value, SecretStr) else str(value)


def _set_variables(settings: Settings, *, with_base_url: bool) -> list[str]:
    """The live variables present in `settings` (an empty value counts as present)."""
    pairs = (*LIVE_CREDENTIALS, LIVE_BASE_URL) if with_base_url else LIVE_CREDENTIALS
    found = ((name, _text(getattr(settings, field))) for field, name in pairs)
    return [
        name if value.strip() else f"{name} (empty)" for name, value in found if value is not None
    ]


def mode_problem(settings: Settings) -> str | None:
    """Why these settings name no coherent mode, in one line (None when they do)."""
    credentials = _set_variables(settings, with_base_url=False)
    if settings.wanotify_mode == "sandbox":
        if credentials:
            return (
                f"WANOTIFY_MODE=sandbox, but live credentials are set ({', '.join(credentials)}):"
                " unset them for the sandbox, or set WANOTIFY_MODE=live"
            )
        return None
    present = _set_variables(settings, with_base_url=True)
    if settings.wanotify_mode is None and not present:
        return None
    missing = [
        name
        for field, name in LIVE_CREDENTIALS
        if not (_text(getattr(settings, field)) or "").strip()
    ]
    why = "WANOTIFY_MODE=live" if settings.wanotify_mode == "live" else f"{', '.join(present)} set"
    if missing:
        return (
            f"incomplete live WhatsApp configuration ({why}): missing {', '.join(missing)}; "
            "set them all for live mode, or none of them (nor WHATSAPP_API_BASE_URL) for the "
            "sandbox"
        )
    public = [
        name
        for field, name in LIVE_CREDENTIALS
        if _text(getattr(settings, field)) == _PUBLIC_VALUES.get(field)
    ]
    if public:
        return f"{', '.join(public)}: the sandbox's public value cannot be a live credential"
    return None


def _warn_deprecated(environ: dict[str, str]) -> None:
    for old, new in DEPRECATED_NAMES.items():
        if old in environ:
            message = f"{old} is deprecated; set {new} instead"
            warnings.warn(message, DeprecationWarning, stacklevel=3)
            log.warning(message)


def load_settings(**overrides: Any) -> Settings:
    """Read settings from the environment; raise SettingsError naming the bad variable."""
    _warn_deprecated(dict(os.environ))
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        if not first["loc"]:  # the mode check: its message names every variable itself
            raise SettingsError(str(first.get("ctx", {}).get("error", first["msg"]))) from None
        loc = first["loc"][0]
        name = str(loc).upper()
        shown = "" if _is_secret(name) else f" (got {first.get('input')!r})"
        raise SettingsError(f"{name}: {first['msg']}{shown}") from None


def _is_secret(name: str) -> bool:
    return any(word in name for word in ("TOKEN", "SECRET", "KEY", "PASSWORD", "URL"))


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once; tests call `get_settings.cache_clear()`."""
    settings = load_settings()
    if settings.sandbox_mode:
        log.warning(
            "SANDBOX MODE (%s): messages go to the sandbox at %s, nothing reaches Meta; "
            "its public webhook secret and the demo logins are accepted",
            "WANOTIFY_MODE=sandbox" if settings.wanotify_mode else "no WhatsApp credentials set",
            settings.api_base_url,
        )
    else:
        log.info("LIVE MODE: sending through %s", settings.api_base_url)
    return settings
