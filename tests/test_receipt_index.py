"""The receipt index on its own (a real SQLite file, a real PostgreSQL database): duplicates per
customer pseudonym, near duplicates within a day, idempotent registration, concurrent
registrations, and what a receipt file may be."""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from makegood.adapters.receipt_index import ClaimIndex, ReceiptIndex, receipt_index
from makegood.domain.money import Money
from makegood.domain.receipts import ClaimRegistration, blob_key, sniff
from tests.postgres import pg_cluster, pg_url  # noqa: F401

AT = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
R1 = hashlib.sha256(b"receipt one").hexdigest()
R2 = hashlib.sha256(b"receipt two").hexdigest()


def reg(case: str, claim: str, **changes: Any) -> ClaimRegistration:
    fields: dict[str, Any] = {
        "case_id": case,
        "claim_id": claim,
        "customer": "p-cust-1",
        "receipt_sha256": R1,
        "amount": Money.of("18.50", "USD"),
        "description": "Taxi to the second car",
        "at": AT,
        "duplicates": "refuse",
    }
    return ClaimRegistration.model_validate({**fields, **changes})


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest) -> str:
    """MAKEGOOD_DATABASE_URL: unset (the SQLite file), or a fresh PostgreSQL database."""
    return "" if request.param == "sqlite" else str(request.getfixturevalue("pg_url"))


@pytest.fixture
def index(tmp_path: Path, database: str) -> ClaimIndex:
    return receipt_index(tmp_path / "receipts.sqlite", database)


async def test_a_receipt_claimed_again_names_the_first_claim_in_any_case(
    index: ClaimIndex,
) -> None:
    first = await index.register(reg("case-A", "taxi-1", duplicates="hold"))
    assert first.registered and first.same_receipt == [] and first.near == []

    refused = await index.register(reg("case-A", "taxi-2"))
    assert not refused.registered
    assert [(c.case_id, c.claim_id) for c in refused.same_receipt] == [("case-A", "taxi-1")]
    assert refused.same_receipt[0].named() == "taxi-1 in case case-A on 2026-11-23 12:00 UTC"

    held = await index.register(reg("case-B", "taxi-9", duplicates="hold"))
    assert held.registered
    assert [(c.case_id, c.claim_id) for c in held.same_receipt] == [("case-A", "taxi-1")]
    rows = await index.claims_of("p-cust-1")
    # The refused claim is not recorded; the held one is, as held.
    assert [(r["case_id"], r["claim_id"], r["state"]) for r in rows] == [
        ("case-A", "taxi-1", "accepted"),
        ("case-B", "taxi-9", "held"),
    ]


async def test_registering_again_is_idempotent_and_never_finds_itself(index: ClaimIndex) -> None:
    await index.register(reg("case-A", "taxi-1"))
    again = await index.register(reg("case-A", "taxi-1"))  # a retried activity
    assert again.registered and again.same_receipt == [] and again.near == []
    second = await index.register(reg("case-B", "taxi-2", duplicates="hold"))
    retried = await index.register(reg("case-B", "taxi-2", duplicates="hold"))
    assert retried == second  # the same answer, not "a duplicate of itself" on top
    assert len(await index.claims_of("p-cust-1")) == 2


async def test_another_customer_with_the_same_receipt_is_not_this_ones_duplicate(
    index: ClaimIndex,
) -> None:
    await index.register(reg("case-A", "taxi-1"))
    other = await index.register(reg("case-C", "taxi-1", customer="p-cust-2"))
    assert other.registered and other.same_receipt == [] and other.near == []


async def test_near_duplicates_same_amount_and_description_within_a_day(
    index: ClaimIndex,
) -> None:
    await index.register(reg("case-A", "taxi-1"))
    # Another receipt, the same amount, the description differing only in case and spacing.
    near = await index.register(
        reg(
            "case-B",
            "taxi-2",
            receipt_sha256=R2,
            description=" taxi to the  SECOND car",
            at=AT + timedelta(hours=12),
        )
    )
    assert [c.claim_id for c in near.near] == ["taxi-1"] and near.same_receipt == []
    later = await index.register(
        reg("case-C", "taxi-3", receipt_sha256=None, at=AT + timedelta(days=1, minutes=1))
    )
    assert [c.claim_id for c in later.near] == ["taxi-2"]  # taxi-1 is more than a day before
    other = await index.register(
        reg("case-D", "taxi-4", receipt_sha256=None, amount=Money.of("18.51", "USD"))
    )
    assert other.near == []


async def test_a_receipt_never_uploaded_is_not_recorded(index: ClaimIndex) -> None:
    found = await index.register(reg("case-A", "taxi-1"), uploaded=False)
    assert not found.uploaded and not found.registered
    assert await index.claims_of("p-cust-1") == []


async def test_the_index_keeps_no_description_or_customer_id_in_clear(
    index: ClaimIndex, database: str
) -> None:
    await index.register(reg("case-A", "taxi-1"))
    if isinstance(index, ReceiptIndex):
        with sqlite3.connect(index.path) as conn:
            dump = "\n".join(conn.iterdump())
    else:
        conn = await asyncpg.connect(database)
        try:
            dump = "\n".join(str(dict(r)) for r in await conn.fetch("SELECT * FROM claims"))
        finally:
            await conn.close()
    assert "p-cust-1" in dump  # the pseudonym the case sent (the only customer field)
    assert "Taxi" not in dump and "second car" not in dump


async def test_concurrent_registrations_of_one_receipt_record_one_and_name_it(
    tmp_path: Path, database: str
) -> None:
    """Workers on other connections (threads for SQLite, connections for PostgreSQL) register
    the same receipt in several cases at once: one is accepted, every other is refused naming
    it, none finds "no earlier claim"."""
    indexes = [receipt_index(tmp_path / "receipts.sqlite", database) for _ in range(8)]
    found = await asyncio.gather(
        *(ix.register(reg(f"case-{n}", "taxi")) for n, ix in enumerate(indexes))
    )
    accepted = [f for f in found if f.registered]
    assert len(accepted) == 1, found
    (first,) = await indexes[0].claims_of("p-cust-1")
    refused = [f for f in found if not f.registered]
    assert all(
        [(c.case_id, c.claim_id) for c in f.same_receipt] == [(first["case_id"], "taxi")]
        for f in refused
    ), refused


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (b"%PDF-1.7\n", "application/pdf"),
        (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", "image/png"),
        (b"\xff\xd8\xff\xe0\0\x10JFIF", "image/jpeg"),
        (b"RIFF\x24\0\0\0WEBPVP8 ", "image/webp"),
        (b"\0\0\0\x18ftypheic\0\0\0\0", "image/heic"),
        (b"GIF89a", None),
        (b"<html>%PDF-", None),
        (b"PK\x03\x04", None),
        (b"", None),
    ],
)
def test_a_receipt_file_is_told_by_its_first_bytes(head: bytes, kind: str | None) -> None:
    assert sniff(head + b"rest of the file") == kind if head else sniff(head) is None


def test_receipts_are_stored_content_addressed() -> None:
    assert blob_key(R1) == f"sha256/{R1[:2]}/{R1}"
