"""makegood: the operator's command line. Files tickets and acts on running cases.

    makegood dev                                            # dev server + worker + API
    makegood worker [--api] / makegood api                  # the processes, one job each

    makegood login                                          # save your API token (not echoed)
    makegood open examples/tickets/s1-missing-car.json     # or `-` for stdin
    makegood status case-T-1001 [--json]
    makegood list [--open] [--json]
    makegood answer case-T-1001 locate-CAR-1-1 not_found    # on the customer's behalf
    makegood claim case-T-1001 taxi-1 35.00 "Taxi to the hotel"
    MAKEGOOD_API_TOKEN=dev-manager-token makegood approve case-T-1001 compensation [--reject]
    makegood note case-T-1001 "Customer prefers a call after 5pm"
    makegood call-status case-T-6001 call_0123abcd dropped   # as the telephony provider
    makegood report [--since 2026-11-01] [--format table|json|csv]  # trends, for ops leads

    makegood timeline|replay|export|reconcile ...           # for auditors

The commands live in `cli/cases.py` (people's, through the API), `cli/login.py`,
`cli/audit.py` (auditors') and `cli/processes.py` (dev, worker, api); this module builds the
parser, opens the door each command uses, and turns its outcome into the exit status.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence

from makegood.cli import audit, cases, login, processes, report, tokens
from makegood.cli.base import Failed, Invalid, SettingsRefused, Subcommands, Unreachable
from makegood.cli.client import Api
from makegood.cli.config import load_access

DOORS = """\
which door each command uses:
  the API, as the holder of a token (MAKEGOOD_API_URL, default http://127.0.0.1:8080;
  MAKEGOOD_API_TOKEN or the file `makegood login` writes; the token's role decides and the
  API records its holder as the one who acted):
      open status list answer claim approve note assign escalate cancel report login
      logout
  the API, as the telephony provider (signed with MAKEGOOD_TELEPHONY_WEBHOOK_SECRET, no
  token):
      call-status
  nothing at all (no settings read, nothing connected):
      token                                   new API tokens and secrets
  Temporal itself, with the namespace's credentials (TEMPORAL_* settings and profiles):
      dev worker api ready                    the processes (ready: is the worker polling?)
      replay export timeline reconcile        auditors (replay, timeline and reconcile
      archive                                 read an export folder instead with --dir,
                                              or the archive for a case past retention;
                                              archive: closed cases to the archive now)

exit status: 0 done; 1 refused by the case, by the API's role table, or no such case (for
auditors: a history that no longer replays, a difference in the books); 2 bad input, a
missing or unknown token, or bad settings (nothing was sent); 3 the API, Temporal or (for
reconcile) the payment provider could not answer.

Configuration: MAKEGOOD_* environment variables (or .env), TEMPORAL_* for Temporal; see README.
"""


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="makegood",
        description=__doc__.splitlines()[0] if __doc__ else None,
        epilog=DOORS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = Subcommands(root)
    cases.add_commands(sub)
    report.add_commands(sub)
    login.add_commands(sub)
    audit.add_commands(sub)
    processes.add_commands(sub)
    tokens.add_commands(sub)
    return root


async def _through_the_api(args: argparse.Namespace) -> None:
    access = load_access(check=args.command not in ("login", "logout"))
    async with Api(access) as api:
        await args.api_handler(api, args)


async def _through_temporal(args: argparse.Namespace) -> None:
    from makegood.connection import (
        ConnectionConfigError,
        connect,
        connection_keys,
        load_connection,
    )
    from makegood.privacy.keys import KeyConfigError
    from makegood.secure import UnsafeSettings
    from makegood.settings import Settings

    settings = Settings()
    client = None
    try:
        if not (args.command in audit.OFFLINE and args.dir):
            connection = load_connection(settings)
            keys = connection_keys(settings, connection)
            try:
                client = await connect(connection, keys)
            except RuntimeError as err:
                raise Unreachable(
                    f"cannot reach Temporal at {connection.address} ({err}); "
                    "is `make run` (or the worker) up?"
                ) from None
        await args.temporal_handler(client, settings, args)
    except (ConnectionConfigError, KeyConfigError, UnsafeSettings) as err:  # reconcile's too
        raise SettingsRefused(str(err)) from None


async def _run(args: argparse.Namespace) -> int:
    try:
        if hasattr(args, "process"):
            await args.process(args)
        elif hasattr(args, "api_handler"):
            await _through_the_api(args)
        else:
            await _through_temporal(args)
    except Failed as err:
        print(err.shown(args), file=sys.stderr)
        return err.code
    except (FileNotFoundError, ValueError) as err:  # an export folder that is not one
        print(f"makegood: {err}", file=sys.stderr)
        return Invalid.code
    return 0


def main(argv: Sequence[str] | None = None) -> None:
    args = parser().parse_args(argv)
    code = asyncio.run(_run(args))
    # The SDK's Rust runtime threads can abort a short-lived client process during interpreter
    # teardown (temporalio/sdk-python#300); nothing is left to clean up, so skip the teardown.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
