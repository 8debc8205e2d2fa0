"""The world the in-memory providers (`tests.fakes.World`) show a generated case, and the
provider faults a plan scripts (`tests.property_plans`, `tests.property_run`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from hypothesis import strategies as st

from tests.fakes import Fakes, World

if TYPE_CHECKING:
    from tests.property_plans import TicketPlan

FaultMode = Literal["transient", "exhausted", "permanent", "lost_reply"]
FAULTY = (
    "send_message",
    "make_payment",
    "grant_perk",
    "verify_ownership",
    "locate_vehicle",
    "rebook_vehicle",
    "release_booking",
    "check_stock",
    "ship_item",
    "create_return",
    "quote_substitute",
    "place_substitute",
    "replace_item",
    "book_repair",
    "remake_order",
    "schedule_call",
    "find_related_cases",
    "record_outcome",
)


@dataclass(frozen=True)
class Fault:
    """What every call of one provider operation does: fail twice then work (`transient`),
    fail until retries run out (`exhausted`), refuse for good (`permanent`), or commit and
    lose its answer once (`lost_reply`)."""

    activity: str
    mode: FaultMode


@dataclass(frozen=True)
class WorldPlan:
    earlier_reports: int = 0  # the customer's earlier cases of this fault on this asset
    silent_horns: frozenset[str] = frozenset()
    out_of_stock: frozenset[str] = frozenset()
    history_available: bool = True
    faults: tuple[Fault, ...] = ()
    currency: str = "USD"  # what the product side prices in (quotes, stock)


def worlds() -> st.SearchStrategy[WorldPlan]:
    """The world as the providers show it: stock, horns, earlier cases, the history lookup,
    up to two faulty provider operations, and products priced in the case's currency or in
    another one (a euro has cents like a dollar, a Kuwaiti dinar has three places)."""
    fault = st.builds(
        Fault,
        st.sampled_from(FAULTY),
        st.sampled_from(["transient", "exhausted", "permanent", "lost_reply"]),
    )
    return st.builds(
        WorldPlan,
        earlier_reports=st.integers(0, 3),
        silent_horns=st.frozensets(st.sampled_from(["CAR-1", "CAR-2"])),
        out_of_stock=st.frozensets(st.sampled_from(["SHORTS-NAVY-M", "EREADER-7", "LAPTOP-15"])),
        history_available=st.booleans(),
        faults=st.lists(fault, max_size=2, unique_by=lambda f: f.activity).map(tuple),
        currency=st.sampled_from(["USD", "USD", "USD", "EUR", "KWD"]),
    )


# The local provider seed's registrations (makegood/examples/seed.json), and one more booking
# (R-2002, another member's) so a car can be reported on a booking that is someone else's.
SEED_OWNERS = {
    ("booking", "R-1001"): "M-42",
    ("booking", "R-2002"): "M-7",
    ("asset", "SN-77"): "C-21",
    ("order", "W-77"): "C-21",
    ("order", "W-3301"): "C-33",
    ("order", "O-2001"): "C-7",
    ("order", "ORD-3001"): "C-88",
}


def world(plan: WorldPlan, ticket: TicketPlan) -> World:
    """The fakes' world for one plan: the seed's fleet, stock and registrations, changed."""
    w = World(currency=plan.currency, history_available=plan.history_available)
    w.owners.update(SEED_OWNERS)
    w.bookings["R-2002"] = ("CAR-4", "active")
    w.vehicles["CAR-4"].available = False
    w.silent_horns = set(plan.silent_horns)
    for sku in plan.out_of_stock:
        w.stock[sku].quantity = 0
    for n in range(plan.earlier_reports):
        w.earlier_case(
            f"case-T-E{n}",
            kind=ticket.kind.value,
            reference=ticket.reference,
            asset=ticket.asset,
            fault=ticket.fault,
        )
    return w


def script(fakes: Fakes, fault: Fault) -> None:
    s = fakes.on(fault.activity)
    if fault.mode == "transient":
        s.fail(2)
    elif fault.mode == "exhausted":
        s.fail_always()
    elif fault.mode == "permanent":
        s.fail_permanently(f"{fault.activity} refused by the provider")
    else:
        s.lose_reply(1)
