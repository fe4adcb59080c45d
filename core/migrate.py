"""Schema migrations, run once before the processes that share the database start."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from core.db import normalise_url
from core.settings import get_settings

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(database_url: str | None = None) -> Config:
    """An Alembic config pointing at the packaged migrations and the given database."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    url = normalise_url(database_url or get_settings().database_url)
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(database_url: str | None = None, revision: str = "heads") -> None:
    """Bring the database schema up to `revision` (every head by default)."""
    command.upgrade(alembic_config(database_url), revision)
