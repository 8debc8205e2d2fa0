"""End to end: the CLI uploads a receipt file and claims it, through the API (`makegood api`),
to a worker process (`makegood worker`) on a dev server, as in production. The same receipt
under a new claim id, in the same case or another case of the same customer, is refused with
the earlier claim named, and the local payment provider's ledger holds one reimbursement."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from tests.deployment import MANAGER, deployed
from tests.harness import TICKETS

PDF = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


async def test_a_receipt_claimed_again_is_refused_and_paid_once(tmp_path: Path) -> None:
    receipt = tmp_path / "taxi-receipt.pdf"
    receipt.write_bytes(PDF)
    text = tmp_path / "receipt.pdf"  # named like a PDF, but it is not one
    text.write_text("Taxi, 18.50 USD, thank you for riding with us")
    s1 = json.loads((TICKETS / "s1-missing-car.json").read_text())
    second_ticket = tmp_path / "t-1002.json"
    second_ticket.write_text(json.dumps({**s1, "id": "T-1002"}))  # customer M-42 again

    async with deployed(tmp_path / "data") as d:
        for ticket, case in (
            (TICKETS / "s1-missing-car.json", "case-T-1001"),
            (second_ticket, "case-T-1002"),
        ):
            await d.ok("open", str(ticket))
            for qid in ("locate-CAR-1-1", "locate-CAR-1-2"):
                await d.question(case, qid)
                await d.ok("answer", case, qid, "not_found")

        out = await d.ok(
            "claim",
            "case-T-1001",
            "taxi-1",
            "18.50",
            "Taxi to the second car",
            "--receipt",
            str(receipt),
        )
        assert "receipt taxi-receipt.pdf stored as sha256" in out
        assert out.endswith("case-T-1001: claim taxi-1 for 18.50 USD accepted\n")

        for case, claim_id in (("case-T-1001", "taxi-2"), ("case-T-1002", "taxi-1")):
            again = await d.cli(
                "claim", case, claim_id, "18.50", "Taxi again", "--receipt", str(receipt)
            )
            assert again.code == 1, again.err
            assert "receipt already claimed as taxi-1 in case case-T-1001 on " in again.err
            assert ", uploaded before" in again.out  # one object in the store, one digest

        wrong = await d.cli("claim", "case-T-1001", "taxi-3", "5", "Bus", "--receipt", str(text))
        assert wrong.code == 2 and "(file): not a receipt file" in wrong.err
        missing = await d.cli(
            "claim", "case-T-1001", "taxi-3", "5", "Bus", "--receipt", str(tmp_path / "nope.pdf")
        )
        assert missing.code == 2 and "--receipt: cannot read" in missing.err

        await d.question("case-T-1001", "pickup-1")
        await d.ok("answer", "case-T-1001", "pickup-1", "picked_up")
        await d.question("case-T-1001", "claims")
        await d.ok("answer", "case-T-1001", "claims", "done")
        await d.until("case-T-1001", lambda s: s.approval is not None, "the approval")
        await d.ok("approve", "case-T-1001", "compensation", token=MANAGER)
        status = await d.until("case-T-1001", lambda s: s.stage == "follow_up", "follow-up")
        assert [c.claim_id for c in status.claims] == ["taxi-1"]

        paid = await d.rows("SELECT key, amount FROM payments WHERE kind = 'reimbursement'")
        assert paid == [{"key": "case-T-1001:reimburse:taxi-1", "amount": "18.50"}]

    with sqlite3.connect(tmp_path / "data" / "receipts.sqlite") as conn:
        rows = conn.execute("SELECT case_id, claim_id, customer FROM claims").fetchall()
    assert [r[:2] for r in rows] == [("case-T-1001", "taxi-1")]
    assert "M-42" not in rows[0][2]  # the customer as a pseudonym only
