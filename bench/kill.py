"""How soon a killed worker's work resumes on another worker.

    python -m bench.kill [--cases 60] [--rounds 3]

Starts S5 cases against a worker process on the dev server, kills the worker with SIGKILL while
the cases run, starts a new one, and reads from the histories how long each call that was in
flight waited: from the kill to the server's timeout of the dead worker's attempt (a heartbeat
timeout, or the whole start-to-close timeout without heartbeats). It also checks every case
still paid exactly once.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from temporalio.api.enums.v1 import EventType, TimeoutType

from bench.cases import TICKET
from bench.common import cpu_model, dev_server
from makegood.cases import open_case
from makegood.domain.ticket import Ticket
from makegood.privacy.keys import KeyRing
from makegood.settings import load_playbooks
from tests.harness import ROOT

TIMED_OUT = EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT
TASK_TIMED_OUT = EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT


async def worker(address: str, data: Path, keys: KeyRing) -> asyncio.subprocess.Process:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "MAKEGOOD_"))},
        **keys.as_env(),
        "TEMPORAL_ADDRESS": address,
        "TEMPORAL_CONFIG_FILE": os.devnull,
        "MAKEGOOD_DATA_DIR": str(data),
        "MAKEGOOD_LOG_LEVEL": "WARNING",
    }
    return await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "worker.py"), env=env, stdout=asyncio.subprocess.DEVNULL
    )


def paid_keys(store: Path) -> list[str]:
    with sqlite3.connect(store) as db:
        return [key for (key,) in db.execute("SELECT key FROM payments")]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--after", type=float, default=1.0, help="seconds before the kill")
    parser.add_argument(
        "--replace",
        action="store_true",
        help="one worker, replaced after the kill (default: a second worker runs all along)",
    )
    args = parser.parse_args()
    keys = KeyRing.generate(source="bench")
    waits: list[float] = []
    tasks: list[float] = []
    by_kind: dict[str, list[float]] = {}  # workflow task timeouts by type
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        async with await dev_server(data, keys, in_memory=True) as env:
            client = env.client
            address = client.service_client.config.target_host
            playbooks = load_playbooks()
            print(
                f"machine: {cpu_model()}, {os.cpu_count()} cores; {args.rounds} rounds of "
                f"{args.cases} S5 cases, a worker killed with SIGKILL mid-run, "
                + ("then replaced" if args.replace else "another one running all along")
            )
            for round_ in range(args.rounds):
                run = uuid.uuid4().hex[:6]
                proc = await worker(address, data, keys)
                standby = None if args.replace else await worker(address, data, keys)
                handles = []
                for i in range(args.cases):
                    ticket = Ticket.model_validate({**TICKET, "id": f"K-{run}-{i}"})
                    opened = await open_case(
                        client, ticket, playbooks, task_queue="makegood", ops_contact="ops@x"
                    )
                    handles.append(opened.handle)
                await asyncio.sleep(args.after)  # under way: some calls are in flight
                killed_at = datetime.now(UTC)
                proc.send_signal(signal.SIGKILL)
                await proc.wait()
                t0 = time.perf_counter()
                proc = standby or await worker(address, data, keys)
                await asyncio.gather(*(h.result() for h in handles))
                finished = time.perf_counter() - t0
                proc.send_signal(signal.SIGTERM)
                await proc.wait()
                round_waits, task_waits = [], []
                for handle in handles:
                    async for event in handle.fetch_history_events():
                        at = event.event_time.ToDatetime().replace(tzinfo=UTC)
                        if event.event_type == TIMED_OUT:
                            round_waits.append((at - killed_at).total_seconds())
                        elif event.event_type == TASK_TIMED_OUT:
                            task_waits.append((at - killed_at).total_seconds())
                            timeout = event.workflow_task_timed_out_event_attributes.timeout_type
                            by_kind.setdefault(TimeoutType.Name(timeout), []).append(
                                (at - killed_at).total_seconds()
                            )
                waits += round_waits
                tasks += task_waits
                print(
                    f"round {round_ + 1}: {len(round_waits)} call(s) and {len(task_waits)} "
                    f"workflow task(s) were with the dead worker; all {len(handles)} cases "
                    f"done {finished:.1f} s after the kill"
                )
            for kind, found in sorted(by_kind.items()):
                print(
                    f"  {kind.removeprefix('TIMEOUT_TYPE_').lower()}: {len(found)}, "
                    f"median {statistics.median(found):.1f} s, max {max(found):.1f} s"
                )
            for what, found in (("calls", waits), ("workflow tasks", tasks)):
                if found:
                    print(
                        f"{what} with the dead worker were given up after: median "
                        f"{statistics.median(found):.1f} s, max {max(found):.1f} s "
                        f"({len(found)})"
                    )
            payments = await asyncio.to_thread(paid_keys, data / "adapters.sqlite")
            once = len(payments) == len(set(payments)) == args.cases * args.rounds
            print(
                f"payments: {len(payments)} for {args.cases * args.rounds} cases, "
                + ("each paid exactly once" if once else "NOT each paid exactly once")
            )
            report = {
                "mode": "replace" if args.replace else "standby",
                "calls_s": sorted(waits),
                "workflow_tasks_s": sorted(tasks),
                "paid_once": once,
            }
            out = Path("bench-kill-replace.json" if args.replace else "bench-kill.json")
            await asyncio.to_thread(out.write_text, json.dumps(report) + "\n")


if __name__ == "__main__":
    asyncio.run(main())
