"""Replay histories against the workflow code of this checkout and report each one."""

from __future__ import annotations

import re
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from makegood.privacy.keys import KeyRing
from makegood.registry import build_replayer

_EVENT = re.compile(r"HistoryEvent\(id: (\d+)|event(?: id)?[ :#]+(\d+)", re.IGNORECASE)
_MESSAGE = re.compile(r'message: "([^"]*)"')
_PATCH = re.compile(r"patch marker encountered for change ([\w.-]+)", re.IGNORECASE)
_ACTIVITY = re.compile(r"activity type of scheduled event '([^']+)' does not match", re.IGNORECASE)


@dataclass
class Replayed:
    workflow_id: str
    run_id: str | None
    workflow_type: str
    events: int
    error: str | None = None
    marker_event: int | None = None  # where a patch marker the code did not expect stands

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def diverged_at(self) -> int | None:
        """The history event the current code disagreed with, when the SDK names it."""
        if self.error is None:
            return None
        found = _EVENT.search(self.error)
        if found:
            return int(found.group(1) or found.group(2))
        return self.marker_event


def _marker_event(history: WorkflowHistory, error: str) -> int | None:
    """The event an error means but does not number: the patch marker it names, or the first
    scheduling of the activity it says the code did not run there (a reordered activity)."""
    reordered = _ACTIVITY.search(error)
    if reordered is not None:
        for event in history.events:
            attrs = event.activity_task_scheduled_event_attributes
            if (
                event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
                and attrs.activity_type.name == reordered.group(1)
            ):
                return event.event_id
        return None
    named = _PATCH.search(error)
    if named is None:
        return None
    change = named.group(1).encode()
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
            details = event.marker_recorded_event_attributes.details
            if any(change in p.data for payloads in details.values() for p in payloads.payloads):
                return event.event_id
    return None


Progress = Callable[[int, int, float], None]


def terminal_progress(done: int, failed: int, elapsed: float) -> None:
    rate = done / elapsed if elapsed else 0.0
    sys.stderr.write(f"\rreplayed {done} ({failed} failed), {rate:.0f}/s ")
    sys.stderr.flush()


async def replay_all(
    histories: AsyncIterator[WorkflowHistory],
    progress: Progress | None = None,
    replayer: Replayer | None = None,
) -> list[Replayed]:
    results: list[Replayed] = []
    failed = 0
    started = time.perf_counter()
    replayer = replayer or build_replayer(quiet=True)
    async with replayer.workflow_replay_iterator(histories) as replayed:
        async for result in replayed:
            history = result.history
            started_attrs = history.events[0].workflow_execution_started_event_attributes
            error = None
            if result.replay_failure is not None:
                failed += 1
                text = str(result.replay_failure)
                core = _MESSAGE.search(text)  # the core's own words, without the wrapping
                error = core.group(1) if core else f"{type(result.replay_failure).__name__}: {text}"
            results.append(
                Replayed(
                    history.workflow_id,
                    history.run_id or None,
                    started_attrs.workflow_type.name,
                    len(history.events),
                    error,
                    _marker_event(history, error) if error else None,
                )
            )
            if progress and (len(results) % 25 == 0 or error):
                progress(len(results), failed, time.perf_counter() - started)
    if progress:
        progress(len(results), failed, time.perf_counter() - started)
    return results


# ---- in parallel processes: replay is CPU-bound Python, so one process uses one core
ReplayerFactory = Callable[[], Replayer]
BATCH = 20


def keyed_replayer(keys: KeyRing | None, sandbox: bool) -> Replayer:
    """A replayer with these keys' converter: picklable as `partial(keyed_replayer, ...)`,
    where the converter itself (its AES-GCM objects) is not."""
    from makegood.privacy.codec import data_converter

    return build_replayer(
        quiet=True, sandbox=sandbox, data_converter=data_converter(keys) if keys else None
    )


async def _each(histories: list[WorkflowHistory]) -> AsyncIterator[WorkflowHistory]:
    for history in histories:
        yield history


async def _chain(
    first: list[tuple[str, str]], rest: AsyncIterator[tuple[str, str]]
) -> AsyncIterator[tuple[str, str]]:
    for item in first:
        yield item
    async for item in rest:
        yield item


def _replay_batch(batch: list[tuple[str, str]], make_replayer: ReplayerFactory) -> list[Replayed]:
    """Runs in a worker process: replays (workflow id, history JSON) pairs, one replayer."""
    import asyncio

    async def histories() -> AsyncIterator[WorkflowHistory]:
        for workflow_id, text in batch:
            yield WorkflowHistory.from_json(workflow_id, text)

    return asyncio.run(replay_all(histories(), replayer=make_replayer()))


async def as_texts(histories: AsyncIterator[WorkflowHistory]) -> AsyncIterator[tuple[str, str]]:
    """Histories as (workflow id, JSON), the form `replay_parallel` sends to its processes."""
    async for history in histories:
        yield history.workflow_id, history.to_json()


async def replay_parallel(
    histories: AsyncIterator[tuple[str, str]],
    jobs: int,
    make_replayer: ReplayerFactory,
    progress: Progress | None = None,
) -> list[Replayed]:
    """`replay_all` across `jobs` processes, in batches, results in the histories' order.

    `histories` are (workflow id, history JSON) pairs (`as_texts`, or an export folder's files
    read by `archive.read_folder_texts`): the processes parse them, not this one.
    `make_replayer` must be picklable (a module-level function or a `functools.partial` of
    one): each process builds its own replayer, with its own sandbox and converter.
    """
    import asyncio
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    first: list[tuple[str, str]] = []
    async for item in histories:
        first.append(item)
        if len(first) > BATCH:
            break
    else:  # a few histories: spawning processes would cost more than it saves
        parsed = [WorkflowHistory.from_json(wid, text) for wid, text in first]
        return await replay_all(_each(parsed), progress, make_replayer())

    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    done: list[list[Replayed]] = []
    failed = 0
    context = multiprocessing.get_context("spawn")  # no forked Temporal runtime threads
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        pending: list[asyncio.Future[list[Replayed]]] = []
        batch: list[tuple[str, str]] = []

        def submit() -> None:
            pending.append(loop.run_in_executor(pool, _replay_batch, list(batch), make_replayer))
            batch.clear()

        async for item in _chain(first, histories):
            batch.append(item)
            if len(batch) == BATCH:
                submit()
        if batch:
            submit()
        for future in pending:  # in order, so the report lists them as they were read
            results = await future
            done.append(results)
            failed += sum(1 for r in results if not r.ok)
            if progress:
                progress(sum(map(len, done)), failed, time.perf_counter() - started)
    return [r for results in done for r in results]
