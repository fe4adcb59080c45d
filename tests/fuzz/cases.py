"""One generated request, what it may be answered, and the tally of what it was answered."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

WEBHOOK_PATH = "/api/v1/whatsapp/webhook"
PO_EVENTS_PATH = "/api/v1/po-events"
JSON = (b"content-type", b"application/json")


@dataclass(frozen=True)
class Case:
    """One POST to send.

    `allowed` are the status codes a correct app may answer; an empty set means the
    client hangs up mid-body (`cut_at` bytes sent) and no answer is expected. `ref` ties
    a valid ERP event to its PO number.
    """

    path: str
    kind: str
    body: bytes
    headers: tuple[tuple[bytes, bytes], ...]
    allowed: frozenset[int]
    cut_at: int | None = None
    ref: str | None = None

    @property
    def door(self) -> str:
        """`webhook` or `erp`."""
        return "webhook" if self.path == WEBHOOK_PATH else "erp"


@dataclass(frozen=True)
class Outcome:
    """What one case was answered. `status` None: no answer; `text` is empty when the
    client hung up on purpose, else it says how the connection failed."""

    case: Case
    status: int | None
    text: str


@dataclass
class Tally:
    """Answers by door and kind, and every answer outside what the case allowed."""

    by_kind: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    by_status: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    unexpected: list[Outcome] = field(default_factory=list)

    def add(self, outcome: Outcome) -> None:
        """Count one outcome; keep it when it was not allowed (or a 5xx)."""
        case = outcome.case
        shown = str(outcome.status)
        if outcome.status is None:
            shown = outcome.text.split(":")[1].strip() if outcome.text else "hung up"
        self.by_kind[case.door][f"{case.kind} -> {shown}"] += 1
        self.by_status[case.door][shown] += 1
        if case.allowed:
            allowed = outcome.status in case.allowed
        else:  # the client hung up: no answer expected
            allowed = outcome.status is None and not outcome.text
        if not allowed or (outcome.status or 0) >= 500:
            self.unexpected.append(outcome)

    def server_errors(self) -> int:
        """Answers of 500 or more, on both doors."""
        return sum(
            count
            for door in self.by_status.values()
            for status, count in door.items()
            if status.isdigit() and int(status) >= 500
        )

    def sent(self, door: str) -> int:
        """Requests sent to one door."""
        return sum(self.by_status[door].values())
