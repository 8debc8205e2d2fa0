"""The receipt index in PostgreSQL (MAKEGOOD_DATABASE_URL): the same rows, answers and
idempotency per (case, claim) as the SQLite `ReceiptIndex`, and the same async interface.

Opened per operation like the SQLite one (a claim is rare; nothing to close, any event loop).
Each registration is one transaction holding an advisory lock on the customer pseudonym: every
question a registration asks is about that customer's earlier claims, so two workers
registering claims of one customer at once serialise instead of both finding "no earlier
claim", and other customers' claims do not wait.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from makegood import pg
from makegood.adapters.receipt_index import LAST, amount_text, description_hash
from makegood.domain.money import Money
from makegood.domain.receipts import (
    NEAR_WINDOW,
    ClaimRegistration,
    EarlierClaim,
    ReceiptFindings,
)

if TYPE_CHECKING:
    import asyncpg

SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS claims (
    seq BIGSERIAL PRIMARY KEY,
    case_id TEXT NOT NULL,
    claim_id TEXT NOT NULL,
    customer TEXT NOT NULL,
    sha256 TEXT,
    amount TEXT NOT NULL,
    currency TEXT NOT NULL,
    description TEXT NOT NULL,
    at TIMESTAMPTZ NOT NULL,
    state TEXT NOT NULL,
    UNIQUE (case_id, claim_id));
CREATE INDEX IF NOT EXISTS claims_by_receipt ON claims (customer, sha256);
CREATE INDEX IF NOT EXISTS claims_by_amount ON claims (customer, amount, currency, description);
"""


class PgReceiptIndex:
    def __init__(self, url: str) -> None:
        self.url = url
        self._ready = False

    async def _connect(self) -> asyncpg.Connection:
        conn = await pg.connect(self.url)
        if not self._ready:
            try:
                await pg.ensure_schema(conn, SCHEMA)
            except BaseException:
                await conn.close()
                raise
            self._ready = True
        return conn

    async def register(self, req: ClaimRegistration, *, uploaded: bool = True) -> ReceiptFindings:
        """Record the claim (unless refused or its receipt was never uploaded) and say what
        was there before it."""
        conn = await self._connect()
        try:
            async with conn.transaction():
                await conn.execute(
                    "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                    f"makegood:claims:{req.customer}",
                )
                return await self._register(conn, req, uploaded)
        finally:
            await conn.close()

    async def _register(
        self, conn: asyncpg.Connection, req: ClaimRegistration, uploaded: bool
    ) -> ReceiptFindings:
        own = await conn.fetchval(
            "SELECT seq FROM claims WHERE case_id = $1 AND claim_id = $2",
            req.case_id,
            req.claim_id,
        )
        before = own if own is not None else LAST  # earlier rows only, on a retry
        same = await self._same_receipt(conn, req, before)
        near = await self._near(conn, req, before)
        if own is not None:
            return ReceiptFindings(same_receipt=same, near=near)
        refused = bool(same) and req.duplicates == "refuse"
        if not uploaded or refused:
            return ReceiptFindings(
                uploaded=uploaded, registered=False, same_receipt=same, near=near
            )
        await conn.execute(
            "INSERT INTO claims (case_id, claim_id, customer, sha256, amount, currency, "
            "description, at, state) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            req.case_id,
            req.claim_id,
            req.customer,
            req.receipt_sha256,
            amount_text(req.amount),
            req.amount.currency,
            description_hash(req.description),
            req.at,
            "held" if same else "accepted",
        )
        return ReceiptFindings(same_receipt=same, near=near)

    @staticmethod
    async def _same_receipt(
        conn: asyncpg.Connection, req: ClaimRegistration, before: int
    ) -> list[EarlierClaim]:
        if req.receipt_sha256 is None:
            return []
        rows = await conn.fetch(
            "SELECT * FROM claims WHERE customer = $1 AND sha256 = $2 AND seq < $3 ORDER BY seq",
            req.customer,
            req.receipt_sha256,
            before,
        )
        return [_earlier(row) for row in rows]

    @staticmethod
    async def _near(
        conn: asyncpg.Connection, req: ClaimRegistration, before: int
    ) -> list[EarlierClaim]:
        """Same customer, amount and description within a day, on another (or no) receipt."""
        rows = await conn.fetch(
            "SELECT * FROM claims WHERE customer = $1 AND amount = $2 AND currency = $3 "
            "AND description = $4 AND seq < $5 ORDER BY seq",
            req.customer,
            amount_text(req.amount),
            req.amount.currency,
            description_hash(req.description),
            before,
        )
        return [
            _earlier(row)
            for row in rows
            if (row["sha256"] is None or row["sha256"] != req.receipt_sha256)
            and abs(row["at"] - req.at) <= NEAR_WINDOW
        ]

    async def claims_of(self, customer: str) -> list[dict[str, Any]]:
        """Every row of one customer pseudonym, oldest first (for tests and operators); `at`
        as ISO text, as the SQLite index gives it."""
        conn = await self._connect()
        try:
            rows = await conn.fetch(
                "SELECT * FROM claims WHERE customer = $1 ORDER BY seq", customer
            )
        finally:
            await conn.close()
        return [{**dict(row), "at": row["at"].isoformat()} for row in rows]


def _earlier(row: Any) -> EarlierClaim:
    at: datetime = row["at"]
    return EarlierClaim(
        case_id=row["case_id"],
        claim_id=row["claim_id"],
        amount=Money.model_validate({"amount": row["amount"], "currency": row["currency"]}),
        at=at,
    )
