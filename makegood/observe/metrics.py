"""Makegood's own metrics, beside the SDK's, on the runtime's meter (Prometheus or OTLP).

They are read off what the activities are asked to do, by a worker interceptor, so no workflow
code carries metric calls and a replay can never count anything twice:
- a case's apology or its history look-up (its first activity) counts it as opened;
- the outcome record carries how it closed, how long first contact and resolution took, how
  often it re-opened and escalated;
- an escalation is a message to operations whose step says so (`domain/steps.py`), an SLA
  breach's included;
- a payment made, by kind, and its amount in minor units (counters are whole numbers);
- a provider call that failed, by provider and class (transient, refused, unexpected).

An activity retried after a failure counts its failure each time (that is what the provider
did) and its success once.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import activity
from temporalio.common import MetricMeter
from temporalio.exceptions import ApplicationError
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

from makegood.domain import calls, steps
from makegood.domain.case import CaseOutcome
from makegood.domain.money import minor_units
from makegood.domain.provider import MessageRequest, PaymentRequest

PREFIX = "makegood_"
OPENED = PREFIX + "cases_opened"
CLOSED = PREFIX + "cases_closed"
REOPENED = PREFIX + "cases_reopened"
ESCALATED = PREFIX + "escalations"
FIRST_CONTACT = PREFIX + "time_to_first_contact"
RESOLUTION = PREFIX + "time_to_resolution"
PAYMENTS = PREFIX + "payments"
PAID = PREFIX + "paid_minor_units"
FAILURES = PREFIX + "provider_failures"

ESCALATING = ("escalation", "sla_breach")  # the messages that hand a case to a person
PROVIDER_OF = {
    calls.MAKE_PAYMENT.name: "payments",
    calls.SCHEDULE_CALL.name: "telephony",
    calls.RECORD_OUTCOME.name: "outcome_store",
    calls.FIND_RELATED_CASES.name: "case_history",
}


def provider_of(name: str, req: Any) -> str:
    if isinstance(req, MessageRequest):
        return str(req.channel)  # email, sms, push: each its own provider
    return PROVIDER_OF.get(name, "product")


def failure_class(err: BaseException) -> str:
    if isinstance(err, ApplicationError):
        if err.type in ("TransientProviderError", "ProviderError"):
            return "transient"
        if err.type == "PermanentProviderError" or err.non_retryable:
            return "refused"
    if isinstance(err, TimeoutError):
        return "timeout"
    return "unexpected"


class _Instruments:
    def __init__(self, meter: MetricMeter) -> None:
        self.opened = meter.create_counter(OPENED, "cases opened")
        self.closed = meter.create_counter(CLOSED, "cases closed, by resolution")
        self.reopened = meter.create_counter(REOPENED, "times a closed remedy was re-opened")
        self.escalated = meter.create_counter(ESCALATED, "escalations to a person")
        self.first_contact = meter.create_histogram_timedelta(
            FIRST_CONTACT, "from the report to the first message to the customer"
        )
        self.resolution = meter.create_histogram_timedelta(
            RESOLUTION, "from the report to the case's close"
        )
        self.payments = meter.create_counter(PAYMENTS, "payments made, by kind")
        self.paid = meter.create_counter(
            PAID, "amount paid, in minor units (cents), by kind and currency"
        )
        self.failures = meter.create_counter(
            FAILURES, "provider calls that failed, by provider and class"
        )


class _Inbound(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, owner: MetricsInterceptor) -> None:
        super().__init__(next)
        self.owner = owner

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        name = activity.info().activity_type
        req = input.args[0] if input.args else None
        try:
            result = await super().execute_activity(input)
        except BaseException as err:
            if not isinstance(err, (KeyboardInterrupt, SystemExit)):
                self.owner.meter().failures.add(
                    1, {"provider": provider_of(name, req), "class": failure_class(err)}
                )
            raise
        self.owner.done(name, req)
        return result


class MetricsInterceptor(Interceptor):
    """Counts what the activities did; instruments are made once per worker, on first use."""

    def __init__(self) -> None:
        self._instruments: _Instruments | None = None

    def meter(self) -> _Instruments:
        if self._instruments is None:
            self._instruments = _Instruments(activity.metric_meter())
        return self._instruments

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _Inbound(next, self)

    def done(self, name: str, req: Any) -> None:
        m = self.meter()
        if name == calls.FIND_RELATED_CASES.name:
            m.opened.add(1)
        elif isinstance(req, MessageRequest) and steps.ops_purpose(req.step) in ESCALATING:
            m.escalated.add(1, {"reason": str(steps.ops_purpose(req.step))})
        elif isinstance(req, PaymentRequest):
            m.payments.add(1, {"kind": req.kind})
            cents = int(req.amount.amount.scaleb(minor_units(req.amount.currency)))
            m.paid.add(cents, {"kind": req.kind, "currency": req.amount.currency})
        elif isinstance(req, CaseOutcome):
            m.closed.add(1, {"resolution": req.resolution, "kind": req.kind})
            if req.reopened:
                m.reopened.add(req.reopened, {"kind": req.kind})
            if req.seconds_to_first_contact is not None:
                m.first_contact.record(
                    timedelta(seconds=req.seconds_to_first_contact), {"kind": req.kind}
                )
            m.resolution.record(timedelta(seconds=req.seconds_to_close), {"kind": req.kind})
