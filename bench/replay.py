"""How long `makegood replay` takes over thousands of histories.

    python -m bench.replay [--histories 1000]

Builds an export folder of N histories by repeating the committed scenario histories
(tests/histories, 8 workflows of 46 to 315 events) and reports, in one run: reading and
parsing alone (the floor), the replay `makegood replay` does (sandboxed, as the worker runs
workflows), and the same replay without the sandbox.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from bench.cases import cpu_model
from makegood.audit.archive import Manifest, read_folder
from makegood.audit.replay import replay_all
from makegood.registry import build_replayer
from tests.harness import ROOT

SOURCE = ROOT / "tests" / "histories"


def build_folder(target: Path, count: int) -> int:
    """`count` histories: copies of the committed ones (ids kept: a child's id is derived
    from its parent's, and the replay checks it)."""
    manifest = Manifest.load(SOURCE)
    out = Manifest(written_at=manifest.written_at)
    for i in range(count):
        entry = manifest.entries[i % len(manifest.entries)]
        name = f"h{i:05d}-{entry.file}"
        shutil.copyfile(SOURCE / entry.file, target / name)
        out.entries.append(entry.model_copy(update={"file": name}))
    out.save(target)
    return sum(e.events for e in out.entries)


async def load_only(folder: Path) -> int:
    return sum([1 async for _ in read_folder(folder)])


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--histories", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        events = build_folder(folder, args.histories)
        print(
            f"machine: {cpu_model()}, {os.cpu_count()} cores, {platform.machine()}, Python "
            f"{platform.python_version()}; {args.histories} histories, {events} events"
        )
        print(f"{'run':<34} {'seconds':>8} {'histories/s':>12} {'events/s':>10}")

        async def timed(
            name: str,
            histories: AsyncIterator[WorkflowHistory] | None,
            replayer: Replayer | None = None,
        ) -> None:
            t0 = time.perf_counter()
            if histories is None:
                n = await load_only(folder)
            else:
                results = await replay_all(histories, replayer=replayer)
                n = len(results)
                assert all(r.ok for r in results), "a committed history no longer replays"
            dt = time.perf_counter() - t0
            print(f"{name:<34} {dt:>8.1f} {n / dt:>12.1f} {events / dt:>10.0f}")

        await timed("read + parse only (floor)", None)
        await timed("makegood replay (sandboxed)", read_folder(folder))
        await timed(
            "makegood replay --no-sandbox",
            read_folder(folder),
            build_replayer(quiet=True, sandbox=False),
        )


if __name__ == "__main__":
    asyncio.run(main())
