"""Access tokens encrypted at rest with `WANOTIFY_SECRET_KEY` (Fernet, several keys).

`WANOTIFY_SECRET_KEY` holds one or more Fernet keys separated by commas: the first
encrypts, every one decrypts (`MultiFernet`). Rotating without downtime:

1. put a new key first and keep the old one after it (`NEW,OLD`) in every process's
   environment and restart them one by one: each reads tokens written with either key;
2. run `wanotify numbers rotate-key`: every stored token is re-encrypted with the new key;
3. drop the old key from the environment.

Fail closed: a stored token with no key set, or with no key that opens it, stops the
caller with a `SecretKeyError` naming `WANOTIFY_SECRET_KEY`, never a token or a key.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from pydantic import SecretStr
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from core import clock
from core.models.sender_numbers import SenderNumberRow
from core.numbers.errors import SECRET_KEY_VARIABLE, SecretKeyError
from core.settings import Settings

__all__ = [
    "SecretKeyError",
    "cipher",
    "decrypt_token",
    "encrypt_token",
    "new_key",
    "parse_keys",
    "rotate_tokens",
]


def parse_keys(raw: str) -> list[Fernet]:
    """The Fernet keys of a `WANOTIFY_SECRET_KEY` value, first (the encrypting one) first.

    Raises `SecretKeyError` for an empty list or a part that is not a Fernet key (the
    message says which part by position, never its text).
    """
    parts = [part.strip() for part in raw.split(",")]
    if not any(parts):
        raise SecretKeyError(f"{SECRET_KEY_VARIABLE} is empty")
    keys = []
    for position, part in enumerate(parts, start=1):
        try:
            keys.append(Fernet(part.encode("ascii")))
        except (ValueError, UnicodeEncodeError):
            raise SecretKeyError(
                f"{SECRET_KEY_VARIABLE}: key {position} is not a Fernet key (32 url-safe "
                "base64-encoded bytes; `wanotify numbers new-key` makes one)"
            ) from None
    return keys


def cipher(settings: Settings) -> MultiFernet:
    """The cipher for stored tokens; `SecretKeyError` when no key is configured."""
    secret = settings.wanotify_secret_key
    if secret is None or not secret.get_secret_value().strip():
        raise SecretKeyError(
            f"{SECRET_KEY_VARIABLE} is not set: it encrypts the access tokens of the numbers "
            "stored in the database (`wanotify numbers new-key` makes one)"
        )
    return MultiFernet(parse_keys(secret.get_secret_value()))


def new_key() -> str:
    """A fresh random Fernet key, as `WANOTIFY_SECRET_KEY` takes it."""
    return Fernet.generate_key().decode("ascii")


def encrypt_token(settings: Settings, token: str) -> str:
    """The ciphertext of `token` under the first configured key (stored as text)."""
    return cipher(settings).encrypt(token.encode("utf-8")).decode("ascii")


def decrypt_token(settings: Settings, ciphertext: str, *, phone_number_id: str) -> SecretStr:
    """The stored token of number `phone_number_id`; `SecretKeyError` if no key opens it."""
    try:
        plain = cipher(settings).decrypt(ciphertext.encode("ascii"))
    except (InvalidToken, UnicodeEncodeError):
        raise SecretKeyError(
            f"the access token of number {phone_number_id} cannot be decrypted with "
            f"{SECRET_KEY_VARIABLE}: set the key it was stored with (keep old keys after the "
            "new one, comma-separated, until `wanotify numbers rotate-key` has run)"
        ) from None
    return SecretStr(plain.decode("utf-8"))


def rotate_tokens(engine: Engine, settings: Settings) -> int:
    """Re-encrypt every stored token with the first key; how many were re-encrypted.

    One transaction: either every token is under the new key or none changed (a token
    no configured key opens stops it with `SecretKeyError`). Removed numbers' tokens are
    re-encrypted too, so the old key can really be dropped.
    """
    fernet = cipher(settings)
    now = clock.now()
    count = 0
    with Session(engine) as session:
        rows = session.exec(
            select(SenderNumberRow).where(col(SenderNumberRow.token_ciphertext).is_not(None))
        ).all()
        for row in rows:
            assert row.token_ciphertext is not None
            try:
                rotated = fernet.rotate(row.token_ciphertext.encode("ascii"))
            except (InvalidToken, UnicodeEncodeError):
                raise SecretKeyError(
                    f"the access token of number {row.phone_number_id} cannot be decrypted "
                    f"with {SECRET_KEY_VARIABLE}: add the key it was stored with after the "
                    "new one, then rotate again (nothing was changed)"
                ) from None
            row.token_ciphertext = rotated.decode("ascii")
            row.updated_at = now
            session.add(row)
            count += 1
        session.commit()
    return count
