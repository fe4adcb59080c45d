"""The sender: claims pending outbox rows and sends them under Meta's limits.

`run_worker` runs a dispatcher until stopped; `drain` runs one until the queue is empty.
See `core.sender.dispatcher` for how claiming, limiting, sending and recording work, and
`core.sender.recovery` for what happens to sends interrupted by a crash.
"""

from core.sender.dispatcher import (
    ClientFactory,
    Dispatcher,
    DispatcherOptions,
    DispatchStats,
    MessageClient,
    new_worker_id,
)
from core.sender.ratelimit import PairGate, RateLimiter, SlidingWindowLimiter
from core.sender.recovery import INFLIGHT_LOST_MESSAGE, RecoveryReport, recover_stale
from core.sender.retry import RetryPolicy
from core.sender.worker import DrainReport, drain, run_loop, run_worker

__all__ = [
    "INFLIGHT_LOST_MESSAGE",
    "ClientFactory",
    "DispatchStats",
    "Dispatcher",
    "DispatcherOptions",
    "DrainReport",
    "MessageClient",
    "PairGate",
    "RateLimiter",
    "RecoveryReport",
    "RetryPolicy",
    "SlidingWindowLimiter",
    "drain",
    "new_worker_id",
    "recover_stale",
    "run_loop",
    "run_worker",
]
