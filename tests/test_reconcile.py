"""`makegood reconcile` compares histories with the ledger of the payment provider the
deployment is configured with: here a real HTTP provider (tests/providers.py), with a worker
process paying through `MAKEGOOD_PAYMENTS=http` and the CLI as a separate process."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from makegood.adapters.local.store import LocalStore
from makegood.credentials import token_hash
from tests.deployment import Deployment, deployed
from tests.harness import TICKETS
from tests.providers import Providers, serving

SECRET = "reconcile-provider-secret"
# With a real provider configured the API refuses the README's dev tokens: one of the test's own.
AGENT = "reconcile-agent-token"
CASE = "case-T-3001"


@dataclass
class Paid:
    """A deployment whose payments go to an HTTP provider, and that provider's own books."""

    d: Deployment
    provider: Providers
    books: LocalStore

    async def pay_by_hand(self, key: str, case_id: str, amount: str) -> None:
        """A payment the provider made that no case asked for (someone used its dashboard)."""
        await self.books.conn.execute(
            "INSERT INTO payments VALUES (?, ?, ?, 'refund', ?, 'USD', 'C-88', 'ORD-3001', "
            "'by hand', '2026-11-23T12:00:00+00:00')",
            (f"pay_{key}", key, case_id, amount),
        )


@pytest.fixture
async def paid(tmp_path: Path) -> AsyncIterator[Paid]:
    books = await LocalStore(tmp_path / "provider.sqlite").open()
    try:
        async with (
            serving(books, SECRET) as provider,
            deployed(
                tmp_path / "makegood",
                MAKEGOOD_PAYMENTS="http",
                MAKEGOOD_PAYMENTS_URL=provider.url,
                MAKEGOOD_PROVIDER_SECRET=SECRET,
                MAKEGOOD_API_TOKENS=json.dumps({token_hash(AGENT): "agent:sam"}),
            ) as d,
        ):
            yield Paid(d, provider, books)
    finally:
        await books.close()


async def test_reconcile_reads_the_http_providers_ledger(paid: Paid, tmp_path: Path) -> None:
    d = paid.d
    await d.ok("open", str(TICKETS / "s5-wrong-drink.json"), token=AGENT)
    await d.until(CASE, lambda s: s.stage == "closed", "closed")

    # The refund went to the provider; the engine's own SQLite file holds no payment at all,
    # so reading that instead would report the refund as missing from the ledger.
    assert await paid.books.rows("SELECT key, amount FROM payments") == [
        {"key": f"{CASE}:refund", "amount": "4.80"}
    ]
    assert await d.rows("SELECT key FROM payments") == []

    balanced = await d.ok("reconcile")
    assert "1 payments in histories, 1 in the ledger, 0 difference(s)" in balanced
    assert f"ledger of the payment provider at {paid.provider.url}" in balanced
    assert paid.provider.calls["/payments/ledger"] == 1

    # Reading the ledger needs neither the local store nor the seed the worker loads.
    bare = tmp_path / "auditor"
    auditor = Deployment(
        d.client, {**d.env, "MAKEGOOD_DATA_DIR": str(bare), "MAKEGOOD_SEED": "/nonexistent"}, bare
    )
    assert "0 difference(s)" in await auditor.ok("reconcile", CASE)
    assert not bare.exists()

    await paid.pay_by_hand(f"{CASE}:manual", CASE, "25.00")
    await paid.pay_by_hand("case-T-9999:manual", "case-T-9999", "7.00")
    everything = await d.cli("reconcile")
    assert everything.code == 1, everything.err
    found = sorted(line.split()[:2] for line in everything.out.splitlines()[:-1])
    assert found == [
        ["not_in_history", f"{CASE}:manual"],
        ["not_in_history", "case-T-9999:manual"],
    ]
    assert "1 payments in histories, 3 in the ledger, 2 difference(s)" in everything.out
    assert everything.err.strip() == (
        "makegood: 2 difference(s) between the histories and the ledger"
    )
    # Narrowed to one case, only that case's part of the ledger is asked for.
    one = await d.cli("reconcile", CASE)
    assert one.code == 1
    assert one.out.split()[:2] == ["not_in_history", f"{CASE}:manual"]
    assert "1 payments in histories, 2 in the ledger, 1 difference(s)" in one.out


async def test_a_provider_that_cannot_answer_is_reported_not_taken_for_an_empty_ledger(
    paid: Paid,
) -> None:
    d = paid.d
    await d.ok("open", str(TICKETS / "s5-wrong-drink.json"), token=AGENT)
    await d.until(CASE, lambda s: s.stage == "closed", "closed")

    paid.provider.fail("/payments/ledger", "500")
    down = await d.cli("reconcile")
    assert down.code == 3
    assert down.err.strip() == (
        f"makegood: cannot read the ledger of the payment provider at {paid.provider.url}: "
        "GET /payments: 500 provider unavailable"
    )
    assert down.out == ""
    assert "0 difference(s)" in await d.ok("reconcile")
