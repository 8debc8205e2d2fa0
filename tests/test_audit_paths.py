"""Audit paths: an export never writes outside its folder whatever a workflow id says, and
reads back under the same names; visibility queries take checked values only, so a case id
cannot widen the query it is put into.

A workflow id is any string its starter chose, so the cases here are started on a real dev
server with ids no ticket could give (`../../escaped-…`), then finished by a real worker.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowHistory
from temporalio.testing import WorkflowEnvironment

from makegood.audit.archive import (
    MANIFEST,
    Manifest,
    UnsafePath,
    file_name,
    inside,
    read_folder,
    workflow_id_of,
    write_history,
)
from makegood.audit.server import export_closed, histories, visibility_query
from makegood.cases import case_search_attributes, check_ticket
from makegood.domain import contract
from makegood.domain.case import CaseInput, CaseOutcome
from makegood.privacy.codec import keys_of
from makegood.registry import build_worker
from makegood.visibility import UnsafeQueryValue, ensure_search_attributes
from tests.api_harness import free_port
from tests.deployment import Result, run_cli
from tests.harness import (
    CONVERTER,
    HISTORIES,
    binary,
    local_adapters,
    local_store,
    playbooks,
    temporal_env,
    ticket,
)

INJECTED = 'x" OR WorkflowType != "'
# Quoted as is into `WorkflowId IN ("…", "…:callback")`, this one makes a valid query that
# finds every workflow on the server.
WIDENING = 'x") OR WorkflowId NOT IN ("y'

ODD_IDS = [
    "case-zd-1234",
    "case-zd-1234:callback",
    "../../etc/passwd",
    "..",
    ".",
    ".hidden",
    "manifest",
    "MANIFEST",
    "a/b\\c\0d",
    "café ☕ 100%",
    "x" * 900,  # Temporal's longest id is 1000; a file name is at most 255 bytes
]


# ---- the encoding, on its own


@pytest.mark.parametrize("workflow_id", ODD_IDS)
def test_every_workflow_id_names_one_file_inside_the_folder(
    workflow_id: str, tmp_path: Path
) -> None:
    name = f"{file_name(workflow_id)}.json"
    assert inside(tmp_path, name) == tmp_path / name
    assert len(name.encode()) <= 255 and name != MANIFEST and not name.startswith(".")
    if len(workflow_id) < 100:
        assert workflow_id_of(name) == workflow_id  # reversible


def test_ordinary_ids_keep_their_names() -> None:
    assert file_name("case-zd-1234") == "case-zd-1234"
    assert file_name("case-T-1001:callback") == "case-T-1001%3Acallback"
    assert file_name("case-x", "run-1") == "case-x@run-1"
    assert workflow_id_of("case-x@run-1.json") == "case-x"


def test_long_ids_that_share_a_beginning_get_different_names() -> None:
    names = {file_name("x" * 900 + tail) for tail in ("a", "b", "/", "")}
    assert len(names) == 4
    assert all(workflow_id_of(n) is None for n in names)  # the manifest names their ids


@pytest.mark.parametrize("name", ["../outside.json", "..", ".", "", "a/b.json", MANIFEST])
def test_a_name_that_leaves_the_folder_is_refused(name: str, tmp_path: Path) -> None:
    with pytest.raises(UnsafePath, match="not a file name inside"):
        inside(tmp_path, name)


async def committed_history() -> WorkflowHistory:
    return await anext(aiter(read_folder(HISTORIES)))


async def test_writing_through_a_planted_link_is_refused(tmp_path: Path) -> None:
    folder, outside = tmp_path / "archive", tmp_path / "outside.json"
    folder.mkdir()
    (folder / "case-x.json").symlink_to(outside)
    with pytest.raises(UnsafePath):
        write_history(folder, "case-x", await committed_history())
    with pytest.raises(UnsafePath):
        write_history(folder, "../outside", await committed_history())
    assert not outside.exists()


async def test_a_manifest_that_points_outside_its_folder_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "archive"
    entry = write_history(folder, "case-x", await committed_history())
    (tmp_path / "stolen.json").write_text((folder / entry.file).read_text())
    manifest = Manifest.load(folder)
    manifest.entries[0].file = "../stolen.json"
    manifest.save(folder)
    with pytest.raises(UnsafePath, match=r"'\.\./stolen\.json' is not a file name inside"):
        async for _ in read_folder(folder):
            pass


# ---- the query builder, on its own


@pytest.mark.parametrize(
    "case_id", [INJECTED, WIDENING, "case-x\\", "case-a b", "case-x:callback", ""]
)
def test_a_case_id_that_could_change_the_query_is_refused(case_id: str) -> None:
    with pytest.raises(UnsafeQueryValue, match="is not a case id"):
        visibility_query([case_id])


def test_an_expert_query_stays_one_term_of_the_and() -> None:
    assert visibility_query([], 'CloseTime > "2026-11-01"').endswith(
        ' AND (CloseTime > "2026-11-01")'
    )
    # Parentheses inside quotes are the auditor's text, not structure.
    assert visibility_query([], 'WorkflowId = "a) OR (b"').endswith('(WorkflowId = "a) OR (b")')
    for escaping in [
        'WorkflowId = "none") OR (WorkflowType != "none"',
        'WorkflowId = "open',
        "a) OR (b",
        " ",
    ]:
        with pytest.raises(UnsafeQueryValue, match=r"unbalanced quotes or parentheses|is empty"):
            visibility_query([], escaping)


# ---- a real server, cases with ids no ticket could give


@dataclass
class Server:
    client: Client
    address: str
    data: Path
    plain: str  # a case id as tickets make them
    odd: str  # a workflow id that climbs out of any folder it is written to

    async def cli(self, *args: str) -> Result:
        return await run_cli(temporal_env(self.address, MAKEGOOD_DATA_DIR=str(self.data)), *args)


async def finished_case(client: Client, task_queue: str, workflow_id: str | None) -> str:
    """A closed RecoveryWorkflow, started as `open_case` starts one but under `workflow_id`."""
    t = ticket("s5-wrong-drink.json")
    book = playbooks()
    check_ticket(t, book)
    handle = await client.start_workflow(
        contract.RECOVERY_WORKFLOW,
        CaseInput(
            ticket=t,
            playbook=book.for_kind(t.incident.kind),
            playbook_version=book.version,
            retries=book.retries,
            ops_contact="ops@makegood.example.com",
            received_at=datetime.now(UTC),
        ),
        result_type=CaseOutcome,
        id=workflow_id or t.case_id,
        search_attributes=case_search_attributes(t, keys_of(client).pseudonyms),
        task_queue=task_queue,
    )
    outcome = await handle.result()
    assert outcome.resolution == "resolved"
    return handle.id


@pytest.fixture(scope="module")
async def server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Server]:
    data = tmp_path_factory.mktemp("data")
    store = await local_store(data / "adapters.sqlite")
    port = free_port()
    task_queue = f"tq-{uuid.uuid4().hex[:8]}"
    try:
        async with (
            await WorkflowEnvironment.start_local(
                port=port,
                data_converter=CONVERTER,
                dev_server_existing_path=binary("temporal"),
                dev_server_log_level="error",
            ) as env,
            build_worker(env.client, task_queue, local_adapters(store).activities()),
        ):
            await ensure_search_attributes(env.client)
            plain = await finished_case(env.client, task_queue, None)
            odd = await finished_case(
                env.client, task_queue, f"../../escaped-{uuid.uuid4().hex[:8]}"
            )
            yield Server(env.client, f"127.0.0.1:{port}", data, plain, odd)
    finally:
        await store.close()


def files_under(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file()}


async def test_an_id_with_dot_dot_is_exported_inside_the_folder_and_reads_back(
    server: Server, tmp_path: Path
) -> None:
    archive = tmp_path / "deep" / "archive"
    manifest = await export_closed(server.client, archive, f'WorkflowId = "{server.odd}"')

    # Nothing outside the folder; the file's name encodes the id, the manifest names it.
    assert files_under(tmp_path) == {archive / MANIFEST, archive / f"{file_name(server.odd)}.json"}
    (entry,) = manifest.entries
    assert (entry.workflow_id, entry.file) == (
        server.odd,
        "%2E.%2F..%2Fescaped-" + server.odd[-8:] + ".json",
    )
    assert json.loads((archive / MANIFEST).read_text())["entries"][0]["workflow_id"] == server.odd
    assert workflow_id_of(entry.file) == server.odd

    # Round trip: replay and the timeline read the export under the same names.
    replayed = await server.cli("replay", "--dir", str(archive), "-v")
    assert replayed.code == 0, replayed.err
    assert server.odd in replayed.out and "1 of 1 histories reproduced" in replayed.out
    told = await server.cli("timeline", server.odd, "--dir", str(archive))
    assert told.code == 0, told.err
    assert "refund of 4.80 USD" in told.out and f"{server.odd}:refund" in told.out

    # Exported again into the same folder: the same file, listed once.
    again = await export_closed(server.client, archive)
    assert sorted(e.workflow_id for e in again.entries) == sorted([server.plain, server.odd])
    assert len(files_under(tmp_path)) == 3


async def test_an_injected_case_id_is_refused_before_any_query(server: Server) -> None:
    # Both cases are there to be found, had the filter been widened.
    everything = [h.workflow_id async for h in histories(server.client, visibility_query([]))]
    assert sorted(everything) == sorted([server.plain, server.odd])
    for injected in (INJECTED, WIDENING):
        with pytest.raises(UnsafeQueryValue, match="is not a case id"):
            [h async for h in histories(server.client, visibility_query([injected]))]

    for command, injected in [("replay", INJECTED), ("replay", WIDENING), ("reconcile", WIDENING)]:
        refused = await server.cli(command, injected)
        assert refused.code == 2, (refused.out, refused.err)
        assert f"makegood: {injected!r} is not a case id" in refused.err
        assert "histories" not in refused.out and "payments" not in refused.out

    one = await server.cli("replay", server.plain)
    assert one.code == 0 and "1 of 1 histories reproduced" in one.out


async def test_the_expert_query_is_passed_as_written_but_cannot_leave_makegood(
    server: Server,
) -> None:
    found = await server.cli("replay", "--query", f'WorkflowId = "{server.odd}"', "-v")
    assert found.code == 0 and "1 of 1 histories reproduced" in found.out
    # Wrapped as it is, this would read every workflow of the namespace, Makegood's or not.
    breakout = await server.cli(
        "replay", "--query", 'WorkflowId = "none") OR (WorkflowType != "none"'
    )
    assert breakout.code == 2 and "unbalanced quotes or parentheses" in breakout.err
    help_text = await server.cli("replay", "--help")
    assert "expert option" in " ".join(help_text.out.split())
