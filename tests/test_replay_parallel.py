"""`makegood replay` in parallel processes: the same verdicts as in one process, in the order the
histories were read, with a non-deterministic history still named at its event."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHistory

from makegood.audit.replay import (
    BATCH,
    as_texts,
    keyed_replayer,
    replay_all,
    replay_parallel,
)
from tests.test_audit import committed


async def each(histories: list[WorkflowHistory]) -> AsyncIterator[WorkflowHistory]:
    for history in histories:
        yield history


def broken(history: WorkflowHistory) -> WorkflowHistory:
    """The history with its remake scheduled as another activity: the code disagrees there."""
    events = []
    for original in history.events:  # copies: the committed history stays as it is
        copy = HistoryEvent()
        copy.CopyFrom(original)
        events.append(copy)
    for event in events:
        attrs = event.activity_task_scheduled_event_attributes
        if (
            event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
            and attrs.activity_type.name == "remake_order"
        ):
            attrs.activity_type.name = "ship_item"
            break
    return WorkflowHistory(history.workflow_id, events)


async def test_parallel_replay_gives_the_same_verdicts_in_order() -> None:
    base = await committed()
    s5 = next(h for h in base if h.workflow_id.startswith("case-T-3001"))
    histories = (base * 4)[: BATCH * 3]
    histories.insert(len(histories) // 2, broken(s5))
    seen: list[int] = []
    make = functools.partial(keyed_replayer, None, True)

    parallel = await replay_parallel(
        as_texts(each(histories)), 2, make, progress=lambda done, failed, _: seen.append(done)
    )
    serial = await replay_all(each(histories), replayer=make())

    assert [(r.workflow_id, r.ok, r.diverged_at) for r in parallel] == [
        (r.workflow_id, r.ok, r.diverged_at) for r in serial
    ]
    assert [r.workflow_id for r in parallel] == [h.workflow_id for h in histories]
    (bad,) = [r for r in parallel if not r.ok]
    assert bad.workflow_id == s5.workflow_id and bad.diverged_at is not None
    assert seen and seen[-1] == len(histories)  # the progress line counts every history


async def test_a_handful_of_histories_replays_in_this_process() -> None:
    few = (await committed())[:3]
    make = functools.partial(keyed_replayer, None, True)
    results = await replay_parallel(as_texts(each(few)), 4, make)
    assert [r.ok for r in results] == [True, True, True]
