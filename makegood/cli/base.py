"""What every command module shares: a command's signature and how it joins the parser."""

from __future__ import annotations

import argparse
import json
from collections.abc import Awaitable, Callable
from typing import Any

from temporalio.client import Client

from makegood.settings import Settings

# A command gets a connected client, the settings and its parsed arguments, and reports a
# refusal by raising one of `makegood.cases`' errors, which `main` turns into the exit status.
# The audit commands that can read an export folder instead take `Client | None`.
Command = Callable[[Client, Settings, argparse.Namespace], Awaitable[None]]
# A process (dev, worker, api) connects, or starts a server, by itself.
Process = Callable[[argparse.Namespace], Awaitable[None]]


class Unreachable(Exception):
    """A service the command needs (Temporal, a provider) could not be asked: exit 3."""


class Subcommands:
    """The `makegood COMMAND` parsers; each command module adds its own."""

    def __init__(self, root: argparse.ArgumentParser) -> None:
        self._sub = root.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(self, name: str, handler: Command, help_: str) -> argparse.ArgumentParser:
        p = self._sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(handler=handler)
        return p

    def add_process(self, name: str, run: Process, help_: str) -> argparse.ArgumentParser:
        p = self._sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(process=run)
        return p


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))
