"""The long-running processes as commands: `makegood dev`, `worker` and `api`.

They connect to Temporal (or start the embedded dev server) themselves, so `main` runs them
before any connection of its own; they hold the namespace's credentials.
"""

from __future__ import annotations

import argparse

from makegood.cli.base import SettingsRefused, Subcommands


async def run_process(args: argparse.Namespace) -> None:
    from makegood.connection import ConnectionConfigError
    from makegood.privacy.keys import KeyConfigError
    from makegood.secure import UnsafeSettings
    from makegood.serve import serve

    try:
        await serve(
            embedded=args.command == "dev",
            worker=args.command != "api",
            api=args.command == "api"
            or getattr(args, "api", False)
            or (args.command == "dev" and not args.no_api),
        )
    except (ConnectionConfigError, KeyConfigError, UnsafeSettings) as err:
        raise SettingsRefused(str(err)) from None


async def run_ready(args: argparse.Namespace) -> None:
    from makegood.cli.base import Unreachable
    from makegood.observe.readiness import check
    from makegood.observe.telemetry import DEV_METRICS
    from makegood.settings import Settings

    settings = Settings()
    url = args.metrics or f"http://{settings.metrics_bind or DEV_METRICS}/metrics"
    problem = await check(url, settings.task_queue)
    if problem is not None:
        raise Unreachable(f"not ready: {problem}")
    print(f"ready: polling {settings.task_queue!r}")


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
    p = sub.add_process(
        "ready",
        run_ready,
        "exit 0 when the worker is polling its task queue (read from its metrics endpoint, "
        "MAKEGOOD_METRICS_BIND), else 3 saying why: a health check for compose",
    )
    p.add_argument("--metrics", help="the worker's /metrics URL (default from the settings)")
    sub.add_process(
        "api",
        run_process,
        "serve the intake API alone, no workflows in this process (the production default; "
        "docker-compose runs it so)",
    )
