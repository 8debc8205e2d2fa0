"""The webhook replay guard, durable and shared: which signed deliveries were already handled.

A signature proves who sent a delivery, not that it is the first time we see it: anyone who
captured one can send it again while its timestamp is inside the tolerance window. So each
delivery id is kept in a SQLite table in the data folder (`webhook-deliveries.sqlite`), which
every API process on that folder shares and which outlives a restart.

A delivery goes through three steps, each its own short transaction:

- **claim**: insert the id as `pending`. The id is the table's primary key, so of two
  concurrent deliveries of one id exactly one gets the claim; the other is refused (409) and
  the provider retries later.
- **done**: processing succeeded; the row stays until the delivery could no longer pass the
  signature check anyway: the tolerance window after its signed timestamp (or after now, if
  that is later).
- **release**: processing failed (case not found, Temporal refused, a 4xx of ours, a client
  that went away): the claim is deleted so that the provider's retry of the same id can
  succeed. A claim whose process died before it could release lapses after `lease_s`.

Expired rows are deleted by every claim. One data folder is one host (or one shared volume);
API replicas on several hosts share a PostgreSQL database instead (MAKEGOOD_DATABASE_URL):
`PgReplayGuard` in `makegood.api.replay_store_pg`, the same steps behind `DeliveryGuard`.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

import aiosqlite
import anyio
import structlog

log = structlog.get_logger("makegood.api")

FILE_NAME: Final = "webhook-deliveries.sqlite"
LEASE_S: Final = 60.0
"""How long a pending claim holds when its process never releases it (it died)."""

SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS deliveries (
    key TEXT PRIMARY KEY,
    state TEXT NOT NULL CHECK (state IN ('pending', 'done')),
    claim TEXT NOT NULL,
    expires_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS deliveries_expiry ON deliveries (expires_at);
"""

State = Literal["pending", "done"]


async def _prepare(conn: aiosqlite.Connection, tries: int = 100) -> None:
    """WAL and the table, once per process. Two processes doing it at once can find the file
    locked without SQLite's busy wait (switching the journal mode takes it whole), so each
    try starts clean (nothing held, so the other can finish) and is retried."""
    for attempt in range(tries):
        try:
            # The pragma answers a row: read it, or the open statement keeps a read lock that
            # deadlocks with the other process (SQLite then skips the busy wait).
            await (await conn.execute("PRAGMA journal_mode=WAL")).close()
            await conn.execute("BEGIN IMMEDIATE")  # the write lock, waited for
            for statement in filter(str.strip, SCHEMA.split(";")):
                await conn.execute(statement)
            await conn.execute("COMMIT")
            return
        except sqlite3.OperationalError as err:
            if conn.in_transaction:
                await conn.execute("ROLLBACK")
            if "locked" not in str(err) or attempt == tries - 1:
                raise
            await anyio.sleep(0.02)


@dataclass(frozen=True)
class Claim:
    """The right to process one delivery, held until `done` or `release`."""

    key: str
    token: str
    signed_at: float


class Replayed(Exception):
    """The delivery is being processed or was processed: it must not be processed again."""

    def __init__(self, state: State) -> None:
        super().__init__(state)
        self.state: State = state


class GuardUnavailable(Exception):
    """The replay store cannot be read or written (disk full, locked for too long)."""


class DeliveryGuard:
    """The steps every store shares (claim, done, release: its own); `holding` on top.

    Each operation opens its own connection: webhooks are rare enough, and so the guard needs
    no start-up or shutdown and works from any event loop. Nothing is created until the first
    delivery, so building an app (for its OpenAPI document, say) touches no file or database.
    """

    def __init__(
        self, ttl_s: float, *, lease_s: float = LEASE_S, clock: Callable[[], float] = time.time
    ) -> None:
        self.ttl_s, self.clock = ttl_s, clock
        self.lease_s = min(lease_s, ttl_s)
        self._ready = False

    @staticmethod
    def key(source: str, delivery: str) -> str:
        """A fixed-size key: ids come from the sender and may be long."""
        return hashlib.sha256(f"{source}\n{delivery}".encode()).hexdigest()

    def _expiry(self, claim: Claim) -> float:
        """Until when a processed delivery is kept: while its signature could be replayed."""
        return max(self.clock(), claim.signed_at) + self.ttl_s

    async def claim(self, key: str, signed_at: float) -> Claim:
        """Take the delivery `key`; raises Replayed if another holds or has finished it."""
        raise NotImplementedError

    async def done(self, claim: Claim) -> None:
        """Processing succeeded: keep the id while its signature could still be replayed."""
        raise NotImplementedError

    async def release(self, claim: Claim) -> None:
        """Processing failed: forget the claim so that a retry of the delivery can succeed."""
        raise NotImplementedError

    async def rows(self) -> list[tuple[str, State, float]]:
        """(key, state, expires_at) of every row, expired or not: for tests and inspection."""
        raise NotImplementedError

    @asynccontextmanager
    async def holding(self, claim: Claim) -> AsyncIterator[None]:
        """Process a claimed delivery: recorded if the block succeeds, released if it raises
        (even when the request is being cancelled: the release is shielded)."""
        try:
            yield
        except BaseException:
            with anyio.CancelScope(shield=True):
                try:
                    await self.release(claim)
                except GuardUnavailable as err:  # the claim lapses after lease_s instead
                    log.warning("webhook_claim_not_released", error=str(err))
            raise
        try:
            await self.done(claim)
        except GuardUnavailable as err:
            # Processed all the same: say so. The claim lapses after lease_s; a replay after
            # that reaches the case, whose own event ids keep it from counting twice.
            log.warning("webhook_delivery_not_recorded", error=str(err))


class ReplayGuard(DeliveryGuard):
    """Delivery ids in SQLite, shared by the API processes of one data folder."""

    def __init__(
        self,
        path: Path,
        ttl_s: float,
        *,
        lease_s: float = LEASE_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(ttl_s, lease_s=lease_s, clock=clock)
        self.path = path

    @classmethod
    def in_folder(cls, data_dir: Path, ttl_s: float) -> ReplayGuard:
        return cls(data_dir / FILE_NAME, ttl_s)

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        try:
            if not self._ready:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            async with aiosqlite.connect(self.path, isolation_level=None, timeout=10) as conn:
                if not self._ready:
                    await _prepare(conn)
                    self._ready = True
                await conn.execute("BEGIN IMMEDIATE")  # one writer at a time, across processes
                try:
                    yield conn
                except BaseException:
                    await conn.execute("ROLLBACK")
                    raise
                await conn.execute("COMMIT")
        except (sqlite3.Error, OSError) as err:
            raise GuardUnavailable(f"the webhook replay store {self.path} failed: {err}") from err

    async def claim(self, key: str, signed_at: float) -> Claim:
        now, token = self.clock(), uuid.uuid4().hex
        async with self._transaction() as conn:
            await conn.execute("DELETE FROM deliveries WHERE expires_at <= ?", (now,))
            cur = await conn.execute(
                "INSERT INTO deliveries (key, state, claim, expires_at)"
                " VALUES (?, 'pending', ?, ?) ON CONFLICT (key) DO NOTHING",
                (key, token, now + self.lease_s),
            )
            if cur.rowcount == 0:
                row = await (
                    await conn.execute("SELECT state FROM deliveries WHERE key = ?", (key,))
                ).fetchone()
                raise Replayed("done" if row is None else row[0])
        return Claim(key, token, signed_at)

    async def done(self, claim: Claim) -> None:
        expires = self._expiry(claim)
        async with self._transaction() as conn:
            await conn.execute(
                "UPDATE deliveries SET state = 'done', expires_at = ? WHERE key = ? AND claim = ?",
                (expires, claim.key, claim.token),
            )

    async def release(self, claim: Claim) -> None:
        async with self._transaction() as conn:
            await conn.execute(
                "DELETE FROM deliveries WHERE key = ? AND claim = ? AND state = 'pending'",
                (claim.key, claim.token),
            )

    async def rows(self) -> list[tuple[str, State, float]]:
        async with self._transaction() as conn:
            cur = await conn.execute("SELECT key, state, expires_at FROM deliveries ORDER BY key")
            return [(r[0], r[1], r[2]) for r in await cur.fetchall()]


def replay_guard(data_dir: Path, ttl_s: float, database: str = "") -> DeliveryGuard:
    """PostgreSQL when `database` (MAKEGOOD_DATABASE_URL) is set, else the data folder's file."""
    if database:
        from makegood.api.replay_store_pg import PgReplayGuard

        return PgReplayGuard(database, ttl_s)
    return ReplayGuard.in_folder(data_dir, ttl_s)
