"""Who may do what to a case: one table for the API's route guards and the case's validators.

The API refuses a request its caller's role may not make (403) and the workflow refuses an
update whose `by` may not send it, both with the reason `refusal` words from this table, so a
request the API lets through is never refused by the case for the caller's role alone.

Keys are the case's update names (`contract.ANSWER`, ...; `contract.UPDATE_FOR` maps each
action model to its name) plus the things people do that are not updates: opening a case,
reading its status, the case list and the audit timeline, and being made a case's owner.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, get_args

from makegood.domain import contract
from makegood.domain.actions import Actor, AssignCase, Role

ROLES: Final[tuple[Role, ...]] = get_args(Role)  # the order every list of roles is shown in

OPEN: Final = "open"  # open a case from a ticket
STATUS: Final = "status"  # read one case's full status
LIST: Final = "list"  # list cases from visibility
TIMELINE: Final = "timeline"  # read a case's audit timeline
OWN: Final = "own"  # be made a case's owner (the `to` of an assignment)
TRENDS: Final = "trends"  # read the trends over a period (makegood report)
DECODE: Final = "decode"  # decrypt payloads through the codec endpoint (the Temporal UI)
ENCODE: Final = "encode"  # encrypt payloads through it (input typed into the Temporal UI)

# Roles an API token may carry. Customers hold none: they act from the signed link in their
# messages (their own case alone) or by a texted reply, or through an agent or a manager.
# `system` is the case itself, e.g. a cancellation requested in Temporal.
TOKEN_ROLES: Final[tuple[Role, ...]] = ("agent", "manager", "ops_lead", "auditor")


@dataclass(frozen=True)
class Rule:
    roles: tuple[Role, ...]
    refused: str
    """How a refusal starts: `refused` + the allowed roles + ", not a <role>"."""


_ACT_FOR_CUSTOMER: Final[tuple[Role, ...]] = ("customer", "agent", "manager")
_STAFF: Final[tuple[Role, ...]] = ("agent", "manager")
_READERS: Final[tuple[Role, ...]] = ("agent", "manager", "ops_lead", "auditor")
# Who decides approvals, lowest first: a playbook's approval chain names a level's role, and
# that role or anyone above it may decide while the approval is at that level.
APPROVERS: Final[tuple[Role, ...]] = ("manager", "ops_lead")

RULES: Final[Mapping[str, Rule]] = MappingProxyType(
    {
        OPEN: Rule(_STAFF, "cases are opened by"),
        # Answers and claims are the customer's. Agents and managers both act on a customer's
        # behalf (a phone call, a chat, a manager stepping in on an escalated case); the case
        # records who actually sent each one in `by`.
        contract.ANSWER: Rule(_ACT_FOR_CUSTOMER, "answers come from"),
        contract.SUBMIT_CLAIM: Rule(_ACT_FOR_CUSTOMER, "expense claims come from"),
        # Only managers (and the ops leads an approval chain escalates to) decide approvals:
        # so only they grant compensation above the discretion limit.
        contract.DECIDE: Rule(APPROVERS, "approval decisions come from"),
        contract.ADD_NOTE: Rule(_STAFF, "notes come from"),
        contract.ASSIGN: Rule(_STAFF, "cases are assigned by"),
        contract.ESCALATE: Rule(_STAFF, "escalations come from"),
        contract.CANCEL: Rule(_STAFF, "cases are cancelled by"),
        OWN: Rule(_STAFF, "a case is owned by"),
        # Auditors read and change nothing. These are staff views: a customer may one day see
        # their own case, never these.
        STATUS: Rule(_READERS, "a case's status is shown to"),
        LIST: Rule(_READERS, "the case list is shown to"),
        TIMELINE: Rule(("manager", "ops_lead", "auditor"), "audit timelines are shown to"),
        TRENDS: Rule(("manager", "ops_lead", "auditor"), "trends are shown to"),
        # The codec endpoint decrypts any payload of the namespace: the people who read whole
        # histories. Encrypting is for acting from the Temporal UI, which managers may.
        DECODE: Rule(("manager", "auditor"), "payloads are decrypted for"),
        ENCODE: Rule(("manager",), "payloads are encrypted for"),
    }
)

_WHO: Final[Mapping[str, str]] = {
    "customer": "the customer",
    "agent": "an agent",
    "manager": "a manager",
    "ops_lead": "an ops lead",
    "auditor": "an auditor",
    "system": "the system",
}
_NOT: Final[Mapping[str, str]] = {**_WHO, "customer": "a customer"}


def rule(action: str) -> Rule:
    """The rule for an action name; ValueError naming the known ones for any other."""
    try:
        return RULES[action]
    except KeyError:
        known = ", ".join(RULES)
        raise ValueError(f"no role rule for {action!r}; the rules cover {known}") from None


def allowed(action: str) -> tuple[Role, ...]:
    """The roles that may do `action`, in `ROLES` order."""
    return rule(action).roles


def may(role: Role | str, action: str) -> bool:
    return role in rule(action).roles


def refusal(who: Actor | Role | str, action: str) -> str | None:
    """None if `who` (an actor or a bare role) may do `action`, else the reason, e.g.
    "answers come from the customer, an agent or a manager, not an auditor"."""
    role = who.role if isinstance(who, Actor) else who
    found = rule(action)
    if role in found.roles:
        return None
    shown = _NOT.get(role, f"a {role}")
    return f"{found.refused} {_either(found.roles)}, not {shown}"


def refusal_for(action: contract.Action) -> str | None:
    """The reason a case must refuse this update for who sent it (or who it names as the
    owner), or None: what an update validator asks, one call per validator."""
    name = contract.UPDATE_FOR[type(action)]
    reason = refusal(action.by, name)
    if reason is None and isinstance(action, AssignCase):
        reason = refusal(action.to, OWN)
    return reason


def the_customer(customer_id: str) -> Actor:
    """The case's own customer as the one who acts: from their link or their texted reply."""
    return Actor(id=customer_id, role="customer")


def stranger(who: Actor, customer_id: str) -> str | None:
    """A customer acts on their own case alone: the reason to refuse anyone else's customer
    (validators ask; the customer's page sends the case's own customer id)."""
    if who.role == "customer" and who.id != customer_id:
        return "a customer may act only on their own case"
    return None


def decider_refusal(who: Actor, level_role: str) -> str | None:
    """None if `who` may decide an approval that is with `level_role` (that role or anyone
    above it in `APPROVERS`), else the reason: an escalated approval is no longer a
    manager's to decide."""
    if who.role not in APPROVERS:
        return refusal(who, contract.DECIDE)
    if level_role in APPROVERS and APPROVERS.index(who.role) < APPROVERS.index(level_role):
        return (
            f"the approval has been escalated to {_WHO[level_role]}: it is theirs to decide "
            f"(or someone's above them), not {_NOT[who.role]}'s"
        )
    return None


def role_word(role: str) -> str:
    """`ops_lead` as people read it: "an ops lead"."""
    return _WHO.get(role, f"a {role}")


def _either(roles: tuple[Role, ...]) -> str:
    words = [_WHO[r] for r in roles]
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"


# Who opens a case from a signed Zendesk ticket: the helpdesk, not a person.
ZENDESK: Final = Actor(id="zendesk", role="system")
