"""The case index (SQLite and PostgreSQL) and reading an archive back: idempotent writes,
look-ups by ticket and by pseudonym, what the archiver still has to do, and an archive checked
against its manifest. The whole path on a real server is tests/test_archive.py."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import ValidationError
from temporalio.client import WorkflowHistory

from makegood.adapters.blobs import FolderStore
from makegood.archiver import Archived, archive_key
from makegood.audit.archive import MANIFEST, Manifest, history_file
from makegood.domain.case import CaseOutcome
from makegood.domain.indexed import IndexedCase
from makegood.domain.money import Money
from makegood.index import CaseIndex, IndexConfigError, index_path, opened_index
from makegood.index_pg import PgCaseIndex
from makegood.settings import Settings
from tests import postgres
from tests.harness import HISTORIES
from tests.postgres import Cluster, pg_cluster, pg_url  # noqa: F401

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def row(n: int, **changes: object) -> IndexedCase:
    base = IndexedCase(
        case_id=f"case-T-{n}",
        ticket_id=f"T-{n}",
        kind="warranty_fault",
        customer=f"cust-{n % 2}",
        asset=f"asset-{n}",
        opened_at=T0 + timedelta(days=n),
    )
    return base.model_copy(update=changes)


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest) -> str:
    """MAKEGOOD_DATABASE_URL: unset (the SQLite file), or a fresh PostgreSQL database."""
    return "" if request.param == "sqlite" else str(request.getfixturevalue("pg_url"))


@pytest.fixture
async def index(tmp_path: Path, database: str) -> AsyncIterator[CaseIndex]:
    async with opened_index("", default=tmp_path / "cases.sqlite", database=database) as idx:
        assert idx.where.startswith("postgresql" if database else "sqlite"), idx.where
        yield idx


async def test_writes_are_idempotent_and_a_close_completes_or_adds_the_row(
    index: CaseIndex,
) -> None:
    await index.record_opened(row(1))
    await index.record_opened(row(1, kind="changed"))  # a retried activity: the first stays
    assert (await index.get("case-T-1")) == row(1)
    closed = row(1, closed_at=T0 + timedelta(days=3), resolution="resolved")
    await index.record_closed(closed)
    await index.record_closed(closed)
    assert (await index.get("case-T-1")) == closed
    # A case opened before the index existed is indexed as it closes.
    await index.record_closed(row(2, closed_at=T0, resolution="cancelled"))
    found = await index.by_ticket("T-2")
    assert found is not None and found.resolution == "cancelled"
    assert await index.by_ticket("T-404") is None


async def test_related_cases_by_customer_or_asset_pseudonym_newest_first(
    index: CaseIndex,
) -> None:
    for n in range(1, 6):
        await index.record_opened(row(n))
    related = await index.related(["cust-1"], ["asset-4"], 10)
    assert [r.case_id for r in related] == ["case-T-5", "case-T-4", "case-T-3", "case-T-1"]
    assert len(await index.related(["cust-1"], [], 2)) == 2
    assert await index.related([], [], 10) == []


async def test_what_the_archiver_still_has_to_do(index: CaseIndex) -> None:
    await index.record_opened(row(1))  # still open: nothing to archive
    for n in (2, 3, 4):
        await index.record_closed(row(n, closed_at=T0 + timedelta(days=10 - n)))
    assert [r.case_id for r in await index.to_archive(10)] == ["case-T-4", "case-T-3", "case-T-2"]
    await index.archived("case-T-4", "cases/case-T-4", T0)
    await index.give_up("case-T-3", "gone")
    assert [r.case_id for r in await index.to_archive(10)] == ["case-T-2"]
    archived = await index.get("case-T-4")
    assert archived is not None and archived.archive_key == "cases/case-T-4"


async def test_the_setting_names_a_sqlite_file_and_postgresql_is_the_database_url(
    tmp_path: Path,
) -> None:
    default = tmp_path / "cases.sqlite"
    assert index_path("", default=default) == default
    assert index_path(f"sqlite://{tmp_path}/x.db", default=default) == tmp_path / "x.db"
    assert index_path("rel/x.db", default=default) == Path("rel/x.db")
    with pytest.raises(IndexConfigError, match="MAKEGOOD_DATABASE_URL names the database"):
        index_path("postgresql://db/makegood", default=default)
    with pytest.raises(IndexConfigError):
        index_path("mysql://db/x", default=default)
    with pytest.raises(IndexConfigError, match="both set"):
        async with opened_index("x.db", default=default, database="postgresql://db/x"):
            pass
    with pytest.raises(ValidationError, match="expected postgresql://"):
        Settings(database_url="mysql://db/x")
    # A password in the URL is a secret the logs never show.
    assert "p@ss" in Settings(database_url="postgresql://u:p%40ss@db/x").secret_values()


async def test_several_processes_opening_a_new_postgresql_index_at_once(
    pg_cluster: Cluster,  # noqa: F811
) -> None:
    """Each creates the tables on first use; without the schema lock, concurrent CREATE TABLE
    IF NOT EXISTS fails in one of them (a duplicate key in PostgreSQL's catalogue)."""
    for _ in range(10):
        url = pg_cluster.url(await pg_cluster.create_database())
        indexes = [PgCaseIndex(url) for _ in range(6)]
        try:
            await asyncio.gather(*(i.open() for i in indexes))
            await asyncio.gather(*(i.record_opened(row(1)) for i in indexes))
            assert await indexes[0].related(["cust-1"], [], 10) == [row(1)]
        finally:
            await asyncio.gather(*(i.close() for i in indexes))


async def test_an_archive_reads_back_checked_against_its_manifest(tmp_path: Path) -> None:
    data = json.loads((HISTORIES / "s5.json").read_text())
    history = WorkflowHistory.from_json("case-T-3001", data)
    store = FolderStore(tmp_path / "archive")
    key = archive_key(history.workflow_id)
    text, entry = history_file("case-T-3001", history, status="completed", closed_at=T0)
    await store.put(f"{key}/{entry.file}", text.encode(), "application/json")
    manifest = Manifest(written_at=T0, entries=[entry])
    await store.put(f"{key}/{MANIFEST}", manifest.model_dump_json().encode(), "application/json")
    indexed = row(3001, closed_at=T0, resolution="resolved", archive_key=key)
    archived = Archived(indexed, store, key)
    (back,) = await archived.histories()
    assert back.workflow_id == "case-T-3001" and len(back.events) == len(history.events)
    assert archived.note == "from the archive, closed 2026-01-05 09:00 UTC, resolved"
    # The folder is an export folder: `makegood timeline --dir` reads it as it is.
    assert (tmp_path / "archive" / key / MANIFEST).is_file()
    await store.put(f"{key}/{entry.file}", (text + "\n").encode(), "x")
    with pytest.raises(ValueError, match="checksum does not match"):
        await archived.histories()


def test_without_postgresqls_binaries_the_fixture_fails_and_never_skips(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(postgres.shutil, "which", lambda name: None)
    monkeypatch.setattr(postgres.glob, "glob", lambda pattern: [])
    with pytest.raises(pytest.fail.Exception, match=r"apt-get install postgresql"):
        postgres.bin_dir()


def test_two_writings_of_one_archive_never_share_a_folder() -> None:
    """Two workers archiving the same closed case at once each write a folder of their own;
    the index records one, and its files are all from one writing."""
    first, second = archive_key("case-T-3001"), archive_key("case-T-3001")
    assert first != second
    assert first.rsplit("/", 1)[0] == second.rsplit("/", 1)[0] == "cases/case-T-3001"


def outcome_of(closed: IndexedCase) -> CaseOutcome:
    assert closed.closed_at is not None
    return CaseOutcome(
        case_id=closed.case_id,
        kind=closed.kind,
        cause="screen failed in warranty",
        resolution="resolved",
        remedy_attempts=2,
        remedy_succeeded=True,
        paid_out=Money(amount=Decimal("42.00"), currency="USD"),
        goodwill=Money(amount=Decimal("10.00"), currency="USD"),
        escalations=1,
        reopened=0,
        approval_needed=True,
        opened_at=closed.opened_at,
        first_contact_at=closed.opened_at + timedelta(seconds=2),
        closed_at=closed.closed_at,
        seconds_to_first_contact=2.0,
        seconds_to_close=(closed.closed_at - closed.opened_at).total_seconds(),
        remedy="succeeded",
        satisfaction="satisfied",
    )


async def test_a_closed_case_keeps_its_outcome_and_is_found_by_when_it_closed(
    index: CaseIndex,
) -> None:
    for n in (1, 2, 3):
        closed = row(n, closed_at=T0 + timedelta(days=n, hours=5), resolution="resolved")
        await index.record_opened(row(n))
        await index.record_closed(closed.model_copy(update={"outcome": outcome_of(closed)}))
    await index.record_opened(row(4))  # still open: no outcome, never in a period
    found = await index.get("case-T-2")
    assert found is not None and found.outcome is not None
    assert found.outcome.paid_out == Money(amount=Decimal("42.00"), currency="USD")
    assert found.outcome.satisfaction == "satisfied" and found.outcome.remedy_attempts == 2
    assert found.outcome.cause == ""  # the ticket's own words stay out of the index
    assert (await index.get("case-T-4")).outcome is None  # type: ignore[union-attr]
    period = await index.closed_between(T0 + timedelta(days=2), T0 + timedelta(days=3, hours=5))
    assert [c.case_id for c in period] == ["case-T-2"]  # from the start, up to the end
    everything = await index.closed_between(T0, T0 + timedelta(days=30))
    assert [c.case_id for c in everything] == ["case-T-1", "case-T-2", "case-T-3"]


async def test_an_index_file_from_before_outcomes_gains_the_column_and_keeps_its_rows(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:  # the table as the first schema made it
        db.execute(
            "CREATE TABLE cases (case_id TEXT PRIMARY KEY, ticket_id TEXT NOT NULL, "
            "kind TEXT NOT NULL, customer TEXT NOT NULL, asset TEXT NOT NULL, "
            "opened_at TEXT NOT NULL, closed_at TEXT, resolution TEXT, archive_key TEXT, "
            "archived_at TEXT, archive_note TEXT)"
        )
        db.execute(
            "INSERT INTO cases (case_id, ticket_id, kind, customer, asset, opened_at) "
            "VALUES ('case-T-9', 'T-9', 'wrong_order', 'cust-1', 'asset-9', "
            "'2026-01-05T09:00:00Z')"
        )
    async with opened_index("", default=path, database="") as idx:
        old = await idx.get("case-T-9")
        assert old is not None and old.outcome is None
        closed = old.model_copy(update={"closed_at": T0 + timedelta(hours=1)})
        await idx.record_closed(closed.model_copy(update={"outcome": outcome_of(closed)}))
        found = await idx.get("case-T-9")
        kept = outcome_of(closed).model_copy(update={"cause": ""})
        assert found is not None and found.outcome == kept
    async with opened_index("", default=path, database="") as again:  # opened a second time
        assert (await again.get("case-T-9")) == found


async def test_a_number_awaits_a_reply_to_the_newest_sms_question_sent_to_it(
    index: CaseIndex,
) -> None:
    t0 = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
    assert await index.awaiting_reply("contact-a") is None
    await index.expect_reply("contact-a", "case-T-1", "locate-1", t0)
    await index.expect_reply("contact-b", "case-T-2", "pickup-1", t0)
    await index.expect_reply("contact-a", "case-T-1", "locate-2", t0 + timedelta(minutes=1))
    # A retried write of the older question never takes the number back from the newer one.
    await index.expect_reply("contact-a", "case-T-1", "locate-1", t0)
    assert await index.awaiting_reply("contact-a") == ("case-T-1", "locate-2")
    assert await index.awaiting_reply("contact-b") == ("case-T-2", "pickup-1")
