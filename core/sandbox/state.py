"""The sandbox's memory: accepted messages, counters, limits, windows and injected faults.

One `SandboxState` lives in the server's event loop; handlers mutate it synchronously
(no awaits in between), so no locks are needed. `reset()` forgets everything, for tests.
"""

from __future__ import annotations

import dataclasses
import hmac
import random
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

import orjson

from core.sandbox.catalog import Catalog
from core.sandbox.config import SandboxConfig, SandboxNumber
from core.sandbox.limits import PairLimiter, SlidingWindowLimiter, max_in_window
from core.sandbox.wire import IdFactory


@dataclass(slots=True)
class AcceptedMessage:
    """A message the sandbox accepted, with the request body exactly as received."""

    wamid: str
    to: str
    wa_id: str
    type: str
    template_name: str | None
    language: str | None
    category: str
    biz_opaque: str | None
    message_status: str
    #: the request body exactly as received (JSON bytes): parsed only when read, so
    #: thousands of stored messages are not thousands of dicts for the garbage
    #: collector to walk on every full collection (pauses the measured sender feels)
    raw_body: bytes
    accepted_at: float  # epoch seconds
    accepted_monotonic: float
    #: the business number it was sent from (the path's phone_number_id)
    phone_number_id: str = ""

    @property
    def body(self) -> dict[str, Any]:
        """The request body as JSON (a new object on each read)."""
        body: dict[str, Any] = orjson.loads(self.raw_body)
        return body

    def public(self) -> dict[str, Any]:
        """The message as `/_sandbox/messages` lists it."""
        return {
            "id": self.wamid,
            "to": self.to,
            "wa_id": self.wa_id,
            "type": self.type,
            "template_name": self.template_name,
            "language": self.language,
            "category": self.category,
            "biz_opaque_callback_data": self.biz_opaque,
            "message_status": self.message_status,
            "accepted_at": self.accepted_at,
            "phone_number_id": self.phone_number_id,
            "body": self.body,
        }


@dataclass(slots=True)
class Injection:
    """Make the next `remaining` sends (to `wa_id`, or to anyone) fail with `code`."""

    code: int
    http_status: int
    remaining: int
    wa_id: str | None = None
    details: str | None = None
    #: only sends from this business number (None: from any)
    phone_number_id: str | None = None


@dataclass(slots=True)
class NumberState:
    """One business number's profile, limits and counters (Meta keeps them per number)."""

    profile: SandboxNumber
    throughput: SlidingWindowLimiter
    pairs: PairLimiter
    accept_times: list[float] = field(default_factory=list)
    accepted: int = 0
    rejected: Counter[int] = field(default_factory=Counter)

    def adopt(self, profile: SandboxNumber) -> None:
        """Take a changed profile; the limits follow at once, their history is kept."""
        self.profile = profile
        self.throughput.limit = profile.mps
        self.pairs.capacity = profile.pair_burst
        self.pairs.interval = profile.pair_interval_s

    def stats(self) -> dict[str, Any]:
        """This number's counters, with the exact max accepted sends in any 1 s window."""
        times = self.accept_times
        return {
            "accepted": self.accepted,
            "rejected": {str(code): count for code, count in sorted(self.rejected.items())},
            "max_in_window": max_in_window(times),
            "mps": self.profile.mps,
            "first_accept_monotonic": times[0] if times else None,
            "last_accept_monotonic": times[-1] if times else None,
        }


@dataclass(slots=True)
class WebhookCounters:
    """What the webhook poster did since the last reset."""

    posted: int = 0  # POSTs the receiver answered 200
    failed: int = 0  # deliveries given up after the last retry
    attempts: int = 0  # POSTs tried, retries included
    retries: int = 0  # failed attempts scheduled again
    dropped: int = 0  # events discarded because webhooks were off or had no URL
    statuses: int = 0  # status objects in successful POSTs
    messages: int = 0  # inbound messages in successful POSTs
    template_updates: int = 0  # template status updates in successful POSTs
    batched: int = 0  # successful POSTs that carried more than one status
    duplicates_planned: int = 0
    reordered_planned: int = 0
    last_error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The counters as JSON."""
        return dataclasses.asdict(self)


@dataclass
class SandboxState:
    """Everything the sandbox remembers; `config` may be replaced at runtime."""

    initial_config: SandboxConfig
    config: SandboxConfig = field(init=False)
    generation: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self.config = self.initial_config
        self.reset(keep_config=True)

    def reset(self, *, seed: int | None = None, keep_config: bool = False) -> None:
        """Forget every message, counter, window and fault; restore the initial config."""
        if not keep_config:
            self.config = self.initial_config
        if seed is not None:
            self.config = dataclasses.replace(self.config, seed=seed)
        self.generation += 1
        self.catalog = Catalog()
        self.ids = IdFactory(self.config.seed)
        #: draws each send's latency (core.sandbox.latency), seeded for repeatable runs
        self.latency_rng = random.Random(self.config.seed)
        self.throughput = SlidingWindowLimiter(self.config.mps)
        self.pairs = PairLimiter(self.config.pair_burst, self.config.pair_interval_s)
        #: every business number by phone_number_id; the first shares the limiters above
        self.numbers: dict[str, NumberState] = {}
        self._sync_numbers()
        #: the latest accepted messages (bodies kept for tests; bounded for long runs)
        self.messages: deque[AcceptedMessage] = deque()
        self.by_wamid: dict[str, AcceptedMessage] = {}
        self.accepted_count = 0
        self.first_accept_at: float | None = None
        self.last_accept_at: float | None = None
        self.accept_times: list[float] = []
        self.rejected: Counter[int] = Counter()
        self.per_recipient: Counter[str] = Counter()
        self.opaque_counts: Counter[str] = Counter()
        self.windows: dict[tuple[str, str], float] = {}
        self.injections: list[Injection] = []
        self.once_used: set[tuple[str, str]] = set()
        self.webhooks = WebhookCounters()
        self.inbound_count = 0

    def configure(self, changes: dict[str, Any]) -> SandboxConfig:
        """Apply runtime changes (ConfigError if refused); limits follow at once."""
        self.config = self.config.updated(changes)
        self._sync_numbers()
        return self.config

    def set_number(self, number: SandboxNumber) -> SandboxNumber:
        """Add a business number or change one (ConfigError if refused); its limits follow
        at once. Returns the number as the sandbox now plays it."""
        self.config = self.config.with_number(number)
        self._sync_numbers()
        return self.numbers[number.phone_number_id].profile

    def _sync_numbers(self) -> None:
        """Make `numbers` match the configuration (new ones start with empty limits)."""
        profiles = self.config.all_numbers()
        kept: dict[str, NumberState] = {}
        for index, profile in enumerate(profiles):
            number = self.numbers.get(profile.phone_number_id)
            if number is None or (index == 0 and number.throughput is not self.throughput):
                if index == 0:
                    number = NumberState(profile, self.throughput, self.pairs)
                else:
                    number = NumberState(
                        profile,
                        SlidingWindowLimiter(profile.mps),
                        PairLimiter(profile.pair_burst, profile.pair_interval_s),
                    )
            number.adopt(profile)
            kept[profile.phone_number_id] = number
        self.numbers = kept

    def known_token(self, token: str | None) -> bool:
        """Whether `token` is the access token of any number (Graph reads of a WABA)."""
        if token is None:
            return False
        return any(
            hmac.compare_digest(token.encode(), (n.profile.access_token or "").encode())
            for n in self.numbers.values()
        )

    def record_accept(self, message: AcceptedMessage) -> None:
        """Remember an accepted message and count it (the oldest bodies are forgotten
        beyond `max_stored_messages`; counters and accept times are kept in full)."""
        if len(self.messages) >= self.config.max_stored_messages:
            oldest = self.messages.popleft()
            self.by_wamid.pop(oldest.wamid, None)
        self.messages.append(message)
        self.by_wamid[message.wamid] = message
        self.accepted_count += 1
        if self.first_accept_at is None:
            self.first_accept_at = message.accepted_at
        self.last_accept_at = message.accepted_at
        self.accept_times.append(message.accepted_monotonic)
        number = self.numbers.get(message.phone_number_id)
        if number is not None:
            number.accepted += 1
            number.accept_times.append(message.accepted_monotonic)
        self.per_recipient[message.wa_id] += 1
        if message.biz_opaque is not None:
            self.opaque_counts[message.biz_opaque] += 1

    def open_window(self, wa_id: str, now: float, phone_number_id: str | None = None) -> None:
        """The user wrote to the business number (default: the first) at `now`
        (monotonic): free-form messages from that number to them are allowed."""
        self.windows[(phone_number_id or self.config.phone_number_id, wa_id)] = now

    def window_open(self, wa_id: str, now: float, phone_number_id: str | None = None) -> bool:
        """True if `wa_id` wrote to the number within the last `window_seconds`."""
        last = self.windows.get((phone_number_id or self.config.phone_number_id, wa_id))
        return last is not None and now - last < self.config.window_seconds

    def take_injection(self, wa_id: str, phone_number_id: str | None = None) -> Injection | None:
        """The injected fault for a send to `wa_id` (from that number), if any (consumes
        one use)."""
        for injection in self.injections:
            if injection.phone_number_id not in (None, phone_number_id):
                continue
            if injection.wa_id is None or injection.wa_id == wa_id:
                injection.remaining -= 1
                if injection.remaining <= 0:
                    self.injections.remove(injection)
                return injection
        return None

    def stats(self, *, recipients: bool = True) -> dict[str, Any]:
        """Counters for tests and benchmarks, with the exact max sends in any 1 s window."""
        times = self.accept_times
        result: dict[str, Any] = {
            "accepted": self.accepted_count,
            "rejected": {str(code): count for code, count in sorted(self.rejected.items())},
            "rejected_total": sum(self.rejected.values()),
            "max_in_window": max_in_window(times),
            "window_seconds": 1.0,
            "mps": self.config.mps,
            "first_accept_monotonic": times[0] if times else None,
            "last_accept_monotonic": times[-1] if times else None,
            "first_accept_at": self.first_accept_at,
            "last_accept_at": self.last_accept_at,
            "accept_span_seconds": (times[-1] - times[0]) if times else 0.0,
            "duplicates": [
                {"biz_opaque_callback_data": key, "count": count}
                for key, count in self.opaque_counts.items()
                if count > 1
            ],
            "recipients": len(self.per_recipient),
            "inbound": self.inbound_count,
            "webhooks": self.webhooks.as_dict(),
            "numbers": {ident: number.stats() for ident, number in self.numbers.items()},
        }
        if recipients:
            result["accepted_per_recipient"] = dict(self.per_recipient)
        return result
