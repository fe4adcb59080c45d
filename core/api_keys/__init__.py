"""ERP API keys, one tenant each: issue, list, revoke, and check a presented key.

Owns the `api_keys` table (`core.models.api_keys`). `secret` makes keys and hashes them
(only the hash is stored), `store` keeps them, `check` turns a key presented over HTTP
into the one tenant it may act for (the environment's `PO_EVENTS_API_KEY` counts as the
default tenant's key). It may import `core.db`, `core.models` and `core.users` (for the
tenant-name rule); HTTP and the CLI call it, never the other way round.
"""

from core.api_keys.check import KeyCheck, check_key
from core.api_keys.secret import MAX_PRESENTED_CHARS, hash_key, new_key
from core.api_keys.store import (
    ApiKeyError,
    ApiKeyInfo,
    IssuedKey,
    add_key,
    list_keys,
    revoke_key,
)

__all__ = [
    "MAX_PRESENTED_CHARS",
    "ApiKeyError",
    "ApiKeyInfo",
    "IssuedKey",
    "KeyCheck",
    "add_key",
    "check_key",
    "hash_key",
    "list_keys",
    "new_key",
    "revoke_key",
]
