"""Workflow modules are compiled once for the sandbox's many imports, even where bytecode would
not be written (PYTHONDONTWRITEBYTECODE, a code folder the worker cannot write)."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from makegood import bytecode
from makegood.registry import workflow_runner
from tests.harness import ROOT


@pytest.fixture
def prefix_restored() -> Iterator[None]:
    before = sys.pycache_prefix
    yield
    sys.pycache_prefix = before


def test_a_writable_folder_gets_its_bytecode_beside_the_sources(
    tmp_path: Path, prefix_restored: None
) -> None:
    code = tmp_path / "code"
    shutil.copytree(ROOT / "workflows", code, ignore=shutil.ignore_patterns("__pycache__"))
    cached = bytecode.ensure_bytecode(code, tmp_path / "cache")
    sources = sorted(code.rglob("*.py"))
    assert len(cached) == len(sources) > 5
    assert all(p.parent.name == "__pycache__" and p.is_relative_to(code) for p in cached)
    assert sys.pycache_prefix is None or not Path(sys.pycache_prefix).is_relative_to(tmp_path)
    # Up to date: nothing is written again.
    stamps = [p.stat().st_mtime_ns for p in cached]
    assert bytecode.ensure_bytecode(code, tmp_path / "cache") == cached
    assert [p.stat().st_mtime_ns for p in cached] == stamps


def test_a_folder_that_takes_no_bytecode_gets_it_in_the_users_cache(
    tmp_path: Path, prefix_restored: None
) -> None:
    """Each `__pycache__` is a file here, so nothing can be written beside the sources, for
    root too (whom a read-only folder would not stop)."""
    code = tmp_path / "code"
    shutil.copytree(ROOT / "workflows", code, ignore=shutil.ignore_patterns("__pycache__"))
    for folder in [code, *(p for p in code.rglob("*") if p.is_dir())]:
        (folder / "__pycache__").write_text("not a folder")
    sys.pycache_prefix = None
    cached = bytecode.ensure_bytecode(code, tmp_path / "cache")
    assert sys.pycache_prefix == str(tmp_path / "cache")
    assert len(cached) == len(list(code.rglob("*.py")))
    assert all(p.is_relative_to(tmp_path / "cache") for p in cached)
    # Where the import system looks for them from now on.
    some = next(code.rglob("recovery.py"))
    assert Path(importlib.util.cache_from_source(str(some))) in cached


def test_building_a_worker_compiles_the_workflows_even_without_bytecode_writing(
    tmp_path: Path,
) -> None:
    """In a process where PYTHONDONTWRITEBYTECODE is set, as container images do."""
    target = ROOT / "workflows" / "__pycache__"
    shutil.rmtree(target, ignore_errors=True)
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "XDG_CACHE_HOME": str(tmp_path)}
    run = subprocess.run(
        [sys.executable, "-c", "from makegood.registry import workflow_runner; workflow_runner()"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert run.stderr == ""
    assert (target / f"recovery.{sys.implementation.cache_tag}.pyc").is_file()
    assert workflow_runner() is not None
