"""The rates analytics shows, each defined once: its name, what it counts and its base.

One word means one number everywhere. "Read" is always read messages as a share of
delivered ones, whether it appears in a tile, the funnel, the daily chart, the
supplier table or an export, and each place says its base ("Read, of delivered"), so
two figures side by side can never silently divide by different things.

A rate is computed from counts named like `core.stats.Funnel`'s fields (`messages`,
`sent`, `delivered`, `read`, `replied`, `failed`): any mapping or object carrying them.
A rate with a base of zero is undefined (None), never 0 %.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from core.i18n import N_, _


@dataclass(frozen=True)
class Rate:
    """One rate: `numerator` messages as a share of `base` messages."""

    key: str  # a stable name for columns and tests: "read_rate"
    name: str  # the word people read, untranslated ("Read"); translated by `label`
    numerator: str  # the count on top ("read")
    base: str  # the count it is divided by ("delivered")
    base_words: str  # the base as read after the name, untranslated ("of delivered")
    explanation: str  # one sentence for a tooltip, untranslated

    def value(self, counts: Mapping[str, Any] | object) -> float | None:
        """This rate for `counts` (a mapping or an object with the count fields);
        None when the base is zero, so "no data" never reads as 0 %."""
        top = _count(counts, self.numerator)
        whole = _count(counts, self.base)
        return top / whole if whole else None

    @property
    def label(self) -> str:
        """The rate with its base, in the reader's language: "Read, of delivered"."""
        return _("{name}, {base}").format(name=_(self.name), base=_(self.base_words))

    @property
    def help(self) -> str:
        """The tooltip sentence, in the reader's language."""
        return _(self.explanation)


def _count(counts: Mapping[str, Any] | object, name: str) -> int:
    raw = counts.get(name) if isinstance(counts, Mapping) else getattr(counts, name, None)
    if raw is None:
        raise KeyError(f"no count {name!r} to compute a rate from")
    return int(raw)


DELIVERED = Rate(
    "delivery_rate",
    N_("Delivered"),
    "delivered",
    "sent",
    N_("of sent"),
    N_("Delivered messages as a share of the messages WhatsApp accepted (sent)"),
)
READ = Rate(
    "read_rate",
    N_("Read"),
    "read",
    "delivered",
    N_("of delivered"),
    N_("Read messages as a share of delivered messages (read receipts can be off)"),
)
ANSWERED = Rate(
    "reply_rate",
    N_("Answered"),
    "replied",
    "delivered",
    N_("of delivered"),
    N_("Delivered messages the supplier replied to or acknowledged with a button"),
)
FAILED = Rate(
    "failure_rate",
    N_("Failed"),
    "failed",
    "messages",
    N_("of all messages"),
    N_("Messages WhatsApp refused or could not deliver, as a share of all messages"),
)
#: Every rate, in the order the page shows them.
RATES: tuple[Rate, ...] = (DELIVERED, READ, ANSWERED, FAILED)
#: The rate each funnel stage after "Sent" shows beside its count.
FUNNEL_RATES: dict[str, Rate] = {"delivered": DELIVERED, "read": READ, "replied": ANSWERED}


def by_key(key: str) -> Rate:
    """The rate whose `key` is `key` (a column name such as "read_rate")."""
    for rate in RATES:
        if rate.key == key:
            return rate
    raise KeyError(f"no rate {key!r}")
