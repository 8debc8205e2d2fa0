"""Compiled workflow code, wherever Makegood is installed.

The workflow sandbox imports the workflow modules afresh for every workflow run. With their
bytecode cached that import is cheap; without it every new case compiles `recovery.py` and its
stages from source, which cost about a quarter of a busy worker's CPU (issue 14's profile). The
cache goes missing exactly where production runs: `PYTHONDONTWRITEBYTECODE` set (common in
container images), or a code folder the worker's user cannot write (the Docker image's user).

`ensure()` runs once when a worker or replayer is built: it compiles the workflow modules next to
their sources when it may, else into a cache folder of the user's (`sys.pycache_prefix`, which
the import system reads for every later import), so the sandbox's imports find bytecode either
way. Compiling is explicit, so `PYTHONDONTWRITEBYTECODE` does not prevent it; up-to-date files
are left alone.
"""

from __future__ import annotations

import compileall
import importlib.util
import os
import sys
from functools import cache
from pathlib import Path

import makegood.workflows


def user_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "makegood" / "pycache"


def _compile(sources: list[Path]) -> bool:
    return all(compileall.compile_file(str(src), quiet=2) for src in sources)


def ensure_bytecode(folder: Path, fallback: Path) -> list[Path]:
    """Bytecode for every module under `folder`; the cache files the import system will read."""
    sources = sorted(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts)
    if not _compile(sources) and sys.pycache_prefix is None:
        sys.pycache_prefix = str(fallback)  # beside the sources is not writable
        _compile(sources)
    cached = [Path(importlib.util.cache_from_source(str(src))) for src in sources]
    return [path for path in cached if path.is_file()]


@cache
def ensure() -> list[Path]:
    """`ensure_bytecode` for Makegood's workflow modules, once per process."""
    folder = Path(makegood.workflows.__file__).parent
    return ensure_bytecode(folder, user_cache())
