"""Metrics and traces: after S5 and S1 the worker's Prometheus endpoint says what the cases did,
provider failures are counted by provider and class, and a case's activities are spans."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from makegood.adapters.local.store import LocalStore
from makegood.domain import calls
from makegood.domain.contract import first_contact_queue
from makegood.observe import metrics
from makegood.observe.metrics import MetricsInterceptor
from makegood.observe.readiness import check
from makegood.observe.telemetry import tracing
from makegood.registry import WORKFLOWS, build_worker, case_workers, workflow_runner
from makegood.visibility import ensure_search_attributes
from tests.api_harness import free_port
from tests.fakes import Fakes
from tests.fast.driver import Runner
from tests.harness import CONVERTER, ROOT, binary, local_adapters, start, ticket
from tests.stories import s1_to_the_close


@pytest.fixture
async def metered() -> AsyncIterator[tuple[WorkflowEnvironment, str]]:
    """A time-skipping server whose client (and so its workers) reports to a Prometheus
    endpoint of its own."""
    port = free_port()
    runtime = Runtime(
        telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=f"127.0.0.1:{port}"))
    )
    async with await WorkflowEnvironment.start_time_skipping(
        data_converter=CONVERTER,
        test_server_existing_path=binary("temporal-test-server"),
        runtime=runtime,
    ) as env:
        await ensure_search_attributes(env.client)
        yield env, f"http://127.0.0.1:{port}/metrics"


async def scrape(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every Makegood sample, by name and the labels that matter here."""
    async with httpx.AsyncClient() as http:
        text = (await http.get(url)).text
    keep = {"kind", "resolution", "provider", "class", "currency", "reason"}
    found: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.startswith(metrics.PREFIX):
                labels = frozenset((k, v) for k, v in sample.labels.items() if k in keep)
                key = (sample.name, labels)
                found[key] = found.get(key, 0) + sample.value
    return found


def value(found: dict[Any, float], name: str, **labels: str) -> float:
    """The sum over samples of `name` whose labels include `labels`."""
    want = set(labels.items())
    return sum(v for (n, ls), v in found.items() if n == name and want <= ls)


async def test_metrics_after_s5_and_s1_are_what_the_cases_did(
    metered: tuple[WorkflowEnvironment, str], store: LocalStore, task_queue: str
) -> None:
    env, url = metered
    async with build_worker(env.client, task_queue, local_adapters(store).activities()):
        s5 = await start(env.client, store, ticket("s5-wrong-drink.json"), task_queue, env=env)
        s5_outcome = await s5.result()
        after_s5 = await scrape(url)

        # Opened at the server's time, which S5's follow-up wait moved days ahead.
        s1 = ticket("s1-missing-car.json", reported_at=await env.get_current_time())
        case = await start(env.client, store, s1, task_queue, env=env)
        await s1_to_the_close(case)
        s1_outcome = await case.result()
        after_s1 = await scrape(url)

    assert value(after_s5, metrics.OPENED + "_total") == 1
    assert value(after_s5, metrics.CLOSED + "_total", resolution="resolved") == 1
    assert value(after_s5, metrics.PAYMENTS + "_total", kind="refund") == 1
    assert value(after_s5, metrics.PAID + "_total", kind="refund", currency="USD") == 480
    assert value(after_s5, metrics.FIRST_CONTACT + "_count") == 1
    assert value(after_s5, metrics.RESOLUTION + "_count") == 1

    assert value(after_s1, metrics.OPENED + "_total") == 2
    assert value(after_s1, metrics.CLOSED + "_total", resolution="resolved") == 2
    assert value(after_s1, metrics.CLOSED + "_total", kind="car_missing") == 1
    # S1's 42.00 refund is paid in two parts: the 21.00 limit at once, the rest once approved.
    assert value(after_s1, metrics.PAYMENTS + "_total", kind="refund") == 3
    assert value(after_s1, metrics.PAYMENTS + "_total", kind="reimbursement") == 2
    assert value(after_s1, metrics.PAID + "_total", kind="refund") == 480 + 4200
    assert value(after_s1, metrics.PAID + "_total", kind="reimbursement") == 1850 + 2375
    assert value(after_s1, metrics.RESOLUTION + "_count") == 2
    # S1 waited a day for the follow-up: its resolution took at least that long.
    assert value(after_s1, metrics.RESOLUTION + "_sum") >= timedelta(days=1).total_seconds() * 1e3
    assert value(after_s1, metrics.FAILURES + "_total") == 0
    # Every series the Grafana dashboard charts is one this worker exports (ours that nothing
    # has counted yet, a re-open or a provider failure, by their declared names).
    m = metrics
    async with httpx.AsyncClient() as http:
        exported = {
            sample.name
            for family in text_string_to_metric_families((await http.get(url)).text)
            for sample in family.samples
        }
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "makegood.json").read_text())
    charted = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\b(?:makegood|temporal)_\w+", target["expr"])
    }
    counters = (m.OPENED, m.CLOSED, m.REOPENED, m.ESCALATED, m.PAYMENTS, m.PAID, m.FAILURES)
    declared = {c + "_total" for c in counters} | {
        h + suffix for h in (m.FIRST_CONTACT, m.RESOLUTION) for suffix in ("_bucket", "_sum")
    }
    ours = {n for n in charted if n.startswith(m.PREFIX)}
    assert ours == declared - {m.FIRST_CONTACT + "_sum", m.RESOLUTION + "_sum"}
    assert ours & exported >= {m.OPENED + "_total", m.RESOLUTION + "_bucket"}
    sdk = charted - ours  # the SDK's own, as this worker exports them
    assert len(sdk) >= 3 and sdk <= exported, sorted(sdk - exported)

    # As many escalations as the cases recorded (skipped time can breach an SLA in S1).
    recorded = s5_outcome.escalations + s1_outcome.escalations
    assert value(after_s1, metrics.ESCALATED + "_total") == recorded


async def test_provider_failures_are_counted_by_provider_and_class(
    metered: tuple[WorkflowEnvironment, str],
) -> None:
    env, url = metered
    fakes = Fakes()
    fakes.on(calls.MAKE_PAYMENT).fail(2, "gateway timeout")
    fakes.on(calls.REMAKE_ORDER).fail_permanently("the kitchen is closed")
    runner = Runner(env, fakes)
    async with case_workers(
        env.client, runner.task_queue, fakes.activities(), interceptors=[MetricsInterceptor()]
    ):
        case = await runner.open("s5-wrong-drink.json")
        await case.result()
    found = await scrape(url)
    assert value(found, metrics.FAILURES + "_total", provider="payments", **{"class": "transient"})
    assert (
        value(found, metrics.FAILURES + "_total", provider="payments", **{"class": "transient"})
        == 2
    )
    assert (
        value(found, metrics.FAILURES + "_total", provider="product", **{"class": "refused"}) == 1
    )
    assert value(found, metrics.PAYMENTS + "_total", kind="refund") == 1  # once, after retries
    # The remake was refused: the case escalated to a person.
    assert value(found, metrics.ESCALATED + "_total", reason="escalation") >= 1


async def test_ready_means_the_worker_is_polling_its_task_queue(
    metered: tuple[WorkflowEnvironment, str], store: LocalStore, task_queue: str
) -> None:
    env, url = metered
    assert await check(url, task_queue) == (
        f"the worker is not polling task queue {task_queue!r} (yet)"
    )
    async with build_worker(env.client, task_queue, local_adapters(store).activities()):
        for _ in range(100):  # the pollers start a moment after the worker
            if await check(url, task_queue) is None:
                break
            await asyncio.sleep(0.05)
        assert await check(url, task_queue) is None
        assert await check(url, "another-queue") is not None
    # The case queue's worker alone, without its first-contact lane: not ready.
    lane = first_contact_queue(task_queue)
    async with Worker(
        env.client,
        task_queue=task_queue,
        workflows=list(WORKFLOWS),
        workflow_runner=workflow_runner(),
    ):
        for _ in range(100):
            if await check(url, task_queue) != (
                f"the worker is not polling task queue {task_queue!r} (yet)"
            ):
                break
            await asyncio.sleep(0.05)
        assert await check(url, task_queue) == (
            f"the worker is not polling the first-contact lane {lane!r} (yet)"
        )
    port = free_port()
    gone = await check(f"http://127.0.0.1:{port}/metrics", task_queue)
    assert gone is not None and gone.startswith("no metrics at")

    # The command, as compose's health check runs it: exit 0 or 3.
    assert await ready_command(url, task_queue) == (3, "not polling")
    async with build_worker(env.client, task_queue, local_adapters(store).activities()):
        for _ in range(100):
            if await check(url, task_queue) is None:
                break
            await asyncio.sleep(0.05)
        assert await ready_command(url, task_queue) == (0, f"ready: polling {task_queue!r}")


async def ready_command(url: str, task_queue: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "makegood.cli.main",
        "ready",
        "--metrics",
        url,
        env={**os.environ, "MAKEGOOD_TASK_QUEUE": task_queue},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    said = (out or err).decode().strip()
    if "not polling" in said:
        said = "not polling"
    return proc.returncode or 0, said


async def test_a_cases_workflow_and_activities_are_traced(
    store: LocalStore, task_queue: str
) -> None:
    exported = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exported))
    async with await WorkflowEnvironment.start_time_skipping(
        data_converter=CONVERTER,
        test_server_existing_path=binary("temporal-test-server"),
    ) as env:
        await ensure_search_attributes(env.client)
        config = env.client.config()
        config["interceptors"] = tracing(provider)
        client = type(env.client)(**config)
        async with build_worker(client, task_queue, local_adapters(store).activities()):
            case = await start(client, store, ticket("s5-wrong-drink.json"), task_queue, env=env)
            await case.result()
    names = [span.name for span in exported.get_finished_spans()]
    assert f"StartWorkflow:{WORKFLOWS[0].__name__}" in names
    assert f"RunWorkflow:{WORKFLOWS[0].__name__}" in names
    for activity in (calls.SEND_MESSAGE, calls.REMAKE_ORDER, calls.MAKE_PAYMENT):
        assert f"RunActivity:{activity.name}" in names, activity.name
    run = next(s for s in exported.get_finished_spans() if s.name.startswith("RunWorkflow"))
    assert run.attributes is not None and run.attributes["temporalWorkflowID"] == case.id
