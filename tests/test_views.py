"""What the inbox and the desk say of a case: its most urgent SLA clock, what it waits for,
and why four eyes keep someone from its money."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from makegood.api.pages import views
from makegood.domain.actions import Actor, ExpenseClaim
from makegood.domain.case import (
    ApprovalRequest,
    CaseStatus,
    Question,
    SlaClock,
    SlaLevel,
    Stage,
)
from makegood.domain.money import Money

NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


def status(**fields: object) -> CaseStatus:
    return CaseStatus.model_validate(
        {
            "case_id": "case-T-1",
            "ticket_id": "T-1",
            "customer_id": "M-42",
            "kind": "car_missing",
            "playbook_version": "v",
            "stage": Stage.REMEDY,
            "opened_at": NOW - timedelta(hours=1),
            "discretion_limit": Money(amount=Decimal("21.00"), currency="USD"),
            **fields,
        }
    )


def clock(name: str, target_min: int, since_min: int, **more: object) -> SlaClock:
    return SlaClock.model_validate(
        {
            "name": name,
            "label": name,
            "target": timedelta(minutes=target_min),
            "started_at": NOW - timedelta(minutes=since_min),
            "running_since": NOW - timedelta(minutes=since_min),
            **more,
        }
    )


def test_the_clock_shown_is_the_breached_one_then_the_nearest() -> None:
    calm = clock("resolution", 600, 10)
    near = clock("remedy_offer", 60, 50)
    assert views.clock(status(slas=[calm, near]), NOW) == views.Clock(
        SlaLevel.OK, "remedy_offer: 10m left"
    )
    warned = clock("first_contact", 600, 500, warned_at=NOW)
    assert views.clock(status(slas=[near, warned]), NOW) == views.Clock(
        SlaLevel.WARNING, "first_contact: 1h 40m left"
    )
    late = clock("approval_decision", 60, 75, breached_at=NOW, state="missed")
    # A missed clock has stopped: the running ones are what a person can still save.
    assert views.clock(status(slas=[late, near]), NOW).text == "remedy_offer: 10m left"  # type: ignore[union-attr]
    over = clock("approval_decision", 60, 75, breached_at=NOW)
    assert views.clock(status(slas=[near, over]), NOW) == views.Clock(
        SlaLevel.BREACHED, "approval_decision: 15m over"
    )
    paused = clock(
        "resolution", 120, 0, running_since=None, state="paused", elapsed=timedelta(minutes=30)
    )
    assert views.clock(status(slas=[paused]), NOW).text == (  # type: ignore[union-attr]
        "resolution: 1h 30m left (paused: waiting for the customer)"
    )
    assert views.clock(status(), NOW) is None


def test_what_a_case_waits_for() -> None:
    asked = Question(
        id="pickup-1", prompt="?", choices=["a"], asked_at=NOW, deadline=NOW, on_timeout="x"
    )
    assert views.waits_for(status(question=asked)) == "the customer's answer (pickup-1)"
    pending = ApprovalRequest(id="compensation", reason="r", asked_at=NOW, deadline=NOW)
    assert views.waits_for(status(approval=pending)) == "a manager's decision (compensation)"
    lead = pending.model_copy(update={"role": "ops_lead"})
    assert views.waits_for(status(approval=lead)) == "an ops lead's decision (compensation)"
    assert views.waits_for(status()) == "nothing: the case is working"


def test_four_eyes_names_how_someone_took_part() -> None:
    claim = ExpenseClaim(
        claim_id="taxi-1",
        description="Taxi",
        amount=Money(amount=Decimal("5"), currency="USD"),
        by=Actor(id="mia", role="manager"),
    )
    s = status(opened_by="agent:sam", owner="manager:max", claims=[claim])
    assert views.involvement(s, "agent:sam") == "you opened this case"
    assert views.involvement(s, "manager:max") == "you own this case"
    assert views.involvement(s, "manager:mia") == "you claimed expenses in this case"
    assert views.involvement(s, "manager:ann") is None
