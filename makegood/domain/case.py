"""The state of one recovery case, as its workflow holds it and its status query returns it."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field

from makegood.domain.actions import Actor, ApprovalDecision, CustomerAnswer, ExpenseClaim
from makegood.domain.money import Money
from makegood.domain.playbook import Backoff, Callbacks, Playbook, Retries
from makegood.domain.provider import CallOutcome, Quote
from makegood.domain.receipts import ClaimCheck
from makegood.domain.ticket import Channel, Ticket


class Stage(StrEnum):
    ACKNOWLEDGE = "acknowledge"
    DIAGNOSE = "diagnose"
    REMEDY = "remedy"
    COMPENSATE = "compensate"
    CONFIRM = "confirm"
    FOLLOW_UP = "follow_up"
    DOCUMENT = "document"
    CLOSED = "closed"


class SlaLevel(StrEnum):
    """How a case stands against its SLA clocks: the worst of them, mildest level first."""

    # Stored in the MakegoodSla search attribute of running cases (as Stage's values are in
    # MakegoodStage): never rename a value.
    OK = "ok"
    WARNING = "warning"
    BREACHED = "breached"


# handed_off: the case could not go on by itself (a ticket it cannot carry, a fault nobody
# planned for); a person has it, and the customer was told so.
Resolution = Literal["resolved", "unresolved", "unreachable", "cancelled", "handed_off"]
# Silence is never a yes: where nobody confirmed, the outcome says "unconfirmed".
RemedyOutcome = Literal["succeeded", "failed", "unconfirmed"]
Satisfaction = Literal["satisfied", "not_satisfied", "unconfirmed", "not_asked"]


class RemedyResult(BaseModel):
    """What a remedy achieved, read by the compensation and the outcome record.

    A remedy keeps it up to date as it goes, so a case cancelled mid-remedy still records
    how many attempts were made.
    """

    ok: bool = False
    attempts: int = 0  # remedy attempts made (re-bookings, calls, a repair...)
    failed_attempts: int = 0  # what failed the customer again: counts towards compensation
    refund_requested: bool = False
    substitute: Quote | None = None  # a substitute the customer chose, to be ordered
    claims_invited: bool = False  # the customer was told to claim expenses (a taxi...)
    unverified: bool = False  # what the case is about is not the customer's: nothing is paid
    unconfirmed: bool = False  # nobody confirmed the fix worked: not counted as succeeded


class CaseInput(BaseModel):
    """Everything the case decides from that is not an event: recorded in its first event."""

    ticket: Ticket
    playbook: Playbook
    playbook_version: str
    retries: Retries = Retries()
    ops_contact: str = "ops@makegood.example.com"
    received_at: datetime | None = None
    opened_by: Actor | None = Field(
        default=None, description="who opened the case, from their verified credential"
    )
    carried: Carried | None = Field(
        default=None, description="the case so far, when an earlier run continued as new"
    )


class Question(BaseModel):
    id: str
    prompt: str
    choices: list[str]
    asked_at: datetime
    deadline: datetime
    on_timeout: str


class ApprovalRequest(BaseModel):
    id: str
    reason: str
    amount: Money | None = Field(default=None, description="what waits for the decision")
    asked_at: datetime
    deadline: datetime = Field(description="when this level runs out (or the next reminder)")
    level: int = 0
    # Set by the approval chain (cases opened before it leave them empty):
    role: str | None = Field(default=None, description="whose decision it is at this level")
    reminded: int = Field(default=0, description="reminders sent to the role at this level")
    then: str | None = Field(default=None, description="what happens at the deadline")
    decide_by: datetime | None = Field(
        default=None, description="when the chain's last level runs out: what the customer heard"
    )
    paid_meanwhile: Money | None = Field(
        default=None, description="what was paid at once, within the frontline limit"
    )


class Booking(BaseModel):
    id: str
    vehicle: str
    vehicle_class: str | None = None
    location: str | None = None
    # unconfirmed: nobody said whether the member found it; kept for them, never released
    status: Literal["active", "failed", "released", "in_use", "unconfirmed"] = "active"
    origin: Literal["original", "rebooked"] = "rebooked"


CompKind = Literal["refund", "reimbursement", "coupon", "waiver", "perk"]
# pending: above the frontline limit, waiting for an approval (the rest may be paid already)
CompState = Literal["planned", "pending", "approved", "declined", "paid", "failed"]


class CompensationItem(BaseModel):
    step: str = Field(description="logical step name; with the case id it is the idempotency key")
    kind: CompKind
    description: str
    amount: Money | None = None
    state: CompState = "planned"
    receipt: str | None = None
    failure: str | None = None
    declined_because: str | None = Field(
        default=None, description="the note of whoever declined it: what the customer is told"
    )
    settlement: str | None = Field(
        default=None, description="the payment provider's latest word: settled, failed or refunded"
    )


class ApprovalRecord(BaseModel):
    """A manager's decision, with the people whose case it was: four eyes on money."""

    request_id: str
    amount: Money | None = None
    approved: bool
    by: str
    opened_by: str | None = None
    at: datetime


class Escalation(BaseModel):
    at: datetime
    reason: str
    to: str


class Event(BaseModel):
    """One line of the case's own account of itself: what was said, done and paid."""

    at: datetime
    kind: str
    detail: str
    amount: Money | None = None
    by: str | None = None


class CallStatus(BaseModel):
    """A telephony provider's status callback: delivered at least once, in any order."""

    call_id: str
    status: CallOutcome
    event_id: str = Field(description="the provider's id for this delivery, for de-duplication")
    at: datetime | None = None


class PaymentEvent(BaseModel):
    """A payment provider's event about a payment this case made (at least once, any order)."""

    event_id: str
    type: Literal["settled", "failed", "refunded"]
    idempotency_key: str
    payment_id: str | None = None
    reason: str | None = None


class CallAttempt(BaseModel):
    """One try at reaching the customer: the scheduling attempts it took and how it ended."""

    number: int
    due: datetime
    call_id: str | None = None
    schedule_failures: list[str] = []
    outcome: Literal[
        "pending", "completed", "dropped", "no_answer", "no_callback", "not_scheduled"
    ] = "pending"
    ended_at: datetime | None = None


class CallbackInput(BaseModel):
    case_id: str
    customer_id: str
    first_name: str
    phone: str
    written_channel: Channel
    written_to: str
    at: datetime
    reason: str
    ops_contact: str
    settings: Callbacks
    notify_retry: Backoff
    # A booked support call (S6), or calls about a question nobody answered in writing: the
    # customer never asked for those, so they are worded as ours and promise no personal call.
    purpose: Literal["support_call", "question"] = "support_call"


class CallbackState(BaseModel):
    state: Literal["scheduling", "waiting", "completed", "handed_off"] = "scheduling"
    attempts: list[CallAttempt] = []
    ignored_callbacks: list[str] = []


SlaName = Literal["first_contact", "remedy_offer", "approval_decision", "resolution"]


class SlaClock(BaseModel):
    """One service-level clock. Elapsed time excludes pauses (waiting for the customer)."""

    name: SlaName
    label: str
    target: timedelta
    started_at: datetime
    elapsed: timedelta = timedelta(0)
    running_since: datetime | None = None
    state: Literal["running", "paused", "met", "missed"] = "running"
    warned_at: datetime | None = None
    breached_at: datetime | None = None
    stopped_at: datetime | None = None

    def elapsed_at(self, now: datetime) -> timedelta:
        running = now - self.running_since if self.running_since is not None else timedelta(0)
        return self.elapsed + max(running, timedelta(0))

    @property
    def level(self) -> SlaLevel:
        if self.breached_at:
            return SlaLevel.BREACHED
        return SlaLevel.WARNING if self.warned_at else SlaLevel.OK


class RelatedCase(BaseModel):
    """An earlier (or parallel) case of the same customer or about the same asset."""

    case_id: str
    kind: str
    reference: str
    asset: str | None = None
    fault: str | None = None
    summary: str
    opened_at: datetime
    state: str = Field(description="running, completed, ...")
    same_asset: bool = False
    same_customer: bool = Field(
        default=False,
        description="the earlier case is this customer's own: only those are shown to them",
    )
    resolution: str | None = None


class RelatedCases(BaseModel):
    available: bool = True
    cases: list[RelatedCase] = []
    note: str | None = None


class CaseStatus(BaseModel):
    case_id: str
    ticket_id: str
    customer_id: str
    kind: str
    playbook_version: str
    stage: Stage
    resolution: Resolution | None = None
    opened_at: datetime
    opened_by: str | None = Field(default=None, description="who opened the case (role:id)")
    first_contact_at: datetime | None = None
    closed_at: datetime | None = None
    question: Question | None = None
    follow_up_at: datetime | None = None
    approval: ApprovalRequest | None = None
    discretion_limit: Money
    bookings: list[Booking] = []
    claims: list[ExpenseClaim] = []
    claim_checks: list[ClaimCheck] = Field(
        default=[], description="what the receipt index found about each claim (duplicates)"
    )
    compensation: list[CompensationItem] = []
    escalations: list[Escalation] = []
    decisions: list[ApprovalRecord] = []
    notes: list[str] = []
    actions: int = Field(default=0, description="people's actions the case has taken")
    reopened: int = 0
    related: list[RelatedCase] = []
    callback: CallbackState | None = None
    owner: str | None = None
    slas: list[SlaClock] = []
    cancelled: str | None = None
    unconfirmed: list[str] = Field(
        default=[],
        description="questions nobody answered after every attempt (two channels, then a "
        "call-back or ops): `<question id>: <what was asked>`; nothing was assumed from them",
    )
    handed_off: str | None = Field(
        default=None, description="why the case could not go on by itself and a person took it"
    )
    events: list[Event] = []
    archived: str | None = Field(
        default=None,
        description="set when the case was read from the archive (Temporal no longer has it): "
        "`from the archive, closed <when>, <resolution>`",
    )


class CaseOutcome(BaseModel):
    """The documented outcome: what trends are found from."""

    case_id: str
    kind: str
    cause: str
    resolution: Resolution
    remedy_attempts: int
    remedy_succeeded: bool
    paid_out: Money
    goodwill: Money
    escalations: int
    reopened: int
    approval_needed: bool
    opened_at: datetime
    first_contact_at: datetime | None
    closed_at: datetime
    seconds_to_first_contact: float | None
    seconds_to_close: float
    # Older outcome records have none of these three.
    remedy: RemedyOutcome | None = Field(
        default=None, description="unconfirmed: it hinged on an answer nobody gave"
    )
    satisfaction: Satisfaction | None = Field(
        default=None, description="the follow-up's answer; unconfirmed when nobody answered"
    )
    unconfirmed: list[str] = Field(
        default=[], description="the questions nobody answered (see CaseStatus.unconfirmed)"
    )
    # Older outcome records have none of these either: what the trends need beyond the above.
    seconds_to_remedy: float | None = Field(
        default=None, description="report to the remedy offered (its SLA clock stopped)"
    )
    sla_breaches: list[str] = Field(default=[], description="SLA clocks breached, by name")
    paid_by_kind: dict[str, Money] = Field(
        default={}, description="compensation paid, by kind (refund, reimbursement, coupon...)"
    )
    customer_paid: Money | None = Field(
        default=None, description="what the customer had paid for the service that failed"
    )
    cause_code: str | None = Field(
        default=None, description="the ticket's cause code (a category, never free text)"
    )


Checkpoint = Literal["acknowledged", "remedied", "compensated", "confirmed", "follow_up"]
CHECKPOINTS: tuple[Checkpoint, ...] = (
    "acknowledged",
    "remedied",
    "compensated",
    "confirmed",
    "follow_up",
)


class Carried(BaseModel):
    """Everything a case knows, handed from one run to the next when its history grows long.

    Taken only at checkpoints between stages (no activity, question or child in flight), so
    the next run resumes after `checkpoint` with nothing half done.
    """

    checkpoint: Checkpoint
    follow_up_round: int = 1
    run: int = Field(default=2, description="which run of the case this is: 2 after the first")
    status: CaseStatus
    done: list[str]
    owner_contact: str | None = None
    answers: dict[str, CustomerAnswer] = {}
    decisions: dict[str, ApprovalDecision] = {}
    sla_level: SlaLevel = SlaLevel.OK
    claims_open: bool = True
    approval_needed: bool = False
    payment_events: list[str] = []
    unsettled: list[str] = []
    remedy: RemedyResult = RemedyResult()

    def reached(self, checkpoint: Checkpoint) -> bool:
        return CHECKPOINTS.index(self.checkpoint) >= CHECKPOINTS.index(checkpoint)


CaseInput.model_rebuild()
