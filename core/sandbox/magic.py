"""Magic recipients: the last four digits of `to` pick a deterministic outcome.

Any number works (a Spanish mobile such as +34 600 00 0000 is the usual choice); only
its last four digits matter. See the table in `core.sandbox`'s docstring.
"""

from __future__ import annotations

#: accepted, then a `failed` status webhook with 131026 (undeliverable), no `sent`
UNDELIVERABLE = "0000"
#: free-form messages always get 131047, as if the window were closed
WINDOW_CLOSED = "0047"
#: the first send to the number gets 130429 (rate limit hit); later ones are normal
RATE_LIMITED_ONCE = "0429"
#: every send gets HTTP 500 with code 131000 (something went wrong)
SERVER_ERROR = "0500"
#: the first send gets HTTP 500 with code 131000; later ones are normal
SERVER_ERROR_ONCE = "0501"
#: every send gets HTTP 401 with code 190 (token expired): a pause-class error
TOKEN_EXPIRED = "0190"  # noqa: S105 - a phone-number suffix, not a secret
#: every send gets code 368 (temporarily blocked for policy violations)
BLOCKED = "0368"
#: accepted as `held_for_quality_assessment`, then a `failed` webhook with 132015
TEMPLATE_PAUSED = "0132"
#: accepted, and no status webhook ever arrives
SILENT = "0099"
#: delivered and read, then the supplier taps the first quick-reply button
REPLY_FIRST_BUTTON = "0200"
#: delivered and read, then the supplier taps the second quick-reply button
REPLY_SECOND_BUTTON = "0201"
#: delivered and read, then the supplier answers with a text message
REPLY_TEXT = "0202"

#: Suffixes whose synchronous failure happens only on the first send to a number.
ONCE = {RATE_LIMITED_ONCE: 130429, SERVER_ERROR_ONCE: 131000}
#: Suffixes that always fail synchronously: code and HTTP status.
ALWAYS = {SERVER_ERROR: (131000, 500), BLOCKED: (368, 400)}
#: Suffixes whose message is accepted and later fails by webhook, with that code.
FAILS_LATER = {UNDELIVERABLE: 131026, TEMPLATE_PAUSED: 132015}
#: Suffixes that always answer, and which button (None: a text reply).
REPLIES = {REPLY_FIRST_BUTTON: 0, REPLY_SECOND_BUTTON: 1, REPLY_TEXT: None}
