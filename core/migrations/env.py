"""Alembic environment: the schema is SQLModel's metadata; the URL comes from settings."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

import core.models  # noqa: F401  (registers every table)
from core.db import get_engine, normalise_url
from core.models.base import metadata

config = context.config


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        compare_type=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    """Emit SQL to stdout instead of applying it (`alembic upgrade --sql`)."""
    url = config.get_main_option("sqlalchemy.url")
    context.configure(
        url=normalise_url(url) if url else None,
        target_metadata=metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Apply migrations on a live connection to the configured database."""
    url = config.get_main_option("sqlalchemy.url") or None
    with get_engine(url).connect() as connection:
        _run(connection)
        connection.commit()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
