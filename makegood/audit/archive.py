"""History files: one JSON per workflow in the `temporal workflow show --output json` format,
and a manifest that names each file's workflow (the JSON itself does not) with a checksum.

A workflow id is any string its starter chose (`../../etc/x` included), so a file is named
after it only through `file_name`'s reversible encoding, and every path is checked to name a
file directly inside the folder before anything is written or read (`inside`).
"""

from __future__ import annotations

import hashlib
import json
import string
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Final
from urllib.parse import unquote

from pydantic import BaseModel
from temporalio.client import WorkflowHistory

MANIFEST = "manifest.json"
FORMAT = "makegood-histories/1"


class UnsafePath(ValueError):
    """A file name that would leave its folder, or replace the manifest."""


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
        path = folder / MANIFEST
        if path.resolve().parent != folder.resolve():  # a link planted in its place
            raise UnsafePath(f"{path} leads out of {folder}; refused")
        path.write_text(self.model_dump_json(indent=2) + "\n")


def workflow_type(history: WorkflowHistory) -> str:
    started = history.events[0].workflow_execution_started_event_attributes
    return started.workflow_type.name


SAFE: Final = frozenset(string.ascii_letters + string.digits + "._-")
LONGEST: Final = 200  # characters before ".json"; file systems allow 255 bytes a name
HASHED: Final = "~"  # never produced by the encoding itself: marks a shortened name


def _encode(text: str) -> str:
    return "".join(c if c in SAFE else "".join(f"%{b:02X}" for b in c.encode()) for c in text)


def file_name(workflow_id: str, run_id: str | None = None) -> str:
    """The file name (without `.json`) of a workflow's history.

    Letters, digits, '.', '_' and '-' stay as they are (`case-zd-1234`), everything else is
    percent-encoded as UTF-8 (`case-zd-1234%3Acallback`), and a leading dot too, so no name
    is `.`, `..` or hidden, and none is the manifest's. `workflow_id_of` reverses it. With
    `run_id`, the run is named after an '@' (which the encoding never leaves bare): the earlier
    runs of a case that continued as new. An id too long for a file name keeps its first part
    and a hash of the whole after a '~'; the manifest still names the id.
    """
    if not workflow_id:
        raise UnsafePath("a workflow id cannot be empty")
    name = _encode(workflow_id)
    if name.startswith(".") or name.casefold() == Path(MANIFEST).stem:
        name = f"%{ord(name[0]):02X}{name[1:]}"
    if run_id:
        name = f"{name}@{_encode(run_id)}"
    if len(name) > LONGEST:
        digest = hashlib.sha256(f"{workflow_id}\0{run_id or ''}".encode()).hexdigest()[:24]
        name = f"{name[: LONGEST - len(digest) - 1]}{HASHED}{digest}"
    return name


def workflow_id_of(name: str) -> str | None:
    """The workflow id a `file_name` encodes; None for a shortened name (see the manifest)."""
    name = name.removesuffix(".json")
    if HASHED in name:
        return None
    return unquote(name.partition("@")[0], errors="strict")


def inside(folder: Path, file: str) -> Path:
    """`folder / file`, once it is certain to be a file directly inside `folder`.

    Refused: separators, `.` and `..`, the manifest's own name, and a name that resolves
    elsewhere (a symbolic link planted in the folder).
    """
    bad = (
        not file
        or file in (".", "..")
        or any(c in file for c in "/\\\0")
        or file.casefold() == MANIFEST
    )
    path = folder / file
    if bad or path.resolve().parent != folder.resolve():
        raise UnsafePath(f"{file!r} is not a file name inside {folder}; refused")
    return path


def open_manifest(folder: Path) -> Manifest:
    folder.mkdir(parents=True, exist_ok=True)
    try:
        return Manifest.load(folder)
    except FileNotFoundError:
        return Manifest(written_at=datetime.now(UTC))


def history_file(
    name: str, history: WorkflowHistory, *, status: str | None, closed_at: datetime | None
) -> tuple[str, Entry]:
    """A history's file text and its manifest entry: what an export folder or an archive in a
    blob store (`makegood.archiver`) holds under `<name>.json`."""
    text = json.dumps(history.to_json_dict(), indent=2) + "\n"
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
    return text, entry


def checked_text(entry: Entry, text: str, where: str) -> str:
    """A history file's text, once its checksum matches the manifest's."""
    if hashlib.sha256(text.encode()).hexdigest() != entry.sha256:
        raise ValueError(
            f"{where}: checksum does not match the manifest; the file was "
            "changed after it was exported"
        )
    return text


def checked_history(entry: Entry, text: str, where: str) -> WorkflowHistory:
    """A history file's content, once its checksum matches the manifest's."""
    return WorkflowHistory.from_json(entry.workflow_id, checked_text(entry, text, where))


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
    path = inside(folder, f"{name}.json")
    text, entry = history_file(name, history, status=status, closed_at=closed_at)
    path.write_text(text)
    kept = []
    for e in manifest.entries:
        if e.file == entry.file:
            continue
        if (e.workflow_id, e.run_id) == (entry.workflow_id, entry.run_id) and entry.run_id:
            # The same run under the name an older Makegood gave it (`case-x__callback`).
            inside(folder, e.file).unlink(missing_ok=True)
            continue
        kept.append(e)
    manifest.entries = [*kept, entry]
    manifest.written_at = datetime.now(UTC)
    if own:
        manifest.save(folder)
    return entry


def entries(folder: Path) -> Iterator[tuple[Entry, Path]]:
    for entry in Manifest.load(folder).entries:
        yield entry, inside(folder, entry.file)


async def read_folder_texts(folder: Path) -> AsyncIterator[tuple[str, str]]:
    """(workflow id, history JSON) of the folder's histories, checked but not parsed: for
    replaying in other processes, which parse them themselves."""
    for entry, path in entries(folder):
        yield entry.workflow_id, checked_text(entry, path.read_text(), str(path))


async def read_folder(folder: Path) -> AsyncIterator[WorkflowHistory]:
    """The folder's histories, each checked against the manifest's checksum."""
    for entry, path in entries(folder):
        yield checked_history(entry, path.read_text(), str(path))
