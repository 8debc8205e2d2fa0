"""The auditors' commands: replay, timeline, export and reconcile.

They read histories straight from Temporal (by case id or visibility query), with the
namespace's credentials (TEMPORAL_* settings), or, with `--dir`, from a folder `makegood
export` wrote; replay, timeline and reconcile then need no server at all. A case Temporal no
longer has (past the namespace's retention) is read from the archive the worker wrote
(`makegood.archiver`), and they say so on stderr. They change nothing, except `archive`,
which archives closed cases by hand as the worker does by itself.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from makegood.cli.base import Invalid, NotFound, Refused, Subcommands, Unreachable
from makegood.domain import ids

if TYPE_CHECKING:
    from temporalio.client import Client, WorkflowHistory
    from temporalio.converter import DataConverter

    from makegood.archiver import Archived
    from makegood.settings import Settings

# The audit and SDK modules are imported by the commands that use them, so that the people's
# commands (which go through the API) start without loading the Temporal SDK.

OFFLINE = {"replay", "timeline", "reconcile"}  # with --dir they need no server


def _converter(client: Client | None, settings: Settings) -> DataConverter:
    """The client's converter; reading an export without a server, one from the keys here."""
    if client is not None:
        return client.data_converter
    from makegood.privacy.codec import data_converter
    from makegood.privacy.keys import load_keys

    return data_converter(load_keys(settings, loopback=None))


async def _decoded(
    histories: AsyncIterator[WorkflowHistory], converter: DataConverter
) -> AsyncIterator[WorkflowHistory]:
    """Histories with their payloads decrypted: what timeline and reconcile read."""
    from makegood.privacy.codec import decode_history

    async for history in histories:
        yield await decode_history(history, converter)


def _histories(
    client: Client | None, settings: Settings, args: argparse.Namespace
) -> AsyncIterator[WorkflowHistory]:
    """The histories the arguments name. The visibility query is built (and its case ids
    checked) here, before anything is read, so a bad id is refused at once."""
    from makegood.audit.server import histories, visibility_query

    if args.dir:
        if args.query is not None:
            raise Invalid(["--query: a visibility query reads the server; with --dir name cases"])
        return _from_folder(Path(args.dir), args.cases)
    assert client is not None, "main connects unless --dir is given"
    found = histories(client, visibility_query(args.cases, args.query))
    return _or_archived(found, settings, args.cases) if args.cases else found


async def _or_archived(
    found: AsyncIterator[WorkflowHistory], settings: Settings, cases: Sequence[str]
) -> AsyncIterator[WorkflowHistory]:
    """The server's histories, then the archive's for the cases the server no longer has."""
    seen = set()
    async for history in found:
        seen.add(ids.case_of(history.workflow_id))
        yield history
    for case in cases:
        if case not in seen:
            archived = await _archived(settings, case)
            if archived is not None:
                for history in await archived.histories():
                    yield history


async def _archived(settings: Settings, case_id: str) -> Archived | None:
    """The case's archive, if the case index has one; says so on stderr."""
    from makegood.archiver import find_archived
    from makegood.index import opened_index

    async with opened_index(
        settings.case_index, default=settings.case_index_default, database=settings.database_url
    ) as index:
        archived = await find_archived(index, settings.archive(), case_id)
    if archived is not None:
        print(f"{case_id}: {archived.note}", file=sys.stderr)
    return archived


def _texts(
    client: Client | None, settings: Settings, args: argparse.Namespace
) -> AsyncIterator[tuple[str, str]]:
    """What `_histories` names, as (workflow id, JSON) for replaying in other processes: an
    export folder's files unparsed (the processes parse them), else the server's, serialized."""
    from makegood.audit.replay import as_texts

    if args.dir and args.query is None:
        return _texts_from_folder(Path(args.dir), args.cases)
    return as_texts(_histories(client, settings, args))


async def _texts_from_folder(folder: Path, cases: list[str]) -> AsyncIterator[tuple[str, str]]:
    from makegood.audit.archive import read_folder_texts

    async for workflow_id, text in read_folder_texts(folder):
        if not cases or ids.case_of(workflow_id) in cases:
            yield workflow_id, text


async def _from_folder(folder: Path, cases: list[str]) -> AsyncIterator[WorkflowHistory]:
    from makegood.audit.archive import read_folder

    async for history in read_folder(folder):
        if not cases or ids.case_of(history.workflow_id) in cases:
            yield history


async def cmd_replay(client: Client | None, settings: Settings, args: argparse.Namespace) -> None:
    import functools
    import os

    from makegood.audit.replay import keyed_replayer, replay_all, replay_parallel, terminal_progress
    from makegood.privacy.codec import keys_of

    started = time.perf_counter()
    keys = keys_of(_converter(client, settings))
    progress = terminal_progress if sys.stderr.isatty() else None
    jobs = args.jobs or os.cpu_count() or 1
    make = functools.partial(keyed_replayer, keys, not args.no_sandbox)
    if jobs > 1:
        results = await replay_parallel(_texts(client, settings, args), jobs, make, progress)
    else:
        results = await replay_all(_histories(client, settings, args), progress, make())
    elapsed = time.perf_counter() - started
    if sys.stderr.isatty():
        sys.stderr.write("\n")
    failed = [r for r in results if not r.ok]
    for r in results if args.verbose else failed:
        where = f" at event {r.diverged_at}" if r.diverged_at else ""
        verdict = "reproduced" if r.ok else f"NON-DETERMINISTIC{where}: {r.error}"
        print(f"{r.workflow_id:<36} {r.workflow_type:<17} {r.events:>5} events  {verdict}")
    rate = len(results) / elapsed if elapsed else 0.0
    print(
        f"{len(results) - len(failed)} of {len(results)} histories reproduced by the current "
        f"code, {len(failed)} non-deterministic ({elapsed:.1f} s, {rate:.0f}/s)"
    )
    if not results:
        raise Refused("no histories matched")
    if failed:
        raise Refused(f"{len(failed)} history(ies) no longer replay: see above")


async def cmd_timeline(client: Client | None, settings: Settings, args: argparse.Namespace) -> None:
    from makegood.audit.archive import read_folder
    from makegood.audit.formats import as_html, as_json, as_markdown, as_text
    from makegood.audit.server import case_histories
    from makegood.audit.summary import summarize
    from makegood.audit.timeline import timeline
    from makegood.privacy.codec import decode_history

    if args.dir:
        found = [
            h async for h in read_folder(Path(args.dir)) if ids.case_of(h.workflow_id) == args.case
        ]
    else:
        assert client is not None, "main connects unless --dir is given"
        found = await case_histories(client, args.case)
        if not found:  # gone from Temporal (past retention): the archive, if it has the case
            archived = await _archived(settings, args.case)
            found = await archived.histories() if archived is not None else []
    if not found:
        raise NotFound(f"no case {args.case!r}")
    converter = _converter(client, settings)
    lines = timeline([await decode_history(h, converter) for h in found])
    summary = summarize(lines)
    if args.format == "md":
        print(as_markdown(lines, args.case, summary))
    elif args.format == "html":
        print(as_html(lines, args.case, summary))
    else:
        print(as_json(lines) if args.format == "json" else as_text(lines, summary))


async def cmd_export(client: Client | None, settings: Settings, args: argparse.Namespace) -> None:
    from makegood.audit.server import export_closed

    assert client is not None, "export reads the server"
    folder = Path(args.dir)
    manifest = await export_closed(client, folder, args.query, progress=sys.stderr.isatty())
    print(
        f"{len(manifest.entries)} closed workflow histories in {folder} "
        f"(manifest {folder / 'manifest.json'})"
    )


async def cmd_archive(client: Client | None, settings: Settings, args: argparse.Namespace) -> None:
    from makegood.archiver import Archiver, backfill
    from makegood.index import opened_index

    assert client is not None, "archive reads the server"
    store = settings.archive()
    async with opened_index(
        settings.case_index, default=settings.case_index_default, database=settings.database_url
    ) as index:
        if args.backfill:
            print(f"{await backfill(client, index)} closed case(s) added to the case index")
        archiver = Archiver(client, index, store, batch=args.limit)
        swept = await archiver.sweep()
    for case_id in swept.archived:
        print(f"{case_id:<36} archived")
    for case_id in swept.waiting:
        print(f"{case_id:<36} still running (its call-back, or its last run)")
    for case_id in swept.lost:
        print(f"{case_id:<36} NOT ARCHIVED: Temporal no longer has it")
    for case_id in swept.failed:
        print(f"{case_id:<36} failed, tried again next time (see the log)")
    print(f"{len(swept.archived)} case(s) archived to {store.where} (index {index.where})")
    if swept.failed or swept.lost:
        raise Refused(f"{len(swept.failed) + len(swept.lost)} case(s) could not be archived")


async def cmd_reconcile(
    client: Client | None, settings: Settings, args: argparse.Namespace
) -> None:
    from makegood.adapters.base import ProviderError
    from makegood.adapters.wiring import configured_payments
    from makegood.audit.reconcile import movements, reconcile
    from makegood.domain.provider import LedgerEntry

    converter = _converter(client, settings)
    histories = [h async for h in _decoded(_histories(client, settings, args), converter)]
    moves = movements(histories)
    # Narrowed to some cases, read only their part of the ledger: the cases asked for and
    # those the query found, with or without payments in their histories (money moved behind
    # the engine's back for a case that paid nothing is exactly what reconcile is for).
    scope: list[str] | None = None
    if args.cases or args.query:
        scope = sorted(set(args.cases) | {ids.case_of(h.workflow_id) for h in histories})
    where = (
        f"the payment provider at {settings.payments_url}"
        if settings.payments == "http"
        else f"the local payments in {settings.store_path}"
    )
    ledger: list[LedgerEntry] = []
    if scope != []:  # a query that matched nothing has no ledger to compare
        try:
            async with configured_payments(settings) as payments:
                ledger = await payments.ledger(scope)
        except ProviderError as err:
            raise Unreachable(f"cannot read the ledger of {where}: {err.reason}") from None
    diffs = reconcile(moves, ledger)
    for d in diffs:
        print(f"{d.problem:<18} {d.key:<48} {d.detail}")
    print(
        f"{len(moves)} payments in histories, {len(ledger)} in the ledger, "
        f"{len(diffs)} difference(s) (ledger of {where})"
    )
    if diffs:
        raise Refused(f"{len(diffs)} difference(s) between the histories and the ledger")


EXPERT_QUERY = (
    "expert option: a Temporal visibility query, passed to the server as written (for "
    "auditors who know Temporal's visibility syntax), e.g. 'CloseTime > \"2026-11-01\"'; "
    "only Makegood's workflows are read whatever it says. Case ids are checked, this is not"
)


def _sources(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "cases", nargs="*", metavar="CASE", help="case ids, case-<ticket id> (default: all)"
    )
    p.add_argument("--query", metavar="VISIBILITY_QUERY", help=EXPERT_QUERY)
    p.add_argument("--dir", help="a folder written by `makegood export` instead of the server")


def add_commands(sub: Subcommands) -> None:
    p = sub.add_temporal(
        "replay",
        cmd_replay,
        "prove the current code reproduces every decision in the "
        "cases' histories (exit 1 if any does not)",
    )
    _sources(p)
    p.add_argument("-v", "--verbose", action="store_true", help="list every history")
    p.add_argument(
        "--no-sandbox",
        action="store_true",
        help="about 2x faster; the same determinism check, without the sandbox's "
        "guard against forbidden calls in workflow code",
    )
    p.add_argument(
        "--jobs",
        type=int,
        default=0,
        metavar="N",
        help="replay in N processes (default: one per core; 1: in this process); "
        "a handful of histories always replays in this process",
    )

    p = sub.add_temporal("timeline", cmd_timeline, "one case's history as a chronological account")
    p.add_argument("case")
    p.add_argument("--format", choices=["text", "json", "md", "html"], default="text")
    p.add_argument("--dir", help="read from an export folder instead of the server")

    p = sub.add_temporal(
        "export",
        cmd_export,
        "write closed cases' histories (temporal CLI JSON format) and a manifest to a "
        "folder, for archiving; files are named by their workflow id, percent-encoded, and "
        "never written outside the folder",
    )
    p.add_argument("dir")
    p.add_argument("--query", metavar="VISIBILITY_QUERY", help=EXPERT_QUERY)

    p = sub.add_temporal(
        "archive",
        cmd_archive,
        "archive closed cases now, as the worker does every MAKEGOOD_ARCHIVE_EVERY_S: each "
        "one's histories (export format, with its manifest) and final status, to "
        "MAKEGOOD_ARCHIVE_STORE; needs a worker running (the closed case answers its status)",
    )
    p.add_argument("--limit", type=int, default=100, help="at most this many cases (100)")
    p.add_argument(
        "--backfill",
        action="store_true",
        help="first add the closed cases visibility lists and the case index lacks",
    )

    p = sub.add_temporal(
        "reconcile",
        cmd_reconcile,
        "compare the payments in histories with the payment "
        "provider's ledger (exit 1 on any difference)",
    )
    _sources(p)
