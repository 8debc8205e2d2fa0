"""Trends over a period for ops leads, managers and auditors: read from the case index's rows
and the outcomes they keep (`makegood.domain.trends`), never by scanning histories."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated

from fastapi import APIRouter, Query

from makegood.api.deps import Index, MaySeeTrends
from makegood.api.responses import BAD_QUERY, TOKEN, responses
from makegood.cases import Invalid
from makegood.domain.trends import Trends, trends

router = APIRouter()
LONGEST = timedelta(days=366)


def period(since: date | None, until: date | None, today: date) -> tuple[datetime, datetime]:
    """[since 00:00 UTC, the day after `until` 00:00 UTC); by default the last 30 days."""
    last = until or today
    first = since or last - timedelta(days=29)
    if first > last:
        raise Invalid([f"since: {first} is after until ({last})"])
    start = datetime.combine(first, time(0), UTC)
    end = datetime.combine(last + timedelta(days=1), time(0), UTC)
    if end - start > LONGEST:
        raise Invalid([f"since: a period is at most {LONGEST.days} days"])
    return start, end


@router.get("/trends", tags=["trends"], responses=responses(TOKEN, BAD_QUERY))
async def get_trends(
    who: MaySeeTrends,
    index: Index,
    since: Annotated[
        date | None, Query(description="first day, UTC (default: 29 days before until)")
    ] = None,
    until: Annotated[date | None, Query(description="last day, UTC (default: today)")] = None,
) -> Trends:
    start, end = period(since, until, datetime.now(UTC).date())
    return trends(await index.closed_between(start, end), start, end)
