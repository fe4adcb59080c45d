"""Graph API errors as typed values, classed by what the sender must do about them.

The classes come from Meta's error-code reference (see the team's facts sheet): read the
`code`, not the HTTP status nor the title.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from core.i18n import N_, _


class ErrorClass(StrEnum):
    """What the sender does after an error."""

    RETRY = "retry"  # back off and try again
    PAUSE = "pause"  # stop the whole queue until a person acts
    TEMPLATE = "template"  # fail this message and hold its template
    PERMANENT = "permanent"  # fail this message only


RETRY_CODES = frozenset({1, 2, 4, 80007, 130429, 131000, 131016, 131056, 131057, 133004})
#: Codes that also slow the whole dispatcher down (throughput signals).
SLOWDOWN_CODES = frozenset({4, 80007, 130429})
#: The per-recipient pair limit: delays only that recipient.
PAIR_LIMIT_CODE = 131056
PAUSE_CODES = frozenset(
    {0, 3, 10, 190, 368, 131031, 131042, 131045, 131048, 131064, 133010} | set(range(200, 300))
)
TEMPLATE_CODES = frozenset({132015, 132016})

#: Plain words for a buyer or manager, by code; Meta's details are kept beside them.
HUMAN_REASONS: dict[int, str] = {
    0: N_("Meta could not authenticate the account: check the access token"),
    1: N_("Meta reported an unknown error; retried"),
    2: N_("Meta's service was temporarily unavailable"),
    3: N_("The app lacks permission for this API call"),
    4: N_("Too many API calls: the app's rate limit was reached"),
    10: N_("Permission denied: the token lacks WhatsApp permissions"),
    100: N_("Meta rejected a parameter of the request"),
    190: N_("The access token has expired or is invalid"),
    368: N_("The account is temporarily blocked for policy violations"),
    80007: N_("The WhatsApp Business Account's rate limit was reached"),
    130403: N_("The recipient is blocked by the business"),
    130429: N_("Throughput limit reached: sending too fast for this number"),
    130472: N_("Not sent: the recipient is part of a Meta experiment"),
    130497: N_("The business cannot message users in this country"),
    131000: N_("Meta hit an internal error; retried"),
    131005: N_("Access denied by Meta"),
    131008: N_("A required parameter is missing"),
    131009: N_("A parameter value is not valid"),
    131016: N_("WhatsApp is temporarily overloaded; retried"),
    131021: N_("The recipient is the sending number itself"),
    131026: N_(
        "Undeliverable: the number is not on WhatsApp, uses an old app, or has not "
        "accepted WhatsApp's terms"
    ),
    131031: N_("The business account is locked"),
    131042: N_("Payment problem on the business account"),
    131045: N_("The sending number is not registered"),
    131047: N_("More than 24 hours since the supplier last wrote: only templates may be sent"),
    131048: N_("Sending restricted: too many recipients blocked or reported the business"),
    131049: N_("Not delivered to keep the supplier's experience healthy (marketing limit)"),
    131050: N_("The supplier stopped marketing messages from this business"),
    131051: N_("This message type is not supported"),
    131052: N_("Media sent by the supplier could not be downloaded"),
    131053: N_("The attached media could not be uploaded (check it is a real PDF/image)"),
    131056: N_("Too many messages to this supplier in a short time; retried later"),
    131057: N_("The account is under maintenance or its throughput is being upgraded"),
    131064: N_("Template classification enforcement: sending paused"),
    132000: N_("The number of template parameters does not match the template"),
    132001: N_("The template does not exist in this language, or is not approved"),
    132005: N_("The message is too long once the parameters are filled in"),
    132007: N_("The template content breaks WhatsApp policy"),
    132012: N_("A template parameter has the wrong format"),
    132015: N_("The template is paused by Meta for low quality"),
    132016: N_("The template is disabled by Meta for low quality"),
    132018: N_("A parameter contains a line break, a tab or more than 4 spaces in a row"),
    133004: N_("The WhatsApp server is temporarily unavailable; retried"),
    133010: N_("The sending number is not registered with the Cloud API"),
    135000: N_("Meta reported a generic user error"),
}


#: Errors about the message itself (its template, parameters or type, or who it goes to):
#: a resend sends the same content to the same number, so it fails the same way.
SAME_AGAIN_CODES = frozenset(
    {100, 130497, 131008, 131009, 131021, 131051, 132000, 132001, 132005, 132007, 132012,
     132015, 132016, 132018}
)  # fmt: skip


def resend_cannot_fix(code: int | None) -> bool:
    """True when a resend of a message that failed with `code` would fail the same way
    (the content or the recipient is the problem, not the moment), so a person is told
    why instead of being offered a resend."""
    return code is not None and code in SAME_AGAIN_CODES


def classify(code: int | None, http_status: int | None = None) -> ErrorClass:
    """The sender's action for an error code (or, with no code, for an HTTP status)."""
    if code is None:
        if http_status is not None and (http_status >= 500 or http_status == 429):
            return ErrorClass.RETRY
        if http_status == 401:
            return ErrorClass.PAUSE
        return ErrorClass.PERMANENT
    if code in TEMPLATE_CODES:
        return ErrorClass.TEMPLATE
    if code in RETRY_CODES:
        return ErrorClass.RETRY
    if code in PAUSE_CODES:
        return ErrorClass.PAUSE
    return ErrorClass.PERMANENT


def human_reason(code: int | None, fallback: str | None = None) -> str:
    """A sentence a buyer understands for an error code, falling back to Meta's own words."""
    if code is not None and code in HUMAN_REASONS:
        return _(HUMAN_REASONS[code])
    if fallback:
        return fallback
    return _("Meta error {code}").format(code=code) if code is not None else _("Unknown error")


@dataclass(eq=False)  # not frozen: `with` blocks (contextmanager) set __traceback__ on re-raise
class GraphError(Exception):
    """An error from the Graph API (or a transport failure), with everything Meta said."""

    code: int | None
    message: str
    http_status: int | None = None
    subcode: int | None = None
    title: str | None = None
    details: str | None = None
    fbtrace_id: str | None = None
    error_type: str | None = None
    user_message: str | None = None  # Meta's `error_user_msg` (template creation's why)

    def __str__(self) -> str:
        code = f"#{self.code} " if self.code is not None else ""
        details = f": {self.details}" if self.details else ""
        return f"{code}{self.message}{details}"

    @property
    def error_class(self) -> ErrorClass:
        """What the sender must do about this error."""
        return classify(self.code, self.http_status)

    @property
    def slows_dispatcher(self) -> bool:
        """True for throughput errors that must slow every send, not just this one."""
        return self.code in SLOWDOWN_CODES

    @property
    def is_pair_limit(self) -> bool:
        """True when only this recipient is rate limited (131056)."""
        return self.code == PAIR_LIMIT_CODE

    @property
    def reason(self) -> str:
        """Plain words for the UI, by code, with Meta's details kept in `details`."""
        return human_reason(self.code, self.title or self.message)

    @classmethod
    def from_response(cls, http_status: int, body: Any) -> GraphError:
        """Build from a Graph error body; tolerate bodies that are not Meta's shape."""
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, dict):
            return cls(code=None, message=f"HTTP {http_status}", http_status=http_status)
        data = error.get("error_data")
        details = data.get("details") if isinstance(data, dict) else None
        return cls(
            code=_as_int(error.get("code")),
            message=str(error.get("message") or f"HTTP {http_status}"),
            http_status=http_status,
            subcode=_as_int(error.get("error_subcode")),
            title=error.get("error_user_title") or error.get("title"),
            details=str(details) if details is not None else None,
            fbtrace_id=error.get("fbtrace_id"),
            error_type=error.get("type"),
            user_message=_as_text(error.get("error_user_msg")),
        )

    @classmethod
    def transport(cls, message: str) -> GraphError:
        """A timeout or connection failure: no answer from Meta, always retry-class."""
        return cls(code=None, message=message, http_status=599)


def _as_text(value: Any) -> str | None:
    return value[:1000] if isinstance(value, str) and value else None


def _as_int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None
