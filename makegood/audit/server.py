"""Histories from the Temporal server: by case, by visibility query, and closed-case export."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHistory
from temporalio.service import RPCError, RPCStatusCode

from makegood.audit.archive import Manifest, file_name, open_manifest, write_history
from makegood.domain import contract

TYPES = f'WorkflowType IN ("{contract.RECOVERY_WORKFLOW}", "{contract.CALLBACK_WORKFLOW}")'


def visibility_query(case_ids: list[str], query: str | None = None) -> str:
    """Cases by id (with their call-backs) or by any visibility query; Makegood's only."""
    if case_ids:
        ids = ", ".join(f'"{i}"' for i in case_ids + [contract.callback_id(i) for i in case_ids])
        return f"{TYPES} AND WorkflowId IN ({ids})"
    return f"{TYPES} AND ({query})" if query else TYPES


async def histories(client: Client, query: str) -> AsyncIterator[WorkflowHistory]:
    async for history in client.list_workflows(query).map_histories():
        yield history


async def case_histories(client: Client, case_id: str) -> list[WorkflowHistory]:
    """The case's history and, for a support call, its call-back's: read directly by id."""
    found = []
    for workflow_id in (case_id, contract.callback_id(case_id)):
        try:
            found.append(await client.get_workflow_handle(workflow_id).fetch_history())
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
    return found


async def export_closed(
    client: Client, folder: Path, query: str | None = None, *, progress: bool = False
) -> Manifest:
    """Closed cases' histories as JSON files plus a manifest; running ones are left out."""
    manifest = open_manifest(folder)
    closed = f'{visibility_query([], query)} AND ExecutionStatus != "Running"'
    count = 0
    async for wf in client.list_workflows(closed):
        history = await client.get_workflow_handle(wf.id, run_id=wf.run_id).fetch_history()
        status = wf.status.name.lower() if isinstance(wf.status, WorkflowExecutionStatus) else None
        write_history(
            folder,
            file_name(wf.id),
            history,
            manifest=manifest,
            status=status,
            closed_at=wf.close_time,
        )
        count += 1
        if progress and count % 25 == 0:
            sys.stderr.write(f"\rexported {count}")
    manifest.save(folder)
    if progress:
        sys.stderr.write(f"\rexported {count}\n")
    return manifest
