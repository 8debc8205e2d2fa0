"""One module per remedy, behind one interface (`base.Remedy`): each owns its state and steps
and returns a `RemedyResult`. A new incident kind needs a playbook entry and, at most, one new
module here registered in `REMEDIES`.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from makegood.workflows.remedies.base import Remedy
from makegood.workflows.remedies.callback import CallBack
from makegood.workflows.remedies.exchange import Exchange
from makegood.workflows.remedies.rebook import Rebook
from makegood.workflows.remedies.remake import Remake
from makegood.workflows.remedies.repair import RepairOrReplace

# The playbook's `remedy` names the class that runs it.
REMEDIES: Mapping[str, type[Remedy]] = MappingProxyType(
    {
        "rebook": Rebook,
        "exchange": Exchange,
        "replace": RepairOrReplace,
        "callback": CallBack,
        "remake": Remake,
    }
)

__all__ = ["REMEDIES", "Remedy"]
