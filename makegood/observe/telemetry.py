"""The worker's telemetry: a Prometheus endpoint for the SDK's metrics and Makegood's own
(`observe.metrics`), and OpenTelemetry traces of each case when an OTLP endpoint is set.

Metrics go through the SDK runtime, so they must be configured before the first client exists
(`install_runtime`). Traces use the SDK's own interceptor (`temporalio.contrib.opentelemetry`):
each workflow run, update, activity and child workflow becomes a span, linked across the worker
and the API by the headers the interceptor adds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from temporalio.client import Interceptor

log = structlog.get_logger("makegood.observe")


class TelemetryError(SystemExit):
    """A telemetry setting that cannot be honoured: the process stops, saying which and why."""


DEV_METRICS = "127.0.0.1:9464"  # `makegood dev`'s endpoint, when nothing else holds the port


def install_runtime(metrics_bind: str, *, required: bool = True) -> Runtime | None:
    """Makes the SDK's default runtime serve Prometheus metrics on `metrics_bind` (host:port).

    A configured endpoint that cannot listen stops the process; the dev default (`required`
    False) gives way to whatever holds its port, with a warning."""
    try:
        runtime = Runtime(
            telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=metrics_bind))
        )
    except Exception as err:  # the core says why it cannot listen, in its own words
        if not required:
            log.warning("metrics_endpoint_unavailable", bind=metrics_bind, reason=str(err))
            return None
        raise TelemetryError(f"MAKEGOOD_METRICS_BIND={metrics_bind}: {err}") from None
    Runtime.set_default(runtime, error_if_already_set=False)
    log.info("metrics_endpoint", url=f"http://{metrics_bind}/metrics")
    return runtime


def tracer_provider(otlp_endpoint: str, service: str) -> TracerProvider:
    """Spans batched to an OTLP/HTTP collector (`.../v1/traces` is appended when missing)."""
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        raise TelemetryError(
            "MAKEGOOD_OTLP_ENDPOINT needs the otel extra: pip install 'makegood[otel]'"
        ) from None
    url = otlp_endpoint.rstrip("/")
    if not url.endswith("/v1/traces"):
        url += "/v1/traces"
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=url)))
    return provider


def tracing(provider: TracerProvider | None) -> list[Interceptor]:
    """The SDK's tracing interceptor over `provider`; none without one."""
    if provider is None:
        return []
    from temporalio.contrib.opentelemetry import TracingInterceptor

    return [TracingInterceptor(provider.get_tracer("makegood"))]
