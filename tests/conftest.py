from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.local.store import LocalStore
from tests.harness import local_store


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[LocalStore]:
    s = await local_store(tmp_path / "adapters.sqlite")
    yield s
    await s.close()


@pytest.fixture
def task_queue() -> str:
    return f"tq-{uuid.uuid4().hex[:8]}"
