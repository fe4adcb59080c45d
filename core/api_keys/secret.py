"""The shape of an ERP key, how one is made, and the hash that is stored instead of it.

A key is `wnk_` followed by 43 URL-safe characters (32 random bytes from `secrets`).
Its first `PREFIX_CHARS` characters are kept in clear so a person can tell keys apart;
the rest never leaves the moment it is shown.

Why a fast keyed hash and not bcrypt: bcrypt and its kin are slow on purpose so that a
stolen hash of a *guessable* password costs a lot to crack. A key here carries 256 bits
from a cryptographic generator: there is nothing to guess, so a slow hash buys no
safety, while it would cost a quarter of a second of CPU on every ERP request (an easy
way to exhaust the server). HMAC-SHA-256 under a fixed label is one-way, collision
resistant and takes about a microsecond; the label keeps these hashes apart from any
other SHA-256 of the same text.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

KEY_PREFIX = "wnk_"
#: Random bytes per key: 256 bits, beyond any guessing.
KEY_BYTES = 32
#: Characters kept in clear ("wnk_" + 8): enough to tell a few thousand keys apart.
PREFIX_CHARS = 12
#: A presented key longer than this is refused unhashed (a real key has 47 characters;
#: `PO_EVENTS_API_KEY` may be any long secret an operator chose).
MAX_PRESENTED_CHARS = 512

_LABEL = b"wanotify api key v1"


def new_key() -> str:
    """A fresh random key (shown once to the person who asked for it, never stored)."""
    return KEY_PREFIX + secrets.token_urlsafe(KEY_BYTES)


def key_prefix(key: str) -> str:
    """The visible part of a key, by which lists and `revoke` name it."""
    return key[:PREFIX_CHARS]


def hash_key(key: str) -> str:
    """The stored form of a key: hex HMAC-SHA-256 under a fixed label (64 characters).

    Any text hashes, odd Unicode and lone surrogates included (encoded as they are, so
    two different texts never share a hash input): a hostile header can never make this
    raise.
    """
    data = key.encode("utf-8", "surrogatepass")
    return hmac.new(_LABEL, data, hashlib.sha256).hexdigest()
