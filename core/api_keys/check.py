"""A key presented over HTTP in, the one tenant it may act for (or why not) out.

`PO_EVENTS_API_KEY`, when set, is the default tenant's key; every other key is a stored
one (`wanotify api-keys add`). Outcomes:

- `ok`: the key is good for `tenant_id`.
- `missing`: keys are configured but none was presented.
- `invalid`: a key was presented that is neither the environment's nor a stored one.
- `revoked`: a stored key that was revoked.
- `disabled`: no key is configured at all (no environment key, no key that is not
  revoked): the endpoint is off, whatever was presented.

The environment's key is compared as HMAC digests with `hmac.compare_digest` (the same
time however much of it was right, whatever its length); stored keys are found by their
hash, so nothing about a key's characters shows in the timing either.
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import Engine

from core import clock
from core.api_keys.secret import MAX_PRESENTED_CHARS, hash_key
from core.api_keys.store import find_key, has_active_keys, touch_key

log = logging.getLogger(__name__)

Outcome = Literal["ok", "missing", "invalid", "revoked", "disabled"]
#: How the environment's key is named in logs and answers (never its value).
ENV_KEY_LABEL = "PO_EVENTS_API_KEY"


@dataclass(frozen=True)
class KeyCheck:
    """The verdict on one presented key; `label` names the key in logs (never the key)."""

    outcome: Outcome
    tenant_id: str | None = None
    label: str | None = None


def check_key(
    presented: str | None,
    *,
    env_key: str | None,
    default_tenant: str,
    engine: Engine | None = None,
    now: datetime | None = None,
) -> KeyCheck:
    """Which tenant `presented` may act for; blocking (it may read the database).

    `env_key` is `PO_EVENTS_API_KEY` (None or "" when unset); `now` (default:
    `core.clock.now()`) is when the key was used, recorded at most once a minute per key.
    Raises only on database errors, which the caller answers as "try again later".
    """
    if presented is not None and 0 < len(presented) <= MAX_PRESENTED_CHARS:
        if env_key and hmac.compare_digest(hash_key(presented), hash_key(env_key)):
            return KeyCheck("ok", tenant_id=default_tenant, label=ENV_KEY_LABEL)
        stored = find_key(engine, presented)
        if stored is not None and stored.revoked:
            return KeyCheck("revoked", tenant_id=stored.tenant_id, label=stored.prefix)
        if stored is not None:
            touch_key(engine, stored, now or clock.now())
            return KeyCheck("ok", tenant_id=stored.tenant_id, label=stored.prefix)
    if not env_key and not has_active_keys(engine):
        return KeyCheck("disabled")
    if presented is None:
        return KeyCheck("missing")
    return KeyCheck("invalid")  # no label: a wrong key may be a real one mistyped
