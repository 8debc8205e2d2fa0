"""Retail: check stock; a prepaid return label either way; ship the right item, or offer a
substitute (ordered at settlement, price difference waived) or the customer's money back.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from makegood.domain import calls, steps, wording
    from makegood.domain.case import Stage
    from makegood.domain.provider import (
        QuoteRequest,
        ReturnLabel,
        ReturnRequest,
        ShipRequest,
        StockRequest,
    )

from makegood.workflows.case import failure_reason
from makegood.workflows.remedies.base import Remedy


class Exchange(Remedy):
    async def attempt(self) -> bool:
        case, inc = self.case, self.case.incident
        assert inc.item is not None and inc.wanted is not None
        if not await self.owned("order", inc.reference):
            return False
        case.stage(Stage.DIAGNOSE)
        try:
            stock = await case.call(calls.CHECK_STOCK, StockRequest(sku=inc.wanted))
        except ActivityError as err:
            await case.escalate(f"stock check for {inc.wanted} failed: {failure_reason(err)}")
            return self._refund()
        case.event("stock_check", f"{inc.wanted}: {stock.available} in stock")
        case.stage(Stage.REMEDY)
        self.result.attempts = 1
        label = await self._return_label()
        if stock.available > 0:
            try:
                await case.call(
                    calls.SHIP_ITEM,
                    ShipRequest(
                        step=steps.SHIP,
                        order=inc.reference,
                        sku=inc.wanted,
                        customer_id=case.customer.id,
                    ),
                )
            except ActivityError as err:
                await case.escalate(f"shipping {inc.wanted} failed: {failure_reason(err)}")
                return self._refund()
            case.action("shipped", wording.shipped_line(inc.wanted, inc.reference))
            await self.talk.tell_message(
                steps.EXCHANGE,
                wording.exchange_shipped(case.customer.first_name, inc.wanted, label),
            )
            return True
        self.result.failed_attempts += 1
        return await self._offer_substitute(label)

    async def _return_label(self) -> ReturnLabel | None:
        case, inc = self.case, self.case.incident
        assert inc.item is not None
        try:
            label = await case.call(
                calls.CREATE_RETURN,
                ReturnRequest(
                    step=steps.RETURN_LABEL,
                    order=inc.reference,
                    sku=inc.item,
                    customer_id=case.customer.id,
                ),
            )
        except ActivityError as err:
            await case.escalate(f"return label failed: {failure_reason(err)}")
            return None
        case.action("return_label", wording.return_label_line(label, inc.item))
        return label

    async def _offer_substitute(self, label: ReturnLabel | None) -> bool:
        case, inc = self.case, self.case.incident
        assert inc.wanted is not None
        answer = await self.talk.ask(
            "substitute",
            wording.substitute_question(inc.wanted, label),
            ["substitute", "refund"],
            if_silent="the customer gets their money back (no substitute is chosen for them)",
        )
        if answer is None:
            # Never a substitute chosen for them: their money back, the choice unconfirmed.
            self.result.unconfirmed = True
            case.event("refund_by_default", "nobody chose between a substitute and a refund")
            return self._refund()
        if answer.answer == "refund":
            return self._refund()
        assert answer.value is not None
        try:
            quote = await case.call(
                calls.QUOTE_SUBSTITUTE,
                QuoteRequest(original_sku=inc.wanted, substitute_sku=answer.value),
            )
        except ActivityError as err:
            await case.escalate(f"substitute {answer.value} failed: {failure_reason(err)}")
            return self._refund()
        if not quote.available:
            await case.escalate(f"substitute {answer.value} is out of stock too; refunding")
            return self._refund()
        if quote.difference.currency != case.currency:
            # Never relabelled: a person prices it, and the customer gets their money back.
            await case.escalate(
                f"substitute {answer.value} is priced in {quote.difference.currency} but this "
                f"case is in {case.currency}; refunding"
            )
            return self._refund()
        self.result.substitute = quote
        case.event(
            "substitute_chosen", f"{quote.substitute_sku}, price difference {quote.difference}"
        )
        return True

    def _refund(self) -> bool:
        """The exchange did not work out: the customer gets their money back."""
        self.result.refund_requested = True
        return False
