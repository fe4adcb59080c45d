"""Alembic environment: the schema is SQLModel's metadata; the URL comes from settings."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, text

import core.models  # noqa: F401  (registers every table)
from core.db import get_engine, normalise_url
from core.models.base import metadata

config = context.config


#: PostgreSQL advisory lock key held while migrating ("wanotify" as a number): two
#: `wanotify db upgrade` started at once (two hosts of one deploy) take turns, and the
#: second finds the schema already at head instead of failing halfway.
MIGRATION_LOCK_KEY = 0x77616E6F74696679


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        compare_type=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # Held to the end of the migration transaction; the version is re-read after.
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
            )
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
