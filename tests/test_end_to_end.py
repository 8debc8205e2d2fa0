"""End to end on the real `temporal` dev server: the worker and the CLI as separate processes.

These drive Makegood exactly as an operator does (`makegood open`, `answer`, `claim`,
`approve`), read the local providers' SQLite file the worker wrote, and kill the worker
mid-case to show a case survives it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowHistory
from temporalio.testing import WorkflowEnvironment

from makegood.adapters.local.store import LocalStore
from makegood.cases import case_status
from makegood.domain.case import CaseStatus
from tests.api_harness import free_port
from tests.harness import CONVERTER, ROOT, TICKETS, binary, temporal_env


@dataclass
class Result:
    code: int
    out: str
    err: str


@dataclass
class Deployment:
    """A worker process and the environment the CLI runs with, sharing one data folder."""

    client: Client
    env: dict[str, str]
    data: Path
    worker: asyncio.subprocess.Process | None = None

    async def start_worker(self, *args: str) -> None:
        self.worker = await asyncio.create_subprocess_exec(
            sys.executable,
            str(ROOT / "worker.py"),
            *args,
            env=self.env,
            cwd=ROOT,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )

    async def stop_worker(self, sig: signal.Signals = signal.SIGTERM) -> tuple[int, str]:
        assert self.worker is not None and self.worker.stderr is not None
        self.worker.send_signal(sig)
        async with asyncio.timeout(30):
            logs = (await self.worker.stderr.read()).decode()
            code = await self.worker.wait()
        self.worker = None
        return code, logs

    async def cli(self, *args: str, stdin: str | None = None) -> Result:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(ROOT / "starter.py"),
            *args,
            env=self.env,
            cwd=ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await proc.communicate(stdin.encode() if stdin else None)
        assert proc.returncode is not None
        return Result(proc.returncode, out.decode(), err.decode())

    async def ok(self, *args: str) -> str:
        result = await self.cli(*args)
        assert result.code == 0, f"makegood {' '.join(args)}: {result.err}"
        return result.out

    async def until(self, case_id: str, predicate: Any, what: str) -> CaseStatus:
        async with asyncio.timeout(30):
            while True:
                try:
                    status = await case_status(self.client, case_id)
                    if predicate(status):
                        return status
                except Exception:  # not started yet, or no worker to answer the query
                    pass
                await asyncio.sleep(0.05)
        raise AssertionError(what)  # pragma: no cover

    async def question(self, case_id: str, qid: str) -> CaseStatus:
        return await self.until(
            case_id, lambda s: s.question is not None and s.question.id == qid, qid
        )

    async def rows(self, sql: str, *params: Any) -> list[dict[str, Any]]:
        store = await LocalStore(self.data / "adapters.sqlite").open()
        try:
            return await store.rows(sql, *params)
        finally:
            await store.close()


@contextlib.asynccontextmanager
async def deployed(data: Path, **environ: str) -> AsyncIterator[Deployment]:
    """A dev server and a worker process on it; `environ` adds MAKEGOOD_* settings."""
    port = free_port()
    async with await WorkflowEnvironment.start_local(
        port=port,
        data_converter=CONVERTER,
        dev_server_existing_path=binary("temporal"),
        dev_server_log_level="error",
    ) as env:
        environ = temporal_env(
            f"127.0.0.1:{port}",
            MAKEGOOD_DATA_DIR=str(data),
            MAKEGOOD_TASK_QUEUE=f"e2e-{port}",
            MAKEGOOD_LOG_FORMAT="json",
            **environ,
        )
        dep = Deployment(env.client, environ, data)
        await dep.start_worker()
        try:
            yield dep
        finally:
            if dep.worker is not None:
                await dep.stop_worker()


@pytest.fixture
async def deployment(tmp_path: Path) -> AsyncIterator[Deployment]:
    async with deployed(tmp_path) as dep:
        yield dep


async def test_s5_through_the_cli_with_duplicates_and_bad_tickets_refused(
    deployment: Deployment,
) -> None:
    d = deployment
    s5 = str(TICKETS / "s5-wrong-drink.json")
    assert (await d.ok("open", s5)).startswith("opened case-T-3001 for ticket T-3001")
    again = await d.cli("open", "--json", s5)
    assert again.code == 0 and json.loads(again.out)["created"] is False

    bad = json.loads((TICKETS / "s5-wrong-drink.json").read_text())
    bad["id"] = "T-BAD"
    bad["incident"]["paid"]["amount"] = "-4.80"
    bad["incident"]["kind"] = "cold_soup"
    refused = await d.cli("open", "-", stdin=json.dumps(bad))
    assert refused.code == 2
    assert "incident.kind: unknown value 'cold_soup'; expected 'car_missing'" in refused.err
    assert "nothing was started" in refused.err

    status = await d.until("case-T-3001", lambda s: s.stage == "closed", "closed")
    assert status.resolution == "resolved"
    cases = json.loads(await d.ok("list", "--json"))
    assert [c["case_id"] for c in cases] == ["case-T-3001"]
    assert cases[0]["status"] == "completed"

    payments = await d.rows("SELECT key, kind, amount FROM payments")
    assert payments == [{"key": "case-T-3001:refund", "kind": "refund", "amount": "4.80"}]
    messages = await d.rows("SELECT key, channel FROM messages ORDER BY sent_at")
    assert [(m["key"], m["channel"]) for m in messages] == [
        ("case-T-3001:ack:sms", "sms"),
        ("case-T-3001:confirm:sms", "sms"),
    ]
    outcomes = await d.rows("SELECT case_id, outcome FROM outcomes")
    assert [o["case_id"] for o in outcomes] == ["case-T-3001"]
    assert json.loads(outcomes[0]["outcome"])["resolution"] == "resolved"

    text = await d.ok("status", "case-T-3001")
    assert "stage: closed  resolution: resolved" in text and "4.80 USD" in text


async def test_s1_through_the_cli_survives_a_killed_worker(deployment: Deployment) -> None:
    d, case = deployment, "case-T-1001"
    await d.ok("open", str(TICKETS / "s1-missing-car.json"))
    await d.question(case, "locate-CAR-1-1")
    await d.ok("answer", case, "locate-CAR-1-1", "not_found")
    await d.question(case, "locate-CAR-1-2")

    # The worker dies without any chance to clean up; a new one picks the case up.
    code, _ = await d.stop_worker(signal.SIGKILL)
    assert code == -signal.SIGKILL
    await d.start_worker()

    await d.ok("answer", case, "locate-CAR-1-2", "not_found")
    await d.question(case, "pickup-1")
    await d.ok("claim", case, "taxi-1", "18.50", "Taxi to the second car")
    await d.ok("answer", case, "pickup-1", "missing")
    for qid in ("locate-CAR-2-1", "locate-CAR-2-2"):
        await d.question(case, qid)
        await d.ok("answer", case, qid, "not_found")
    await d.until(case, lambda s: s.approval is not None, "rebook approval")
    wrong_role = await d.cli("approve", case, "rebook-2", "--as", "agent:sam")
    assert wrong_role.code == 1 and "approval decisions come from a manager" in wrong_role.err
    await d.ok("approve", case, "rebook-2", "--as", "manager:mia")
    await d.question(case, "pickup-2")
    await d.ok("claim", case, "taxi-2", "23.75", "Taxi to the third car")
    await d.ok("answer", case, "pickup-2", "picked_up")
    await d.question(case, "claims")
    await d.ok("answer", case, "claims", "done")
    status = await d.until(case, lambda s: s.approval is not None, "compensation approval")
    assert status.approval is not None and str(status.approval.amount) == "84.25 USD"
    await d.ok("approve", case, "compensation", "--as", "manager:mia")
    status = await d.until(case, lambda s: s.stage == "follow_up", "follow-up")
    assert status.follow_up_at is not None

    late = await d.cli("claim", case, "taxi-3", "9.00", "Another taxi")
    assert late.code == 1 and "expense claims are closed" in late.err

    payments = await d.rows("SELECT key, amount FROM payments ORDER BY key")
    assert payments == [
        {"key": f"{case}:refund", "amount": "42.00"},
        {"key": f"{case}:reimburse:taxi-1", "amount": "18.50"},
        {"key": f"{case}:reimburse:taxi-2", "amount": "23.75"},
    ]
    assert sum(Decimal(p["amount"]) for p in payments) == Decimal("84.25")
    keys = [m["key"] for m in await d.rows("SELECT key FROM messages")]
    assert len(keys) == len(set(keys))
    assert sum(k.endswith(":confirm:email") for k in keys) == 1
    bookings = await d.rows("SELECT vehicle, status FROM bookings ORDER BY created_at")
    assert [(b["vehicle"], b["status"]) for b in bookings] == [
        ("CAR-1", "released"),
        ("CAR-2", "released"),
        ("CAR-3", "active"),
    ]


async def test_embedded_mode_stops_cleanly_and_keeps_its_cases(tmp_path: Path) -> None:
    port, ui_port = free_port(), free_port()
    environ = temporal_env(
        f"127.0.0.1:{port}",
        MAKEGOOD_UI_PORT=str(ui_port),
        MAKEGOOD_API_PORT=str(free_port()),
        MAKEGOOD_DATA_DIR=str(tmp_path),
        MAKEGOOD_LOG_FORMAT="json",
    )
    client_box: list[Client] = []

    async def embedded() -> Deployment:
        dep = Deployment(client=None, env=environ, data=tmp_path)  # type: ignore[arg-type]
        await dep.start_worker("--embedded")
        async with asyncio.timeout(60):
            while True:
                try:
                    dep.client = await Client.connect(f"127.0.0.1:{port}", data_converter=CONVERTER)
                    break
                except RuntimeError:
                    await asyncio.sleep(0.2)
        client_box.append(dep.client)
        return dep

    first = await embedded()
    await first.ok("open", str(TICKETS / "s1-missing-car.json"))
    await first.question("case-T-1001", "locate-CAR-1-1")
    code, logs = await first.stop_worker(signal.SIGINT)
    assert code == 0, logs
    events = [
        e["event"]
        for e in map(json.loads, filter(lambda ln: ln.startswith("{"), logs.splitlines()))
        if e.get("logger", "").startswith("makegood")
    ]
    assert events[-3:] == ["worker_stopping", "worker_stopped", "dev_server_stopped"]
    assert (tmp_path / "temporal.sqlite").exists()

    second = await embedded()
    try:
        status = await second.question("case-T-1001", "locate-CAR-1-1")
        assert status.stage == "diagnose"
        await second.ok("answer", "case-T-1001", "locate-CAR-1-1", "found")
        await second.until("case-T-1001", lambda s: s.stage == "follow_up", "follow-up")
    finally:
        await second.stop_worker(signal.SIGINT)


async def test_s3_customer_is_contacted_within_30_seconds_and_a_replacement_ordered_once(
    deployment: Deployment,
) -> None:
    d = deployment
    filed = datetime.now(UTC)
    await d.ok("open", str(TICKETS / "s3-ereader.json"))
    status = await d.until("case-T-3301", lambda s: s.stage == "follow_up", "follow-up")

    (ack,) = await d.rows(
        "SELECT key, recipient, subject, body, sent_at FROM messages "
        "WHERE key = 'case-T-3301:ack:email'"
    )
    first_contact = datetime.fromisoformat(ack["sent_at"])
    seconds = (first_contact - filed).total_seconds()
    print(f"\nS3: first contact {seconds:.2f} s after the ticket was filed through the CLI")
    assert 0 < seconds < 30
    assert status.first_contact_at is not None
    assert ack["recipient"] == "tomasz.nowak@example.com"
    assert ack["body"].startswith("Dear Tomasz,") and "EREADER-7" in ack["body"]

    replacements = await d.rows("SELECT action, detail FROM product_actions")
    assert replacements == [
        {"action": "replacement", "detail": "EREADER-7 shipped to replace EREADER-7"}
    ]
    assert await d.rows("SELECT id FROM payments") == []
    confirmation = await d.rows("SELECT body FROM messages WHERE key LIKE '%:confirm:email'")
    assert len(confirmation) == 1 and "EREADER-7" in confirmation[0]["body"]


async def test_s6_telephony_status_reported_through_the_cli(deployment: Deployment) -> None:
    d, case = deployment, "case-T-6001"
    await d.ok("open", str(TICKETS / "s6-support-call.json"))
    status = await d.until(
        case, lambda s: s.callback is not None and s.callback.state == "waiting", "call booked"
    )
    assert status.callback is not None
    call_id = status.callback.attempts[0].call_id
    assert call_id is not None
    text = await d.ok("status", case)
    assert f"makegood call-status {case} {call_id} completed|dropped|no_answer" in text

    await d.ok("call-status", case, call_id, "completed", "--event-id", "tel-1")
    status = await d.until(case, lambda s: s.stage == "follow_up", "follow-up")
    again = await d.ok("call-status", case, call_id, "completed", "--event-id", "tel-1")
    assert "already finished; report ignored" in again
    assert status.callback is not None and status.callback.state == "completed"
    assert status.callback.ignored_callbacks == []
    unknown = await d.cli("call-status", "case-nope", call_id, "dropped")
    assert unknown.code == 1 and "case case-nope has no call-back" in unknown.err
    calls = await d.rows("SELECT key, phone FROM calls")
    assert calls == [{"key": f"{case}:callback:call:1", "phone": "+15550100060"}]


async def test_operators_find_stuck_cases_by_stage_and_breach_and_act_on_them(
    deployment: Deployment,
    tmp_path: Path,
) -> None:
    d = deployment
    strict = tmp_path / "strict.toml"  # default playbooks, car_missing's remedy SLA one second
    strict.write_text(
        (ROOT / "makegood" / "playbooks" / "default.toml")
        .read_text()
        .replace(
            "[playbooks.car_missing.sla]\n",
            '[playbooks.car_missing.sla]\nremedy_offer = "PT1S"\n# ',
            1,
        )
    )
    d.env["MAKEGOOD_PLAYBOOKS"] = str(strict)
    await d.ok("open", str(TICKETS / "s1-missing-car.json"))
    await d.ok("open", str(TICKETS / "s5-wrong-drink.json"))
    await d.until("case-T-1001", lambda s: any(c.breached_at for c in s.slas), "breach")
    await d.until("case-T-3001", lambda s: s.stage == "closed", "closed")

    async def listed(*args: str, want: int = 1) -> list[str]:
        """Visibility follows a case closely, not instantly: wait (bounded) for `want` rows."""
        for _ in range(50):
            rows = [r["case_id"] for r in json.loads(await d.ok("list", "--json", *args))]
            if len(rows) >= want:
                break
            await asyncio.sleep(0.1)
        return sorted(rows)

    assert await listed("--sla", "breached") == ["case-T-1001"]
    assert await listed("--stage", "diagnose") == ["case-T-1001"]
    assert await listed("--stage", "closed") == ["case-T-3001"]
    assert await listed("--stage", "remedy", want=0) == []
    table = await d.ok("list", "--open")
    assert "case-T-1001" in table and "breached" in table and "case-T-3001" not in table
    bad = await d.cli("list", "--stage", "limbo")
    assert bad.code == 2 and "invalid choice: 'limbo'" in bad.err

    await d.ok("assign", "case-T-1001", "agent:sam", "--as", "manager:mia")
    await d.ok("cancel", "case-T-1001", "member found another car", "--as", "agent:sam")
    status = await d.until("case-T-1001", lambda s: s.stage == "closed", "cancelled")
    assert status.resolution == "cancelled" and status.owner == "agent:sam"
    assert await listed("--stage", "closed", want=2) == ["case-T-1001", "case-T-3001"]
    released = await d.rows("SELECT status FROM bookings WHERE id = 'R-1001'")
    assert released == [{"status": "released"}]


async def test_auditors_export_replay_timeline_and_reconcile_from_the_server(
    deployment: Deployment,
    tmp_path: Path,
) -> None:
    d = deployment
    await d.ok("open", str(TICKETS / "s5-wrong-drink.json"))
    await d.ok("open", str(TICKETS / "s1-missing-car.json"))  # still running: not exported
    await d.until("case-T-3001", lambda s: s.stage == "closed", "closed")
    await d.question("case-T-1001", "locate-CAR-1-1")

    replayed = await d.ok("replay", "case-T-3001", "case-T-1001", "-v")
    assert "2 of 2 histories reproduced" in replayed
    timeline = await d.ok("timeline", "case-T-3001")
    assert "refund of 4.80 USD" in timeline and "case-T-3001:refund" in timeline
    balanced = await d.ok("reconcile")
    assert "1 payments in histories, 1 in the ledger, 0 difference(s)" in balanced

    archive = tmp_path / "archive"
    exported = await d.ok("export", str(archive))
    assert exported.startswith("1 closed workflow histories")
    manifest = json.loads((archive / "manifest.json").read_text())
    assert [e["workflow_id"] for e in manifest["entries"]] == ["case-T-3001"]
    # The same format as the temporal CLI's own export.
    proc = await asyncio.create_subprocess_exec(
        binary("temporal"),
        "workflow",
        "show",
        "--output",
        "json",
        "-w",
        "case-T-3001",
        "--address",
        d.env["TEMPORAL_ADDRESS"],
        stdout=asyncio.subprocess.PIPE,
    )
    cli_json, _ = await proc.communicate()
    ours = WorkflowHistory.from_json("case-T-3001", (archive / "case-T-3001.json").read_text())
    theirs = WorkflowHistory.from_json("case-T-3001", cli_json.decode())
    assert ours.events == theirs.events
    offline = await d.ok("replay", "--dir", str(archive))
    assert "1 of 1 histories reproduced" in offline

    store = await LocalStore(d.data / "adapters.sqlite").open()
    try:
        await store.conn.execute("UPDATE payments SET amount = '9.99'")
    finally:
        await store.close()
    unbalanced = await d.cli("reconcile", "case-T-3001")
    assert unbalanced.code == 1
    assert (
        "amount_mismatch" in unbalanced.out
        and "history says 4.80 USD, the ledger 9.99 USD" in unbalanced.out
    )
