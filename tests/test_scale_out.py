"""Scale-out: two worker processes on one task queue share the cases, and when one of them is
killed with SIGKILL mid-run the other finishes its cases, paying each exactly once."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

from temporalio.api.enums.v1 import EventType

from makegood.cases import open_case
from makegood.domain.ticket import Ticket
from makegood.settings import load_playbooks
from tests.deployment import deployed, stop
from tests.harness import TICKETS

CASES = 80
TASK_DONE = EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED


async def test_two_workers_share_the_cases_and_a_killed_one_loses_nothing(
    tmp_path: Path,
) -> None:
    s5 = json.loads((TICKETS / "s5-wrong-drink.json").read_text())
    async with deployed(tmp_path) as d:
        assert d.worker is not None
        doomed = d.worker.pid
        survivor = await d.another_worker()
        await asyncio.sleep(2)  # both poll before the cases come
        playbooks = load_playbooks()
        queue = d.env["MAKEGOOD_TASK_QUEUE"]
        handles = []
        for i in range(CASES):
            ticket = Ticket.model_validate({**s5, "id": f"SO-{i}"})
            opened = await open_case(
                d.client, ticket, playbooks, task_queue=queue, ops_contact="ops@example.com"
            )
            handles.append(opened.handle)
        for _ in range(600):  # mid-run: some cases are paid, most are not
            if len(await d.rows("SELECT key FROM payments")) >= 10:
                break
            await asyncio.sleep(0.02)
        code, _ = await d.stop_worker(signal.SIGKILL)
        assert code == -signal.SIGKILL

        async with asyncio.timeout(120):
            outcomes = await asyncio.gather(*(h.result() for h in handles))
        assert {o.resolution for o in outcomes} == {"resolved"}
        paid = [r["key"] for r in await d.rows("SELECT key FROM payments")]
        assert sorted(paid) == sorted(f"case-SO-{i}:refund" for i in range(CASES))

        # Who completed each case's workflow tasks: both workers had cases, and cases the
        # killed worker had begun were finished by the other one.
        by: dict[str, list[int]] = {}
        for handle in handles:
            async for event in handle.fetch_history_events():
                if event.event_type == TASK_DONE:
                    identity = event.workflow_task_completed_event_attributes.identity
                    by.setdefault(handle.id, []).append(int(identity.split("@")[0]))
        workers = {pid for pids in by.values() for pid in pids}
        assert workers == {doomed, survivor.pid}
        handed_over = [c for c, pids in by.items() if doomed in pids and pids[-1] == survivor.pid]
        assert handed_over, "no case begun by the killed worker was finished by the other"
        await stop(survivor)
