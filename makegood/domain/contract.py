"""The recovery workflow's public names: what clients call it by, shared with the workflow.

Clients (intake, CLI, tests) speak to a case through these names and the domain models alone,
so they never import workflow code; the workflow registers itself under the same names.
"""

from __future__ import annotations

from typing import Final

from makegood.domain.actions import (
    AgentNote,
    ApprovalDecision,
    AssignCase,
    CancelCase,
    CustomerAnswer,
    EscalateCase,
    ExpenseClaim,
)
from makegood.domain.ids import callback_id as callback_id

RECOVERY_WORKFLOW: Final = "RecoveryWorkflow"
STATUS_QUERY: Final = "status_query"
ANSWER: Final = "answer"
SUBMIT_CLAIM: Final = "submit_claim"
DECIDE: Final = "decide"
ADD_NOTE: Final = "add_note"
ASSIGN: Final = "assign"
ESCALATE: Final = "escalate"
CANCEL: Final = "cancel"
PAYMENT_EVENT_SIGNAL: Final = "payment_event"
# The types of an update's refusal (ApplicationError.type): the API answers 409 and 429.
INVALID_UPDATE: Final = "InvalidUpdate"
LIMIT_REACHED: Final = "LimitReached"
CALLBACK_WORKFLOW: Final = "CallbackWorkflow"
# A case's first message to the customer goes to a task queue of its own beside the case's,
# polled by every worker with slots of its own: an apology never waits behind slower calls.
FIRST_CONTACT_SUFFIX: Final = "-first-contact"
CALL_STATUS_SIGNAL: Final = "call_status"
CALLBACK_STATE_QUERY: Final = "callback_state"


# Search attributes: what visibility can find cases by. No personal data: customers and assets
# appear only as keyed pseudonyms (`makegood.domain.pseudonyms`).
SA_CUSTOMER: Final = "MakegoodCustomer"
SA_ASSET: Final = "MakegoodAsset"
SA_KIND: Final = "MakegoodKind"
SA_STAGE: Final = "MakegoodStage"
SA_SLA: Final = "MakegoodSla"
KEYWORD_ATTRIBUTES: Final = (SA_CUSTOMER, SA_ASSET, SA_KIND, SA_STAGE, SA_SLA)


Action = (
    CustomerAnswer
    | ExpenseClaim
    | ApprovalDecision
    | AgentNote
    | AssignCase
    | EscalateCase
    | CancelCase
)

UPDATE_FOR: Final[dict[type, str]] = {
    CustomerAnswer: ANSWER,
    ExpenseClaim: SUBMIT_CLAIM,
    ApprovalDecision: DECIDE,
    AgentNote: ADD_NOTE,
    AssignCase: ASSIGN,
    EscalateCase: ESCALATE,
    CancelCase: CANCEL,
}


def first_contact_queue(task_queue: str) -> str:
    """The first-contact lane of the cases on `task_queue`."""
    return f"{task_queue}{FIRST_CONTACT_SUFFIX}"
