"""makegood: the operator's command line. Files tickets and acts on running cases.

    makegood dev                                            # dev server + worker + API
    makegood worker [--api] / makegood api                  # the processes, one job each

    makegood open examples/tickets/s1-missing-car.json     # or `-` for stdin
    makegood status case-T-1001 [--json]
    makegood list [--open] [--json]
    makegood answer case-T-1001 locate-CAR-1-1 not_there
    makegood claim case-T-1001 taxi-1 35.00 "Taxi to the hotel"
    makegood approve case-T-1001 compensation --as manager:mia [--reject] [--note ...]
    makegood note case-T-1001 "Customer prefers a call after 5pm" --as agent:sam
    makegood call-status case-T-6001 call_0123abcd dropped   # as the telephony provider

    makegood timeline|replay|export|reconcile ...           # for auditors

Exit status: 0 done, 1 refused by the case (the reason is printed), 2 bad input or bad
Temporal connection settings (nothing was sent), 3 Temporal (or, for reconcile, the payment
provider) unreachable.

The commands live in `cli/cases.py` (cases), `cli/audit.py` (auditors) and
`cli/processes.py` (dev, worker, api); this module builds the parser, connects, and turns
each command's outcome into the exit status.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence

from temporalio.client import Client

from makegood.cases import CaseNotFound, Invalid, Refused
from makegood.cli import audit, cases, processes
from makegood.cli.base import Subcommands, Unreachable
from makegood.connection import ConnectionConfigError, connect, connection_keys, load_connection
from makegood.privacy.keys import KeyConfigError
from makegood.settings import Settings

EXIT_REFUSED, EXIT_BAD_INPUT, EXIT_UNREACHABLE = 1, 2, 3


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="makegood",
        description=__doc__.splitlines()[0] if __doc__ else None,
        epilog="Configuration comes from MAKEGOOD_* environment variables, and the Temporal "
        "connection from the SDK's TEMPORAL_* variables and profiles; see README.",
    )
    sub = Subcommands(root)
    cases.add_commands(sub)
    audit.add_commands(sub)
    processes.add_commands(sub)
    return root


async def _run(args: argparse.Namespace) -> int:
    if hasattr(args, "process"):
        await args.process(args)
        return 0
    settings = Settings()
    client: Client | None = None
    if not (args.command in audit.OFFLINE and args.dir):
        connection = load_connection(settings)
        keys = connection_keys(settings, connection)
        try:
            client = await connect(connection, keys)
        except RuntimeError as err:
            print(
                f"makegood: cannot reach Temporal at {connection.address} ({err}); "
                "is `make run` (or the worker) up?",
                file=sys.stderr,
            )
            return EXIT_UNREACHABLE
    try:
        await args.handler(client, settings, args)
    except Invalid as err:
        print("makegood: refused, nothing was started or sent:", file=sys.stderr)
        for problem in err.problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Refused as err:
        # A case's refusal names the case; an audit's finding (a history that no longer
        # replays, a difference in the books) speaks for itself.
        who = f"{args.case} refused it: " if hasattr(args, "case") else ""
        print(f"makegood: {who}{err}", file=sys.stderr)
        return EXIT_REFUSED
    except CaseNotFound as err:
        print(f"makegood: {err}", file=sys.stderr)
        return EXIT_REFUSED
    except Unreachable as err:
        print(f"makegood: {err}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except (FileNotFoundError, ValueError) as err:  # an export folder that is not one
        print(f"makegood: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0


def main(argv: Sequence[str] | None = None) -> None:
    args = parser().parse_args(argv)
    try:
        code = asyncio.run(_run(args))
    except (ConnectionConfigError, KeyConfigError) as err:  # any command's, the processes' too
        print(err, file=sys.stderr)
        code = EXIT_BAD_INPUT
    # The SDK's Rust runtime threads can abort a short-lived client process during interpreter
    # teardown (temporalio/sdk-python#300); nothing is left to clean up, so skip the teardown.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
