"""Playbooks and the compensation policy, as validated data.

A case receives the playbook in force when it opens, as part of its input, so its history
carries every rule it decided by and replays the same way after the file changes.
"""

from __future__ import annotations

import tomllib
from datetime import timedelta
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator
from pydantic_extra_types.currency_code import ISO4217

from makegood.domain.money import MAX_AMOUNT, Money, minor_units
from makegood.domain.ticket import Channel, IncidentKind

NonNegDecimal = Annotated[Decimal, Field(ge=0, le=Decimal(100000))]
NotifyChannel = Channel | Literal["preferred"]
# What a question nobody answered on two channels leads to: a call-back (when the customer has
# a phone and the case has not used its call-back yet) or straight to ops; either way the
# question is recorded as unconfirmed if still nobody answers, and never read as a yes.
OnSilence = Literal["callback", "escalate"]


def _preferred_only() -> list[NotifyChannel]:
    return ["preferred"]


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Discretion(_Data):
    """The frontline may grant up to max(floor, fraction x paid), capped by ceiling."""

    fraction_of_paid: Annotated[Decimal, Field(ge=0, le=10)] = Decimal("0.5")
    floor: NonNegDecimal = Decimal(10)
    ceiling: NonNegDecimal | None = None

    def limit(self, paid: Money) -> Money:
        amount = max(self.floor, paid.amount * self.fraction_of_paid)
        if self.ceiling is not None:
            amount = min(amount, self.ceiling)
        amount = min(amount, MAX_AMOUNT)  # fraction_of_paid may be up to 10x a large payment
        quantum = Decimal(1).scaleb(-minor_units(paid.currency))
        return Money(amount=amount.quantize(quantum), currency=paid.currency)


class CompensationPolicy(_Data):
    refund_paid: Literal["never", "always", "after_failed_attempt"] = "never"
    reimburse_expenses: bool = False
    max_claim: NonNegDecimal = Decimal(500)
    max_claims: Annotated[int, Field(ge=0, le=50)] = 10
    coupon: NonNegDecimal = Decimal(0)
    perk: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,31}$")] | None = None
    waive_difference_up_to: NonNegDecimal = Decimal(0)
    reopen_goodwill: NonNegDecimal = Field(
        default=Decimal(0), description="extra coupon a manager may approve when a case reopens"
    )
    duplicate_receipt: Literal["refuse", "hold"] = Field(
        default="refuse",
        description="a receipt this customer claimed before (in any case): refuse the claim, "
        "or take it as held, paid only if a manager approves it",
    )
    near_duplicate: Literal["flag", "hold"] = Field(
        default="flag",
        description="a claim with the same amount and description within a day: flag it for "
        "the approver, or hold it for a manager like a duplicate receipt",
    )


class Timeouts(_Data):
    customer_reply: timedelta = timedelta(minutes=30)
    approval: timedelta = timedelta(hours=4)
    approval_escalations: Annotated[int, Field(ge=0, le=5)] = 2
    claims_window: timedelta = timedelta(hours=24)
    follow_up_delay: timedelta = timedelta(days=1)
    follow_up_reply: timedelta = timedelta(days=2)
    follow_up_reminders: Annotated[int, Field(ge=0, le=5)] = 1


# Who decides an approval, lowest first: a level's role, or anyone above it, may decide.
ApproverRole = Literal["manager", "ops_lead"]
APPROVERS: tuple[ApproverRole, ...] = ("manager", "ops_lead")


class ApprovalLevel(_Data):
    """One level of an approval chain: whose decision it is, for how long, how often reminded.

    The level lasts `wait`; `reminders` split it evenly (PT2H with 1 reminder: a reminder at
    one hour). When it runs out the approval escalates to the next level's role.
    """

    role: ApproverRole = "manager"
    wait: Annotated[timedelta, Field(gt=timedelta(0))]
    reminders: Annotated[int, Field(ge=0, le=10)] = 0

    @property
    def interval(self) -> timedelta:
        """How long between the request (or escalation) and each reminder at this level."""
        return self.wait / (self.reminders + 1)


class Backoff(_Data):
    initial: Annotated[timedelta, Field(gt=timedelta(0))]
    maximum: Annotated[timedelta, Field(gt=timedelta(0))]
    attempts: Annotated[int, Field(ge=1, le=100)]


# Payment providers keep idempotency keys for about 24 hours: every retry must land well inside.
KEY_RETENTION = timedelta(hours=24)


class Retries(_Data):
    """How patiently each kind of provider call is retried before the case escalates."""

    notify: Backoff = Backoff(
        initial=timedelta(seconds=1), maximum=timedelta(minutes=5), attempts=12
    )
    product: Backoff = Backoff(
        initial=timedelta(seconds=1), maximum=timedelta(minutes=1), attempts=8
    )
    payment: Backoff = Backoff(
        initial=timedelta(seconds=2), maximum=timedelta(minutes=10), attempts=10
    )
    payment_deadline: timedelta = Field(
        default=timedelta(hours=6),
        description="a payment is given up (and escalated) this long after it was first tried",
    )

    @model_validator(mode="after")
    def _inside_key_retention(self) -> Retries:
        if not timedelta(0) < self.payment_deadline <= KEY_RETENTION / 2:
            raise ValueError(
                f"payment_deadline must be positive and at most half the "
                f"providers' key retention ({KEY_RETENTION / 2})"
            )
        return self


class Callbacks(_Data):
    """Call-backs: how often to call, how long to wait for the telephony provider's word."""

    calls: Annotated[int, Field(ge=1, le=10)] = 3
    redial_after: timedelta = timedelta(minutes=2)
    status_timeout: Annotated[timedelta, Field(gt=timedelta(0))] = timedelta(minutes=15)
    schedule_backoff: Backoff = Backoff(
        initial=timedelta(seconds=30), maximum=timedelta(minutes=10), attempts=6
    )
    hand_off_within: timedelta = Field(
        default=timedelta(hours=2),
        description="when calls fail, the customer is told a person calls within this",
    )


class Sla(_Data):
    """Service-level targets per case; None switches a clock off."""

    first_contact: timedelta | None = timedelta(seconds=30)
    remedy_offer: timedelta | None = timedelta(hours=2)
    approval_decision: timedelta | None = timedelta(hours=2)
    resolution: timedelta | None = timedelta(days=3)
    warn_at: Annotated[Decimal, Field(gt=0, lt=1)] = Decimal("0.8")

    @model_validator(mode="after")
    def _positive(self) -> Sla:
        for name in ("first_contact", "remedy_offer", "approval_decision", "resolution"):
            target = getattr(self, name)
            if target is not None and target <= timedelta(0):
                raise ValueError(f"sla.{name} must be positive (or left out)")
        return self


class Limits(_Data):
    """What one case takes from people, so that nobody can grow it without bound: past these a
    request is refused with the limit (429), and the case goes on as before."""

    notes: Annotated[int, Field(ge=1, le=1000)] = 100
    actions: Annotated[int, Field(ge=1, le=5000)] = 400
    history_events: Annotated[int, Field(ge=100, le=40000)] = Field(
        default=10000,
        description="past this many events the case continues as new at its next checkpoint, "
        "carrying its whole state (Temporal refuses a history past 51,200 events)",
    )


class Playbook(_Data):
    kind: IncidentKind
    title: Annotated[str, StringConstraints(min_length=1, max_length=120)]
    diagnose: Literal["locate", "stock_check", "none"] = "none"
    locate_attempts: Annotated[int, Field(ge=1, le=5)] = 2
    remedy: Literal["rebook", "exchange", "remake", "replace", "callback"]
    replace_on_report: Annotated[int, Field(ge=1, le=10)] = Field(
        default=1,
        description="replace: the Nth report of the same fault on the same asset "
        "is replaced with an equal or better model; earlier ones repaired",
    )
    remedy_attempts: Annotated[int, Field(ge=1, le=10)] = 3
    frontline_attempts: Annotated[int, Field(ge=1, le=10)] = 1
    upgrade_on_escalation: bool = False
    notify_on_remedy: list[NotifyChannel] = Field(default_factory=_preferred_only)
    callbacks: Callbacks = Callbacks()
    sla: Sla = Sla()
    compensation: CompensationPolicy = CompensationPolicy()
    discretion: Discretion = Discretion()
    timeouts: Timeouts = Timeouts()
    max_reopens: Annotated[int, Field(ge=0, le=5)] = 1
    limits: Limits = Limits()
    currency: ISO4217 | None = Field(
        default=None,
        description="the currency of every amount in this playbook (from the set's "
        "`currency`); a case in any other currency is refused, never relabelled",
    )
    approval_chain: list[ApprovalLevel] = Field(
        default_factory=list,
        max_length=5,
        description="who an undecided approval goes to, level by level (e.g. manager, then "
        "ops_lead); empty: `timeouts.approval` per level with managers, "
        "`timeouts.approval_escalations` escalations, as before the chain existed",
    )
    on_no_decision: Literal["wait", "decline"] = Field(
        default="wait",
        description="after the chain's last level: keep waiting and reminding its role, or "
        "decline (only when a playbook says so: a decline is otherwise a person's, with a note)",
    )
    on_silence: OnSilence = Field(
        default="escalate",
        description="a question unanswered on the preferred channel and on a second one: "
        "call the customer back to ask (`callback`) or hand it to ops (`escalate`)",
    )
    four_eyes: bool = Field(
        default=True,
        description="a manager may not approve money on a case they opened, claimed "
        "expenses in or own: another manager must",
    )

    def chain(self) -> list[ApprovalLevel]:
        """The approval chain in force: the playbook's own, or the one its older fields mean."""
        if self.approval_chain:
            return list(self.approval_chain)
        level = ApprovalLevel(role="manager", wait=self.timeouts.approval)
        return [level] * (self.timeouts.approval_escalations + 1)

    @model_validator(mode="after")
    def _consistent(self) -> Playbook:
        needs = {"rebook": "locate", "exchange": "stock_check"}
        if self.remedy in needs and self.diagnose != needs[self.remedy]:
            raise ValueError(
                f"remedy {self.remedy!r} needs diagnose = {needs[self.remedy]!r}, "
                f"not {self.diagnose!r}"
            )
        if self.frontline_attempts > self.remedy_attempts:
            raise ValueError("frontline_attempts cannot exceed remedy_attempts")
        for name in ("customer_reply", "approval", "claims_window", "follow_up_reply"):
            if getattr(self.timeouts, name) <= timedelta(0):
                raise ValueError(f"timeouts.{name} must be positive: every wait needs a timeout")
        ranks = [APPROVERS.index(level.role) for level in self.approval_chain]
        if ranks != sorted(ranks):
            raise ValueError(
                "approval_chain must go up, never down: "
                + " -> ".join(level.role for level in self.approval_chain)
            )
        return self


class PlaybookSet(_Data):
    version: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")]
    currency: ISO4217 = Field(description="the currency of every amount in the file")
    playbooks: dict[IncidentKind, Playbook]
    retries: Retries = Retries()

    @model_validator(mode="after")
    def _keys_match(self) -> PlaybookSet:
        for key, book in self.playbooks.items():
            if book.kind != key:
                raise ValueError(f"playbooks.{key.value} declares kind {book.kind.value!r}")
            if book.currency != self.currency:
                raise ValueError(
                    f"playbooks.{key.value}.currency is {book.currency}, but the file's "
                    f"amounts are in {self.currency}"
                )
        return self

    def for_kind(self, kind: IncidentKind) -> Playbook:
        try:
            return self.playbooks[kind]
        except KeyError:
            known = ", ".join(sorted(k.value for k in self.playbooks))
            raise ValueError(
                f"no playbook for incident kind {kind.value!r} in playbook set "
                f"{self.version} (has: {known})"
            ) from None

    @classmethod
    def from_toml(cls, text: str) -> PlaybookSet:
        data = tomllib.loads(text)
        for kind, book in data.get("playbooks", {}).items():
            if isinstance(book, dict):
                book.setdefault("kind", kind)
                if "currency" in data:
                    book.setdefault("currency", data["currency"])
        return cls.model_validate(data)
