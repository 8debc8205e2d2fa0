"""Histories from the Temporal server: by case, by visibility query, and closed-case export."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHistory
from temporalio.service import RPCError, RPCStatusCode

from makegood import visibility
from makegood.audit.archive import Manifest, UnsafePath, file_name, open_manifest, write_history
from makegood.domain import contract

TYPES = visibility.MAKEGOOD_TYPES


def visibility_query(case_ids: list[str], query: str | None = None) -> str:
    """Makegood's workflows: those of these cases (with their call-backs), and those an
    auditor's own visibility query finds; all of them without either.

    Case ids must be case ids (`visibility.UnsafeQueryValue` otherwise): they are quoted into
    the query, and a value that could close its quotes would widen it. `query` is the expert
    option, passed as written (`visibility.expert`).
    """
    clauses = [TYPES]
    if case_ids:
        checked = [visibility.case_id(i) for i in case_ids]
        clauses.append(
            visibility.one_of("WorkflowId", checked + [contract.callback_id(i) for i in checked])
        )
    if query is not None:
        clauses.append(visibility.expert(query))
    return " AND ".join(clauses)


async def histories(client: Client, query: str) -> AsyncIterator[WorkflowHistory]:
    async for history in client.list_workflows(query).map_histories():
        yield history


async def case_histories(client: Client, case_id: str) -> list[WorkflowHistory]:
    """The case's history and, for a support call, its call-back's: read directly by id,
    every run of each (a long case continues as new), first run first."""
    found = []
    for workflow_id in (case_id, contract.callback_id(case_id)):
        try:
            found += await run_histories(client, workflow_id)
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
    return found


async def run_histories(client: Client, workflow_id: str) -> list[WorkflowHistory]:
    """Every run of a workflow, following continue-as-new back from the latest one."""
    runs: list[WorkflowHistory] = []
    run_id: str | None = None
    while True:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        runs.insert(0, history)
        started = history.events[0].workflow_execution_started_event_attributes
        run_id = started.continued_execution_run_id or None
        if run_id is None or len(runs) >= MAX_RUNS:
            return runs


MAX_RUNS = 1000  # a bound on the walk back, far beyond any case's runs


async def export_closed(
    client: Client, folder: Path, query: str | None = None, *, progress: bool = False
) -> Manifest:
    """Closed cases' histories as JSON files plus a manifest; running ones are left out.

    Files are named by `archive.file_name` and written only inside `folder`; the manifest
    names each file's workflow id and run.
    """
    manifest = open_manifest(folder)
    closed = f'{visibility_query([], query)} AND ExecutionStatus != "Running"'
    written: dict[str, tuple[str, str | None]] = {}
    try:
        async for wf in client.list_workflows(closed):
            history = await client.get_workflow_handle(wf.id, run_id=wf.run_id).fetch_history()
            status = (
                wf.status.name.lower() if isinstance(wf.status, WorkflowExecutionStatus) else None
            )
            # A case that continued as new has closed runs under one id: each earlier run gets
            # a file of its own, the last one the plain name.
            name = file_name(wf.id, wf.run_id if status == "continued_as_new" else None)
            if written.setdefault(name, (wf.id, wf.run_id)) != (wf.id, wf.run_id):
                raise UnsafePath(
                    f"{wf.id!r} (run {wf.run_id}) and {written[name][0]!r} (run "
                    f"{written[name][1]}) would share the file {name}.json; export stopped"
                )
            write_history(
                folder, name, history, manifest=manifest, status=status, closed_at=wf.close_time
            )
            if progress and len(written) % 25 == 0:
                sys.stderr.write(f"\rexported {len(written)}")
    finally:  # what was written is listed, even when the export stopped half-way
        manifest.save(folder)
    if progress:
        sys.stderr.write(f"\rexported {len(written)}\n")
    return manifest
