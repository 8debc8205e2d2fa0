from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from makegood.domain.case import CaseOutcome
from makegood.domain.provider import (
    BookingResult,
    CallRequest,
    LedgerEntry,
    LocateRequest,
    LocateResult,
    MessageReceipt,
    MessageRequest,
    Ownership,
    OwnershipRequest,
    PaymentReceipt,
    PaymentRequest,
    PerkRequest,
    ProductReceipt,
    Quote,
    QuoteRequest,
    RebookRequest,
    ReleaseRequest,
    RemakeRequest,
    RepairRequest,
    Replacement,
    ReplaceRequest,
    ReturnLabel,
    ReturnRequest,
    ScheduledCall,
    ShipRequest,
    StockRequest,
    StockResult,
    SubstituteRequest,
)


class ProviderError(Exception):
    """A provider said no. `retryable` tells whether asking again may help."""

    retryable = True

    def __init__(self, reason: str, *, code: str = "provider_error") -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


class TransientProviderError(ProviderError):
    retryable = True


class PermanentProviderError(ProviderError):
    """Declined card, invalid address, nothing available: escalate to a person."""

    retryable = False


class Notifier(Protocol):
    async def send(self, key: str, req: MessageRequest) -> MessageReceipt: ...


class Replies(Protocol):
    """Where an SMS question is noted, so that the customer's text reply finds its case."""

    async def asked(self, phone: str, case_id: str, question_id: str, at: datetime) -> None: ...


class Payments(Protocol):
    async def pay(self, key: str, req: PaymentRequest) -> PaymentReceipt: ...
    async def ledger(self, case_ids: Sequence[str] | None = None) -> list[LedgerEntry]: ...


class ProductControl(Protocol):
    async def locate(self, key: str, req: LocateRequest) -> LocateResult: ...
    async def rebook(self, key: str, req: RebookRequest) -> BookingResult: ...
    async def release(self, key: str, req: ReleaseRequest) -> ProductReceipt: ...
    async def stock(self, req: StockRequest) -> StockResult: ...
    async def create_return(self, key: str, req: ReturnRequest) -> ReturnLabel: ...
    async def quote_substitute(self, req: QuoteRequest) -> Quote: ...
    async def place_substitute(self, key: str, req: SubstituteRequest) -> ProductReceipt: ...
    async def ship(self, key: str, req: ShipRequest) -> ProductReceipt: ...
    async def grant_perk(self, key: str, req: PerkRequest) -> ProductReceipt: ...
    async def remake(self, key: str, req: RemakeRequest) -> ProductReceipt: ...
    async def book_repair(self, key: str, req: RepairRequest) -> ProductReceipt: ...
    async def replace(self, key: str, req: ReplaceRequest) -> Replacement: ...
    async def verify_ownership(self, req: OwnershipRequest) -> Ownership: ...


class Telephony(Protocol):
    async def schedule_call(self, key: str, req: CallRequest) -> ScheduledCall: ...


class OutcomeStore(Protocol):
    async def record(self, outcome: CaseOutcome) -> None: ...
