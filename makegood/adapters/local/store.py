"""One SQLite file holding what the local providers did, keyed by idempotency key.

Each provider call runs in one transaction that both applies its effect and records the
key with the request's fingerprint and the result. A repeated key returns the recorded
result and applies nothing; a key reused for a different request is refused, as Stripe does.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite
from pydantic import BaseModel

from makegood.adapters.base import PermanentProviderError
from makegood.domain.ids import case_of

R = TypeVar("R", bound=BaseModel)

SCHEMA = """
CREATE TABLE IF NOT EXISTS idempotency (
    key TEXT PRIMARY KEY, operation TEXT NOT NULL, case_id TEXT NOT NULL,
    fingerprint TEXT NOT NULL, result TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS messages (
    id TEXT PRIMARY KEY, key TEXT UNIQUE NOT NULL, case_id TEXT NOT NULL, channel TEXT NOT NULL,
    recipient TEXT NOT NULL, subject TEXT NOT NULL, body TEXT NOT NULL, sent_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS payments (
    id TEXT PRIMARY KEY, key TEXT UNIQUE NOT NULL, case_id TEXT NOT NULL, kind TEXT NOT NULL,
    amount TEXT NOT NULL, currency TEXT NOT NULL, customer_id TEXT NOT NULL,
    reference TEXT NOT NULL, memo TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS product_actions (
    id TEXT PRIMARY KEY, key TEXT UNIQUE NOT NULL, case_id TEXT NOT NULL, action TEXT NOT NULL,
    target TEXT NOT NULL, detail TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS vehicles (
    id TEXT PRIMARY KEY, class TEXT NOT NULL, class_rank INTEGER NOT NULL,
    location TEXT NOT NULL, available INTEGER NOT NULL DEFAULT 1);
CREATE TABLE IF NOT EXISTS bookings (
    id TEXT PRIMARY KEY, vehicle TEXT, customer_id TEXT, case_id TEXT, status TEXT NOT NULL,
    created_at TEXT NOT NULL, released_at TEXT);
CREATE TABLE IF NOT EXISTS stock (
    sku TEXT PRIMARY KEY, quantity INTEGER NOT NULL, price TEXT NOT NULL, currency TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS models (
    sku TEXT PRIMARY KEY, family TEXT NOT NULL, class_rank INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS perks (
    customer_id TEXT NOT NULL, perk TEXT NOT NULL, granted_at TEXT NOT NULL,
    PRIMARY KEY (customer_id, perk));
CREATE TABLE IF NOT EXISTS calls (
    id TEXT PRIMARY KEY, key TEXT UNIQUE NOT NULL, case_id TEXT NOT NULL,
    phone TEXT NOT NULL, due_at TEXT NOT NULL, reason TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS registrations (
    kind TEXT NOT NULL, ref TEXT NOT NULL, customer_id TEXT NOT NULL, registered_at TEXT NOT NULL,
    PRIMARY KEY (kind, ref));
CREATE TABLE IF NOT EXISTS outcomes (
    case_id TEXT PRIMARY KEY, outcome TEXT NOT NULL, recorded_at TEXT NOT NULL);
"""


def now() -> str:
    return datetime.now(UTC).isoformat()


def short_id(prefix: str, key: str) -> str:
    return f"{prefix}_{hashlib.sha256(key.encode()).hexdigest()[:16]}"


class LocalStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()

    async def open(self) -> LocalStore:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = await aiosqlite.connect(self.path, isolation_level=None)
        conn.row_factory = aiosqlite.Row
        await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute("PRAGMA busy_timeout=10000")
        await conn.executescript(SCHEMA)
        self._conn = conn
        return self

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    @property
    def conn(self) -> aiosqlite.Connection:
        if self._conn is None:
            raise RuntimeError("LocalStore is not open: call await store.open() first")
        return self._conn

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._lock:
            await self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                await self.conn.execute("ROLLBACK")
                raise
            await self.conn.execute("COMMIT")

    async def once(
        self,
        key: str,
        operation: str,
        request: BaseModel,
        result_type: type[R],
        effect: Callable[[aiosqlite.Connection], Awaitable[R]],
    ) -> R:
        fingerprint = hashlib.sha256(
            f"{operation}\n{request.model_dump_json(exclude={'step'})}".encode()
        ).hexdigest()
        async with self.transaction() as conn:
            cur = await conn.execute(
                "SELECT operation, fingerprint, result FROM idempotency WHERE key = ?", (key,)
            )
            row = await cur.fetchone()
            if row is not None:
                if row["operation"] != operation or row["fingerprint"] != fingerprint:
                    raise PermanentProviderError(
                        f"idempotency key {key!r} was already used for a different request",
                        code="idempotency_key_reused",
                    )
                return result_type.model_validate_json(row["result"])
            result = await effect(conn)
            await conn.execute(
                "INSERT INTO idempotency VALUES (?, ?, ?, ?, ?, ?)",
                (key, operation, case_of(key), fingerprint, result.model_dump_json(), now()),
            )
            return result

    async def rows(self, sql: str, *params: Any) -> list[dict[str, Any]]:
        # Under the lock: a read left open across an await would pin the snapshot a
        # transaction begun meanwhile on this connection must write from.
        async with self._lock:
            cur = await self.conn.execute(sql, params)
            return [dict(r) for r in await cur.fetchall()]

    async def seed(self, data: dict[str, Any]) -> None:
        """Load vehicles, bookings, stock and registrations (which customer owns an asset or an
        order); rows already there are kept as they are."""
        async with self.transaction() as conn:
            for v in data.get("vehicles", []):
                await conn.execute(
                    "INSERT OR IGNORE INTO vehicles (id, class, class_rank, location, available)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (
                        v["id"],
                        v["class"],
                        int(v["class_rank"]),
                        v["location"],
                        int(v.get("available", True)),
                    ),
                )
            for b in data.get("bookings", []):
                await conn.execute(
                    "INSERT OR IGNORE INTO bookings (id, vehicle, customer_id, status, created_at)"
                    " VALUES (?, ?, ?, 'active', ?)",
                    (b["id"], b["vehicle"], b.get("customer_id"), now()),
                )
            for s in data.get("stock", []):
                await conn.execute(
                    "INSERT OR IGNORE INTO stock VALUES (?, ?, ?, ?)",
                    (s["sku"], int(s["quantity"]), str(s["price"]), s["currency"]),
                )
                if "family" in s:
                    await conn.execute(
                        "INSERT OR IGNORE INTO models VALUES (?, ?, ?)",
                        (s["sku"], s["family"], int(s["class_rank"])),
                    )

            for r in data.get("registrations", []):
                await conn.execute(
                    "INSERT OR IGNORE INTO registrations VALUES (?, ?, ?, ?)",
                    (r["kind"], r["ref"], r["customer_id"], now()),
                )

    async def seed_file(self, path: Path) -> None:
        await self.seed(json.loads(await asyncio.to_thread(path.read_text)))
