"""The sandbox's configuration: identity, limits, latency and webhook fault rates.

`SandboxConfig()` alone is a working sandbox with the fixed sandbox credentials;
`SandboxConfig.from_settings(settings)` takes them (and the limits) from wanotify's
settings. A subset of fields can be changed at runtime through `/_sandbox/config`.

The top-level identity (phone_number_id, access_token, display_phone_number, mps,
pair limit, quality...) is the sandbox's first business number; `numbers` adds more,
each a `SandboxNumber` with its own token, cap, pair limit, quality, tier and name
status (Meta sets these per phone number). They are added or changed at runtime
through `/_sandbox/numbers`.
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
class SandboxNumber:
    """One business phone number the sandbox plays: identity, token, limits, standing.

    `waba_id` and `access_token` None mean the sandbox's own (the top-level ones).
    """

    phone_number_id: str
    display_phone_number: str = "34910000001"
    verified_name: str = "Compras Demo"
    access_token: str | None = None
    waba_id: str | None = None
    mps: int = 80
    pair_burst: int = 1
    pair_interval_s: float = 6.0
    quality_rating: str = "GREEN"
    throughput_level: str = "STANDARD"
    messaging_limit_tier: str = "TIER_2K"
    name_status: str = "APPROVED"

    @classmethod
    def parse(cls, data: Any) -> SandboxNumber:
        """A number from JSON (or a SandboxNumber as is); ConfigError naming the field."""
        if isinstance(data, SandboxNumber):
            return data
        if not isinstance(data, dict):
            raise ConfigError("each number must be an object")
        unknown = sorted(set(data) - set(cls.__dataclass_fields__))
        if unknown:
            raise ConfigError(f"unknown number fields: {', '.join(unknown)}")
        ident = data.get("phone_number_id")
        if not isinstance(ident, str) or not ident.isdigit() or not 1 <= len(ident) <= 32:
            raise ConfigError("phone_number_id must be a string of 1 to 32 digits")
        clean: dict[str, Any] = {"phone_number_id": ident}
        for name, value in data.items():
            if name in NUMBER_FIELDS:
                clean[name] = NUMBER_FIELDS[name](name, value)
        return cls(**clean)

    def merged(self, changes: dict[str, Any]) -> SandboxNumber:
        """A copy with `changes` (number fields other than the id); ConfigError if refused."""
        if "phone_number_id" in changes and changes["phone_number_id"] != self.phone_number_id:
            raise ConfigError("phone_number_id cannot change")
        merged = {**dataclasses.asdict(self), **changes}
        return SandboxNumber.parse(merged)

    def public(self) -> dict[str, Any]:
        """The number without its token, for `/_sandbox/numbers` and `/_sandbox/config`."""
        values = dataclasses.asdict(self)
        values.pop("access_token")
        return values


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
    #: seconds (times time_scale) before a created template is approved or rejected
    template_review_s: float = 2.0
    webhook_max_attempts: int = 6
    webhook_timeout_s: float = 10.0
    webhook_concurrency: int = 32
    max_body_bytes: int = 1024 * 1024
    #: accepted messages whose bodies `/_sandbox/messages` keeps (counters keep everything)
    max_stored_messages: int = 200_000
    quality_rating: str = "GREEN"
    throughput_level: str = "STANDARD"
    messaging_limit_tier: str = "TIER_2K"
    name_status: str = "APPROVED"
    #: more business numbers beyond the top-level one (SandboxNumber, or their JSON)
    numbers: tuple[SandboxNumber, ...] = ()

    def __post_init__(self) -> None:
        """Refuse a latency model that cannot be drawn from, or numbers that clash
        (ConfigError names the field); JSON numbers become SandboxNumber."""
        for name in LATENCY_FIELDS:
            RUNTIME_FIELDS[name](name, getattr(self, name))
        if self.latency_tail_min_ms > self.latency_tail_max_ms:
            raise ConfigError("latency_tail_min_ms must not exceed latency_tail_max_ms")
        numbers = tuple(SandboxNumber.parse(n) for n in self.numbers or ())
        ids = [self.phone_number_id, *(n.phone_number_id for n in numbers)]
        if len(set(ids)) != len(ids):
            raise ConfigError("every number needs its own phone_number_id")
        object.__setattr__(self, "numbers", numbers)

    def primary_number(self) -> SandboxNumber:
        """The top-level identity and limits as a SandboxNumber (the first number)."""
        return SandboxNumber(
            phone_number_id=self.phone_number_id,
            display_phone_number=self.display_phone_number,
            verified_name=self.verified_name,
            access_token=self.access_token,
            waba_id=self.waba_id,
            mps=self.mps,
            pair_burst=self.pair_burst,
            pair_interval_s=self.pair_interval_s,
            quality_rating=self.quality_rating,
            throughput_level=self.throughput_level,
            messaging_limit_tier=self.messaging_limit_tier,
            name_status=self.name_status,
        )

    def all_numbers(self) -> tuple[SandboxNumber, ...]:
        """Every number the sandbox plays, the top-level one first, with the sandbox's
        token and WABA filled in where a number has none of its own."""
        extra = tuple(
            dataclasses.replace(
                n,
                access_token=n.access_token or self.access_token,
                waba_id=n.waba_id or self.waba_id,
            )
            for n in self.numbers
        )
        return (self.primary_number(), *extra)

    def with_number(self, number: SandboxNumber) -> SandboxConfig:
        """A copy where `number` is added, or replaces the number with its id (the
        top-level one's fields change when it is the first number)."""
        if number.phone_number_id == self.phone_number_id:
            changes = dataclasses.asdict(number)
            changes.pop("phone_number_id")
            changes["access_token"] = number.access_token or self.access_token
            changes["waba_id"] = number.waba_id or self.waba_id
            return dataclasses.replace(self, **changes)
        known = {n.phone_number_id for n in self.numbers}
        if number.phone_number_id in known:
            kept = [
                number if n.phone_number_id == number.phone_number_id else n for n in self.numbers
            ]
            return dataclasses.replace(self, numbers=tuple(kept))
        if len(self.numbers) + 1 >= MAX_NUMBERS:
            raise ConfigError(f"the sandbox plays at most {MAX_NUMBERS} numbers")
        return dataclasses.replace(self, numbers=(*self.numbers, number))

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
        values["numbers"] = [n.public() for n in self.numbers]
        return values

    def to_json(self) -> dict[str, Any]:
        """Every field as JSON values (numbers as objects), to rebuild it elsewhere."""
        values = {name: getattr(self, name) for name in self.__dataclass_fields__}
        values["numbers"] = [dataclasses.asdict(n) for n in self.numbers]
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


#: How many numbers one sandbox plays at most.
MAX_NUMBERS = 50

_LEVELS = _choice("STANDARD", "HIGH", "NOT_APPLICABLE")
_QUALITY = _choice("GREEN", "YELLOW", "RED", "UNKNOWN", "NA")
_TIERS = _choice("TIER_250", "TIER_2K", "TIER_10K", "TIER_100K", "TIER_UNLIMITED")
_NAME_STATUS = _choice(
    "APPROVED", "AVAILABLE_WITHOUT_REVIEW", "DECLINED", "EXPIRED", "PENDING_REVIEW", "NONE"
)


def _text(limit: int, *, digits: bool = False, optional: bool = False) -> Any:
    def check(name: str, value: Any) -> str | None:
        if value is None and optional:
            return None
        if not isinstance(value, str) or not 1 <= len(value) <= limit:
            raise ConfigError(f"{name} must be a string of 1 to {limit} characters")
        if digits and not value.isdigit():
            raise ConfigError(f"{name} must be digits only")
        return value

    return check


#: Per-number fields and their validators (the id is checked on its own).
NUMBER_FIELDS: dict[str, Any] = {
    "display_phone_number": _text(16, digits=True),
    "verified_name": _text(120),
    "access_token": _text(4096, optional=True),
    "waba_id": _text(32, digits=True, optional=True),
    "mps": _integer(1, 100_000),
    "pair_burst": _integer(1, 1000),
    "pair_interval_s": _real(0.001, 3600),
    "quality_rating": _QUALITY,
    "throughput_level": _LEVELS,
    "messaging_limit_tier": _TIERS,
    "name_status": _NAME_STATUS,
}

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
    "template_review_s": _real(0, 3600),
    "webhook_max_attempts": _integer(1, 20),
    "webhook_timeout_s": _real(0.01, 120),
    "quality_rating": _QUALITY,
    "throughput_level": _LEVELS,
    "messaging_limit_tier": _TIERS,
    "name_status": _NAME_STATUS,
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
