"""The activities' wire contract: each one's name, request type and result type, declared once.

The workflows call activities through these specs (so a wrong result type is a type error),
the activities register under `spec.name` with the same types (a test checks the signatures
match), and the audit timeline decodes history payloads with them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import TypeAdapter

from makegood.domain.case import CaseOutcome, RelatedCases
from makegood.domain.indexed import CaseClosedRecord, CaseOpenedRecord
from makegood.domain.provider import (
    BookingResult,
    CallRequest,
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
    RelatedQuery,
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
from makegood.domain.receipts import ClaimRegistration, ReceiptFindings

Req = TypeVar("Req")
Res = TypeVar("Res")


@dataclass(frozen=True)
class ActivitySpec(Generic[Req, Res]):
    """`local`: the case's own bookkeeping (its index rows, the look-up of earlier cases, the
    outcome record), run as a local activity in the worker that runs the case. Such a call
    costs the server one marker instead of three events, a task dispatch and a workflow task;
    it must be quick and idempotent, and it is retried by the worker that replays the case if
    this one dies. Calls that reach customers, money or the product never are."""

    name: str
    request: type[Req]
    result: type[Res]
    local: bool = False
    _reader: TypeAdapter[Res] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_reader", TypeAdapter(self.result))

    def read(self, raw: object) -> Res:
        """The result from its decoded JSON; pydantic's ValidationError when it is not one.

        Workflows read results this way rather than through the converter, whose decoding
        failure would fail every workflow task for good instead of reaching workflow code.
        """
        return self._reader.validate_python(raw)

    @property
    def result_type(self) -> type[Any] | None:
        """What a workflow decodes the result as: None for an activity that returns nothing."""
        result: type[Any] = self.result
        return None if result is type(None) else result


SEND_MESSAGE = ActivitySpec("send_message", MessageRequest, MessageReceipt)
MAKE_PAYMENT = ActivitySpec("make_payment", PaymentRequest, PaymentReceipt)
LOCATE_VEHICLE = ActivitySpec("locate_vehicle", LocateRequest, LocateResult)
REBOOK_VEHICLE = ActivitySpec("rebook_vehicle", RebookRequest, BookingResult)
RELEASE_BOOKING = ActivitySpec("release_booking", ReleaseRequest, ProductReceipt)
CHECK_STOCK = ActivitySpec("check_stock", StockRequest, StockResult)
CREATE_RETURN = ActivitySpec("create_return", ReturnRequest, ReturnLabel)
QUOTE_SUBSTITUTE = ActivitySpec("quote_substitute", QuoteRequest, Quote)
PLACE_SUBSTITUTE = ActivitySpec("place_substitute", SubstituteRequest, ProductReceipt)
SHIP_ITEM = ActivitySpec("ship_item", ShipRequest, ProductReceipt)
GRANT_PERK = ActivitySpec("grant_perk", PerkRequest, ProductReceipt)
REMAKE_ORDER = ActivitySpec("remake_order", RemakeRequest, ProductReceipt)
RECORD_OUTCOME = ActivitySpec("record_outcome", CaseOutcome, type(None), local=True)
BOOK_REPAIR = ActivitySpec("book_repair", RepairRequest, ProductReceipt)
REPLACE_ITEM = ActivitySpec("replace_item", ReplaceRequest, Replacement)
FIND_RELATED_CASES = ActivitySpec("find_related_cases", RelatedQuery, RelatedCases, local=True)
SCHEDULE_CALL = ActivitySpec("schedule_call", CallRequest, ScheduledCall)
VERIFY_OWNERSHIP = ActivitySpec("verify_ownership", OwnershipRequest, Ownership)
REGISTER_CLAIM = ActivitySpec("register_claim", ClaimRegistration, ReceiptFindings)
INDEX_CASE_OPENED = ActivitySpec("index_case_opened", CaseOpenedRecord, type(None), local=True)
INDEX_CASE_CLOSED = ActivitySpec("index_case_closed", CaseClosedRecord, type(None), local=True)

ALL: tuple[ActivitySpec[Any, Any], ...] = (
    SEND_MESSAGE,
    MAKE_PAYMENT,
    LOCATE_VEHICLE,
    REBOOK_VEHICLE,
    RELEASE_BOOKING,
    CHECK_STOCK,
    CREATE_RETURN,
    QUOTE_SUBSTITUTE,
    PLACE_SUBSTITUTE,
    SHIP_ITEM,
    GRANT_PERK,
    REMAKE_ORDER,
    RECORD_OUTCOME,
    BOOK_REPAIR,
    REPLACE_ITEM,
    FIND_RELATED_CASES,
    SCHEDULE_CALL,
    VERIFY_OWNERSHIP,
    REGISTER_CLAIM,
    INDEX_CASE_OPENED,
    INDEX_CASE_CLOSED,
)
BY_NAME: dict[str, ActivitySpec[Any, Any]] = {spec.name: spec for spec in ALL}
