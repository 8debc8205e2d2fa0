"""The manager's approval desk, and the ops leads' trends page."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from typing import Annotated, Any, Final

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from temporalio.service import RPCError

from makegood.api.deps import Index, Temporal
from makegood.api.pages import views
from makegood.api.pages.console import forbidden, statuses, unlisted
from makegood.api.pages.session import Staff
from makegood.api.pages.web import page
from makegood.api.report_routes import period
from makegood.cases import Invalid, list_cases
from makegood.domain import contract, roles
from makegood.domain.trend_rows import RATES, SPREADS, rows
from makegood.domain.trends import trends

router = APIRouter(include_in_schema=False)
DESK_LIMIT: Final = 200


@router.get("/console/approvals")
async def desk(
    request: Request, session: Staff, client: Temporal, done: str | None = None
) -> Response:
    """Pending approvals across cases, oldest first, with what a decision needs beside it."""
    if refused := forbidden(request, session, roles.LIST):
        return refused
    try:
        rows_ = await list_cases(client, open_only=True, limit=DESK_LIMIT)
    except RPCError as err:
        return unlisted(request, session, err)
    me = str(session.actor)
    pending: list[dict[str, Any]] = []
    for status in await statuses(client, rows_):
        if status is None or status.approval is None:
            continue
        a = status.approval
        level_refusal = roles.decider_refusal(session.actor, a.role or roles.APPROVERS[0])
        four_eyes = views.involvement(status, me) if a.amount is not None else None
        pending.append(
            {
                "s": status,
                "a": a,
                "receipts": [c for c in status.claims if c.receipt_sha256 or c.receipt],
                "checks": status.claim_checks,
                "related": status.related,
                "may_decide": session.may(contract.DECIDE) and not level_refusal and not four_eyes,
                "why_not": level_refusal or (f"Four eyes: {four_eyes}." if four_eyes else None),
            }
        )
    pending.sort(key=lambda p: p["a"].asked_at)
    return page(request, "desk.html", {"session": session, "pending": pending, "done": done})


def _bars(counts: dict[str, int]) -> list[dict[str, Any]]:
    """Bars for a count chart, drawn server-side as SVG: label, count, width in percent."""
    top = max(counts.values(), default=0) or 1
    return [{"label": k, "count": v, "width": round(100 * v / top)} for k, v in counts.items()]


@router.get("/console/trends")
async def trends_page(
    request: Request,
    session: Staff,
    index: Index,
    since: Annotated[date | None, Query()] = None,
    until: Annotated[date | None, Query()] = None,
    format: Annotated[str, Query(pattern="^(html|csv)$")] = "html",
) -> Response:
    if refused := forbidden(request, session, roles.TRENDS):
        return refused
    try:
        start, end = period(since, until, datetime.now(UTC).date())
    except Invalid as err:
        context = {"session": session, "error": "; ".join(err.problems), "found": None}
        return page(request, "trends.html", context, 422)
    found = trends(await index.closed_between(start, end), start, end)
    data = found.model_dump(mode="json")
    if format == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(("metric", "key", "value"))
        writer.writerows(rows(data))
        name = f"makegood-trends-{start:%Y-%m-%d}-{end:%Y-%m-%d}.csv"
        return Response(
            out.getvalue(),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    context = {
        "session": session,
        "error": None,
        "found": found,
        "data": data,
        "spreads": SPREADS,
        "rates": RATES,
        "by_kind": _bars(found.by_kind),
        "by_resolution": _bars(found.by_resolution),
        "by_cause": _bars(found.by_cause),
        "breaches": _bars(found.sla_breaches),
        "since": start.date().isoformat(),
        "until": (end.date().fromordinal(end.date().toordinal() - 1)).isoformat(),
    }
    return page(request, "trends.html", context)
