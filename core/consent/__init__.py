"""WhatsApp consent: who agreed, who opted out, and whether a template may be sent.

- `policy`: the one rule every business-initiated (template) send is checked against
  (`refusal_for`), the enqueue paths and the dispatcher both apply it.
- `record`: grant and withdraw consent, with who, when and how; the history.
- `stopwords`: replies such as STOP, BAJA or BAIXA that withdraw consent.
- `tenant`: the tenant setting deciding whether sends without recorded consent pass.
"""

from core.consent.policy import (
    NO_CONSENT,
    OPTED_OUT,
    ConsentGrant,
    Refusal,
    consent_state,
    refusal_for,
)
from core.consent.record import grant, history, withdraw
from core.consent.stopwords import is_stop_reply
from core.consent.tenant import allows_unrecorded, set_allows_unrecorded

__all__ = [
    "NO_CONSENT",
    "OPTED_OUT",
    "ConsentGrant",
    "Refusal",
    "allows_unrecorded",
    "consent_state",
    "grant",
    "history",
    "is_stop_reply",
    "refusal_for",
    "set_allows_unrecorded",
    "withdraw",
]
