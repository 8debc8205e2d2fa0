"""A worker's memory with many cases waiting for their customers.

    python -m bench.memory [--cases 1000]

Starts the worker as `make run` does (its own process, on the dev server), opens S1 cases
until each has asked its customer the first question and waits for the answer, and reads the
worker's resident memory (VmRSS) before and after, and the idle worker's as the baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import sqlite3
import tempfile
import time
import uuid
from pathlib import Path

from bench.common import cpu_model, dev_server, write_report
from bench.kill import worker
from makegood.cases import open_case
from makegood.domain.ticket import Ticket
from makegood.privacy.keys import KeyRing
from makegood.settings import load_playbooks
from tests.harness import ROOT

S1 = json.loads((ROOT / "examples" / "tickets" / "s1-missing-car.json").read_text())
MIB = 1024 * 1024


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024 / MIB
    raise RuntimeError(f"no VmRSS for process {pid}")


def waiting(store: Path) -> int:
    """Cases that have asked their customer a question (and so wait for the answer)."""
    if not store.exists():
        return 0
    with sqlite3.connect(store) as db:
        (count,) = db.execute(
            "SELECT COUNT(DISTINCT case_id) FROM messages WHERE key LIKE '%:ask:%'"
        ).fetchone()
    return int(count)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--json", type=Path, default=Path("bench-memory.json"))
    args = parser.parse_args()
    keys = KeyRing.generate(source="bench")
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        async with await dev_server(data, keys, in_memory=True) as env:
            client = env.client
            proc = await worker(client.service_client.config.target_host, data, keys)
            playbooks = load_playbooks()
            run = uuid.uuid4().hex[:6]
            store = data / "adapters.sqlite"
            gate = asyncio.Semaphore(20)

            async def start(i: int) -> None:
                async with gate:
                    ticket = Ticket.model_validate({**S1, "id": f"M-{run}-{i}"})
                    await open_case(
                        client, ticket, playbooks, task_queue="makegood", ops_contact="ops@x"
                    )

            async def settle(count: int) -> float:
                t0 = time.perf_counter()
                while True:  # the provider's ledger is a file: nothing to wait on but time
                    if await asyncio.to_thread(waiting, store) >= count:
                        break
                    await asyncio.sleep(0.5)
                await asyncio.sleep(2)  # the last ones' tasks complete
                return time.perf_counter() - t0

            await asyncio.gather(*(start(-1 - i) for i in range(5)))  # warm-up
            await settle(5)
            idle = rss_mib(proc.pid)
            t0 = time.perf_counter()
            await asyncio.gather(*(start(i) for i in range(args.cases)))
            await settle(args.cases + 5)
            took = time.perf_counter() - t0
            loaded = rss_mib(proc.pid)
            proc.send_signal(signal.SIGTERM)
            await proc.wait()
    per_case = (loaded - idle) / args.cases
    print(
        f"machine: {cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}\n"
        f"worker with 5 cases waiting (baseline): {idle:.0f} MiB\n"
        f"worker with {args.cases + 5} cases waiting for their customers: {loaded:.0f} MiB "
        f"({per_case * 1024:.0f} KiB per case; all asked within {took:.0f} s)"
    )
    write_report(
        args.json,
        {
            "cases": args.cases,
            "idle_mib": round(idle),
            "loaded_mib": round(loaded),
            "per_case_kib": round(per_case * 1024),
        },
    )


if __name__ == "__main__":
    asyncio.run(main())
