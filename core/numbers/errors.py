"""The errors of sender numbers, in one place so every module of the package can raise them."""

from __future__ import annotations

#: The environment variable holding the token encryption key(s).
SECRET_KEY_VARIABLE = "WANOTIFY_SECRET_KEY"  # noqa: S105 - a variable name, not a key


class NumberError(ValueError):
    """A sender number is unknown, not this tenant's, malformed or not usable; the
    message says which and what to do, in one line, without any token."""


class SecretKeyError(NumberError):
    """Stored access tokens cannot be encrypted or decrypted with the configured
    `WANOTIFY_SECRET_KEY` (unset, malformed or not the key they were encrypted with)."""
