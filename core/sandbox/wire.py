"""The Cloud API's wire format as the sandbox speaks it: errors, ids, webhook envelopes.

Everything here produces bytes or dicts shaped exactly as Meta's Graph API does, so the
client, the sender and the webhook app are tested against the real shapes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import random
from typing import Any

import orjson

#: Graph error titles by code, and the HTTP status Meta answers them with.
ERROR_CATALOGUE: dict[int, tuple[str, int]] = {
    0: ("AuthException", 401),
    1: ("An unknown error occurred", 500),
    2: ("Service temporarily unavailable", 503),
    3: ("Capability or permissions issue", 400),
    4: ("Application request limit reached", 400),
    10: ("Permission denied", 403),
    100: ("Invalid parameter", 400),
    190: ("Error validating access token: Session has expired", 401),
    200: ("Permission error", 403),
    368: ("Temporarily blocked for policies violations", 400),
    80007: ("Rate limit issues", 400),
    130403: ("Recipient blocked by the business", 400),
    130429: ("Rate limit hit", 400),
    130472: ("User's number is part of an experiment", 400),
    130497: ("Business account is restricted from messaging users in this country", 400),
    131000: ("Something went wrong", 500),
    131005: ("Access denied", 403),
    131008: ("Required parameter is missing", 400),
    131009: ("Parameter value is not valid", 400),
    131016: ("Service unavailable", 503),
    131021: ("Recipient cannot be sender", 400),
    131026: ("Message undeliverable", 400),
    131031: ("Business Account locked", 400),
    131042: ("Business eligibility payment issue", 400),
    131045: ("Incorrect certificate", 400),
    131047: ("Re-engagement message", 400),
    131048: ("Spam rate limit hit", 400),
    131049: (
        "This message was not delivered to maintain healthy ecosystem engagement.",
        400,
    ),
    131050: (
        "Unable to deliver the message. This recipient has chosen to stop receiving "
        "marketing messages on WhatsApp from your business.",
        400,
    ),
    131051: ("Unsupported message type", 400),
    131053: ("Media upload error", 400),
    131056: ("(Business Account, Consumer Account) pair rate limit hit", 400),
    131057: ("Account in maintenance mode", 400),
    131064: ("Template classification enforcement", 400),
    132000: ("Number of parameters does not match the expected number of params", 400),
    132001: ("Template name does not exist in the translation", 404),
    132005: ("Translated text too long", 400),
    132007: ("Template Format Character Policy Violated", 400),
    132012: ("Parameter format does not match format in the created template", 400),
    132015: ("Template is Paused", 400),
    132016: ("Template is Disabled", 400),
    132018: ("There was an issue with the parameters in your template.", 400),
    133004: ("Server temporarily unavailable", 503),
    133010: ("Phone number Not Registered", 400),
    135000: ("Generic user error", 400),
}

#: Graph-level errors (token, unknown object) carry no WhatsApp `error_data`.
_GRAPH_LEVEL = frozenset({0, 190, 2500})
_B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
ERROR_DOCS_URL = "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"


def error_title(code: int) -> str:
    """Meta's title for an error code (`Error <code>` for codes outside the catalogue)."""
    entry = ERROR_CATALOGUE.get(code)
    return entry[0] if entry else f"Error {code}"


def default_http_status(code: int) -> int:
    """The HTTP status Meta answers an error code with (400 unless known otherwise)."""
    entry = ERROR_CATALOGUE.get(code)
    return entry[1] if entry else 400


class SandboxError(Exception):
    """A Graph API error the sandbox answers with; `body()` renders Meta's exact shape."""

    def __init__(
        self,
        code: int,
        details: str | None = None,
        *,
        http_status: int | None = None,
        message: str | None = None,
        error_type: str = "OAuthException",
        subcode: int | None = None,
    ) -> None:
        self.code = code
        self.details = details
        self.http_status = http_status if http_status is not None else default_http_status(code)
        if message is None:
            title = error_title(code)
            message = title if code in _GRAPH_LEVEL else f"(#{code}) {title}"
        self.message = message
        self.error_type = error_type
        self.subcode = subcode
        super().__init__(message)

    def payload(self, fbtrace_id: str) -> dict[str, Any]:
        """The `{"error": {...}}` object exactly as Graph returns it."""
        error: dict[str, Any] = {"message": self.message, "type": self.error_type}
        error["code"] = self.code
        if self.subcode is not None:
            error["error_subcode"] = self.subcode
        if self.code not in _GRAPH_LEVEL and self.error_type == "OAuthException":
            error["error_data"] = {
                "messaging_product": "whatsapp",
                "details": self.details or error_title(self.code),
            }
        error["fbtrace_id"] = fbtrace_id
        return {"error": error}

    def body(self, fbtrace_id: str) -> bytes:
        """The serialized error body."""
        return orjson.dumps(self.payload(fbtrace_id))


def invalid_token() -> SandboxError:
    """The 401 Graph answers a wrong or missing bearer token with."""
    return SandboxError(
        190, message="Invalid OAuth access token - Cannot parse access token", http_status=401
    )


def expired_token() -> SandboxError:
    """The 401 Graph answers an expired session token with (subcode 463)."""
    return SandboxError(
        190,
        message="Error validating access token: Session has expired on Tuesday, "
        "01-Sep-26 10:00:00 PDT. The current time is Tuesday, 01-Sep-26 11:00:00 PDT.",
        http_status=401,
        subcode=463,
    )


def unknown_object(object_id: str) -> SandboxError:
    """Graph's answer for an id that is not one of ours (wrong phone number or WABA id)."""
    return SandboxError(
        100,
        message=(
            f"Unsupported post request. Object with ID '{object_id}' does not exist, "
            "cannot be loaded due to missing permissions, or does not support this "
            "operation. Please read the Graph API documentation at "
            "https://developers.facebook.com/docs/graph-api"
        ),
        error_type="GraphMethodException",
        subcode=33,
    )


def unknown_path(path: str) -> SandboxError:
    """Graph's answer for a path it does not know."""
    return SandboxError(
        2500,
        message=f"Unknown path components: {path}",
        http_status=404,
        error_type="OAuthException",
    )


def status_error(code: int, details: str | None = None) -> dict[str, Any]:
    """An entry of a status webhook's `errors` list."""
    title = error_title(code)
    return {
        "code": code,
        "title": title,
        "message": title,
        "error_data": {"details": details or title},
        "href": ERROR_DOCS_URL,
    }


class IdFactory:
    """Deterministic wamids and fbtrace ids from the sandbox seed.

    wamids mimic Meta's: base64 of a small binary record carrying the user's wa_id and
    an 18-hex-digit random part, so they look and sort like the real ones.
    """

    def __init__(self, seed: int) -> None:
        self._wamid_rng = random.Random(f"wamid:{seed}")
        self._inbound_rng = random.Random(f"inbound:{seed}")
        self._trace_rng = random.Random(f"trace:{seed}")

    def wamid(self, wa_id: str) -> str:
        """A new outbound message id for a message to `wa_id`."""
        return make_wamid(wa_id, self._wamid_rng.getrandbits(72))

    def inbound_wamid(self, wa_id: str) -> str:
        """A new inbound message id for a message from `wa_id`."""
        return make_wamid(wa_id, self._inbound_rng.getrandbits(72), inbound=True)

    def fbtrace_id(self) -> str:
        """A new `fbtrace_id` (Meta's request trace id: 'A' and 22 url-safe characters)."""
        bits = self._trace_rng.getrandbits(132)
        return "A" + "".join(_B64URL[(bits >> (6 * i)) & 63] for i in range(22))


def make_wamid(wa_id: str, random_bits: int, *, inbound: bool = False) -> str:
    """A wamid for a message to (or, `inbound`, from) `wa_id` with 72 random bits."""
    marker = b"\x15\x02\x00\x12\x18\x12" if inbound else b"\x15\x02\x00\x11\x18\x12"
    digits = wa_id.encode()
    tail = f"{random_bits:018X}".encode()
    raw = b"\x1c\x18" + bytes([len(digits)]) + digits + marker + tail + b"\x00"
    return "wamid." + base64.b64encode(raw).decode()


def success_body(to: str, wa_id: str, wamid: str, message_status: str = "accepted") -> bytes:
    """The body of an accepted send, with `input` echoing `to` exactly as given."""
    return orjson.dumps(
        {
            "messaging_product": "whatsapp",
            "contacts": [{"input": to, "wa_id": wa_id}],
            "messages": [{"id": wamid, "message_status": message_status}],
        }
    )


def messages_envelope(
    waba_id: str, display_phone_number: str, phone_number_id: str, value: dict[str, Any]
) -> dict[str, Any]:
    """A `messages`-field webhook around one change value (statuses or inbound messages)."""
    full_value: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "metadata": {
            "display_phone_number": display_phone_number,
            "phone_number_id": phone_number_id,
        },
    }
    full_value.update(value)
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": waba_id, "changes": [{"value": full_value, "field": "messages"}]}],
    }


def template_status_envelope(waba_id: str, at: int, value: dict[str, Any]) -> dict[str, Any]:
    """A `message_template_status_update` webhook."""
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": waba_id,
                "time": at,
                "changes": [{"value": value, "field": "message_template_status_update"}],
            }
        ],
    }


def sign(app_secret: str, body: bytes) -> str:
    """The `X-Hub-Signature-256` header value: HMAC-SHA256 of the exact body bytes."""
    digest = hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"
