"""The durable case index in PostgreSQL (MAKEGOOD_DATABASE_URL): the same `CaseIndex` as the
SQLite one in `makegood.index`, the same idempotent writes, one table `cases` whose times are
timestamptz. A pool, opened with the worker or the API and closed with it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from makegood import pg
from makegood.domain.indexed import IndexedCase, read_row, stored_outcome

if TYPE_CHECKING:
    import asyncpg

SCHEMA = """
CREATE TABLE IF NOT EXISTS cases (
    case_id TEXT PRIMARY KEY, ticket_id TEXT NOT NULL, kind TEXT NOT NULL,
    customer TEXT NOT NULL, asset TEXT NOT NULL, opened_at TIMESTAMPTZ NOT NULL,
    closed_at TIMESTAMPTZ, resolution TEXT, archive_key TEXT, archived_at TIMESTAMPTZ,
    archive_note TEXT, outcome JSONB);
ALTER TABLE cases ADD COLUMN IF NOT EXISTS outcome JSONB;
CREATE INDEX IF NOT EXISTS cases_closed ON cases (closed_at);
CREATE INDEX IF NOT EXISTS cases_ticket ON cases (ticket_id);
CREATE INDEX IF NOT EXISTS cases_customer ON cases (customer);
CREATE INDEX IF NOT EXISTS cases_asset ON cases (asset);
CREATE INDEX IF NOT EXISTS cases_unarchived ON cases (closed_at) WHERE archive_key IS NULL;
CREATE TABLE IF NOT EXISTS replies (
    contact TEXT PRIMARY KEY, case_id TEXT NOT NULL, question_id TEXT NOT NULL,
    asked_at TIMESTAMPTZ NOT NULL);
"""
COLUMNS = tuple(IndexedCase.model_fields)
MARKS = ", ".join(f"${n}" for n in range(1, len(COLUMNS) + 1))
INSERT = f"INSERT INTO cases ({', '.join(COLUMNS)}) VALUES ({MARKS}) ON CONFLICT (case_id) "


def expect_reply_sql(*marks: str) -> str:
    """Note the newest SMS question per number (both dialects; `marks` are the placeholders):
    an older question's retried write never takes the number back."""
    return (
        f"INSERT INTO replies (contact, case_id, question_id, asked_at) VALUES "
        f"({', '.join(marks)}) ON CONFLICT (contact) DO UPDATE SET case_id = excluded.case_id, "
        "question_id = excluded.question_id, asked_at = excluded.asked_at "
        "WHERE excluded.asked_at >= replies.asked_at"
    )


class PgCaseIndex:
    def __init__(self, url: str) -> None:
        self.url = url
        self._pool: asyncpg.Pool | None = None

    @property
    def where(self) -> str:
        return f"postgresql {pg.where(self.url)}"

    async def open(self) -> PgCaseIndex:
        pool = await pg.pool(self.url)
        try:
            async with pool.acquire() as conn:
                await pg.ensure_schema(conn, SCHEMA)
        except BaseException:
            await pool.close()
            raise
        self._pool = pool
        return self

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    @property
    def pool(self) -> asyncpg.Pool:
        assert self._pool is not None, "open() the index first"
        return self._pool

    async def _rows(self, sql: str, *args: Any) -> list[IndexedCase]:
        return [read_row(dict(row)) for row in await self.pool.fetch(sql, *args)]

    @staticmethod
    def _values(row: IndexedCase) -> list[Any]:
        values = {c: getattr(row, c) for c in COLUMNS}
        values["outcome"] = stored_outcome(row.outcome)
        return [values[c] for c in COLUMNS]

    async def record_opened(self, row: IndexedCase) -> None:
        await self.pool.execute(INSERT + "DO NOTHING", *self._values(row))

    async def record_closed(self, row: IndexedCase) -> None:
        await self.pool.execute(
            INSERT + "DO UPDATE SET closed_at = excluded.closed_at, "
            "resolution = excluded.resolution, outcome = excluded.outcome",
            *self._values(row),
        )

    async def closed_between(self, start: datetime, end: datetime) -> list[IndexedCase]:
        return await self._rows(
            "SELECT * FROM cases WHERE closed_at >= $1 AND closed_at < $2 ORDER BY closed_at",
            start,
            end,
        )

    async def get(self, case_id: str) -> IndexedCase | None:
        found = await self._rows("SELECT * FROM cases WHERE case_id = $1", case_id)
        return found[0] if found else None

    async def by_ticket(self, ticket_id: str) -> IndexedCase | None:
        found = await self._rows(
            "SELECT * FROM cases WHERE ticket_id = $1 ORDER BY opened_at LIMIT 1", ticket_id
        )
        return found[0] if found else None

    async def related(
        self, customers: Sequence[str], assets: Sequence[str], limit: int
    ) -> list[IndexedCase]:
        if not customers and not assets:
            return []
        return await self._rows(
            "SELECT * FROM cases WHERE customer = ANY($1::text[]) OR asset = ANY($2::text[]) "
            "ORDER BY opened_at DESC LIMIT $3",
            list(customers),
            list(assets),
            limit,
        )

    async def to_archive(self, limit: int) -> list[IndexedCase]:
        return await self._rows(
            "SELECT * FROM cases WHERE closed_at IS NOT NULL AND archive_key IS NULL "
            "AND archive_note IS NULL ORDER BY closed_at LIMIT $1",
            limit,
        )

    async def archived(self, case_id: str, key: str, at: datetime) -> None:
        await self.pool.execute(
            "UPDATE cases SET archive_key = $1, archived_at = $2, archive_note = NULL "
            "WHERE case_id = $3",
            key,
            at,
            case_id,
        )

    async def give_up(self, case_id: str, note: str) -> None:
        await self.pool.execute(
            "UPDATE cases SET archive_note = $1 WHERE case_id = $2", note, case_id
        )

    async def expect_reply(
        self, contact: str, case_id: str, question_id: str, at: datetime
    ) -> None:
        await self.pool.execute(
            expect_reply_sql("$1", "$2", "$3", "$4"), contact, case_id, question_id, at
        )

    async def awaiting_reply(self, contact: str) -> tuple[str, str] | None:
        row = await self.pool.fetchrow(
            "SELECT case_id, question_id FROM replies WHERE contact = $1", contact
        )
        return (str(row["case_id"]), str(row["question_id"])) if row else None
