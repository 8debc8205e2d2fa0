"""Nothing is forgotten: a closed case past the namespace's retention is still found.

On the real dev server: a case closes, the worker's case index records it (pseudonyms only),
the archiver writes its histories and final status to the archive (a folder, or an S3 bucket
served by moto over HTTP), then the case disappears from Temporal as retention would make it
(DeleteWorkflowExecution: the dev server will not take a retention under an hour). After
that the duplicate ticket still returns the case and starts nothing, S2 still finds it and
describes it from the archive, and `status`, `timeline` (API and CLI) and `replay` read it
from the archive and say so.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from pathlib import Path

import boto3
import httpx
import pytest
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DeleteWorkflowExecutionRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from makegood.adapters.blobs import BlobStore, FolderStore, S3Store
from makegood.adapters.local.store import LocalStore
from makegood.api.app import create_app
from makegood.archiver import Archiver, archive_key
from makegood.cases import CaseNotFound, case_status, open_case
from makegood.index import SqliteCaseIndex
from makegood.privacy.codec import keys_of
from makegood.registry import build_worker
from makegood.settings import Settings
from tests.api_harness import TOKEN_TABLE, free_port, serving_app
from tests.deployment import run_cli
from tests.harness import Case, local_adapters, temporal_env, ticket
from tests.test_blobs import aws_env, s3_endpoint  # noqa: F401  (fixtures)
from tests.test_history import closing_at_once

AUDITOR = {"Authorization": "Bearer auditor-token"}
AGENT = {"Authorization": "Bearer agent-token"}


@pytest.fixture(params=["folder", "s3"])
def archive_setting(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    """Where the archive is, as settings: the default folder, or a bucket on moto's server."""
    if request.param == "folder":
        return {}
    request.getfixturevalue("aws_env")
    endpoint = request.getfixturevalue("s3_endpoint")
    bucket = f"archive-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)
    return {"archive_store": f"s3://{bucket}/makegood", "s3_endpoint_url": endpoint}


async def forget(client: Client, case_id: str) -> None:
    """What the namespace's retention does to a closed case: history and visibility gone.

    The server deletes in the background: about 30 s on the dev server, whatever is asked.
    """
    await client.workflow_service.delete_workflow_execution(
        DeleteWorkflowExecutionRequest(
            namespace=client.namespace, workflow_execution=WorkflowExecution(workflow_id=case_id)
        )
    )
    for _ in range(900):
        listed = [wf async for wf in client.list_workflows(f'WorkflowId = "{case_id}"')]
        try:
            await client.get_workflow_handle(case_id).describe()
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND and not listed:
                return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{case_id} is still in Temporal")


async def test_a_closed_case_past_retention_is_still_found_from_the_index_and_archive(
    dev_env: WorkflowEnvironment,
    store: LocalStore,
    task_queue: str,
    tmp_path: Path,
    archive_setting: dict[str, str],
) -> None:
    env, client, port = dev_env, dev_env.client, free_port()
    settings = Settings(
        task_queue=task_queue,
        data_dir=tmp_path,
        api_port=port,
        api_tokens=TOKEN_TABLE,
        **archive_setting,  # type: ignore[arg-type]
    )
    archive: BlobStore = settings.archive()
    assert isinstance(archive, S3Store if archive_setting else FolderStore)
    index = await SqliteCaseIndex(settings.case_index_default).open()
    book = closing_at_once()
    first_ticket = ticket("s2-laptop-screen.json")
    try:
        async with (
            build_worker(
                client, task_queue, local_adapters(store).activities(), index=index, archive=archive
            ),
            serving_app(create_app(settings, client), port),
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http,
        ):
            opened = await open_case(
                client, first_ticket, book, task_queue=task_queue, ops_contact="ops@x", index=index
            )
            first = Case(client, store, opened.handle, env)
            assert (await first.result()).resolution == "resolved"

            # Indexed by the case itself, as it opened and closed: pseudonyms, no ids.
            row = await index.get(first.id)
            assert row is not None and row.ticket_id == first_ticket.id
            assert row.closed_at is not None and row.resolution == "resolved"
            pseudonyms = keys_of(client).pseudonyms
            assert pseudonyms is not None
            assert row.customer == pseudonyms.customer("C-21") != "C-21"
            assert row.asset == pseudonyms.asset("SN-77")
            raw = settings.case_index_default.read_bytes()
            assert b"C-21" not in raw and b"SN-77" not in raw and b"Priya" not in raw

            # Archived by the worker process's archiver on its own, soon after the case closed.
            stop = asyncio.Event()
            archiving = asyncio.create_task(Archiver(client, index, archive, every=0.1).run(stop))
            for _ in range(300):
                row = await index.get(first.id)
                if row is not None and row.archived_at is not None:
                    break
                await asyncio.sleep(0.1)
            stop.set()
            await archiving
            assert row is not None and row.archive_key is not None, "never archived"
            key = row.archive_key
            assert key.startswith(archive_key(first.id, "x").removesuffix("/x") + "/")
            stored = await archive.keys(key)
            assert f"{key}/manifest.json" in stored and f"{key}/status.payload" in stored
            # The final status is kept encrypted, like the histories' payloads.
            assert b"Priya" not in await archive.get(f"{key}/status.payload")
            assert (await Archiver(client, index, archive).sweep()).archived == []  # done once

            await forget(client, first.id)
            with pytest.raises(CaseNotFound):
                await case_status(client, first.id)

            # The duplicate ticket returns the case and starts nothing, through the API too.
            again = await http.post(
                "/cases", json=json.loads(first_ticket.model_dump_json()), headers=AGENT
            )
            assert again.status_code == 200, again.text
            body = again.json()
            assert (body["case_id"], body["created"]) == (first.id, False)
            assert body["note"].startswith("closed ") and body["note"].endswith(", resolved")
            with pytest.raises(RPCError):
                await client.get_workflow_handle(first.id).describe()  # nothing new started

            # S2: the same laptop's next report still finds it, described from the archive.
            t2 = first_ticket.model_copy(update={"id": f"{first_ticket.id}-next"})
            opened2 = await open_case(
                client, t2, book, task_queue=task_queue, ops_contact="ops@x", index=index
            )
            second = Case(client, store, opened2.handle, env)
            await second.result()
            (earlier,) = [r for r in (await second.status()).related if r.case_id == first.id]
            assert (earlier.fault, earlier.asset, earlier.reference) == ("screen", "SN-77", "W-77")
            assert earlier.same_asset and earlier.same_customer
            assert earlier.resolution == "resolved"

            # status and timeline from the archive, saying so.
            got = await http.get(f"/cases/{first.id}", headers=AUDITOR)
            assert got.status_code == 200, got.text
            status = got.json()
            assert status["archived"].startswith("from the archive, closed ")
            assert status["resolution"] == "resolved" and status["customer_id"] == "C-21"
            md = await http.get(f"/cases/{first.id}/timeline?format=md", headers=AUDITOR)
            assert md.status_code == 200, md.text
            assert md.headers["makegood-source"].startswith("from the archive, closed ")
            assert f"# Timeline of {first.id}" in md.text and "repair" in md.text
            nobody = await http.get("/cases/case-nobody/timeline", headers=AUDITOR)
            assert nobody.status_code == 404

            # The console shows it too, read-only, saying where it came from.
            form = await http.get("/console/sign-in")
            csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
            assert csrf is not None
            token = AUDITOR["Authorization"].removeprefix("Bearer ")
            await http.post("/console/sign-in", data={"token": token, "csrf": csrf[1]})
            shown = await http.get(f"/console/cases/{first.id}")
            assert shown.status_code == 200, shown.text
            assert "Shown from the archive, closed " in shown.text
            assert "Audit timeline" in shown.text and "repair" in shown.text
            assert "Add a note" not in shown.text and "Cancel the case" not in shown.text
            gone = await http.get("/console/cases/case-nobody")
            assert gone.status_code == 404 and "in Temporal or in the archive" in gone.text

            # The auditors' CLI, straight to Temporal, falls back to the archive as well.
            cli_env = temporal_env(
                client.service_client.config.target_host,
                MAKEGOOD_DATA_DIR=str(tmp_path),
                MAKEGOOD_ARCHIVE_STORE=settings.archive_store,
                MAKEGOOD_S3_ENDPOINT_URL=settings.s3_endpoint_url or "",
            )
            timeline = await run_cli(cli_env, "timeline", first.id, "--format", "md")
            assert timeline.code == 0, timeline.err
            assert f"{first.id}: from the archive, closed" in timeline.err
            assert f"# Timeline of {first.id}" in timeline.out
            replay = await run_cli(cli_env, "replay", first.id)
            assert replay.code == 0, replay.err + replay.out
            assert "1 of 1 histories reproduced" in replay.out
    finally:
        await index.close()
