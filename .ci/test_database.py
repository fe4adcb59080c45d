"""Make sure the PostgreSQL test database exists: `python .ci/test_database.py URL`.

Exit 0 when the database at URL accepts connections (created first if the server is up
but the database is missing); exit 3, with the reason on one line, when the server
cannot be reached, so `make test` can say so and skip its PostgreSQL pass.
"""

from __future__ import annotations

import sys

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

UNREACHABLE = 3


def main(url: str) -> int:
    """Create the database named in `url` if missing; 0 if usable, 3 if unreachable."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql" or not parsed.database:
        print(f"test database: {parsed.render_as_string()} is not a PostgreSQL database URL")
        return 2
    conninfo = {
        "host": parsed.host or "127.0.0.1",
        "port": parsed.port or 5432,
        "user": parsed.username or "postgres",
        "password": parsed.password or None,
        "connect_timeout": 5,
    }
    shown = parsed.render_as_string(hide_password=True)
    try:
        with psycopg.connect(dbname="postgres", autocommit=True, **conninfo) as connection:
            exists = connection.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (parsed.database,)
            ).fetchone()
            if not exists:
                connection.execute(
                    sql.SQL("CREATE DATABASE {}").format(sql.Identifier(parsed.database))
                )
                print(f"test database: created {parsed.database}")
        with psycopg.connect(dbname=parsed.database, **conninfo) as connection:
            connection.execute("SELECT 1")
    except psycopg.OperationalError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"test database: PostgreSQL not reachable at {shown} ({first})")
        return UNREACHABLE
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: python .ci/test_database.py postgresql://user@host:port/database")
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
