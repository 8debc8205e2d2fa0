"""A case that continued as new, seen from outside on a real dev server: `status` and actions
reach the latest run, the timeline reads every run in order, and replay reproduces each."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from makegood.adapters.local.store import LocalStore
from makegood.audit.replay import replay_all
from makegood.audit.server import case_histories, histories, visibility_query
from makegood.audit.timeline import timeline
from makegood.cases import case_status, open_case, send
from makegood.domain.actions import Actor, AgentNote, CustomerAnswer
from makegood.domain.case import CaseStatus
from makegood.domain.playbook import Playbook
from makegood.domain.ticket import IncidentKind
from makegood.privacy.codec import decode_history
from makegood.registry import build_replayer
from tests.harness import (
    AGENT,
    dev_server_and_worker,
    playbooks,
    ticket,
)


async def _until(client: Any, case_id: str, what: str, check: Any) -> CaseStatus:
    for _ in range(300):
        status = await case_status(client, case_id)
        if check(status):
            return status
        await asyncio.sleep(0.05)
    raise AssertionError(f"{case_id} never reached {what}")


async def test_status_timeline_and_replay_follow_every_run_of_a_case(
    tmp_path: Path, store: LocalStore, task_queue: str
) -> None:
    base = playbooks(fast_retries=True)
    s5 = base.playbooks[IncidentKind.WRONG_ORDER]
    short = Playbook.model_validate(
        {
            **s5.model_dump(),
            "limits": {"history_events": 100},
            "timeouts": {**s5.timeouts.model_dump(), "follow_up_delay": "PT1S"},
        }
    )
    books = base.model_copy(update={"playbooks": {**base.playbooks, short.kind: short}})
    async with dev_server_and_worker(store, task_queue) as env:
        client = env.client
        opened = await open_case(
            client,
            ticket("s5-wrong-drink.json"),
            books,
            task_queue=task_queue,
            ops_contact="o@x.test",
        )
        case_id = opened.case_id
        asked = lambda qid: lambda s: s.question is not None and s.question.id == qid  # noqa: E731
        await _until(client, case_id, "the first follow-up", asked("follow-up-1"))
        first_run = (await opened.handle.describe()).run_id
        for n in range(25):  # while the customer thinks about it, the history grows long
            await send(client, case_id, AgentNote(text=f"note {n}", by=AGENT))
        customer = Actor(id="C-88", role="customer")  # S5's own customer
        answer = CustomerAnswer(question_id="follow-up-1", answer="not_satisfied", by=customer)
        await send(client, case_id, answer)

        # Re-opened and confirmed again; before the second round's wait, a new run.
        status = await _until(client, case_id, "the second follow-up", asked("follow-up-2"))
        assert (await opened.handle.describe()).run_id != first_run
        assert len(status.notes) == 25 and status.reopened == 1
        assert [e.kind for e in status.events].count("continued") == 1
        await send(client, case_id, AgentNote(text="after the new run", by=AGENT))

        found = await case_histories(client, case_id)
        assert len(found) == 2 and found[0].run_id == first_run
        lines = timeline([await decode_history(h, client.data_converter) for h in found])
        kinds = [line.kind for line in lines]
        assert kinds[0] == "report" and kinds.count("report") == 1
        assert kinds.count("continued") == 2  # the first run's end, the next run's start
        texts = " | ".join(line.text for line in lines)
        assert "note 0" in texts and "after the new run" in texts
        assert texts.index("note 24") < texts.index("after the new run")

        replayed = await replay_all(
            histories(client, visibility_query([case_id])),
            replayer=build_replayer(quiet=True, data_converter=client.data_converter),
        )
        assert len(replayed) == 2 and [r.error for r in replayed] == [None, None]
