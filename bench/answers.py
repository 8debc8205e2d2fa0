"""A customer's answer through their link, against the same answer through the API's route.

    python -m bench.answers [--cases 40]

Each of `--cases` S1 cases (the embedded default: dev server, one worker, the intake API on
loopback) waits at its first question, whose email carries the customer's link. Half are
answered the customer's way: the link's page posts the tapped answer (`POST /c/<token>/answer`,
which checks the link, asks the case whether the question is still open, sends the update and
renders the thank-you with the case as it now stands). The other half, the baseline, are
answered by an agent's token through `POST /cases/<id>/answers` (the update alone). The two
alternate, so drift hits both. Also shown: the time from opening a case to the email with the
link in the providers' ledger.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from bench.common import dev_server, machine, write_report
from makegood import logsetup
from makegood.adapters.local.store import LocalStore
from makegood.adapters.wiring import configured_adapters
from makegood.api.app import create_app
from makegood.cases import case_status, open_case
from makegood.domain.ticket import Ticket
from makegood.privacy.keys import KeyRing
from makegood.registry import build_worker
from makegood.settings import Settings, load_playbooks

ROOT = Path(__file__).resolve().parent.parent
S1 = json.loads((ROOT / "examples" / "tickets" / "s1-missing-car.json").read_text())
QUESTION = "locate-CAR-1-1"
PORT = 28417


async def emailed_link(store: LocalStore, case_id: str) -> str:
    key = f"{case_id}:ask:{QUESTION}:email"
    while True:
        rows = await store.rows("SELECT body FROM messages WHERE key = ?", key)
        if rows:
            return str(rows[0]["body"]).strip().splitlines()[-1]
        await asyncio.sleep(0.005)


def figures(ms: list[float]) -> dict[str, float]:
    ordered = sorted(ms)
    return {
        "p50_ms": round(statistics.median(ordered), 1),
        "p95_ms": round(ordered[max(0, round(0.95 * len(ordered)) - 1)], 1),
        "max_ms": round(ordered[-1], 1),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=40)
    parser.add_argument("--json", type=Path, default=Path("bench-answers.json"))
    args = parser.parse_args()
    logsetup.configure("console", "WARNING")
    run = uuid.uuid4().hex[:6]
    emailed: list[float] = []
    timed: dict[str, list[float]] = {"link": [], "api": []}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        keys = KeyRing.generate(source="bench")
        async with await dev_server(data, keys, in_memory=True) as env:
            settings = Settings(data_dir=data, task_queue="answers", api_port=PORT)
            server = uvicorn.Server(
                uvicorn.Config(
                    create_app(settings, env.client),
                    host="127.0.0.1",
                    port=PORT,
                    log_level="warning",
                )
            )
            serving = asyncio.create_task(server.serve())
            async with (
                configured_adapters(settings) as adapters,
                build_worker(env.client, "answers", adapters.activities()),
                httpx.AsyncClient(base_url=f"http://127.0.0.1:{PORT}", timeout=30) as http,
            ):
                while True:
                    if server.started:
                        break
                    await asyncio.sleep(0.02)
                store = adapters.outcomes.store  # type: ignore[attr-defined]
                for n in range(args.cases + 2):  # the first two warm up, uncounted
                    ticket = Ticket.model_validate({**S1, "id": f"L-{run}-{n}"})
                    began = time.perf_counter()
                    opened = await open_case(
                        env.client,
                        ticket,
                        load_playbooks(),
                        task_queue="answers",
                        ops_contact="ops@example.com",
                    )
                    link = await emailed_link(store, opened.case_id)
                    mailed = time.perf_counter() - began
                    while True:  # the email goes out just before the question is open
                        if (await case_status(env.client, opened.case_id)).question:
                            break
                        await asyncio.sleep(0.005)
                    how = "link" if n % 2 == 0 else "api"
                    began = time.perf_counter()
                    if how == "link":
                        answered = await http.post(
                            link.removeprefix(str(http.base_url).rstrip("/")) + "/answer",
                            data={"choice": "not_found"},
                        )
                        answered.raise_for_status()
                        assert "we have your answer" in answered.text
                    else:
                        answered = await http.post(
                            f"/cases/{opened.case_id}/answers",
                            json={"question_id": QUESTION, "answer": "not_found"},
                            headers={"Authorization": "Bearer dev-agent-token"},
                        )
                        answered.raise_for_status()
                    if n >= 2:
                        timed[how].append(1000 * (time.perf_counter() - began))
                        emailed.append(1000 * mailed)
            server.should_exit = True
            await serving
    report: dict[str, Any] = {
        "cases": args.cases,
        "ticket_to_email_with_link": figures(emailed),
        "answer_through_the_link": figures(timed["link"]),
        "answer_through_the_api_route (baseline)": figures(timed["api"]),
    }
    link, api = report["answer_through_the_link"], report["answer_through_the_api_route (baseline)"]
    report["link_vs_api_p50"] = round(link["p50_ms"] / api["p50_ms"], 2)
    print(f"machine: {machine()}; {args.cases} S1 cases, half answered each way")
    print(f"{'':<40} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    for name in list(report)[1:4]:
        f = report[name]
        print(f"{name:<40} {f['p50_ms']:>8} {f['p95_ms']:>8} {f['max_ms']:>8}")
    print(f"the link's page takes {report['link_vs_api_p50']}x the API route's time (p50)")
    write_report(args.json, report)


if __name__ == "__main__":
    asyncio.run(main())
