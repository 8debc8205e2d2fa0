"""`makegood login` and `logout`: keep a person's API token in their config file (mode 0600).

makegood login [--url https://makegood.example.com]    # asks for the token, without echo
echo "$TOKEN" | makegood login                         # or reads it from stdin
makegood logout
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys

from makegood.cli.base import NoCredentials, NotAllowed, Subcommands
from makegood.cli.client import Api
from makegood.cli.config import TOKEN_VAR, URL_VAR, ApiAccess, url_problems, write_config


def _ask(url: str) -> str:
    try:
        if sys.stdin.isatty():
            return getpass.getpass(f"API token for {url} (not shown): ").strip()
        return sys.stdin.readline().strip()
    except (EOFError, KeyboardInterrupt):
        print(file=sys.stderr)
        return ""


async def cmd_login(api: Api, args: argparse.Namespace) -> None:
    url = (args.url or api.url).rstrip("/")
    problems = url_problems(url)
    if problems:
        raise NoCredentials(f"--url {url}: {'; '.join(problems)}")
    token = _ask(url)
    if not token or any(c.isspace() for c in token):
        raise NoCredentials(
            "no token given (a token is one word without spaces); nothing was saved"
        )
    path = api.access.config_file
    trying = ApiAccess(url, "--url", token, "the token given", path)
    async with Api(trying) as candidate:
        try:
            # Any token the API issues may read the case list; 401 if it does not know it.
            await candidate.get("/cases", limit=1)
        except NoCredentials:
            raise NoCredentials(
                f"the API at {url} does not know this token; nothing was saved"
            ) from None
        except NotAllowed:
            pass  # known to the API, only not allowed to list: still the holder's token
    write_config(path, url, token)
    print(f"logged in to {url}; the token is saved in {path} (mode 0600)")
    if os.environ.get(TOKEN_VAR) or os.environ.get(URL_VAR):
        print(f"note: {TOKEN_VAR} / {URL_VAR} in the environment take precedence over the file")


async def cmd_logout(api: Api, args: argparse.Namespace) -> None:
    path = api.access.config_file
    try:
        path.unlink()
    except FileNotFoundError:
        print(f"no saved token ({path} does not exist)")
        return
    print(f"removed {path}")


def add_commands(sub: Subcommands) -> None:
    p = sub.add_api(
        "login",
        cmd_login,
        "check an API token and save it, with the API's URL, in your config file (mode 0600); "
        "the token is asked for without echo, or read from stdin",
    )
    p.add_argument(
        "--url",
        help="the API's base URL (default: MAKEGOOD_API_URL, the file's, or http://127.0.0.1:8080)",
    )
    sub.add_api("logout", cmd_logout, "remove your config file and the token in it")
