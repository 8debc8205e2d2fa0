"""Scale-out: one worker process against two on the same dev server, and what a case costs.

    python -m bench.scale [--cases 300] [--concurrency 30]

Each row runs whole S5 cases through worker processes started as `make worker` starts them,
and reads the CPU time the workers and the Temporal server spent (from /proc), so a user can
size a cluster: CPU milliseconds per case for the workers and for the server. On a machine
with fewer cores than processes, a second worker cannot add throughput; the row says so.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import signal
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench.cases import TICKET
from bench.common import cpu_model, dev_server, write_report
from bench.kill import worker
from makegood.cases import open_case
from makegood.domain.ticket import Ticket
from makegood.privacy.keys import KeyRing
from makegood.settings import load_playbooks

TICK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    """User and system CPU seconds a process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def children_named(name: str) -> list[int]:
    """This process's children whose command name starts with `name` (the dev server)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        comm = text[text.index("(") + 1 : text.rindex(")")]
        ppid = int(text.rsplit(")", 1)[1].split()[1])
        if ppid == os.getpid() and comm.startswith(name):
            found.append(int(stat.parent.name))
    return found


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=30)
    parser.add_argument("--json", type=Path, default=Path("bench-scale.json"))
    args = parser.parse_args()
    keys = KeyRing.generate(source="bench")
    rows: dict[str, dict[str, Any]] = {}
    print(
        f"machine: {cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"{args.cases} S5 cases per row, {args.concurrency} at a time"
    )
    print(
        f"{'workers':>7} {'cases/s':>8} {'wall s':>7} {'worker CPU ms/case':>19} "
        f"{'server CPU ms/case':>19}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        async with await dev_server(data, keys) as env:
            client = env.client
            (server,) = children_named("temporal")
            address = client.service_client.config.target_host
            playbooks = load_playbooks()
            for count in (1, 2):
                run = uuid.uuid4().hex[:6]
                procs = [await worker(address, data, keys) for _ in range(count)]
                gate = asyncio.Semaphore(args.concurrency)

                async def case(i: int, run: str = run, gate: asyncio.Semaphore = gate) -> None:
                    async with gate:
                        ticket = Ticket.model_validate({**TICKET, "id": f"S-{run}-{i}"})
                        opened = await open_case(
                            client, ticket, playbooks, task_queue="makegood", ops_contact="ops@x"
                        )
                        await opened.handle.result()

                await asyncio.gather(*(case(-1 - i) for i in range(20)))  # warm-up
                before = [cpu_s(p.pid) for p in procs], cpu_s(server)
                t0 = time.perf_counter()
                await asyncio.gather(*(case(i) for i in range(args.cases)))
                wall = time.perf_counter() - t0
                workers_ms = (sum(cpu_s(p.pid) for p in procs) - sum(before[0])) * 1000 / args.cases
                server_ms = (cpu_s(server) - before[1]) * 1000 / args.cases
                for p in procs:
                    p.send_signal(signal.SIGTERM)
                    await p.wait()
                rows[f"{count} worker(s)"] = {
                    "workers": count,
                    "per_s": round(args.cases / wall, 2),
                    "wall_s": round(wall, 2),
                    "worker_cpu_ms_per_case": round(workers_ms, 1),
                    "server_cpu_ms_per_case": round(server_ms, 1),
                }
                print(
                    f"{count:>7} {args.cases / wall:>8.1f} {wall:>7.1f} {workers_ms:>19.1f} "
                    f"{server_ms:>19.1f}",
                    flush=True,
                )
    ratio = rows["2 worker(s)"]["per_s"] / rows["1 worker(s)"]["per_s"]
    print(f"two workers / one: {ratio:.2f}x throughput on {os.cpu_count()} cores")
    write_report(args.json, {"cases": args.cases, "rows": rows, "ratio": round(ratio, 2)})


if __name__ == "__main__":
    asyncio.run(main())
