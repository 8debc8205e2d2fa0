"""The recovery workflow's public names: what clients call it by, shared with the workflow.

Clients (intake, CLI, tests) speak to a case through these names and the domain models alone,
so they never import workflow code; the workflow registers itself under the same names.
"""

from __future__ import annotations

from typing import Final

from domain.actions import AgentNote, ApprovalDecision, CustomerAnswer, ExpenseClaim

RECOVERY_WORKFLOW: Final = "RecoveryWorkflow"
STATUS_QUERY: Final = "status_query"
ANSWER: Final = "answer"
SUBMIT_CLAIM: Final = "submit_claim"
DECIDE: Final = "decide"
ADD_NOTE: Final = "add_note"

Action = CustomerAnswer | ExpenseClaim | ApprovalDecision | AgentNote

UPDATE_FOR: Final[dict[type, str]] = {
    CustomerAnswer: ANSWER,
    ExpenseClaim: SUBMIT_CLAIM,
    ApprovalDecision: DECIDE,
    AgentNote: ADD_NOTE,
}
