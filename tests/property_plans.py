"""What the property-based suite (tests/test_properties.py) generates: a ticket of every kind the
default playbooks carry, the world the in-memory providers show it (`tests.fakes.World`, with
the local provider seed's registrations), provider faults, and a sequence of what people and
providers do to the case, with time passing in between.

Everything is frozen data with a readable repr: hypothesis prints a failing example as a plan a
person can read and replay. Values that only exist once the case runs (the server's clock, the
open question, a payment's idempotency key, a call's id) are picked when the action is carried
out (`tests.property_run`), from what the case shows at that moment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Literal

from hypothesis import strategies as st

from makegood.domain.actions import Actor
from makegood.domain.money import MAX_AMOUNT
from makegood.domain.ticket import Channel, IncidentKind, Ticket
from tests.property_world import WorldPlan, worlds

AGENT = Actor(id="sam", role="agent")
AGENT_2 = Actor(id="ali", role="agent")
MIA = Actor(id="mia", role="manager")
MAX = Actor(id="max", role="manager")
AUDITOR = Actor(id="ann", role="auditor")
CUSTOMER = Actor(id="cust", role="customer")
STAFF = (AGENT, AGENT_2, MIA, MAX)
ANYONE = (*STAFF, AUDITOR)


# ------------------------------------------------------------------ the ticket
@dataclass(frozen=True)
class Reported:
    """`reported_at`, relative to the server's clock when the case opens (negative: the
    future), in a fixed UTC offset; `utc_offset_minutes=None` is a time without a zone."""

    before_now: timedelta
    utc_offset_minutes: int | None = 0

    def at(self, now: datetime) -> datetime:
        when = now - self.before_now
        if self.utc_offset_minutes is None:
            return when.astimezone(UTC).replace(tzinfo=None)
        return when.astimezone(timezone(timedelta(minutes=self.utc_offset_minutes)))


@dataclass(frozen=True)
class TicketPlan:
    kind: IncidentKind
    customer_id: str
    preferred: Channel
    contacts: frozenset[Channel]
    paid: Decimal
    reference: str
    item: str
    wanted: str | None = None
    location: str | None = None
    asset: str | None = None
    fault: str | None = None
    call_in: timedelta | None = None  # support_call: call_at = the case's opening + call_in
    reported: Reported | None = None

    def ticket(self, now: datetime) -> Ticket:
        contact = {
            "email": f"{self.customer_id.lower()}@example.com",
            "phone": "+15550100042",
            "app_user_id": f"app-{self.customer_id}",
        }
        needs = {"email": "email", "sms": "phone", "app": "app_user_id"}
        incident: dict[str, object] = {
            "kind": self.kind.value,
            "reference": self.reference,
            "summary": f"{self.kind.value} reported about {self.reference}",
            "paid": {"amount": str(self.paid), "currency": "USD"},
            "item": self.item,
            "wanted": self.wanted,
            "location": self.location,
            "asset": self.asset,
            "fault": self.fault,
            "call_at": (now + self.call_in) if self.call_in is not None else None,
        }
        return Ticket.model_validate(
            {
                "id": "T-P1",
                "source": "hypothesis",
                "reported_at": self.reported.at(now) if self.reported else None,
                "customer": {
                    "id": self.customer_id,
                    "name": "Kim Property",
                    "preferred_channel": self.preferred,
                    **{needs[ch]: contact[needs[ch]] for ch in self.contacts},
                },
                "incident": {k: v for k, v in incident.items() if v is not None},
            }
        )


# ------------------------------------------------------------------ what happens to the case
@dataclass(frozen=True)
class Answer:
    """An answer to the open question (`to="open"`), to a question that is not open, or a
    choice the question does not offer; `choice` indexes the open question's choices."""

    to: Literal["open", "wrong_question", "bad_choice"]
    choice: int
    by: Actor
    value: str | None = None  # the SKU of a chosen substitute


@dataclass(frozen=True)
class Claim:
    claim_id: str
    amount: Decimal
    by: Actor
    currency: str = "USD"


@dataclass(frozen=True)
class Decide:
    """A decision on the pending approval (`to="pending"`) or on one that is not pending."""

    to: Literal["pending", "wrong_request"]
    approved: bool
    by: Actor


@dataclass(frozen=True)
class Note:
    by: Actor


@dataclass(frozen=True)
class Assign:
    to: Actor
    by: Actor


@dataclass(frozen=True)
class Escalate:
    by: Actor


@dataclass(frozen=True)
class Cancel:
    by: Actor


@dataclass(frozen=True)
class PaymentNews:
    """The payment provider's event about the `payment`-th payment of the case (modulo how
    many were made; None: a key the case never used); `delivery` is its event id, so the
    same delivery can come twice."""

    payment: int | None
    type: Literal["settled", "failed", "refunded"]
    delivery: int


@dataclass(frozen=True)
class CallNews:
    """The telephony provider's status callback about the `call`-th call scheduled (None: a
    call id nobody scheduled)."""

    call: int | None
    status: Literal["completed", "dropped", "no_answer"]
    delivery: int


@dataclass(frozen=True)
class Proceed:
    """Whatever the case waits on, done, as the people and providers involved would: the open
    question answered with its `choice`-th option (a substitute chosen from SKUS), the pending
    approval decided by `by`, the call-back's call reported, or the clock moved on to the
    follow-up. Walks cases deep into their compensation, approvals and follow-ups."""

    choice: int
    approved: bool
    by: Actor  # who decides an approval


@dataclass(frozen=True)
class Sleep:
    """Time passes on the time-skipping server: timers (timeouts, follow-ups, SLA alarms,
    call-backs) fire as they would."""

    duration: timedelta


Action = (
    Answer | Claim | Decide | Note | Assign | Escalate | Cancel | PaymentNews | CallNews | Proceed
) | Sleep


@dataclass(frozen=True)
class Plan:
    ticket: TicketPlan
    world: WorldPlan = field(default_factory=WorldPlan)
    opened_by: Actor | None = None
    actions: tuple[Action, ...] = ()


# ------------------------------------------------------------------ strategies
def amounts() -> st.SearchStrategy[Decimal]:
    """What a customer paid: the edges of every discretion limit and of Money itself (a
    refund plus claims and coupons near 1,000,000 add up to more than Money allows), and
    anything in between."""
    edges = ["0", "0.01", "4.80", "9.99", "10.00", "10.01", "20.00", "20.01", "21.00", "25.00"]
    edges += ["25.01", "42.00", "50.00", "129.99", "999.00", "999995.00", "1000000"]
    return st.one_of(
        st.sampled_from([Decimal(e) for e in edges]),
        st.decimals(min_value=0, max_value=MAX_AMOUNT, places=2, allow_nan=False),
    )


def _reported() -> st.SearchStrategy[Reported | None]:
    """No `reported_at`, or one from a year ago to a little in the future, in one of several
    time zones or in none (a naive time)."""
    ago = [timedelta(minutes=m) for m in (0, 1, 120, 3 * 24 * 60, 400 * 24 * 60, -5)]
    before = st.sampled_from(ago)
    offsets = st.sampled_from([0, 60, -300, 330, None])
    return st.none() | st.builds(Reported, before, offsets)


@st.composite
def _contacts(draw: st.DrawFn, needs_phone: bool) -> tuple[Channel, frozenset[Channel]]:
    channels: list[Channel] = ["email", "sms", "app"]
    preferred = draw(st.sampled_from(channels))
    more = draw(st.frozensets(st.sampled_from(channels)))
    phone: list[Channel] = ["sms"] if needs_phone else []
    return preferred, frozenset({preferred, *more, *phone})


# Per kind: customers, references (registered to the first customer in the seed, to another
# one, or nowhere), items. The local seed's registrations are in `tests.property_run.world`.
_REFS: dict[IncidentKind, tuple[list[str], list[str], list[str]]] = {
    IncidentKind.CAR_MISSING: (
        ["M-42", "M-7"],
        ["R-1001", "R-2002", "R-404"],
        ["CAR-1", "CAR-2", "CAR-5", "CAR-404"],
    ),
    IncidentKind.WRONG_ITEM: (
        ["C-7", "C-33"],
        ["O-2001", "W-3301", "O-NEW"],
        ["SHORTS-BLUE-L", "SHORTS-NAVY-M", "SKU-404"],
    ),
    IncidentKind.WRONG_ORDER: (["C-88", "C-7"], ["ORD-3001", "O-2001", "ORD-NEW"], ["latte"]),
    IncidentKind.WARRANTY_FAULT: (
        ["C-21", "C-33"],
        ["W-77", "W-NEW"],
        ["LAPTOP-14", "EREADER-7", "PHONE-X2"],
    ),
    IncidentKind.DEFECTIVE_ITEM: (
        ["C-33", "C-21"],
        ["W-3301", "W-77", "W-NEW"],
        ["EREADER-7", "LAPTOP-14", "SKU-404"],
    ),
    IncidentKind.SUPPORT_CALL: (["C-60"], ["REP-6001"], ["PHONE-X2"]),
}
CALL_OUTCOMES: tuple[Literal["completed", "dropped", "no_answer"], ...] = (
    "completed",
    "dropped",
    "no_answer",
)
OWNED: dict[IncidentKind, list[tuple[str, str]]] = {
    IncidentKind.CAR_MISSING: [("M-42", "R-1001"), ("M-7", "R-2002")],
    IncidentKind.WRONG_ITEM: [("C-7", "O-2001"), ("C-33", "W-3301"), ("C-33", "O-NEW")],
    IncidentKind.WRONG_ORDER: [("C-88", "ORD-3001"), ("C-7", "ORD-NEW")],
}
SKUS = ["SHORTS-BLUE-M", "SHORTS-BLUE-L", "SHORTS-NAVY-M", "EREADER-8", "LAPTOP-15", "SKU-404"]


def above_the_limits() -> st.SearchStrategy[Decimal]:
    """What a customer paid, above most discretion limits (10 to 25 USD): approvals ahead."""
    edges = [Decimal(e) for e in ("10.01", "20.01", "21.00", "25.01", "42.00", "129.99")]
    return st.sampled_from(edges) | st.decimals(min_value=20, max_value=5000, places=2)


@st.composite
def tickets(
    draw: st.DrawFn,
    kinds: list[IncidentKind] | None = None,
    paid: st.SearchStrategy[Decimal] | None = None,
    owned: bool = False,
) -> TicketPlan:
    """A ticket; `owned`: only bookings and orders on record as the customer's, or on record
    nowhere yet (so the case goes on to its compensation instead of handing over)."""
    kind = draw(st.sampled_from(kinds or list(IncidentKind)))
    customers, refs, items = _REFS[kind]
    customer, reference = draw(st.sampled_from(customers)), draw(st.sampled_from(refs))
    if owned and kind in OWNED:
        customer, reference = draw(st.sampled_from(OWNED[kind]))
    preferred, contacts = draw(_contacts(needs_phone=kind == IncidentKind.SUPPORT_CALL))
    extra: dict[str, object] = {}
    if kind == IncidentKind.CAR_MISSING:
        extra["location"] = draw(st.sampled_from(["Main St 1", "Harbour 4"]))
    elif kind == IncidentKind.WRONG_ITEM:
        extra["wanted"] = draw(st.sampled_from(["SHORTS-BLUE-M", "SHORTS-NAVY-M", "SKU-404"]))
    elif kind == IncidentKind.WARRANTY_FAULT:
        extra["asset"] = draw(st.sampled_from(["SN-77", "SN-NEW"]))
        extra["fault"] = draw(st.sampled_from(["screen", "battery"]))
    elif kind == IncidentKind.SUPPORT_CALL:
        extra["call_in"] = draw(
            st.sampled_from([timedelta(hours=-1), timedelta(0), timedelta(minutes=5)])
        )
    return TicketPlan(
        kind=kind,
        customer_id=customer,
        preferred=preferred,
        contacts=contacts,
        paid=draw(paid if paid is not None else amounts()),
        reference=reference,
        item=draw(st.sampled_from(items)),
        reported=draw(_reported()),
        **extra,  # type: ignore[arg-type]
    )


def _by(customer: bool = True) -> st.SearchStrategy[Actor]:
    people = st.sampled_from(ANYONE)
    return st.one_of(st.just(CUSTOMER), people) if customer else people


SLEEPS = [timedelta(minutes=m) for m in (1, 11, 31, 125, 270, 13 * 60)]
SLEEPS += [timedelta(days=d, hours=1) for d in (1, 2, 3, 8)]


def _strategies() -> dict[str, st.SearchStrategy[Action]]:
    staff = st.sampled_from(STAFF)
    return {
        "answer": st.builds(
            Answer,
            st.sampled_from(["open", "open", "open", "wrong_question", "bad_choice"]),
            st.integers(0, 3),
            _by(),
            st.none() | st.sampled_from(SKUS),
        ),
        "claim": st.builds(
            Claim,
            st.sampled_from(["taxi-1", "taxi-2", "taxi-3"]),
            st.one_of(
                st.sampled_from([Decimal(a) for a in ("0", "5.00", "18.50", "199.99", "200.00")]),
                st.decimals(min_value=0, max_value=600, places=2, allow_nan=False),
            ),
            _by(),
            st.sampled_from(["USD", "USD", "USD", "EUR"]),
        ),
        "decide": st.builds(
            Decide,
            st.sampled_from(["pending", "pending", "pending", "wrong_request"]),
            st.booleans(),
            st.sampled_from((MIA, MAX, MAX, AGENT)),
        ),
        "payment": st.builds(
            PaymentNews,
            st.none() | st.integers(0, 3),
            st.sampled_from(["settled", "failed", "refunded"]),
            st.integers(1, 3),
        ),
        "call": st.builds(
            CallNews,
            st.none() | st.integers(0, 3),
            st.sampled_from(["completed", "dropped", "no_answer"]),
            st.integers(1, 3),
        ),
        "sleep": st.builds(Sleep, st.sampled_from(SLEEPS)),
        "proceed": st.builds(
            Proceed, st.integers(0, 7), st.booleans(), st.sampled_from((MIA, MAX, MAX))
        ),
        "note": st.builds(Note, _by(customer=False)),
        "assign": st.builds(Assign, staff, _by(customer=False)),
        "escalate": st.builds(Escalate, _by(customer=False)),
        "cancel": st.builds(Cancel, _by(customer=False)),
    }


# How often each action is drawn: everything, and a mix that walks cases into their money.
EVERYTHING = {"answer": 2, "sleep": 2, "decide": 1, "claim": 1, "payment": 1, "call": 1}
EVERYTHING |= {"proceed": 2}
EVERYTHING |= {"note": 1, "assign": 1, "escalate": 1, "cancel": 1}
MONEY = {"proceed": 5, "answer": 1, "decide": 1, "claim": 2, "sleep": 1, "payment": 1}
MONEY |= {"assign": 1}


def actions(weights: dict[str, int] = EVERYTHING) -> st.SearchStrategy[Action]:
    made = _strategies()
    return st.one_of([made[name] for name, n in weights.items() for _ in range(n)])


def plans(
    kinds: list[IncidentKind] | None = None,
    max_actions: int = 14,
    weights: dict[str, int] = EVERYTHING,
    paid: st.SearchStrategy[Decimal] | None = None,
    owned: bool = False,
) -> st.SearchStrategy[Plan]:
    return st.builds(
        Plan,
        tickets(kinds, paid, owned),
        worlds(),
        st.sampled_from([None, AGENT, MIA, MAX]),
        st.lists(actions(weights), max_size=max_actions).map(tuple),
    )
