"""`makegood token`: API tokens and secrets, made here and configured as hashes.

    makegood token new agent:sam        # a fresh token, and its MAKEGOOD_API_TOKENS entry
    printf %s "$TOKEN" | makegood token hash [agent:sam]   # the entry of an existing token
    makegood token secret               # a fresh whsec_ secret (webhooks, provider secret)

Nothing here connects anywhere or reads the configuration.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import NoReturn

from makegood.cli.base import Invalid, Subcommands
from makegood.credentials import new_token, new_webhook_secret, token_hash
from makegood.domain import roles
from makegood.domain.actions import Actor


def _refuse(message: str) -> NoReturn:
    raise Invalid([message], head="refused, no token was made")


def _entry(digest: str, who: str) -> str:
    """One `"sha256:...": "role:id"` member of the MAKEGOOD_API_TOKENS object."""
    try:
        actor = Actor.parse(who)
    except ValueError:
        # Not echoed: a token given here by mistake must not be printed again.
        _refuse(
            "expected ROLE:ID such as agent:sam, with a role among "
            f"{', '.join(roles.TOKEN_ROLES)} (a token is read on standard input, never taken "
            "as an argument)"
        )
    if actor.role not in roles.TOKEN_ROLES:
        _refuse(f"API tokens may carry {', '.join(roles.TOKEN_ROLES)}, not {actor}")
    return f"{json.dumps(digest)}: {json.dumps(str(actor))}"


async def run(args: argparse.Namespace) -> None:
    if args.action == "secret":
        print(new_webhook_secret())
    elif args.action == "new":
        token = new_token()
        entry = _entry(token_hash(token), args.who)
        print(f"token for {args.who} (shown once and stored nowhere; hand it over safely):")
        print(f"  {token}")
        print("its entry in MAKEGOOD_API_TOKENS (a JSON object; the hash is not a secret):")
        print(f"  {entry}")
    else:
        token = sys.stdin.readline().rstrip("\r\n")
        if not token.strip():
            _refuse("token hash reads the token on standard input, and got none")
        digest = token_hash(token)
        print(_entry(digest, args.who) if args.who else digest)


def add_commands(sub: Subcommands) -> None:
    p = sub.add_process(
        "token",
        run,
        "make an API token (stored as its SHA-256 in MAKEGOOD_API_TOKENS) or a secret",
    )
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    new = actions.add_parser(
        "new", help="a fresh random token for ROLE:ID and its MAKEGOOD_API_TOKENS entry"
    )
    new.add_argument("who", metavar="ROLE:ID", help=f"role one of {', '.join(roles.TOKEN_ROLES)}")
    hashed = actions.add_parser(
        "hash", help="the SHA-256 entry of a token read on standard input (never an argument)"
    )
    hashed.add_argument("who", metavar="ROLE:ID", nargs="?", help="print the whole entry")
    actions.add_parser("secret", help="a fresh Standard Webhooks secret (whsec_...)")
