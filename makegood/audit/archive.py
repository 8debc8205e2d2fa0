"""History files: one JSON per workflow in the `temporal workflow show --output json` format,
and a manifest that names each file's workflow (the JSON itself does not) with a checksum."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel
from temporalio.client import WorkflowHistory

MANIFEST = "manifest.json"
FORMAT = "makegood-histories/1"


class Entry(BaseModel):
    file: str
    workflow_id: str
    run_id: str | None = None
    workflow_type: str
    status: str | None = None
    closed_at: datetime | None = None
    events: int
    sha256: str


class Manifest(BaseModel):
    format: str = FORMAT
    written_at: datetime
    entries: list[Entry] = []

    @classmethod
    def load(cls, folder: Path) -> Manifest:
        path = folder / MANIFEST
        if not path.exists():
            raise FileNotFoundError(
                f"{path} is missing: not a Makegood history folder "
                "(write one with `makegood export`)"
            )
        manifest = cls.model_validate_json(path.read_text())
        if manifest.format != FORMAT:
            raise ValueError(f"{path}: unknown format {manifest.format!r}, expected {FORMAT}")
        return manifest

    def save(self, folder: Path) -> None:
        self.entries.sort(key=lambda e: e.file)
        (folder / MANIFEST).write_text(self.model_dump_json(indent=2) + "\n")


def workflow_type(history: WorkflowHistory) -> str:
    started = history.events[0].workflow_execution_started_event_attributes
    return started.workflow_type.name


def file_name(workflow_id: str) -> str:
    return workflow_id.replace(":", "__")


def open_manifest(folder: Path) -> Manifest:
    folder.mkdir(parents=True, exist_ok=True)
    try:
        return Manifest.load(folder)
    except FileNotFoundError:
        return Manifest(written_at=datetime.now(UTC))


def write_history(
    folder: Path,
    name: str,
    history: WorkflowHistory,
    *,
    manifest: Manifest | None = None,
    status: str | None = None,
    closed_at: datetime | None = None,
) -> Entry:
    """Write `<name>.json` and add it to `manifest`, or to the folder's manifest on disk."""
    own = manifest is None
    manifest = manifest or open_manifest(folder)
    text = json.dumps(history.to_json_dict(), indent=2) + "\n"
    (folder / f"{name}.json").write_text(text)
    entry = Entry(
        file=f"{name}.json",
        workflow_id=history.workflow_id,
        run_id=history.run_id or None,
        workflow_type=workflow_type(history),
        status=status,
        closed_at=closed_at,
        events=len(history.events),
        sha256=hashlib.sha256(text.encode()).hexdigest(),
    )
    manifest.entries = [e for e in manifest.entries if e.file != entry.file] + [entry]
    manifest.written_at = datetime.now(UTC)
    if own:
        manifest.save(folder)
    return entry


def entries(folder: Path) -> Iterator[tuple[Entry, Path]]:
    for entry in Manifest.load(folder).entries:
        yield entry, folder / entry.file


async def read_folder(folder: Path) -> AsyncIterator[WorkflowHistory]:
    """The folder's histories, each checked against the manifest's checksum."""
    for entry, path in entries(folder):
        text = path.read_text()
        if hashlib.sha256(text.encode()).hexdigest() != entry.sha256:
            raise ValueError(
                f"{path}: checksum does not match the manifest; the file was "
                "changed after it was exported"
            )
        yield WorkflowHistory.from_json(entry.workflow_id, text)
