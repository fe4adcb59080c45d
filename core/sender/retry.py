"""What to do after a failed send: retry later, fail, pause everything, or hold a template.

Pure functions over `GraphError`; the dispatcher applies the decision. Retries use
exponential backoff with full jitter (AWS's scheme: a random wait in [0, min(cap,
base·2^(n-1))]) so many messages failing together do not come back together. Meta's
pair limit (131056) asks for 4^n seconds for that recipient; 131057 (maintenance or a
throughput upgrade) lasts about a minute.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import StrEnum

from core.errors import ErrorClass, GraphError

MAINTENANCE_CODE = 131057
MAINTENANCE_SECONDS = 60.0


class Action(StrEnum):
    """The dispatcher's reaction to one failed send."""

    RETRY = "retry"  # back to pending, due after `delay`
    FAIL = "fail"  # failed for good, with the reason
    PAUSE = "pause"  # stop the queue; this message goes back to pending untouched
    HOLD_TEMPLATE = "hold_template"  # fail it and stop sending its template
    UNKNOWN = "unknown"  # no answer after the request left: it may have been sent


@dataclass(frozen=True)
class Decision:
    """An action, the attempt number it concerns, and for retries how long to wait."""

    action: Action
    attempt: int
    delay: float = 0.0


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff settings: `max_attempts` sends in all, waits from `base` up to `cap`."""

    max_attempts: int = 6
    base_seconds: float = 2.0
    cap_seconds: float = 300.0
    pair_base_seconds: float = 4.0

    def backoff(self, attempt: int, error: GraphError, rng: random.Random) -> float:
        """Seconds to wait before attempt `attempt + 1` after `error` on attempt `attempt`."""
        exponent = max(0, attempt - 1)
        if error.is_pair_limit:
            return float(min(self.cap_seconds, self.pair_base_seconds ** max(1, attempt)))
        if error.code == MAINTENANCE_CODE:
            return MAINTENANCE_SECONDS + rng.uniform(0, self.base_seconds)
        ceiling = min(self.cap_seconds, self.base_seconds * 2.0**exponent)
        return rng.uniform(0, ceiling)


def may_have_reached_meta(error: GraphError) -> bool:
    """True when a transport failure happened after the request may have been delivered.

    `core.cloud_api` words transport failures (no code, HTTP status 599) so this can be
    told: "could not connect: …" never left; "timeout after …", "connection lost: …" and
    anything else may have reached Meta and been acted on, so it must not be re-sent.
    """
    if error.code is not None or error.http_status != 599:
        return False
    return not error.message.lower().startswith("could not connect")


def decide(error: GraphError, attempt: int, policy: RetryPolicy, rng: random.Random) -> Decision:
    """The decision after `error` on send attempt number `attempt` (1-based)."""
    cls = error.error_class
    if cls is ErrorClass.PAUSE:
        return Decision(Action.PAUSE, attempt)
    if cls is ErrorClass.TEMPLATE:
        return Decision(Action.HOLD_TEMPLATE, attempt)
    if cls is ErrorClass.PERMANENT:
        return Decision(Action.FAIL, attempt)
    if may_have_reached_meta(error):
        return Decision(Action.UNKNOWN, attempt)
    if attempt >= policy.max_attempts:
        return Decision(Action.FAIL, attempt)
    return Decision(Action.RETRY, attempt, policy.backoff(attempt, error, rng))
