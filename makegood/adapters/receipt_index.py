"""The receipt index: every expense claim a case accepted, for finding duplicates across cases.

SQLite (`<data_dir>/receipts.sqlite`), or PostgreSQL when MAKEGOOD_DATABASE_URL is set
(`makegood.adapters.receipt_index_pg`), one row per (case, claim). A row holds the customer's
keyed pseudonym (never a name, an email or the customer id), the receipt file's SHA-256, the
amount and a hash of the normalised description: enough to tell "this receipt was claimed
before" and "this looks like an earlier claim", nothing to read a claim back from.

Registering is idempotent per (case, claim): a retried activity gets the answer the first
attempt got, and never finds its own claim as an earlier one. A claim the playbook refuses
(its receipt was claimed before, `duplicate_receipt = "refuse"`) is not recorded, so the earlier
claim stays the one every later duplicate is told about.
"""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any, Final, Protocol

from makegood.domain.money import Money
from makegood.domain.receipts import (
    NEAR_WINDOW,
    ClaimRegistration,
    EarlierClaim,
    ReceiptFindings,
)

SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS claims (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    case_id TEXT NOT NULL,
    claim_id TEXT NOT NULL,
    customer TEXT NOT NULL,
    sha256 TEXT,
    amount TEXT NOT NULL,
    currency TEXT NOT NULL,
    description TEXT NOT NULL,
    at TEXT NOT NULL,
    state TEXT NOT NULL,
    UNIQUE (case_id, claim_id));
CREATE INDEX IF NOT EXISTS claims_by_receipt ON claims (customer, sha256);
CREATE INDEX IF NOT EXISTS claims_by_amount ON claims (customer, amount, currency, description);
"""


def description_hash(text: str) -> str:
    """Equal for descriptions that differ only in case and spacing; the text is not kept."""
    normal = " ".join(text.casefold().split())
    return hashlib.sha256(f"makegood:claim:{normal}".encode()).hexdigest()


LAST: Final = 2**62  # a sequence number after every row


def amount_text(money: Money) -> str:
    return f"{money.amount.normalize():f}"


class ClaimIndex(Protocol):
    """What the register-claim activity needs of a receipt index, SQLite or PostgreSQL."""

    async def register(
        self, req: ClaimRegistration, *, uploaded: bool = True
    ) -> ReceiptFindings: ...

    async def claims_of(self, customer: str) -> list[dict[str, Any]]: ...


def receipt_index(path: Path, database: str = "") -> ClaimIndex:
    """PostgreSQL when `database` (MAKEGOOD_DATABASE_URL) is set, else the SQLite file."""
    if database:
        from makegood.adapters.receipt_index_pg import PgReceiptIndex

        return PgReceiptIndex(database)
    return ReceiptIndex(path)


class ReceiptIndex:
    """Opened per operation (a claim is rare; nothing to close), in a worker thread. Each
    registration is one IMMEDIATE transaction, so concurrent workers on the same file
    serialise instead of both finding "no earlier claim"."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=10)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(SCHEMA)
        return conn

    async def register(self, req: ClaimRegistration, *, uploaded: bool = True) -> ReceiptFindings:
        """Record the claim (unless refused or its receipt was never uploaded) and say what
        was there before it."""
        return await asyncio.to_thread(self._register_now, req, uploaded)

    def _register_now(self, req: ClaimRegistration, uploaded: bool) -> ReceiptFindings:
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                found = self._register(conn, req, uploaded)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return found
        finally:
            conn.close()

    def _register(
        self, conn: sqlite3.Connection, req: ClaimRegistration, uploaded: bool
    ) -> ReceiptFindings:
        own = conn.execute(
            "SELECT seq FROM claims WHERE case_id = ? AND claim_id = ?", (req.case_id, req.claim_id)
        ).fetchone()
        before = own["seq"] if own is not None else LAST  # earlier rows only, on a retry
        same = self._same_receipt(conn, req, before)
        near = self._near(conn, req, before)
        if own is not None:
            return ReceiptFindings(same_receipt=same, near=near)
        refused = bool(same) and req.duplicates == "refuse"
        if not uploaded or refused:
            return ReceiptFindings(
                uploaded=uploaded, registered=False, same_receipt=same, near=near
            )
        conn.execute(
            "INSERT INTO claims (case_id, claim_id, customer, sha256, amount, currency, "
            "description, at, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                req.case_id,
                req.claim_id,
                req.customer,
                req.receipt_sha256,
                amount_text(req.amount),
                req.amount.currency,
                description_hash(req.description),
                req.at.isoformat(),
                "held" if same else "accepted",
            ),
        )
        return ReceiptFindings(same_receipt=same, near=near)

    @staticmethod
    def _same_receipt(
        conn: sqlite3.Connection, req: ClaimRegistration, before: int
    ) -> list[EarlierClaim]:
        if req.receipt_sha256 is None:
            return []
        rows = conn.execute(
            "SELECT * FROM claims WHERE customer = ? AND sha256 = ? AND seq < ? ORDER BY seq",
            (req.customer, req.receipt_sha256, before),
        ).fetchall()
        return [_earlier(row) for row in rows]

    @staticmethod
    def _near(conn: sqlite3.Connection, req: ClaimRegistration, before: int) -> list[EarlierClaim]:
        """Same customer, amount and description within a day, on another (or no) receipt."""
        rows = conn.execute(
            "SELECT * FROM claims WHERE customer = ? AND amount = ? AND currency = ? "
            "AND description = ? AND seq < ? ORDER BY seq",
            (
                req.customer,
                amount_text(req.amount),
                req.amount.currency,
                description_hash(req.description),
                before,
            ),
        ).fetchall()
        return [
            _earlier(row)
            for row in rows
            if (row["sha256"] is None or row["sha256"] != req.receipt_sha256)
            and abs(datetime.fromisoformat(row["at"]) - req.at) <= NEAR_WINDOW
        ]

    async def claims_of(self, customer: str) -> list[dict[str, Any]]:
        """Every row of one customer pseudonym, oldest first (for tests and operators)."""

        def read() -> list[dict[str, Any]]:
            conn = self._connect()
            try:
                rows = conn.execute(
                    "SELECT * FROM claims WHERE customer = ? ORDER BY seq", (customer,)
                ).fetchall()
                return [dict(row) for row in rows]
            finally:
                conn.close()

        return await asyncio.to_thread(read)


def _earlier(row: sqlite3.Row) -> EarlierClaim:
    return EarlierClaim(
        case_id=row["case_id"],
        claim_id=row["claim_id"],
        amount=Money.model_validate({"amount": row["amount"], "currency": row["currency"]}),
        at=datetime.fromisoformat(row["at"]),
    )
