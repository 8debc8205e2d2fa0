from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from makegood.adapters.local.store import LocalStore
from makegood.registry import build_worker
from makegood.visibility import ensure_search_attributes
from tests.harness import CONVERTER, binary, local_adapters, local_store, time_skipping_env


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[LocalStore]:
    s = await local_store(tmp_path / "adapters.sqlite")
    yield s
    await s.close()


@pytest.fixture
def task_queue() -> str:
    return f"tq-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def bare_env() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping server of this test's own (its clock is global to the server)."""
    async with await time_skipping_env() as env:
        yield env


@pytest.fixture
async def env(
    bare_env: WorkflowEnvironment, store: LocalStore, task_queue: str
) -> AsyncIterator[WorkflowEnvironment]:
    """The time-skipping server with a worker on the real local adapters."""
    async with build_worker(bare_env.client, task_queue, local_adapters(store).activities()):
        yield bare_env


@pytest.fixture
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    """The real dev server (in memory), its clock the wall clock, Makegood's search attributes
    registered: for what the time-skipping server cannot show (heartbeats, deletion, ...)."""
    async with await WorkflowEnvironment.start_local(
        data_converter=CONVERTER,
        dev_server_existing_path=binary("temporal"),
        dev_server_log_level="error",
    ) as env:
        await ensure_search_attributes(env.client)
        yield env
