"""The sandbox's configuration: identity, limits, latency and webhook fault rates.

`SandboxConfig()` alone is a working sandbox with the fixed sandbox credentials;
`SandboxConfig.from_settings(settings)` takes them (and the limits) from wanotify's
settings. A subset of fields can be changed at runtime through `/_sandbox/config`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from core.settings import (
    SANDBOX_APP_SECRET,
    SANDBOX_PHONE_NUMBER_ID,
    SANDBOX_TOKEN,
    SANDBOX_WABA_ID,
    Settings,
    SettingsError,
)


class ConfigError(ValueError):
    """A runtime configuration change was refused; the message names the field."""


@dataclass(frozen=True)
class SandboxConfig:
    """Everything that shapes the sandbox's behaviour. Immutable: changes make a copy."""

    access_token: str = SANDBOX_TOKEN
    app_secret: str = SANDBOX_APP_SECRET
    phone_number_id: str = SANDBOX_PHONE_NUMBER_ID
    waba_id: str = SANDBOX_WABA_ID
    display_phone_number: str = "34910000000"
    verified_name: str = "Compras Demo"
    seed: int = 1
    latency_ms: float = 0.0
    #: each send's latency varies uniformly within ± this fraction of latency_ms
    latency_spread: float = 0.0
    #: the share of sends that take a slow tail latency instead
    latency_tail_rate: float = 0.0
    latency_tail_min_ms: float = 1000.0
    latency_tail_max_ms: float = 2000.0
    #: the share of each latency that passes before the request arrives and is counted
    #: against the cap and the pair limit (the way there); the rest delays the answer.
    #: 0: a send arrives at once and only its answer waits; 0.5: a symmetric network
    latency_arrival_share: float = 0.0
    #: accepted sends allowed in any sliding one-second window (130429 beyond)
    mps: int = 80
    #: pair-limit bucket capacity (1 = strict one per 6 s; 45 = Meta's borrowing burst)
    pair_burst: int = 1
    pair_interval_s: float = 6.0
    webhook_url: str | None = None
    webhooks_enabled: bool = True
    #: multiplies every webhook delay (0.01 makes a minute of statuses take 0.6 s)
    time_scale: float = 1.0
    duplicate_rate: float = 0.05
    reorder_rate: float = 0.1
    batch_rate: float = 0.3
    fail_rate: float = 0.0
    read_rate: float = 1.0
    reply_rate: float = 0.3
    window_seconds: float = 24 * 3600.0
    webhook_max_attempts: int = 6
    webhook_timeout_s: float = 10.0
    webhook_concurrency: int = 32
    max_body_bytes: int = 1024 * 1024
    #: accepted messages whose bodies `/_sandbox/messages` keeps (counters keep everything)
    max_stored_messages: int = 200_000
    quality_rating: str = "GREEN"
    throughput_level: str = "STANDARD"
    messaging_limit_tier: str = "TIER_2K"

    def __post_init__(self) -> None:
        """Refuse a latency model that cannot be drawn from (ConfigError names the field)."""
        for name in LATENCY_FIELDS:
            RUNTIME_FIELDS[name](name, getattr(self, name))
        if self.latency_tail_min_ms > self.latency_tail_max_ms:
            raise ConfigError("latency_tail_min_ms must not exceed latency_tail_max_ms")

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> SandboxConfig:
        """The configuration `wanotify sandbox` runs with, from wanotify's settings.

        Refused outside sandbox mode: a sandbox holding the live app secret would sign
        webhooks the production webhook app accepts as Meta's.
        """
        if not settings.sandbox_mode:
            raise SettingsError(
                "the sandbox runs only in sandbox mode: unset the WHATSAPP_* credentials "
                "or run it from an environment with WANOTIFY_MODE=sandbox"
            )
        values: dict[str, Any] = {
            "access_token": settings.access_token,
            "app_secret": settings.app_secret or SANDBOX_APP_SECRET,
            "phone_number_id": settings.phone_number_id,
            "waba_id": settings.business_account_id or SANDBOX_WABA_ID,
            "seed": settings.sandbox_seed,
            "latency_ms": settings.sandbox_latency_ms,
            "mps": settings.whatsapp_max_mps,
            "webhook_url": settings.webhook_url,
        }
        values.update(overrides)
        return cls(**values)

    def updated(self, changes: dict[str, Any]) -> SandboxConfig:
        """A copy with the runtime-changeable `changes` applied; ConfigError if refused."""
        unknown = sorted(set(changes) - set(RUNTIME_FIELDS))
        if unknown:
            allowed = ", ".join(sorted(RUNTIME_FIELDS))
            raise ConfigError(f"not configurable at runtime: {', '.join(unknown)} ({allowed})")
        clean = {name: RUNTIME_FIELDS[name](name, value) for name, value in changes.items()}
        return dataclasses.replace(self, **clean)  # __post_init__ checks the combination

    def public(self) -> dict[str, Any]:
        """The configuration without its secrets, for `/_sandbox/config`."""
        values = dataclasses.asdict(self)
        values.pop("access_token")
        values.pop("app_secret")
        return values


def _number(name: str, value: Any, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{name} must be a number")
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low:g} and {high:g}")
    return float(value)


def _integer(low: int, high: int) -> Any:
    def check(name: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{name} must be an integer")
        if not low <= value <= high:
            raise ConfigError(f"{name} must be between {low} and {high}")
        return value

    return check


def _real(low: float, high: float) -> Any:
    return lambda name, value: _number(name, value, low, high)


def _boolean(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{name} must be true or false")
    return value


def _url(name: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 2000:
        raise ConfigError(f"{name} must be an http(s) URL or null")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{name} must be an http(s) URL or null")
    return value


def _choice(*options: str) -> Any:
    def check(name: str, value: Any) -> str:
        if value not in options:
            raise ConfigError(f"{name} must be one of {', '.join(options)}")
        return str(value)

    return check


#: Fields `/_sandbox/config` may change, each with its validator.
RUNTIME_FIELDS: dict[str, Any] = {
    "mps": _integer(1, 100_000),
    "pair_burst": _integer(1, 1000),
    "pair_interval_s": _real(0.001, 3600),
    "latency_ms": _real(0, 60_000),
    "latency_spread": _real(0, 0.99),
    "latency_tail_rate": _real(0, 1),
    "latency_tail_min_ms": _real(0, 60_000),
    "latency_tail_max_ms": _real(0, 60_000),
    "latency_arrival_share": _real(0, 1),
    "webhook_url": _url,
    "webhooks_enabled": _boolean,
    "time_scale": _real(0.0001, 100),
    "duplicate_rate": _real(0, 1),
    "reorder_rate": _real(0, 1),
    "batch_rate": _real(0, 1),
    "fail_rate": _real(0, 1),
    "read_rate": _real(0, 1),
    "reply_rate": _real(0, 1),
    "window_seconds": _real(0, 30 * 24 * 3600),
    "webhook_max_attempts": _integer(1, 20),
    "webhook_timeout_s": _real(0.01, 120),
    "quality_rating": _choice("GREEN", "YELLOW", "RED", "UNKNOWN", "NA"),
    "throughput_level": _choice("STANDARD", "HIGH", "NOT_APPLICABLE"),
    "messaging_limit_tier": _choice(
        "TIER_250", "TIER_2K", "TIER_10K", "TIER_100K", "TIER_UNLIMITED"
    ),
}

#: The latency model's fields, checked whenever a configuration is made.
LATENCY_FIELDS = (
    "latency_ms",
    "latency_spread",
    "latency_tail_rate",
    "latency_tail_min_ms",
    "latency_tail_max_ms",
    "latency_arrival_share",
)
