"""The durable case index: ticket → case, and a case's customer and asset pseudonyms, kept
beyond Temporal's retention so a duplicate ticket a year later still finds its case and S2
still finds earlier cases.

SQLite here (`<data_dir>/cases.sqlite`, or MAKEGOOD_CASE_INDEX); PostgreSQL in
`makegood.index_pg` when MAKEGOOD_DATABASE_URL is set (issue 14), both behind `CaseIndex`.
Rows are written by the case itself, through activities when it opens and when it closes
(`makegood.activities.history`), and completed by the archiver with the archive's key
(`makegood.archiver`). Every write is idempotent.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlparse

import aiosqlite
from pydantic import TypeAdapter

from makegood.domain.indexed import IndexedCase, read_row, stored_outcome
from makegood.domain.pseudonyms import Pseudonyms
from makegood.index_pg import PgCaseIndex, expect_reply_sql


class CaseIndex(Protocol):
    """What cases, S2, duplicate tickets and the archiver need of the index."""

    @property
    def where(self) -> str: ...

    async def record_opened(self, row: IndexedCase) -> None:
        """Add the case; a repeated write changes nothing."""

    async def record_closed(self, row: IndexedCase) -> None:
        """Add or complete the case with its close time and resolution."""

    async def get(self, case_id: str) -> IndexedCase | None: ...

    async def by_ticket(self, ticket_id: str) -> IndexedCase | None: ...

    async def related(
        self, customers: Sequence[str], assets: Sequence[str], limit: int
    ) -> list[IndexedCase]:
        """Cases with one of these customer or asset pseudonyms, newest first."""

    async def to_archive(self, limit: int) -> list[IndexedCase]:
        """Closed cases not archived yet (nor given up on), oldest close first."""

    async def closed_between(self, start: datetime, end: datetime) -> list[IndexedCase]:
        """Cases closed from `start` up to (not including) `end`, in the order they closed."""

    async def archived(self, case_id: str, key: str, at: datetime) -> None: ...

    async def give_up(self, case_id: str, note: str) -> None:
        """Archiving this case cannot succeed (Temporal no longer has it): stop trying."""

    async def expect_reply(
        self, contact: str, case_id: str, question_id: str, at: datetime
    ) -> None:
        """An SMS question went to `contact` (a pseudonym): a reply from it answers that
        question. The newest question sent to a number is the one its replies answer."""

    async def awaiting_reply(self, contact: str) -> tuple[str, str] | None:
        """The case and question a reply from `contact` answers, if any."""


SCHEMA = """
CREATE TABLE IF NOT EXISTS cases (
    case_id TEXT PRIMARY KEY, ticket_id TEXT NOT NULL, kind TEXT NOT NULL,
    customer TEXT NOT NULL, asset TEXT NOT NULL, opened_at TEXT NOT NULL,
    closed_at TEXT, resolution TEXT, archive_key TEXT, archived_at TEXT, archive_note TEXT,
    outcome TEXT);
CREATE INDEX IF NOT EXISTS cases_ticket ON cases (ticket_id);
CREATE INDEX IF NOT EXISTS cases_customer ON cases (customer);
CREATE INDEX IF NOT EXISTS cases_asset ON cases (asset);
CREATE INDEX IF NOT EXISTS cases_unarchived ON cases (closed_at) WHERE archive_key IS NULL;
CREATE INDEX IF NOT EXISTS cases_closed ON cases (closed_at);
CREATE TABLE IF NOT EXISTS replies (
    contact TEXT PRIMARY KEY, case_id TEXT NOT NULL, question_id TEXT NOT NULL,
    asked_at TEXT NOT NULL);
"""
_TIME: TypeAdapter[datetime] = TypeAdapter(datetime)
# Columns added since the first schema, for files made before them.
ADDED = {"outcome": "TEXT"}
COLUMNS = tuple(IndexedCase.model_fields)


class SqliteCaseIndex:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()

    @property
    def where(self) -> str:
        return f"sqlite {self.path}"

    async def open(self) -> SqliteCaseIndex:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Autocommit, each write in a transaction of its own begun IMMEDIATE (see `_write`).
        db = await aiosqlite.connect(self.path, isolation_level=None)
        # WAL and a busy timeout: workers and API processes may share the file.
        await db.execute("PRAGMA journal_mode=wal")
        await db.execute("PRAGMA busy_timeout=5000")
        await _add_columns(db)
        await db.executescript(SCHEMA)
        db.row_factory = aiosqlite.Row
        self._db = db
        return self

    async def close(self) -> None:
        if self._db is not None:
            await self._db.close()
            self._db = None

    @property
    def db(self) -> aiosqlite.Connection:
        assert self._db is not None, "open() the index first"
        return self._db

    async def _write(self, sql: str, *args: Any) -> None:
        """One write, in a transaction that takes the write lock as it begins (waiting out
        another process's under the busy timeout). Statements on the connection never
        interleave: a write begun inside another call's read would fail at once with "database
        is locked" once a second worker had written since that read began."""
        async with self._lock:
            await self.db.execute("BEGIN IMMEDIATE")
            try:
                await self.db.execute(sql, args)
            except BaseException:
                await self.db.execute("ROLLBACK")
                raise
            await self.db.execute("COMMIT")

    async def _rows(self, sql: str, *args: Any) -> list[IndexedCase]:
        async with self._lock, self.db.execute(sql, args) as cursor:
            rows = await cursor.fetchall()
        return [read_row(dict(row)) for row in rows]

    @staticmethod
    def _values(row: IndexedCase) -> list[Any]:
        data = row.model_dump(mode="json")
        data["outcome"] = stored_outcome(row.outcome)
        return [data[c] for c in COLUMNS]

    async def record_opened(self, row: IndexedCase) -> None:
        marks = ", ".join("?" for _ in COLUMNS)
        await self._write(
            f"INSERT INTO cases ({', '.join(COLUMNS)}) VALUES ({marks}) "
            "ON CONFLICT (case_id) DO NOTHING",
            *self._values(row),
        )

    async def record_closed(self, row: IndexedCase) -> None:
        marks = ", ".join("?" for _ in COLUMNS)
        await self._write(
            f"INSERT INTO cases ({', '.join(COLUMNS)}) VALUES ({marks}) "
            "ON CONFLICT (case_id) DO UPDATE SET closed_at = excluded.closed_at, "
            "resolution = excluded.resolution, outcome = excluded.outcome",
            *self._values(row),
        )

    async def closed_between(self, start: datetime, end: datetime) -> list[IndexedCase]:
        return await self._rows(
            "SELECT * FROM cases WHERE closed_at >= ? AND closed_at < ? ORDER BY closed_at",
            _stamp(start),
            _stamp(end),
        )

    async def get(self, case_id: str) -> IndexedCase | None:
        found = await self._rows("SELECT * FROM cases WHERE case_id = ?", case_id)
        return found[0] if found else None

    async def by_ticket(self, ticket_id: str) -> IndexedCase | None:
        found = await self._rows(
            "SELECT * FROM cases WHERE ticket_id = ? ORDER BY opened_at LIMIT 1", ticket_id
        )
        return found[0] if found else None

    async def related(
        self, customers: Sequence[str], assets: Sequence[str], limit: int
    ) -> list[IndexedCase]:
        if not customers and not assets:
            return []
        c = ", ".join("?" for _ in customers) or "NULL"
        a = ", ".join("?" for _ in assets) or "NULL"
        return await self._rows(
            f"SELECT * FROM cases WHERE customer IN ({c}) OR asset IN ({a}) "
            "ORDER BY opened_at DESC LIMIT ?",
            *customers,
            *assets,
            limit,
        )

    async def to_archive(self, limit: int) -> list[IndexedCase]:
        return await self._rows(
            "SELECT * FROM cases WHERE closed_at IS NOT NULL AND archive_key IS NULL "
            "AND archive_note IS NULL ORDER BY closed_at LIMIT ?",
            limit,
        )

    async def archived(self, case_id: str, key: str, at: datetime) -> None:
        await self._write(
            "UPDATE cases SET archive_key = ?, archived_at = ?, archive_note = NULL "
            "WHERE case_id = ?",
            key,
            at.isoformat(),
            case_id,
        )

    async def give_up(self, case_id: str, note: str) -> None:
        await self._write("UPDATE cases SET archive_note = ? WHERE case_id = ?", note, case_id)

    async def expect_reply(
        self, contact: str, case_id: str, question_id: str, at: datetime
    ) -> None:
        sql = expect_reply_sql("?", "?", "?", "?")
        await self._write(sql, contact, case_id, question_id, _stamp(at))

    async def awaiting_reply(self, contact: str) -> tuple[str, str] | None:
        async with (
            self._lock,
            self.db.execute(
                "SELECT case_id, question_id FROM replies WHERE contact = ?", (contact,)
            ) as cursor,
        ):
            row = await cursor.fetchone()
        return (str(row[0]), str(row[1])) if row else None


def _stamp(at: datetime) -> str:
    """A time as the rows keep it (pydantic's JSON form), so that text compares as time."""
    return str(_TIME.dump_python(at, mode="json"))


async def _add_columns(db: aiosqlite.Connection) -> None:
    """Columns newer than a file's table: added once (a second process may race: fine)."""
    async with db.execute("PRAGMA table_info(cases)") as cursor:
        have = {row[1] for row in await cursor.fetchall()}
    if not have:
        return  # a new file: the schema makes the table whole
    for name, kind in ADDED.items():
        if name not in have:
            try:
                await db.execute(f"ALTER TABLE cases ADD COLUMN {name} {kind}")
            except sqlite3.OperationalError as err:
                if "duplicate column" not in str(err):
                    raise


@dataclass(frozen=True)
class ReplyBook:
    """The case index as the notification activity notes SMS questions in it: by a keyed
    pseudonym of the phone number, never the number."""

    index: CaseIndex
    pseudonyms: Pseudonyms

    async def asked(self, phone: str, case_id: str, question_id: str, at: datetime) -> None:
        await self.index.expect_reply(self.pseudonyms.contact(phone), case_id, question_id, at)


class IndexConfigError(ValueError):
    """MAKEGOOD_CASE_INDEX names an index this version cannot open, or contradicts
    MAKEGOOD_DATABASE_URL."""


def index_path(url: str, *, default: Path) -> Path:
    """The SQLite file a setting names: empty → the default; `sqlite:///path` or a path."""
    if not url:
        return default
    parsed = urlparse(url)
    if parsed.scheme == "sqlite":
        return Path(unquote(parsed.path))
    if parsed.scheme in ("postgres", "postgresql"):
        raise IndexConfigError(
            f"MAKEGOOD_CASE_INDEX={parsed.scheme}://...: the case index is in PostgreSQL when "
            "MAKEGOOD_DATABASE_URL names the database (with the receipt index and the webhook "
            "replay guard); MAKEGOOD_CASE_INDEX is a SQLite path or sqlite:///path"
        )
    if parsed.scheme == "":
        return Path(url)
    raise IndexConfigError(f"{url}: a case index is a SQLite path or sqlite:///path")


@contextlib.asynccontextmanager
async def opened_index(url: str, *, default: Path, database: str = "") -> AsyncIterator[CaseIndex]:
    """The index the settings name: PostgreSQL when `database` (MAKEGOOD_DATABASE_URL) is set,
    else the SQLite file `url` (MAKEGOOD_CASE_INDEX) or `default`."""
    index: SqliteCaseIndex | PgCaseIndex
    if database:
        if url:
            raise IndexConfigError(
                "MAKEGOOD_CASE_INDEX and MAKEGOOD_DATABASE_URL are both set: with a database "
                "the case index is in it; unset MAKEGOOD_CASE_INDEX"
            )
        index = await PgCaseIndex(database).open()
    else:
        index = await SqliteCaseIndex(index_path(url, default=default)).open()
    try:
        yield index
    finally:
        await index.close()
