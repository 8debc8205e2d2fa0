"""Throughput and latency of whole recovery cases, against bare-Temporal baselines.

    python -m bench.cases [--cases 200] [--concurrency 20]

All runs use the same dev server (SQLite file in WAL mode, as `make run` does) and one worker
process. The baseline is a bare workflow making as many no-op calls as an S5 case makes (wrong
drink: index, history look-up, apology, ownership check, remake, refund, confirmation, outcome
record, index), as activities; a second baseline makes the same calls local where Makegood's
are (its bookkeeping). The difference is what Makegood itself costs: validation, pydantic
payloads and their encryption, the sandbox, the SQLite providers, SLA timers and search
attributes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

from temporalio.client import Client
from temporalio.worker import Worker

from bench.baseline import BaselineWorkflow, noop
from bench.common import cpu_model, dev_server, write_report
from makegood import logsetup
from makegood.adapters.wiring import configured_adapters
from makegood.cases import open_case
from makegood.domain.ticket import Ticket
from makegood.privacy.keys import KeyRing
from makegood.registry import build_worker
from makegood.settings import Settings, load_playbooks
from tests.harness import ROOT

S5_HISTORY = ROOT / "tests" / "histories" / "s5.json"


def s5_calls() -> tuple[int, int]:
    """How many calls an S5 case makes, and how many of them are local activities (its
    bookkeeping), from the committed S5 history: the baselines make as many, so the
    comparison stays fair as the case gains or loses a step."""
    events = json.loads(S5_HISTORY.read_text())["events"]
    remote = sum(e["eventType"] == "EVENT_TYPE_ACTIVITY_TASK_SCHEDULED" for e in events)
    local = sum(
        e["eventType"] == "EVENT_TYPE_MARKER_RECORDED"
        and e["markerRecordedEventAttributes"]["markerName"] == "core_local_activity"
        for e in events
    )
    return remote + local, local


STEPS, LOCAL_STEPS = s5_calls()
TICKET = json.loads((ROOT / "examples" / "tickets" / "s5-wrong-drink.json").read_text())


async def measure(
    concurrency: int, count: int, one: Callable[[int], Awaitable[None]]
) -> tuple[float, list[float]]:
    gate = asyncio.Semaphore(concurrency)
    latencies: list[float] = []

    async def timed(i: int) -> None:
        async with gate:
            t0 = time.perf_counter()
            await one(i)
            latencies.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    await asyncio.gather(*(timed(i) for i in range(count)))
    return time.perf_counter() - t0, latencies


def figures(count: int, wall: float, lat: list[float]) -> dict[str, float]:
    q = statistics.quantiles(lat, n=100)
    return {
        "per_s": round(count / wall, 2),
        "p50_ms": round(q[49] * 1000),
        "p95_ms": round(q[94] * 1000),
        "max_ms": round(max(lat) * 1000),
    }


def row(name: str, count: int, wall: float, lat: list[float]) -> str:
    q = statistics.quantiles(lat, n=100)
    return (
        f"{name:<28} {count:>6} {wall:>8.2f} {count / wall:>9.1f} "
        f"{q[49] * 1000:>8.0f} {q[94] * 1000:>8.0f} {max(lat) * 1000:>8.0f}"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--json", type=Path, default=Path("bench-cases.json"))
    args = parser.parse_args()
    results: dict[str, dict[str, float]] = {}
    logsetup.configure("console", "WARNING")

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        async with await dev_server(data, KeyRing.generate(source="bench")) as env:
            client: Client = env.client
            settings = Settings(data_dir=data)
            playbooks = load_playbooks()
            run = uuid.uuid4().hex[:6]

            def baseline(local: int) -> Callable[[int], Awaitable[None]]:
                async def one(i: int) -> None:
                    await client.execute_workflow(
                        BaselineWorkflow.run,
                        args=[STEPS, local],
                        id=f"base-{run}-{local}-{i}",
                        task_queue="bench-base",
                    )

                return one

            async def case(i: int) -> None:
                ticket = Ticket.model_validate({**TICKET, "id": f"B-{run}-{i}"})
                opened = await open_case(
                    client,
                    ticket,
                    playbooks,
                    task_queue="bench-cases",
                    ops_contact=settings.ops_contact,
                )
                await opened.handle.result()

            print(
                f"machine: {cpu_model()}, {os.cpu_count()} cores, {platform.machine()}, "
                f"Python {platform.python_version()}; {args.cases} workflows per row, "
                f"concurrency {args.concurrency}"
            )
            print(
                f"{'run':<28} {'cases':>6} {'wall s':>8} {'per s':>9} {'p50 ms':>8} "
                f"{'p95 ms':>8} {'max ms':>8}"
            )
            async with Worker(
                client, task_queue="bench-base", workflows=[BaselineWorkflow], activities=[noop]
            ):
                await measure(args.concurrency, 10, baseline(0))  # warm-up
                wall, lat = await measure(args.concurrency, args.cases, baseline(0))
                print(row(f"baseline ({STEPS} no-op activities)", args.cases, wall, lat))
                results["baseline"] = figures(args.cases, wall, lat)
                wall, lat = await measure(args.concurrency, args.cases, baseline(LOCAL_STEPS))
                print(row(f"  same, {LOCAL_STEPS} of them local", args.cases, wall, lat))
                results["baseline_local"] = figures(args.cases, wall, lat)
            async with (
                configured_adapters(settings) as adapters,
                build_worker(client, "bench-cases", adapters.activities()),
            ):
                await measure(args.concurrency, 10, lambda i: case(10_000 + i))  # warm-up
                wall, lat = await measure(args.concurrency, args.cases, case)
                print(row("makegood S5 case", args.cases, wall, lat))
                results["makegood"] = figures(args.cases, wall, lat)
            ratio = results["makegood"]["per_s"] / results["baseline"]["per_s"]
            mirrored = results["makegood"]["per_s"] / results["baseline_local"]["per_s"]
            print(f"makegood / baseline throughput: {ratio:.2f}x")
            print(f"makegood / baseline with the same local activities: {mirrored:.2f}x")
            write_report(
                args.json,
                {
                    "cases": args.cases,
                    "concurrency": args.concurrency,
                    "rows": results,
                    "ratio": round(ratio, 2),
                    "ratio_to_local_baseline": round(mirrored, 2),
                },
            )


if __name__ == "__main__":
    asyncio.run(main())
