"""How much input a fuzz run generates, and from which seed (both from the environment)."""

from __future__ import annotations

import os
from dataclasses import dataclass

PROFILE_ENV = "WANOTIFY_FUZZ_PROFILE"
SEED_ENV = "WANOTIFY_FUZZ_SEED"
DEFAULT_SEED = 20261204


@dataclass(frozen=True)
class FuzzProfile:
    """Sizes of one run: webhook bodies and ERP events, of which how many are valid."""

    name: str
    webhook_bodies: int  # every webhook POST (signed or not)
    erp_events: int  # every POST /api/v1/po-events (any key)
    tracked_messages: int  # outbox rows that valid signed statuses are sent for
    concurrency: int  # requests in flight at once
    seed: int


_SIZES = {
    "small": (300, 300, 40, 6),
    "full": (10_000, 10_000, 1_000, 8),
}


def fuzz_profile() -> FuzzProfile:
    """The profile named by WANOTIFY_FUZZ_PROFILE (small or full); a clear error otherwise."""
    name = os.environ.get(PROFILE_ENV, "").strip().lower() or "small"
    if name not in _SIZES:
        raise ValueError(f"{PROFILE_ENV} must be one of {sorted(_SIZES)}, not {name!r}")
    raw_seed = os.environ.get(SEED_ENV, "").strip()
    if raw_seed and not raw_seed.isdigit():
        raise ValueError(f"{SEED_ENV} must be a non-negative integer, not {raw_seed!r}")
    webhooks, erp, tracked, concurrency = _SIZES[name]
    seed = int(raw_seed) if raw_seed else DEFAULT_SEED
    return FuzzProfile(name, webhooks, erp, tracked, concurrency, seed)
