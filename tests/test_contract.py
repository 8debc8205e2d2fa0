"""The wire contract holds: every activity is registered under its spec's name with its spec's
request and result types, and every spec has exactly one activity."""

from __future__ import annotations

import typing
from pathlib import Path

from temporalio import activity

from makegood.activities.history import HistoryActivities
from makegood.domain import calls
from tests.harness import local_adapters, local_store


async def test_every_activity_matches_its_spec(tmp_path: Path) -> None:
    store = await local_store(tmp_path / "adapters.sqlite")
    try:
        registered = [
            *local_adapters(store).activities(),
            HistoryActivities(None).find_related_cases,  # type: ignore[arg-type]
            HistoryActivities(None).index_case_opened,  # type: ignore[arg-type]
            HistoryActivities(None).index_case_closed,  # type: ignore[arg-type]
        ]
    finally:
        await store.close()
    seen = {}
    for fn in registered:
        defn = activity._Definition.must_from_callable(fn)
        hints = typing.get_type_hints(fn)
        params = [p for p in hints if p != "return"]
        seen[defn.name] = (hints[params[0]], hints["return"])
    assert set(seen) == set(calls.BY_NAME), "an activity without a spec, or a spec without one"
    for name, (request, result) in seen.items():
        spec = calls.BY_NAME[name]
        assert request is spec.request, f"{name}: takes {request}, the spec says {spec.request}"
        assert result is spec.result, f"{name}: returns {result}, the spec says {spec.result}"


def test_failure_reasons_are_cut_to_fit_and_say_so() -> None:
    from makegood.activities.calls import REASON_LIMIT, fit

    assert fit("card declined") == "card declined"
    long = "x" * 50_000
    cut = fit(long)
    assert len(cut) == REASON_LIMIT and cut.endswith("[cut: 50000 characters in all]")
