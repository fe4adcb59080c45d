"""The dashboard language a user chose, kept on their user row (users.locale)."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlmodel import Session, col, select, update

from core.i18n import LANGUAGES
from core.models.users import User


def chosen_language(engine: Engine, user_id: int) -> str | None:
    """The language user `user_id` chose ("en", "es"), or None to follow the browser."""
    with Session(engine) as session:
        found = session.exec(select(User.locale).where(col(User.id) == user_id)).first()
    return found if found in LANGUAGES else None


def choose_language(engine: Engine, user_id: int, language: str | None) -> None:
    """Remember `language` for user `user_id` (None: follow the browser again).

    Only a language with a catalogue is stored; anything else is a ValueError.
    """
    if language is not None and language not in LANGUAGES:
        raise ValueError(f"not a dashboard language: {language!r}")
    with Session(engine) as session:
        session.exec(update(User).where(col(User.id) == user_id).values(locale=language))
        session.commit()
