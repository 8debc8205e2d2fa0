"""What the benchmarks share: the machine they ran on, the dev server they run against (as
`make run` starts it: a SQLite file in WAL mode), and their JSON reports."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

from temporalio.testing import WorkflowEnvironment

from makegood.devserver import find_binary
from makegood.privacy.codec import data_converter
from makegood.privacy.keys import KeyRing


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine() -> str:
    return f"{cpu_model()}, {os.cpu_count()} cores, {platform.machine()}"


async def dev_server(data: Path, keys: KeyRing, *, in_memory: bool = False) -> WorkflowEnvironment:
    """The dev server on a SQLite file in `data`, in WAL mode as `make run` has it; or, where
    the server's own storage is not what is measured, in memory."""
    pragmas = ["--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal"]
    stored = (
        {}
        if in_memory
        else {
            "dev_server_database_filename": str(data / "temporal.sqlite"),
            "dev_server_extra_args": pragmas,
        }
    )
    return await WorkflowEnvironment.start_local(
        data_converter=data_converter(keys),
        dev_server_existing_path=find_binary("temporal"),
        dev_server_log_level="error",
        **stored,  # type: ignore[arg-type]
    )


def write_report(path: Path, report: dict[str, Any]) -> None:
    """The figures as JSON, with the machine and the Python they were measured on."""
    whole = {"machine": machine(), "python": platform.python_version(), **report}
    path.write_text(json.dumps(whole, indent=2) + "\n")
    print(f"written to {path}")
