"""SLA clocks: started, paused, stopped by the case; warnings and breaches fall due in order.

Pure bookkeeping over `SlaClock` models, given the time: the workflow passes
`workflow.now()`, tests pass any datetime.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Literal

from makegood.domain.case import SlaClock, SlaLevel, SlaName
from makegood.domain.playbook import Sla

Alarm = Literal["warning", "breach"]


class SlaBook:
    def __init__(self, sla: Sla, clocks: list[SlaClock]) -> None:
        self.sla = sla
        self.clocks = clocks  # the case status's own list: what the query shows
        self.changed = False

    def start(
        self,
        name: SlaName,
        at: datetime,
        *,
        label: str | None = None,
        since: datetime | None = None,
    ) -> SlaClock | None:
        target = getattr(self.sla, name)
        if target is None:
            return None
        begun = since or at
        clock = SlaClock(
            name=name, label=label or name, target=target, started_at=begun, running_since=begun
        )
        self.clocks.append(clock)
        self.changed = True
        return clock

    def get(self, label: str) -> SlaClock | None:
        return next((c for c in self.clocks if c.label == label and c.stopped_at is None), None)

    def stop(self, label: str, at: datetime) -> None:
        clock = self.get(label)
        if clock is None:
            return
        clock.elapsed = clock.elapsed_at(at)
        clock.running_since = None
        clock.stopped_at = at
        clock.state = "missed" if clock.elapsed > clock.target else "met"
        self.changed = True

    def pause(self, label: str, at: datetime) -> None:
        clock = self.get(label)
        if clock is not None and clock.running_since is not None:
            clock.elapsed = clock.elapsed_at(at)
            clock.running_since = None
            clock.state = "paused"
            self.changed = True

    def resume(self, label: str, at: datetime) -> None:
        clock = self.get(label)
        if clock is not None and clock.running_since is None:
            clock.running_since = at
            clock.state = "running"
            self.changed = True

    def next_alarm(self, now: datetime) -> tuple[datetime, SlaClock, Alarm] | None:
        """The earliest warning or breach still to come on a running clock."""
        due: list[tuple[datetime, int, SlaClock, Alarm]] = []
        for i, clock in enumerate(self.clocks):
            if clock.running_since is None:
                continue
            elapsed = clock.elapsed_at(now)
            if clock.warned_at is None and clock.breached_at is None:
                warn = _scale(clock.target, self.sla.warn_at)
                due.append((now + (warn - elapsed), i, clock, "warning"))
            elif clock.breached_at is None:
                due.append((now + (clock.target - elapsed), i, clock, "breach"))
        if not due:
            return None
        when, _, clock, alarm = min(due, key=lambda d: (d[0], d[1]))
        return when, clock, alarm

    def fire(self, clock: SlaClock, alarm: Alarm, at: datetime) -> None:
        if alarm == "warning":
            clock.warned_at = at
        else:
            clock.warned_at = clock.warned_at or at
            clock.breached_at = at
        self.changed = True

    def level(self) -> SlaLevel:
        """The worst level of any clock: one breach makes the case breached."""
        return max((c.level for c in self.clocks), key=_SEVERITY.index, default=SlaLevel.OK)


_SEVERITY = list(SlaLevel)  # declared mildest first


def _scale(target: timedelta, fraction: Decimal) -> timedelta:
    return timedelta(microseconds=int(Decimal(target // timedelta(microseconds=1)) * fraction))
