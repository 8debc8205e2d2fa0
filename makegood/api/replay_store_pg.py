"""The webhook replay guard in PostgreSQL (MAKEGOOD_DATABASE_URL), shared by API replicas on
any host: the same claim / done / release steps and lifetimes as the SQLite guard in
`makegood.api.replay_store`, each one short transaction on a connection of its own.

Of two concurrent claims of one id, PostgreSQL makes the second INSERT ... ON CONFLICT wait
for the first transaction: it then finds the row (refused) or, if the first rolled back,
inserts its own. So exactly one claim wins without a table lock.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Final

from makegood import pg
from makegood.api.replay_store import (
    LEASE_S,
    Claim,
    DeliveryGuard,
    GuardUnavailable,
    Replayed,
    State,
)

if TYPE_CHECKING:
    import asyncpg

SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS deliveries (
    key TEXT PRIMARY KEY,
    state TEXT NOT NULL CHECK (state IN ('pending', 'done')),
    claim TEXT NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL);
CREATE INDEX IF NOT EXISTS deliveries_expiry ON deliveries (expires_at);
"""


class PgReplayGuard(DeliveryGuard):
    """Delivery ids in the `deliveries` table of the Makegood database."""

    def __init__(
        self,
        url: str,
        ttl_s: float,
        *,
        lease_s: float = LEASE_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(ttl_s, lease_s=lease_s, clock=clock)
        self.url = url

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[asyncpg.Connection]:
        try:
            conn = await pg.connect(self.url)
        except pg.errors() as err:
            raise self._unavailable(err) from err
        try:
            if not self._ready:
                await pg.ensure_schema(conn, SCHEMA)
                self._ready = True
            async with conn.transaction():
                yield conn
        except pg.errors() as err:
            raise self._unavailable(err) from err
        finally:
            await conn.close()

    def _unavailable(self, err: BaseException) -> GuardUnavailable:
        return GuardUnavailable(
            f"the webhook replay store {pg.where(self.url)} failed: {type(err).__name__}: {err}"
        )

    async def claim(self, key: str, signed_at: float) -> Claim:
        now, token = self.clock(), uuid.uuid4().hex
        async with self._transaction() as conn:
            await conn.execute("DELETE FROM deliveries WHERE expires_at <= $1", now)
            taken = await conn.fetchval(
                "INSERT INTO deliveries (key, state, claim, expires_at)"
                " VALUES ($1, 'pending', $2, $3) ON CONFLICT (key) DO NOTHING RETURNING key",
                key,
                token,
                now + self.lease_s,
            )
            if taken is None:
                state = await conn.fetchval("SELECT state FROM deliveries WHERE key = $1", key)
                raise Replayed("done" if state is None else state)
        return Claim(key, token, signed_at)

    async def done(self, claim: Claim) -> None:
        expires = self._expiry(claim)
        async with self._transaction() as conn:
            await conn.execute(
                "UPDATE deliveries SET state = 'done', expires_at = $1 "
                "WHERE key = $2 AND claim = $3",
                expires,
                claim.key,
                claim.token,
            )

    async def release(self, claim: Claim) -> None:
        async with self._transaction() as conn:
            await conn.execute(
                "DELETE FROM deliveries WHERE key = $1 AND claim = $2 AND state = 'pending'",
                claim.key,
                claim.token,
            )

    async def rows(self) -> list[tuple[str, State, float]]:
        async with self._transaction() as conn:
            found = await conn.fetch("SELECT key, state, expires_at FROM deliveries ORDER BY key")
        return [(r["key"], r["state"], r["expires_at"]) for r in found]
