"""Cases as the console shows them: what each waits for, its SLA clock, who took part."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from makegood.domain import roles
from makegood.domain.case import CaseStatus, SlaClock, SlaLevel


def span(d: timedelta) -> str:
    seconds = abs(int(d.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m"


@dataclass(frozen=True)
class Clock:
    """The clock a person should look at first: breached before warned, then the nearest."""

    level: SlaLevel
    text: str


def clock(status: CaseStatus, now: datetime) -> Clock | None:
    running = [c for c in status.slas if c.state in ("running", "paused")]
    if not running:
        return None

    def left(c: SlaClock) -> timedelta:
        return c.target - c.elapsed_at(now)

    order = {SlaLevel.BREACHED: 0, SlaLevel.WARNING: 1, SlaLevel.OK: 2}
    first = min(running, key=lambda c: (order[c.level], left(c)))
    remaining = left(first)
    paused = " (paused: waiting for the customer)" if first.state == "paused" else ""
    if remaining < timedelta(0):
        return Clock(first.level, f"{first.label}: {span(remaining)} over{paused}")
    return Clock(first.level, f"{first.label}: {span(remaining)} left{paused}")


def waits_for(status: CaseStatus) -> str:
    """What the case is waiting for, in a few words."""
    if status.question is not None:
        return f"the customer's answer ({status.question.id})"
    if status.approval is not None:
        who = roles.role_word(status.approval.role or roles.APPROVERS[0])
        return f"{who}'s decision ({status.approval.id})"
    if status.callback is not None and status.callback.state in ("scheduling", "waiting"):
        return "a call-back to the customer"
    if status.stage == "follow_up" and status.follow_up_at is not None:
        return "the follow-up"
    if status.handed_off:
        return "a person: the case was handed off"
    return "nothing: the case is working"


def involvement(status: CaseStatus, who: str) -> str | None:
    """Why `who` may not approve money on this case (four eyes), as the case itself judges:
    they opened it, own it or claimed expenses in it."""
    if status.opened_by == who:
        return "you opened this case"
    if status.owner == who:
        return "you own this case"
    if any(str(c.by) == who for c in status.claims):
        return "you claimed expenses in this case"
    return None
