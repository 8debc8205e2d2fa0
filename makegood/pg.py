"""PostgreSQL for the durable stores outside Temporal: the case index, the receipt index and
the webhook replay guard, when MAKEGOOD_DATABASE_URL names a database.

`postgresql://user@host:port/db`; the password comes from the URL or, as libpq does, from
PGPASSWORD (asyncpg reads the standard PG* variables and ~/.pgpass). A unix socket is
`postgresql://user@/db?host=/run/postgresql`. The driver, asyncpg, is the `postgres` extra:
imported only when a PostgreSQL URL is used, so a SQLite installation does not need it.

Each store creates its tables on first use. Two processes starting on a new database at once
would both run CREATE TABLE IF NOT EXISTS, which PostgreSQL does not make safe (the loser can
fail on the catalogue's unique index), so the schema is created under a transaction-level
advisory lock: the second waits, then finds everything there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlparse

if TYPE_CHECKING:
    import asyncpg

SCHEMES: Final = ("postgres", "postgresql")
SCHEMA_LOCK: Final = 0x6D616B65676F6F64  # "makegood": one key for every store's DDL


class DatabaseConfigError(ValueError):
    """MAKEGOOD_DATABASE_URL is not a PostgreSQL URL, or the driver is not installed."""


def is_postgres(url: str) -> bool:
    return urlparse(url).scheme in SCHEMES


def where(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parsed = urlparse(url)
    if parsed.password is None:
        return url
    user, _, host = parsed.netloc.rpartition("@")
    return parsed._replace(netloc=f"{user.partition(':')[0]}:***@{host}").geturl()


def _driver() -> Any:
    try:
        import asyncpg
    except ImportError:  # pragma: no cover - the test extra installs it
        raise DatabaseConfigError(
            "MAKEGOOD_DATABASE_URL names PostgreSQL but asyncpg is not installed: "
            "pip install 'makegood[postgres]'"
        ) from None
    return asyncpg


def check(url: str) -> str:
    """The URL, if it names a PostgreSQL database this installation can use."""
    if not is_postgres(url):
        raise DatabaseConfigError(
            f"MAKEGOOD_DATABASE_URL={where(url)}: expected postgresql://user@host:port/db"
        )
    _driver()
    return url


def errors() -> tuple[type[BaseException], ...]:
    """What a failing database or connection raises (asyncpg's errors, OS errors)."""
    asyncpg = _driver()
    return (asyncpg.PostgresError, asyncpg.InterfaceError, OSError)


CONNECT_TIMEOUT_S: Final = 10.0


async def connect(url: str) -> asyncpg.Connection:
    return await _driver().connect(check(url), timeout=CONNECT_TIMEOUT_S)


async def pool(url: str, *, max_size: int = 4) -> asyncpg.Pool:
    """A small pool: activities and requests run concurrently, a connection runs one query."""
    return await _driver().create_pool(check(url), min_size=1, max_size=max_size)


async def ensure_schema(conn: asyncpg.Connection, ddl: str) -> None:
    """Run `ddl` (idempotent statements) in one transaction, under the schema lock."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", SCHEMA_LOCK)
        await conn.execute(ddl)
