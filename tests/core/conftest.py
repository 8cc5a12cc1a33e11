"""PostgreSQL for the store tests: a throwaway database per test, dropped afterwards.

The server is ``STORYKIT_TEST_POSTGRES`` (default: the local one, as user postgres).
Unreachable, the PostgreSQL tests are skipped, except under CI (``CI`` set), where
they fail: a CI run must never pass without them.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from storykit.testing import tool_missing

ADMIN_URL = os.environ.get(
    "STORYKIT_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)


@pytest.fixture(scope="session")
def pg_admin() -> str:
    """The server's admin connection string, once it is known to answer."""
    try:
        psycopg.connect(ADMIN_URL, connect_timeout=5).close()
    except psycopg.Error as exc:
        message = f"PostgreSQL is unreachable at {ADMIN_URL} ({exc}); set STORYKIT_TEST_POSTGRES"
        tool_missing(message)
    return ADMIN_URL


@pytest.fixture
def pg_url(pg_admin: str) -> Iterator[str]:
    """A fresh, empty database of its own; dropped (connections and all) afterwards."""
    name = f"storykit_test_{secrets.token_hex(6)}"
    with psycopg.connect(pg_admin, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_conninfo(pg_admin, dbname=name)
    finally:
        with psycopg.connect(pg_admin, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(params=["sqlite", "postgres"])
def db_env(request: pytest.FixtureRequest) -> dict[str, str]:
    """Settings for a core on SQLite (the default) or on a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return {}
    from psycopg.conninfo import conninfo_to_dict

    info = conninfo_to_dict(str(request.getfixturevalue("pg_url")))
    user, host = info.get("user", "postgres"), info.get("host", "127.0.0.1")
    url = f"postgresql://{user}@{host}:{info.get('port', 5432)}/{info['dbname']}"
    return {"DATABASE_URL": url}
