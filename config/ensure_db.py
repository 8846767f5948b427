"""Create the PostgreSQL database named in DATABASE_URL when it does not exist yet.

`python -m config.ensure_db` (what the `make bench*` targets run first): a fresh machine's
PostgreSQL has no `atrium` database, and the benchmarks would stop at their first query.
Connects to the server's `postgres` maintenance database with the same credentials, checks
`pg_database` and runs CREATE DATABASE once. Safe to run any number of times. The tests do
not need it: pytest-django creates its own test database.
"""

import sys

import dj_database_url
import psycopg
from psycopg import sql


def ensure_database(url: str) -> bool:
    """Create the database `url` names unless it exists. Returns True when it was created."""
    config = dj_database_url.parse(url)
    name = config["NAME"]
    if not name:
        raise ValueError("DATABASE_URL names no database")
    params = {
        "dbname": "postgres",
        "user": config.get("USER") or None,
        "password": config.get("PASSWORD") or None,
        "host": config.get("HOST") or None,
        "port": config.get("PORT") or None,
        **config.get("OPTIONS", {}),
    }
    # CREATE DATABASE cannot run inside a transaction block.
    with psycopg.connect(**{k: v for k, v in params.items() if v is not None}, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            return False
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return True


def main() -> int:
    from config import settings  # the same variable and default as the app itself

    url = settings.DATABASE_URL
    try:
        created = ensure_database(url)
    except (psycopg.Error, ValueError) as exc:
        print(f"[atrium] cannot make sure the database exists: {exc}", file=sys.stderr)
        return 1
    name = dj_database_url.parse(url)["NAME"]
    print(f"[atrium] database {name!r} {'created' if created else 'exists'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
