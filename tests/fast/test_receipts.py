"""Receipts on the time-skipping server: a receipt claimed again under a new claim id, in the
same case or another case of the same customer, is refused or held per the playbook and paid
once; near duplicates are flagged; a retried registration never flags a claim as its own
duplicate. The providers are the fakes; the receipt index and store are the real ones."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from makegood.activities.receipts import ReceiptActivities
from makegood.adapters.blobs import FolderStore
from makegood.adapters.receipt_index import ReceiptIndex
from makegood.audit.timeline import timeline
from makegood.cases import Refused, send
from makegood.cli.render import render_status
from makegood.domain import calls
from makegood.domain.actions import Accepted, ExpenseClaim
from makegood.domain.money import Money
from makegood.domain.playbook import PlaybookSet
from makegood.domain.receipts import ClaimRegistration, ReceiptFindings, blob_key
from makegood.privacy.codec import decode_history
from makegood.registry import build_replayer, case_workers, workflow_runner
from tests.fakes import Fakes, World
from tests.fast.driver import Case, Runner, book, make_ticket
from tests.harness import CONVERTER, CUSTOMER

pytestmark = pytest.mark.fast

PDF = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
OTHER_PDF = PDF + b"% another taxi\n"


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def playbook(**compensation: Any) -> PlaybookSet:
    """S1 without the refund, so each claim is paid at once unless it must be approved."""
    return book("car_missing", compensation={"refund_paid": "never", **compensation})


class Receipts:
    """The real receipt index and store of a test, and a worker with them beside the fakes."""

    def __init__(self, folder: Path) -> None:
        self.store = FolderStore(folder / "receipts")
        self.index = ReceiptIndex(folder / "receipts.sqlite")
        self.activities = ReceiptActivities(self.index, self.store)
        self.lose_first_answer = False
        self.registrations = 0

    async def upload(self, data: bytes) -> str:
        await self.store.put(blob_key(digest(data)), data, "application/pdf")
        return digest(data)

    def activity(self) -> Any:
        @activity.defn(name=calls.REGISTER_CLAIM.name)
        async def register_claim(req: ClaimRegistration) -> ReceiptFindings:
            found = await self.activities.register_claim(req)
            self.registrations += 1
            if self.lose_first_answer and activity.info().attempt == 1:
                raise ApplicationError("the answer was lost on the way back")
            return found

        return register_claim


@pytest.fixture
def receipts(tmp_path: Path) -> Receipts:
    return Receipts(tmp_path)


@asynccontextmanager
async def running(env: WorkflowEnvironment, receipts: Receipts) -> AsyncIterator[Runner]:
    fakes = Fakes(World(), specs=[s for s in calls.ALL if s is not calls.REGISTER_CLAIM])
    runner = Runner(env, fakes)
    async with case_workers(
        env.client,
        runner.task_queue,
        [*fakes.activities(), receipts.activity()],
        runner=workflow_runner(strict=True),
    ):
        try:
            yield runner
        finally:
            await runner.close()


@pytest.fixture
async def run(server: WorkflowEnvironment, receipts: Receipts) -> AsyncIterator[Runner]:
    async with running(server, receipts) as runner:
        yield runner


async def claim(
    case: Case, claim_id: str, receipt: str | None, amount: str = "5.00", what: str = "Taxi"
) -> Accepted:
    return await send(
        case.env.client,
        case.id,
        ExpenseClaim(
            claim_id=claim_id,
            description=what,
            amount=Money.of(amount, "USD"),
            receipt=f"{claim_id}.pdf",
            receipt_sha256=receipt,
            by=CUSTOMER,
        ),
    )


async def to_the_claims(case: Case) -> None:
    for n in (1, 2):
        await case.answer(f"locate-CAR-1-{n}", "not_found")


async def claims_done(case: Case) -> None:
    await case.answer("pickup-1", "picked_up")
    await case.answer("claims", "done")


def reimbursements(fakes: Fakes) -> list[tuple[str | None, str]]:
    return [p for p in fakes.paid() if (p[0] or "").startswith("reimburse:")]


async def test_refused_in_the_same_case_names_the_first_claim_and_pays_once(
    run: Runner, receipts: Receipts
) -> None:
    case = await run.open(make_ticket("s1-missing-car.json"), playbook())
    await to_the_claims(case)
    r = await receipts.upload(PDF)
    await claim(case, "taxi-1", r)
    with pytest.raises(Refused) as refused:
        await claim(case, "taxi-2", r, what="Taxi again")
    assert str(refused.value).startswith(f"receipt already claimed as taxi-1 in case {case.id} on ")
    assert str(refused.value).endswith("; claim taxi-2 was not taken")
    await claims_done(case)
    status = await case.until(lambda s: s.stage == "follow_up", "follow-up")

    assert [c.claim_id for c in status.claims] == ["taxi-1"]
    assert case.paid() == [("reimburse:taxi-1", "5.00 USD")]
    assert status.approval is None and not status.decisions


async def test_held_in_the_same_case_needs_a_manager_who_is_told_why(
    run: Runner, receipts: Receipts
) -> None:
    case = await run.open(make_ticket("s1-missing-car.json"), playbook(duplicate_receipt="hold"))
    await to_the_claims(case)
    r = await receipts.upload(PDF)
    await claim(case, "taxi-1", r)
    held = await claim(case, "taxi-2", r, what="Taxi again")
    assert "held for a manager's approval" in held.detail
    await claims_done(case)
    # 10.00 USD is within the 21.00 limit: only the held claim makes it a manager's decision.
    status = await case.approval("compensation")
    assert status.approval is not None
    earlier = f"taxi-1 in case {case.id} on "
    assert status.approval.reason.startswith(
        "compensation of 10.00 USD holds a claim a manager must decide: 5.00 USD paid at once, "
        f"5.00 USD waits for this approval; claim taxi-2: receipt already claimed as {earlier}"
    )
    assert [(c.claim_id, c.held) for c in status.claim_checks] == [
        ("taxi-1", False),
        ("taxi-2", True),
    ]
    assert f"    HELD for a manager: claim taxi-2: receipt already claimed as {earlier}" in (
        render_status(status)  # what `makegood status` shows under the claims
    )
    # What fits the limit is paid at once, never the held claim: it waits for the decision.
    await case.eventually(lambda: case.paid() == [("reimburse:taxi-1", "5.00 USD")], "taxi-1")
    await case.approve("compensation", approved=False)
    status = await case.until(lambda s: s.stage == "follow_up", "follow-up")

    # Declined: what fits the limit is paid, never the held claim.
    assert [(i.step, i.state) for i in status.compensation] == [
        ("reimburse:taxi-1", "paid"),
        ("reimburse:taxi-2", "declined"),
    ]
    assert case.paid() == [("reimburse:taxi-1", "5.00 USD")]

    # The audit timeline says what the index found about each claim.
    history = await decode_history(await case.handle.fetch_history(), CONVERTER)
    checks = [line.text for line in timeline([history]) if line.text.startswith("receipt of")]
    assert checks == [
        f"receipt of claim taxi-1 checked (sha256 {r[:12]}...): no earlier claim of it",
        f"receipt of claim taxi-2 checked (sha256 {r[:12]}...): receipt already claimed as "
        f"{earlier}{checks[1].split(earlier)[1].split(';')[0]}; held for a manager",
    ]


async def test_held_in_another_case_of_the_same_customer_is_paid_once(
    run: Runner, receipts: Receipts
) -> None:
    hold = playbook(duplicate_receipt="hold")
    first = await run.open(make_ticket("s1-missing-car.json"), hold)
    await to_the_claims(first)
    r = await receipts.upload(PDF)
    await claim(first, "taxi-1", r)
    await claims_done(first)
    await first.until(lambda s: s.stage == "follow_up", "follow-up")

    second = await run.open(make_ticket("s1-missing-car.json"), hold)  # customer M-42 again
    await to_the_claims(second)
    await claim(second, "taxi-9", r, what="Taxi to the car")
    await claims_done(second)
    status = await second.approval("compensation")
    assert status.approval is not None
    assert f"claim taxi-9: receipt already claimed as taxi-1 in case {first.id} on " in (
        status.approval.reason
    )
    await second.approve("compensation", approved=False)
    await second.until(lambda s: s.stage == "follow_up", "follow-up")

    assert reimbursements(run.fakes) == [("reimburse:taxi-1", "5.00 USD")]
    # The index's answers are in the histories: both cases replay without asking it again.
    replayer = build_replayer(data_converter=CONVERTER)
    for case in (first, second):
        await replayer.replay_workflow(await case.handle.fetch_history())


async def test_refused_in_another_case_of_the_same_customer(
    run: Runner, receipts: Receipts
) -> None:
    first = await run.open(make_ticket("s1-missing-car.json"), playbook())
    await to_the_claims(first)
    r = await receipts.upload(PDF)
    await claim(first, "taxi-1", r)
    second = await run.open(make_ticket("s1-missing-car.json"), playbook())
    await to_the_claims(second)
    with pytest.raises(Refused, match=f"receipt already claimed as taxi-1 in case {first.id} on"):
        await claim(second, "taxi-1", r)  # the same claim id too: another case's is no help
    status = await second.status()
    assert status.claims == [] and status.claim_checks == []


async def test_a_near_duplicate_is_flagged_on_the_claim(run: Runner, receipts: Receipts) -> None:
    first = await run.open(make_ticket("s1-missing-car.json"), playbook())
    await to_the_claims(first)
    await claim(first, "taxi-1", await receipts.upload(PDF), what="Taxi to CAR-2")
    second = await run.open(make_ticket("s1-missing-car.json"), playbook())
    await to_the_claims(second)
    taken = await claim(second, "taxi-2", await receipts.upload(OTHER_PDF), what="taxi to car-2")
    assert "possible duplicate of taxi-1 in case" in taken.detail
    status = await second.status()
    (check,) = status.claim_checks
    assert not check.held and [c.claim_id for c in check.near] == ["taxi-1"]
    (flag,) = [e for e in status.events if e.kind == "claim_flagged"]
    assert flag.detail.startswith(f"claim taxi-2: possible duplicate of taxi-1 in case {first.id}")


async def test_a_retried_registration_does_not_find_its_own_claim(
    run: Runner, receipts: Receipts
) -> None:
    receipts.lose_first_answer = True
    case = await run.open(make_ticket("s1-missing-car.json"), playbook())
    await to_the_claims(case)
    taken = await claim(case, "taxi-1", await receipts.upload(PDF))
    assert taken.detail == "claim taxi-1 for 5.00 USD accepted"
    assert receipts.registrations == 2  # the first answer was lost; the retry was answered
    status = await case.status()
    (check,) = status.claim_checks
    assert not check.held and check.same_receipt == [] and check.near == []


async def test_a_receipt_never_uploaded_is_refused(run: Runner, receipts: Receipts) -> None:
    case = await run.open(make_ticket("s1-missing-car.json"), playbook())
    await to_the_claims(case)
    with pytest.raises(Refused, match=f"no receipt with SHA-256 {digest(PDF)} was uploaded"):
        await claim(case, "taxi-1", digest(PDF))
    # A claim without a file (a reference only, as claims always could) is taken as before.
    await claim(case, "taxi-1", None)
    assert [c.claim_id for c in (await case.status()).claims] == ["taxi-1"]
