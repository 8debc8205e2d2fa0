"""Local activities in a history: Temporal records each as one `core_local_activity` marker
(its type, the attempt it ended on, and its result or failure) instead of scheduled, started
and completed events. Makegood runs only its bookkeeping this way (`ActivitySpec.local`)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
from temporalio.api.failure.v1 import Failure
from temporalio.api.history.v1 import HistoryEvent

LOCAL_ACTIVITY_MARKER = "core_local_activity"


@dataclass
class LocalActivity:
    name: str
    attempt: int
    result: list[Payload]
    failure: Failure | None


def local_activity(event: HistoryEvent) -> LocalActivity | None:
    """The local activity a marker event records; None for any other event or marker."""
    if event.event_type != EventType.EVENT_TYPE_MARKER_RECORDED:
        return None
    attrs = event.marker_recorded_event_attributes
    if attrs.marker_name != LOCAL_ACTIVITY_MARKER or "data" not in attrs.details:
        return None
    data = json.loads(attrs.details["data"].payloads[0].data)
    result = attrs.details["result"].payloads if "result" in attrs.details else []
    return LocalActivity(
        name=str(data.get("activity_type", "local activity")),
        attempt=int(data.get("attempt") or 1),
        result=list(result),
        failure=attrs.failure if attrs.HasField("failure") else None,
    )
