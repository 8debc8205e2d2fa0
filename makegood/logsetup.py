"""structlog for our own logs, and the same renderer for stdlib logs (Temporal's, workflows')."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any

import structlog

# What a credential looks like when its value is not known here: a bearer token in a header
# or an error message, a Standard Webhooks secret, a token this project issued.
_CREDENTIAL_SHAPES = re.compile(
    r"(?i)(bearer\s+)[^\s\"',;]+|\bwhsec_[A-Za-z0-9+/=]+|\bmg_[A-Za-z0-9_-]{16,}"
)
REDACTED = "[redacted]"


class Redact:
    """A processor that blanks every configured secret, and anything shaped like a
    credential, out of every string of a log event (tracebacks included, once formatted).

    Defence in depth: secrets are SecretStr and tracebacks carry no local variables, but an
    exception message or a library's log line may still quote one.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first, so a secret containing another is blanked whole.
        self.secrets = sorted({s for s in secrets if len(s) >= 8}, key=len, reverse=True)

    def text(self, value: str) -> str:
        for secret in self.secrets:
            if secret in value:
                value = value.replace(secret, REDACTED)
        return _CREDENTIAL_SHAPES.sub(lambda m: (m.group(1) or "") + REDACTED, value)

    def _clean(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: self._clean(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self._clean(v) for v in value)
        return value

    def __call__(
        self, _: Any, __: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        for key, value in list(event.items()):
            event[key] = self._clean(value)
        return event


def configure(fmt: str = "console", level: str = "INFO", secrets: Iterable[str] = ()) -> None:
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        # The SDK puts a workflow's or activity's context on its log records' `extra`.
        structlog.stdlib.ExtraAdder(allow=("temporal_workflow", "temporal_activity")),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    # Tracebacks in plain text, never with local variables (structlog's default with rich
    # installed shows them, and a secret in scope would end up in the log), formatted before
    # the redaction so that it reaches them too.
    redact = Redact(secrets)
    renderers: list[structlog.types.Processor] = (
        [structlog.processors.format_exc_info, redact, structlog.processors.JSONRenderer()]
        if fmt == "json"
        else [
            structlog.processors.format_exc_info,
            redact,
            structlog.dev.ConsoleRenderer(
                colors=sys.stderr.isatty(), exception_formatter=structlog.dev.plain_traceback
            ),
        ]
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *renderers],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
