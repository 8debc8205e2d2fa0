"""The long-running processes as commands: `makegood dev`, `worker` and `api`.

They connect to Temporal (or start the embedded dev server) themselves, so `main` runs them
before any connection of its own.
"""

from __future__ import annotations

import argparse

from makegood.cli.base import Subcommands
from makegood.serve import serve


async def run_process(args: argparse.Namespace) -> None:
    await serve(
        embedded=args.command == "dev",
        worker=args.command != "api",
        api=args.command == "api"
        or getattr(args, "api", False)
        or (args.command == "dev" and not args.no_api),
    )


def add_commands(sub: Subcommands) -> None:
    p = sub.add_process(
        "dev",
        run_process,
        "run the embedded default: the local Temporal dev server "
        "(SQLite under MAKEGOOD_DATA_DIR, web UI), a worker and the API",
    )
    p.add_argument("--no-api", action="store_true", help="no intake API")
    p = sub.add_process(
        "worker", run_process, "run a worker against TEMPORAL_ADDRESS until SIGINT/SIGTERM"
    )
    p.add_argument("--api", action="store_true", help="serve the intake API from this process")
    sub.add_process(
        "api", run_process, "serve the intake API alone (no workflows run in this process)"
    )
