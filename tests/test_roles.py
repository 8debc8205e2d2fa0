"""The role table: who may do what, the reasons it gives, and that the API asks nothing else."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.security import HTTPBearer

from makegood.api.app import create_app
from makegood.api.auth import Tokens
from makegood.credentials import token_hash
from makegood.domain import contract, roles
from makegood.domain.actions import (
    Actor,
    AgentNote,
    ApprovalDecision,
    AssignCase,
    CancelCase,
    CustomerAnswer,
    EscalateCase,
    ExpenseClaim,
)
from makegood.domain.money import Money
from makegood.settings import Settings
from tests.api_harness import TOKEN_TABLE, api_routes, guarded_routes
from tests.harness import ROOT

UPDATES = list(contract.UPDATE_FOR.values())


def test_every_update_and_every_staff_view_has_a_rule_in_role_order() -> None:
    views = {roles.OPEN, roles.STATUS, roles.LIST, roles.TIMELINE, roles.TRENDS, roles.OWN}
    assert set(UPDATES) | views | {roles.DECODE, roles.ENCODE} == set(roles.RULES)
    for action, rule in roles.RULES.items():
        assert rule.roles, action
        assert list(rule.roles) == [r for r in roles.ROLES if r in rule.roles], action
        for role in roles.ROLES:
            assert roles.may(role, action) == (roles.refusal(role, action) is None)


@pytest.mark.parametrize(
    ("role", "action", "reason"),
    [
        (
            "auditor",
            contract.ANSWER,
            "answers come from the customer, an agent or a manager, not an auditor",
        ),
        (
            "system",
            contract.SUBMIT_CLAIM,
            "expense claims come from the customer, an agent or a manager, not the system",
        ),
        (
            "agent",
            contract.DECIDE,
            "approval decisions come from a manager or an ops lead, not an agent",
        ),
        ("customer", contract.ADD_NOTE, "notes come from an agent or a manager, not a customer"),
        ("auditor", contract.ASSIGN, "cases are assigned by an agent or a manager, not an auditor"),
        (
            "customer",
            contract.ESCALATE,
            "escalations come from an agent or a manager, not a customer",
        ),
        (
            "customer",
            contract.CANCEL,
            "cases are cancelled by an agent or a manager, not a customer",
        ),
        ("customer", roles.OWN, "a case is owned by an agent or a manager, not a customer"),
        ("auditor", roles.OPEN, "cases are opened by an agent or a manager, not an auditor"),
        (
            "agent",
            roles.TIMELINE,
            "audit timelines are shown to a manager, an ops lead or an auditor, not an agent",
        ),
        (
            "customer",
            roles.STATUS,
            "a case's status is shown to an agent, a manager, an ops lead or an auditor, "
            "not a customer",
        ),
    ],
)
def test_refusals_name_who_may_and_who_asked(role: str, action: str, reason: str) -> None:
    assert roles.refusal(role, action) == reason
    assert roles.refusal(Actor(id="x", role=role), action) == reason  # type: ignore[arg-type]
    assert not roles.may(role, action)


def test_people_act_for_customers_managers_decide_auditors_only_read() -> None:
    for action in (contract.ANSWER, contract.SUBMIT_CLAIM):
        assert roles.allowed(action) == ("customer", "agent", "manager")
    assert roles.allowed(contract.DECIDE) == ("manager", "ops_lead")
    assert all(not roles.may(r, a) for r in ("auditor", "system") for a in UPDATES)
    assert [a for a in roles.RULES if roles.may("auditor", a)] == [
        roles.STATUS,
        roles.LIST,
        roles.TIMELINE,
        roles.TRENDS,
        roles.DECODE,
    ]
    assert roles.allowed(roles.TRENDS) == ("manager", "ops_lead", "auditor")  # not agents
    assert [a for a in roles.RULES if roles.may("customer", a)] == [
        contract.ANSWER,
        contract.SUBMIT_CLAIM,
    ]


def test_an_approval_is_decided_at_its_level_or_above() -> None:
    """An approval chain's level names a role: that role or anyone above it decides."""
    manager, lead = Actor(id="mia", role="manager"), Actor(id="olga", role="ops_lead")
    assert roles.decider_refusal(manager, "manager") is None
    assert roles.decider_refusal(lead, "manager") is None
    assert roles.decider_refusal(lead, "ops_lead") is None
    assert roles.decider_refusal(manager, "ops_lead") == (
        "the approval has been escalated to an ops lead: it is theirs to decide (or someone's "
        "above them), not a manager's"
    )
    assert roles.decider_refusal(Actor(id="sam", role="agent"), "manager") == (
        "approval decisions come from a manager or an ops lead, not an agent"
    )


def test_an_unknown_action_or_role_is_an_error_or_a_refusal_never_a_pass() -> None:
    with pytest.raises(ValueError, match=r"no role rule for 'approve'; the rules cover open, "):
        roles.may("manager", "approve")
    assert roles.refusal("boss", contract.ADD_NOTE) == (
        "notes come from an agent or a manager, not a boss"
    )


def _models(by: Actor, to: Actor) -> list[Any]:
    usd = Money.of("5", "USD")
    return [
        CustomerAnswer(question_id="q", answer="yes", by=by),
        ExpenseClaim(claim_id="c", description="Taxi", amount=usd, by=by),
        ApprovalDecision(request_id="r", approved=True, by=by),
        AgentNote(text="hi", by=by),
        AssignCase(to=to, by=by),
        EscalateCase(reason="why", by=by),
        CancelCase(reason="why", by=by),
    ]


@pytest.mark.parametrize("role", roles.ROLES)
def test_a_validator_asks_one_question_per_update(role: str) -> None:
    sender = Actor(id="x", role=role)  # type: ignore[arg-type]
    for model in _models(sender, Actor(id="sam", role="agent")):
        update = contract.UPDATE_FOR[type(model)]
        assert roles.refusal_for(model) == roles.refusal(role, update)
    # An assignment is refused for its sender first, then for the owner it names.
    to_auditor = AssignCase(to=Actor(id="ann", role="auditor"), by=sender)
    expected = roles.refusal(role, contract.ASSIGN) or (
        "a case is owned by an agent or a manager, not an auditor"
    )
    assert roles.refusal_for(to_auditor) == expected


def test_api_tokens_carry_only_staff_roles() -> None:
    assert roles.TOKEN_ROLES == ("agent", "manager", "ops_lead", "auditor")
    assert all(any(roles.may(r, a) for a in roles.RULES) for r in roles.TOKEN_ROLES)
    for who in ("customer:M-42", "system:temporal"):
        with pytest.raises(
            ValueError, match=f"may carry agent, manager, ops_lead, auditor, not {who}$"
        ):
            Tokens({token_hash("t"): who})


def test_every_route_that_takes_a_token_is_guarded_by_the_table_alone() -> None:
    app = create_app(Settings(api_tokens=TOKEN_TABLE))
    listed = {(m.upper(), p) for p, ops in app.openapi()["paths"].items() for m in ops}
    seen = {(m, r.path) for r in api_routes(app) for m in r.methods or ()}
    assert seen == listed, "api_routes must see every operation"
    guarded = {(m, p) for m, p, _ in guarded_routes(app)}
    for route in api_routes(app):
        bearer = any(isinstance(d.call, HTTPBearer) for d in _all(route.dependant))
        for method in route.methods or ():
            assert bearer == ((method, route.path) in guarded), (method, route.path)
    assert {a for *_, a in guarded_routes(app)} == set(roles.RULES) - {roles.OWN}
    api = ROOT / "makegood" / "api"
    source = "\n".join(
        path.read_text()
        for path in [
            *(api / n for n in ("app.py", "case_routes.py", "webhook_routes.py", "deps.py")),
            *(api / "pages").glob("*.py"),
        ]
    )
    assert not re.search(r'"(customer|agent|manager|auditor|system)"', source)


def _all(dependant: Any) -> list[Any]:
    return [d for sub in dependant.dependencies for d in (sub, *_all(sub))]


def readme_table() -> str:
    """The README's "Who may do what" table, as the role table and the app's routes say."""
    routes: dict[str, list[str]] = {}
    for method, path, action in guarded_routes(create_app(Settings(api_tokens=TOKEN_TABLE))):
        routes.setdefault(action, []).append(f"`{method} {path}`")
    routes[roles.OWN] = ["`to` of `POST /cases/{case_id}/assign`"]
    rows = [
        f"| `{action}` | {', '.join(routes[action])} | {', '.join(rule.roles)} |"
        for action, rule in roles.RULES.items()
    ]
    return "\n".join(["| action | request | who may |", "|---|---|---|", *rows])


def test_the_readme_shows_the_role_table() -> None:
    readme = (ROOT / "README.md").read_text()
    assert readme_table() in readme, f"README's table should read:\n{readme_table()}"


if __name__ == "__main__":  # python -m tests.test_roles: the table for the README
    print(readme_table())
