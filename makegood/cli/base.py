"""What every command module shares: the commands' signatures, how they join the parser, and
the errors that become the exit status.

Nothing here imports the Temporal SDK: the commands that go through the API start without
loading it (see `main`).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from temporalio.client import Client

    from makegood.cli.client import Api
    from makegood.settings import Settings

# A person's command gets a client of the API (whose token says who acts) and its arguments.
ApiCommand = Callable[["Api", argparse.Namespace], Awaitable[None]]
# An auditor's command gets a connected Temporal client (None when it reads an export folder
# with --dir), the settings and its arguments.
TemporalCommand = Callable[["Client | None", "Settings", argparse.Namespace], Awaitable[None]]
# A process (dev, worker, api) connects, or starts a server, by itself.
Process = Callable[[argparse.Namespace], Awaitable[None]]

EXIT_REFUSED, EXIT_BAD_INPUT, EXIT_UNREACHABLE = 1, 2, 3


class Failed(Exception):
    """A command that could not do its job: `main` prints `shown()` and exits with `code`."""

    code = EXIT_REFUSED

    def shown(self, args: argparse.Namespace) -> str:
        return f"makegood: {self}"


class Refused(Failed):
    """The case said no to an action, with the reason (or an audit found a difference);
    nothing about the case changed."""

    def shown(self, args: argparse.Namespace) -> str:
        # A case's refusal names the case; an audit's finding speaks for itself.
        case = getattr(args, "case", None)
        return f"makegood: {case} refused it: {self}" if case else f"makegood: {self}"


class NotFound(Failed):
    """No such case (exit 1, as a refusal)."""


class NotAllowed(Failed):
    """The API's role table does not let this token's holder do it (exit 1)."""


class Invalid(Failed):
    """Input refused before anything was done, one `field: reason` line per problem (exit 2)."""

    code = EXIT_BAD_INPUT

    def __init__(self, problems: list[str], head: str = "refused, nothing was started or sent"):
        super().__init__("; ".join(problems))
        self.problems, self.head = problems, head

    def shown(self, args: argparse.Namespace) -> str:
        return "\n".join([f"makegood: {self.head}:", *(f"  {p}" for p in self.problems)])


class NoCredentials(Failed):
    """No token, a token the API does not know, or settings that cannot work (exit 2)."""

    code = EXIT_BAD_INPUT


class SettingsRefused(NoCredentials):
    """A message that is already whole (it names the program itself), e.g. Temporal's."""

    def shown(self, args: argparse.Namespace) -> str:
        return str(self)


class Unreachable(Failed):
    """A service the command needs (the API, Temporal, a provider) could not answer: exit 3."""

    code = EXIT_UNREACHABLE


class Subcommands:
    """The `makegood COMMAND` parsers; each command module adds its own."""

    def __init__(self, root: argparse.ArgumentParser) -> None:
        self._sub = root.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def _parser(self, name: str, help_: str) -> argparse.ArgumentParser:
        return self._sub.add_parser(name, help=help_, description=help_)

    def add_api(self, name: str, handler: ApiCommand, help_: str) -> argparse.ArgumentParser:
        """A person's command: over HTTP to the API, as the holder of the token."""
        p = self._parser(name, help_)
        p.set_defaults(api_handler=handler)
        return p

    def add_temporal(
        self, name: str, handler: TemporalCommand, help_: str
    ) -> argparse.ArgumentParser:
        """An auditor's command: straight to Temporal with the namespace's credentials."""
        p = self._parser(name, help_)
        p.set_defaults(temporal_handler=handler)
        return p

    def add_process(self, name: str, run: Process, help_: str) -> argparse.ArgumentParser:
        p = self._parser(name, help_)
        p.set_defaults(process=run)
        return p


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))
