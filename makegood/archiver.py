"""Archiving closed cases, and reading them back once Temporal no longer has them.

A closed case's complete history cannot be exported from inside itself, so the worker process
runs an `Archiver` beside the worker: every `every` seconds it takes the closed cases the case
index lists as not archived yet (`CaseIndex.to_archive`, at most `batch` a sweep), writes each
one's histories (every run, and its call-back's) in the export format with its manifest to the
archive store under `cases/<case id>/`, with the case's final status (the status query the
closed case answers) encoded by the payload codec, so personal data stays encrypted at rest,
and records the key in the index. The manifest is written last: an archive without one is
incomplete and is written again. Everything it writes is idempotent, so a sweep that stopped
half-way (a restart, an unreachable bucket) is simply done again by the next one.

`status`, `timeline`, `replay` and S2 read an archived case back with `find_archived`.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime

import structlog
from temporalio.api.common.v1 import Payload
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHistory
from temporalio.common import SearchAttributeKey
from temporalio.converter import DataConverter
from temporalio.service import RPCError, RPCStatusCode

from makegood import visibility
from makegood.adapters.blobs import BlobMissing, BlobStore, BlobStoreError, check_key
from makegood.audit.archive import FORMAT, MANIFEST, Manifest, checked_history, file_name
from makegood.audit.archive import history_file as _history_file
from makegood.audit.server import case_histories
from makegood.domain import contract, ids
from makegood.domain.case import CaseStatus
from makegood.domain.indexed import IndexedCase
from makegood.index import CaseIndex

log = structlog.get_logger("makegood.archiver")
PREFIX = "cases"
STATUS = "status.payload"


def archive_key(case_id: str, writer: str | None = None) -> str:
    """Where one writing of a case's archive goes: a folder of its own per writing, so two
    workers archiving the same case at once never mix their files (the index records one)."""
    return check_key(f"{PREFIX}/{file_name(case_id)}/{writer or uuid.uuid4().hex[:12]}")


class NotClosed(Exception):
    """The case (or its call-back) is still running: archived by a later sweep."""


class CaseGone(Exception):
    """Temporal no longer has the case: it can no longer be archived."""


def _closed_at(history: WorkflowHistory) -> datetime:
    return history.events[-1].event_time.ToDatetime(tzinfo=UTC)


async def archive_case(client: Client, store: BlobStore, case_id: str) -> str:
    """Write the closed case's archive; its key. NotClosed or CaseGone when it cannot be."""
    found = await case_histories(client, case_id)
    if not found:
        raise CaseGone(case_id)
    runs: dict[str, list[WorkflowHistory]] = defaultdict(list)
    for history in found:
        runs[history.workflow_id].append(history)
    key = archive_key(case_id)
    manifest = Manifest(written_at=datetime.now(UTC))
    for workflow_id, histories in runs.items():
        described = await client.get_workflow_handle(workflow_id).describe()
        if described.status in (None, WorkflowExecutionStatus.RUNNING):
            raise NotClosed(workflow_id)
        for n, history in enumerate(histories, 1):
            last = n == len(histories)
            name = file_name(workflow_id, None if last else history.run_id)
            text, entry = _history_file(
                name,
                history,
                status=described.status.name.lower() if last else "continued_as_new",
                closed_at=(described.close_time if last else None) or _closed_at(history),
            )
            await store.put(f"{key}/{entry.file}", text.encode(), "application/json")
            manifest.entries.append(entry)
    # The closed case still answers its status query (a worker replays it): kept encrypted.
    from makegood.cases import case_status

    status = await case_status(client, case_id)
    (payload,) = await client.data_converter.encode([status])
    await store.put(f"{key}/{STATUS}", payload.SerializeToString(), "application/octet-stream")
    manifest.entries.sort(key=lambda e: e.file)
    await store.put(
        f"{key}/{MANIFEST}", manifest.model_dump_json(indent=2).encode(), "application/json"
    )
    return key


@dataclass
class Archived:
    """A case read back from the archive."""

    row: IndexedCase
    store: BlobStore
    key: str

    @property
    def note(self) -> str:
        """What `status`, `timeline` and `replay` say about where the case came from."""
        return f"from the archive, {self.row.closed_words()}"

    async def manifest(self) -> Manifest:
        manifest = Manifest.model_validate_json(await self.store.get(f"{self.key}/{MANIFEST}"))
        if manifest.format != FORMAT:
            raise ValueError(f"{self.key}: unknown format {manifest.format!r}, expected {FORMAT}")
        return manifest

    async def histories(self) -> list[WorkflowHistory]:
        """Every history in the archive, checked against the manifest: the case's runs first
        to last, then its call-back's."""
        found = []
        for entry in (await self.manifest()).entries:
            text = (await self.store.get(f"{self.key}/{check_key(entry.file)}")).decode()
            found.append(checked_history(entry, text, f"{self.store.where}/{self.key}"))
        found.sort(
            key=lambda h: (ids.is_callback(h.workflow_id), h.events[0].event_time.ToDatetime())
        )
        return found

    async def status(self, converter: DataConverter) -> CaseStatus:
        raw = await self.store.get(f"{self.key}/{STATUS}")
        (status,) = await converter.decode([Payload.FromString(raw)], [CaseStatus])
        assert isinstance(status, CaseStatus)
        return status


async def find_archived(index: CaseIndex, store: BlobStore, case_id: str) -> Archived | None:
    """The case's archive, if the index says it has one."""
    row = await index.get(case_id)
    if row is None or row.archive_key is None:
        return None
    return Archived(row, store, row.archive_key)


@dataclass
class Sweep:
    archived: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)  # not closed yet
    lost: list[str] = field(default_factory=list)  # gone from Temporal before archiving
    failed: list[str] = field(default_factory=list)  # tried again next sweep


@dataclass
class Archiver:
    client: Client
    index: CaseIndex
    store: BlobStore
    every: float = 60.0
    batch: int = 20

    async def sweep(self) -> Sweep:
        done = Sweep()
        for row in await self.index.to_archive(self.batch):
            case_id = row.case_id
            try:
                key = await archive_case(self.client, self.store, case_id)
            except NotClosed:
                done.waiting.append(case_id)
                continue
            except CaseGone:
                note = "Temporal no longer had the case when it was to be archived"
                await self.index.give_up(case_id, note)
                log.warning("case_not_archived", case_id=case_id, reason=note)
                done.lost.append(case_id)
                continue
            except (RPCError, BlobStoreError, BlobMissing) as err:
                log.warning("archive_failed", case_id=case_id, error=str(err)[:300])
                done.failed.append(case_id)
                continue
            except Exception as err:  # a status query that fails, an unreadable history
                log.warning("archive_failed", case_id=case_id, error=type(err).__name__)
                done.failed.append(case_id)
                continue
            await self.index.archived(case_id, key, datetime.now(UTC))
            log.info("case_archived", case_id=case_id, store=self.store.where, key=key)
            done.archived.append(case_id)
        return done

    async def run(self, stop: asyncio.Event) -> None:
        """Sweep until `stop`; a full batch is followed at once by the next sweep."""
        log.info("archiver_started", store=self.store.where, index=self.index.where)
        while not stop.is_set():
            full = False
            try:
                swept = await self.sweep()
                full = len(swept.archived) + len(swept.failed) >= self.batch
            except Exception:
                log.exception("archive_sweep_failed")
            if not full:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.every)


CUSTOMER = SearchAttributeKey.for_keyword(contract.SA_CUSTOMER)
ASSET = SearchAttributeKey.for_keyword(contract.SA_ASSET)


async def backfill(client: Client, index: CaseIndex, *, limit: int = 10_000) -> int:
    """Index the closed cases visibility still lists and the index does not know (closed
    before the index existed, or whose close write gave up); how many were added."""
    query = (
        f"{visibility.equals('WorkflowType', contract.RECOVERY_WORKFLOW)} "
        'AND ExecutionStatus != "Running" AND ExecutionStatus != "ContinuedAsNew"'
    )
    added = 0
    try:
        async for wf in client.list_workflows(query, limit=limit):
            if await index.get(wf.id) is not None or wf.start_time is None:
                continue
            attrs = wf.typed_search_attributes
            memo = await wf.memo()
            await index.record_closed(
                IndexedCase(
                    case_id=wf.id,
                    ticket_id=wf.id.removeprefix(ids.CASE_PREFIX),
                    kind=str(memo.get("kind", "unknown")),
                    customer=attrs.get(CUSTOMER) or "",
                    asset=attrs.get(ASSET) or "",
                    opened_at=wf.start_time,
                    closed_at=wf.close_time or wf.start_time,
                    resolution=memo.get("resolution"),
                )
            )
            added += 1
    except RPCError as err:
        if err.status != RPCStatusCode.UNIMPLEMENTED:
            raise
    return added
