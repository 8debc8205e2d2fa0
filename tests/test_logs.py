"""What the processes log: JSON lines with the traceback and the SDK's workflow context, and
never a configured secret or anything shaped like a credential, wherever it turns up."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from makegood import logsetup
from makegood.settings import Settings

SECRET = "zendesk-signing-secret-4711"


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    """The processes' logging, configured as `makegood api` does, written to a buffer."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    logsetup.configure("json", "DEBUG", secrets=[SECRET])
    out = io.StringIO()
    handler = root.handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(out)
    yield out
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()


def lines(out: io.StringIO, *loggers: str) -> list[dict[str, object]]:
    """The lines these loggers wrote: the root logger is at DEBUG, so a library's thread left
    over from an earlier test (aiosqlite closing a connection) may write one meanwhile."""
    found = [json.loads(line) for line in out.getvalue().splitlines() if line]
    return [line for line in found if line.get("logger") in loggers]


def test_secrets_and_credentials_are_blanked_tracebacks_included(
    json_logs: io.StringIO,
) -> None:
    log = structlog.get_logger("makegood.test")
    try:
        raise ValueError(f"signature check with {SECRET} failed")
    except ValueError:
        log.exception("webhook_failed", header="Bearer mg_abcdefghijklmnopqrstuvwx")
    logging.getLogger("uvicorn.error").error(
        "bad request: authorization=Bearer tok-123456 secret=whsec_c2VjcmV0LXNlY3JldA=="
    )
    [ours, theirs] = lines(json_logs, "makegood.test", "uvicorn.error")
    assert ours["header"] == "Bearer [redacted]"
    exception = str(ours["exception"])
    assert "Traceback" in exception and "ValueError: signature check with [redacted]" in exception
    assert theirs["event"] == "bad request: authorization=Bearer [redacted] secret=[redacted]"
    assert SECRET not in json.dumps([ours, theirs])


def test_the_sdks_workflow_context_stays_a_field(json_logs: io.StringIO) -> None:
    context = {"workflow_id": "case-T-1001", "workflow_type": "RecoveryWorkflow", "attempt": 1}
    logging.getLogger("temporalio.workflow").warning(
        "case escalated (stage remedy)", extra={"temporal_workflow": context}
    )
    [line] = lines(json_logs, "temporalio.workflow")
    assert line["temporal_workflow"] == context and line["logger"] == "temporalio.workflow"


def test_every_configured_secret_is_known_to_the_redactor() -> None:
    settings = Settings(
        zendesk_secret=SECRET,
        payload_keys='{"k1": "' + "A" * 43 + '="}',
        telephony_webhook_secret="whsec_dGVsZXBob255LXNlY3JldA==",
    )
    values = settings.secret_values()
    assert SECRET in values and "A" * 43 + "=" in values
    assert "dGVsZXBob255LXNlY3JldA==" in values  # the key inside the whsec_ secret too
