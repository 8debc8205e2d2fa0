"""How long `makegood replay` takes over thousands of histories.

    python -m bench.replay [--histories 1000]

Builds an export folder of N histories by repeating the committed scenario histories
(tests/histories) and reports, in one run: reading and parsing alone (the floor), the bare SDK
Replayer in one process (its defaults, the pydantic converter: the baseline), `makegood replay`
in one process and in one process per core (sandboxed, as the worker runs workflows), and one
process without the sandbox; then the parallel replay's ratio to the baseline, also written as
JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import platform
import shutil
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from bench.common import cpu_model
from makegood.audit.archive import Manifest, read_folder, read_folder_texts
from makegood.audit.replay import keyed_replayer, replay_all, replay_parallel
from makegood.registry import WORKFLOWS, build_replayer
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
    parser.add_argument("--json", type=Path, default=Path("bench-replay.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        events = build_folder(folder, args.histories)
        print(
            f"machine: {cpu_model()}, {os.cpu_count()} cores, {platform.machine()}, Python "
            f"{platform.python_version()}; {args.histories} histories, {events} events"
        )
        print(f"{'run':<34} {'seconds':>8} {'histories/s':>12} {'events/s':>10}")

        rates: dict[str, float] = {}

        async def timed(
            name: str,
            histories: AsyncIterator[WorkflowHistory] | None,
            replayer: Replayer | None = None,
            jobs: int = 1,
        ) -> None:
            t0 = time.perf_counter()
            if histories is None:
                n = await load_only(folder)
            else:
                if jobs > 1:
                    make = functools.partial(keyed_replayer, None, True)
                    results = await replay_parallel(read_folder_texts(folder), jobs, make)
                else:
                    results = await replay_all(histories, replayer=replayer)
                n = len(results)
                assert all(r.ok for r in results), "a committed history no longer replays"
            dt = time.perf_counter() - t0
            rates[name] = n / dt
            print(f"{name:<34} {dt:>8.1f} {n / dt:>12.1f} {events / dt:>10.0f}")

        await timed("read + parse only (floor)", None)
        bare = "bare SDK Replayer, one process"
        sdk_defaults = Replayer(workflows=list(WORKFLOWS), data_converter=pydantic_data_converter)
        await timed(bare, read_folder(folder), sdk_defaults)
        await timed("makegood replay --jobs 1", read_folder(folder))
        jobs = os.cpu_count() or 1
        parallel = f"makegood replay --jobs {jobs}"
        await timed(parallel, read_folder(folder), jobs=jobs)
        await timed(
            "makegood replay --no-sandbox",
            read_folder(folder),
            build_replayer(quiet=True, sandbox=False),
        )
        ratio = rates[parallel] / rates[bare]
        print(f"makegood replay --jobs {jobs} / bare SDK Replayer: {ratio:.2f}x")
        args.json.write_text(
            json.dumps(
                {
                    "machine": f"{cpu_model()}, {os.cpu_count()} cores, {platform.machine()}",
                    "histories": args.histories,
                    "histories_per_s": {k: round(v, 1) for k, v in rates.items()},
                    "ratio_parallel_to_bare": round(ratio, 2),
                },
                indent=2,
            )
            + "\n"
        )


if __name__ == "__main__":
    asyncio.run(main())
