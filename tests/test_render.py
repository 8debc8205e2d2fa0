"""`makegood status` suggests commands that the case will take as they are."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from makegood.cli.render import render_status
from makegood.domain.case import CaseStatus, Question, Stage
from makegood.domain.money import Money


def _waiting(choices: list[str]) -> CaseStatus:
    now = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
    return CaseStatus(
        case_id="case-T-2001",
        ticket_id="T-2001",
        customer_id="C-7",
        kind="wrong_item",
        playbook_version="v1",
        stage=Stage.REMEDY,
        opened_at=now,
        discretion_limit=Money.of("27.00", "USD"),
        question=Question(
            id="substitute",
            prompt="SHORTS-BLUE-M is out of stock.",
            choices=choices,
            asked_at=now,
            deadline=now + timedelta(days=1),
            on_timeout="refund",
        ),
    )


@pytest.mark.parametrize(
    ("choices", "suggested"),
    [
        (
            ["substitute", "refund"],
            "makegood answer case-T-2001 substitute substitute --value <SKU>",
        ),
        (["refund", "substitute"], "makegood answer case-T-2001 substitute refund"),
    ],
)
def test_the_suggested_answer_carries_the_value_it_needs(
    choices: list[str], suggested: str
) -> None:
    lines = [line.strip() for line in render_status(_waiting(choices)).splitlines()]
    assert suggested in lines
