"""The fast tier: the real workflows on the real time-skipping server, against in-memory
providers (`tests.fakes`). One server per module (`run`), or one of the test's own for tests
that move the clock (`solo`); each test gets its own fakes, task queue and worker, and its
cases are terminated when it ends, so a later test's time skipping cannot wake them.
Everything under tests/fast/ is marked `fast` (`make test-fast`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
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


@asynccontextmanager
async def running(
    env: WorkflowEnvironment, fakes: Fakes, *, own_clock: bool
) -> AsyncIterator[Runner]:
    runner = Runner(env, fakes, own_clock=own_clock)
    async with fakes.worker(env.client, runner.task_queue):
        try:
            yield runner
        finally:
            await runner.close()


@pytest.fixture
async def run(server: WorkflowEnvironment, fakes: Fakes) -> AsyncIterator[Runner]:
    """Cases on the module's server. They may wait for their outcome (the server skips time
    while a result is awaited) but not move the clock themselves: see `solo`."""
    async with running(server, fakes, own_clock=False) as runner:
        yield runner


@pytest.fixture
async def solo(fakes: Fakes) -> AsyncIterator[Runner]:
    """Cases on a server of this test's own, for tests that move the clock (`Case.skip`).
    Sleeping on the shared server after other tests' cases, under load, now and then never
    returned; a fresh server costs a few hundred milliseconds."""
    async with await time_skipping_env() as env, running(env, fakes, own_clock=True) as runner:
        yield runner
