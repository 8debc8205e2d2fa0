"""The fast tier: the real workflows on the real time-skipping server, against in-memory
providers (`tests.fakes`). One server per module; each test gets its own fakes, task queue
and worker, and its cases are terminated when it ends, so a later test's time skipping cannot
wake them. Everything under tests/fast/ is marked `fast` (`make test-fast`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from tests.fakes import Fakes, World
from tests.fast.driver import Runner
from tests.harness import time_skipping_env

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.fast)


@pytest.fixture(scope="module")
async def server() -> AsyncIterator[WorkflowEnvironment]:
    """One time-skipping server for the module: tests run one after the other, and each
    test's cases are gone before the next one starts, so nobody else's timers fire."""
    async with await time_skipping_env() as env:
        yield env


@pytest.fixture
def world() -> World:
    return World()


@pytest.fixture
def fakes(world: World) -> Fakes:
    return Fakes(world)


@pytest.fixture
async def run(server: WorkflowEnvironment, fakes: Fakes) -> AsyncIterator[Runner]:
    runner = Runner(server, fakes)
    async with fakes.worker(server.client, runner.task_queue):
        try:
            yield runner
        finally:
            await runner.close()
