"""The case index (SQLite and PostgreSQL) and reading an archive back: idempotent writes,
look-ups by ticket and by pseudonym, what the archiver still has to do, and an archive checked
against its manifest. The whole path on a real server is tests/test_archive.py."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError
from temporalio.client import WorkflowHistory

from makegood.adapters.blobs import FolderStore
from makegood.archiver import Archived, archive_key
from makegood.audit.archive import MANIFEST, Manifest, history_file
from makegood.domain.indexed import IndexedCase
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
