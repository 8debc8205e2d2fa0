"""`makegood report`: the trends of the cases closed in a period, through the API (a manager's,
ops lead's or auditor's token), as a table, JSON or CSV (one `metric,key,value` row each)."""

from __future__ import annotations

import argparse
import csv
import sys
from datetime import date
from typing import Any

from makegood.cli.base import Subcommands, print_json
from makegood.cli.client import Api
from makegood.domain.trend_rows import RATES, SPREADS, figure, rows


def _money(sums: list[dict[str, str]]) -> str:
    return ", ".join(f"{s['amount']} {s['currency']}" for s in sums)


def table(found: dict[str, Any]) -> str:
    out = [
        f"cases closed {found['start'][:10]} to {found['end'][:10]} (UTC, end excluded): "
        f"{found['cases']}"
        + (
            f" ({found['without_outcome']} closed before outcomes were kept: counted, no figures)"
            if found["without_outcome"]
            else ""
        )
    ]
    counts = ", ".join(f"{k} {v}" for k, v in found["by_kind"].items())
    out.append(f"  by kind: {counts or '-'}")
    counts = ", ".join(f"{k} {v}" for k, v in found["by_resolution"].items())
    out.append(f"  by resolution: {counts or '-'}")
    counts = ", ".join(f"{k} {v}" for k, v in found.get("by_cause", {}).items())
    out.append(f"  by cause: {counts or '-'}")
    out.append(f"  {'':<38} {'median':>10} {'p95':>10} {'cases':>6}")
    for name, label, unit in SPREADS:
        s = found[name]
        out.append(
            f"  {label:<38} {figure(s['median'], unit):>10} {figure(s['p95'], unit):>10} "
            f"{s['cases']:>6}"
        )
    for name, label in RATES:
        value = found[name]
        out.append(f"  {label:<38} {'-' if value is None else f'{value:.0%}':>10}")
    breaches = ", ".join(f"{k} {v}" for k, v in found["sla_breaches"].items())
    out.append(f"  SLA breaches: {breaches or 'none'}")
    for kind, sums in found["compensation_by_kind"].items():
        out.append(
            f"  paid as {kind}: " + ", ".join(f"{s['amount']} {s['currency']}" for s in sums)
        )
    paid = ", ".join(f"{s['amount']} {s['currency']}" for s in found["paid"])
    had = ", ".join(f"{s['amount']} {s['currency']}" for s in found["customers_paid"])
    share = ", ".join(f"{v:.0%} in {k}" for k, v in found["compensation_share"].items())
    out.append(f"  compensation paid: {paid or 'none'} (customers had paid {had or '-'})")
    if share:
        out.append(f"  compensation as a share of what they paid: {share}")
    out.append(
        f"  repeat customers: {found['repeat_customers']}, repeat assets: {found['repeat_assets']}"
    )
    return "\n".join(out)


async def cmd_report(api: Api, args: argparse.Namespace) -> None:
    found = await api.get(
        "/trends",
        since=args.since.isoformat() if args.since else None,
        until=args.until.isoformat() if args.until else None,
    )
    if args.format == "json":
        print_json(found)
    elif args.format == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(("metric", "key", "value"))
        writer.writerows(rows(found))
    else:
        print(table(found))


def add_commands(sub: Subcommands) -> None:
    p = sub.add_api(
        "report",
        cmd_report,
        "trends of the cases closed in a period: kinds, times, rates, SLA breaches, "
        "compensation, repeat customers (a manager's, ops lead's or auditor's token)",
    )
    p.add_argument("--since", type=date.fromisoformat, metavar="YYYY-MM-DD", help="first day (UTC)")
    p.add_argument(
        "--until",
        type=date.fromisoformat,
        metavar="YYYY-MM-DD",
        help="last day, included (UTC; default today; the period defaults to 30 days)",
    )
    p.add_argument("--format", choices=["table", "json", "csv"], default="table")
