"""The trends as rows and words: the CSV's `metric,key,value` rows (the CLI's and the trends
page's export) and the figures as people read them. Pure; reads the trends' JSON form."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

SPREADS: Final = (
    ("to_first_contact_s", "time to first contact", "s"),
    ("to_remedy_s", "time to the remedy", "s"),
    ("to_resolution_s", "time to resolution", "s"),
    ("remedy_attempts", "remedy attempts", ""),
)
RATES: Final = (
    ("escalation_rate", "escalated"),
    ("reopen_rate", "re-opened"),
    ("unconfirmed_rate", "remedy unconfirmed (nobody answered)"),
)


def rows(found: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    """Every figure as (metric, key, value): the CSV's rows, in the table's order."""
    yield "start", "", found["start"]
    yield "end", "", found["end"]
    for name in ("cases", "without_outcome"):
        yield name, "", str(found[name])
    for group in ("by_kind", "by_resolution", "by_cause", "sla_breaches"):
        for key, count in found[group].items():
            yield group, key, str(count)
    for name, _, _ in SPREADS:
        for key in ("cases", "median", "p95"):
            value = found[name][key]
            yield name, key, "" if value is None else str(value)
    for name, _ in RATES:
        value = found[name]
        yield name, "", "" if value is None else str(value)
    for kind, sums in found["compensation_by_kind"].items():
        for s in sums:
            yield "compensation_by_kind", f"{kind} {s['currency']}", s["amount"]
    for group in ("paid", "customers_paid"):
        for s in found[group]:
            yield group, s["currency"], s["amount"]
    for currency, share in found["compensation_share"].items():
        yield "compensation_share", currency, str(share)
    for name in ("repeat_customers", "repeat_assets"):
        yield name, "", str(found[name])


def figure(value: float | None, unit: str) -> str:
    """A spread's figure as people read it: seconds, minutes or hours; "-" for none."""
    if value is None:
        return "-"
    if unit != "s":
        return f"{value:g}"
    if value < 120:
        return f"{value:.1f} s"
    return f"{value / 60:.1f} min" if value < 7200 else f"{value / 3600:.1f} h"
