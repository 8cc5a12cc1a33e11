"""A team on one PostgreSQL database: ``storykit serve`` replicas behind a real HAProxy.

PostgreSQL is ``STORYKIT_TEST_POSTGRES`` (as in tests/core); HAProxy is Debian's
``haproxy`` (scripts/system-deps.sh); Redis (for the Redis rate limiter) is
``STORYKIT_TEST_REDIS``. Any of them missing skips the tests that need it, except
under CI (``CI`` set), where it fails them: a CI run must never pass without them.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from team import ADMIN_URL, REDIS_URL, redis_call


def _missing(message: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def haproxy() -> str:
    path = shutil.which("haproxy")
    if path is None:
        _missing("haproxy is not installed; run scripts/system-deps.sh")
    assert path is not None
    return path


@pytest.fixture
def database_url() -> Iterator[str]:
    """A fresh database of its own, as a ``postgresql://`` URL; dropped afterwards."""
    try:
        psycopg.connect(ADMIN_URL, connect_timeout=5).close()
    except psycopg.Error as exc:
        _missing(f"PostgreSQL is unreachable at {ADMIN_URL} ({exc}); set STORYKIT_TEST_POSTGRES")
    name = f"storykit_team_{secrets.token_hex(6)}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        info = conninfo_to_dict(make_conninfo(ADMIN_URL, dbname=name))
        user, host = info.get("user", "postgres"), info.get("host", "127.0.0.1")
        yield f"postgresql://{user}@{host}:{info.get('port', 5432)}/{name}"
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(
                sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(sql.Identifier(name))
            )
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def redis_url() -> str:
    try:
        redis_call(REDIS_URL, "ping")
    except Exception as exc:
        _missing(f"Redis is unreachable at {REDIS_URL} ({exc!r}); set STORYKIT_TEST_REDIS")
    return REDIS_URL
