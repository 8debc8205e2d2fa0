"""First contact under open-loop arrivals: new cases at a fixed rate, whatever the system does.

    python -m bench.arrivals [--rates 1,5,10] [--seconds 20] [--slow-s 6]

A closed-loop benchmark (`bench.cases`) waits for a case to finish before it starts another,
so it cannot fall behind; real tickets arrive on their own clock. Here each row starts S5
cases at a fixed rate for a fixed time on the embedded default (dev server on a WAL-mode SQLite
file, one worker), and reads from each case's history when its apology was delivered: the
time from the ticket to the first contact. A row keeps up when the cases started on schedule
and all finished. The last row repeats the highest rate with slow providers (every product and
payment call takes `--slow-s` seconds: at 10 cases/s that is more calls at once than a worker
has slots), to show the apology does not wait behind slower work.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import platform
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle

from bench.cases import TICKET
from bench.common import cpu_model, dev_server, write_report
from makegood import logsetup
from makegood.adapters.wiring import configured_adapters
from makegood.cases import open_case
from makegood.domain import calls
from makegood.domain.ticket import Ticket
from makegood.privacy.keys import KeyRing
from makegood.registry import build_worker
from makegood.settings import Settings, load_playbooks

COMPLETED = EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED
SCHEDULED = EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED


class Slow:
    """A provider whose every call takes `seconds` longer: a slow product or payment API."""

    def __init__(self, inner: Any, seconds: float) -> None:
        self._inner, self._seconds = inner, seconds

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._inner, name)
        if not callable(method):
            return method

        async def slowly(*args: Any, **kwargs: Any) -> Any:
            await asyncio.sleep(self._seconds)
            return await method(*args, **kwargs)

        return slowly


@dataclasses.dataclass
class Arrival:
    ticket_at: float  # wall clock, seconds since the epoch, when the ticket was handed in
    handle: WorkflowHandle[Any, Any] | None = None
    late_s: float = 0.0  # how far behind its schedule the case was started


async def first_contact_s(arrival: Arrival) -> tuple[float, float]:
    """Seconds from the ticket to the apology's delivery, and to the case's end, from history:
    the first message a case sends is its apology."""
    assert arrival.handle is not None
    history = await arrival.handle.fetch_history()
    sends = {
        e.event_id
        for e in history.events
        if e.event_type == SCHEDULED
        and e.activity_task_scheduled_event_attributes.activity_type.name == calls.SEND_MESSAGE.name
    }
    apology = next(
        e
        for e in history.events
        if e.event_type == COMPLETED
        and e.activity_task_completed_event_attributes.scheduled_event_id in sends
    )
    end = history.events[-1]
    return (
        apology.event_time.ToMicroseconds() / 1e6 - arrival.ticket_at,
        end.event_time.ToMicroseconds() / 1e6 - arrival.ticket_at,
    )


async def arrivals(
    rate: float, seconds: float, start: Callable[[int], Awaitable[WorkflowHandle[Any, Any]]]
) -> list[Arrival]:
    """Start a case every 1/rate seconds for `seconds`, never waiting for one to finish."""
    count = round(rate * seconds)
    begun = time.perf_counter()
    out: list[Arrival] = []

    async def one(i: int) -> None:
        due = begun + i / rate
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        arrival = Arrival(ticket_at=time.time(), late_s=max(0.0, time.perf_counter() - due))
        arrival.handle = await start(i)
        out.append(arrival)

    await asyncio.gather(*(one(i) for i in range(count)))
    return out


def quantile(values: list[float], q: int) -> float:
    return (
        statistics.quantiles(values, n=100, method="inclusive")[q - 1]
        if len(values) > 1
        else values[0]
    )


async def row(
    name: str, rate: float, seconds: float, start: Callable[[int], Awaitable[Any]]
) -> dict[str, Any]:
    t0 = time.perf_counter()
    started = await arrivals(rate, seconds, start)
    results = await asyncio.wait_for(
        asyncio.gather(*(a.handle.result() for a in started if a.handle)), timeout=600
    )
    wall = time.perf_counter() - t0
    timings = [await first_contact_s(a) for a in started]
    contact = [c for c, _ in timings]
    done = [d for _, d in timings]
    late = max(a.late_s for a in started)
    figures = {
        "rate": rate,
        "cases": len(started),
        "finished": len(results),
        "achieved_per_s": round(len(started) / seconds, 2),
        "latest_start_s": round(late, 3),
        "first_contact_p50_ms": round(quantile(contact, 50) * 1000),
        "first_contact_p95_ms": round(quantile(contact, 95) * 1000),
        "first_contact_max_ms": round(max(contact) * 1000),
        "resolved_p95_s": round(quantile(done, 95), 2),
        "drained_s": round(wall - (len(started) - 1) / rate, 1),  # after the last arrival
    }
    figures["keeps_up"] = late < 1.0 and figures["first_contact_p95_ms"] < 1000
    print(
        f"{name:<26} {rate:>5.0f} {len(started):>6} {late * 1000:>9.0f} "
        f"{figures['first_contact_p50_ms']:>8} {figures['first_contact_p95_ms']:>8} "
        f"{figures['first_contact_max_ms']:>8} {figures['resolved_p95_s']:>10} "
        f"{'yes' if figures['keeps_up'] else 'NO':>6}",
        flush=True,
    )
    return figures


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="1,5,10")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--slow-s", type=float, default=6.0)
    parser.add_argument("--json", type=Path, default=Path("bench-arrivals.json"))
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    logsetup.configure("console", "WARNING")
    rows: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        async with await dev_server(data, KeyRing.generate(source="bench")) as env:
            client: Client = env.client
            settings = Settings(data_dir=data)
            playbooks = load_playbooks()
            run = uuid.uuid4().hex[:6]

            def starter(prefix: str, queue: str) -> Callable[[int], Awaitable[Any]]:
                async def start(i: int) -> Any:
                    # The seeded customer and order (its owner, so each case is a whole S5):
                    # each case finds the ten before it, the look-up's worst case.
                    ticket = Ticket.model_validate({**TICKET, "id": f"A-{run}-{prefix}-{i}"})
                    opened = await open_case(
                        client, ticket, playbooks, task_queue=queue, ops_contact="ops@example.com"
                    )
                    return opened.handle

                return start

            print(
                f"machine: {cpu_model()}, {os.cpu_count()} cores, {platform.machine()}, "
                f"Python {platform.python_version()}; {args.seconds:.0f} s of arrivals per row"
            )
            print(
                f"{'run':<26} {'per s':>5} {'cases':>6} {'late ms':>9} {'p50 ms':>8} "
                f"{'p95 ms':>8} {'max ms':>8} {'done p95 s':>10} {'keeps':>6}"
            )
            async with configured_adapters(settings) as adapters:
                async with build_worker(client, "arrivals", adapters.activities()):
                    await row("warm-up", 5, 2, starter("warm", "arrivals"))
                    for rate in rates:
                        name = f"S5 cases at {rate:g}/s"
                        rows[name] = await row(
                            name, rate, args.seconds, starter(f"r{rate:g}", "arrivals")
                        )
                slow = dataclasses.replace(
                    adapters,
                    product=Slow(adapters.product, args.slow_s),
                    payments=Slow(adapters.payments, args.slow_s),
                )
                async with build_worker(client, "arrivals-slow", slow.activities()):
                    top = max(rates)
                    name = f"at {top:g}/s, providers +{args.slow_s:g} s"
                    slow_start = starter("slow", "arrivals-slow")
                    rows[name] = await row(name, top, args.seconds, slow_start)
    write_report(args.json, {"seconds": args.seconds, "rows": rows})


if __name__ == "__main__":
    asyncio.run(main())
