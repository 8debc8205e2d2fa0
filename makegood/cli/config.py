"""Where the CLI finds the API, and whose token it acts with.

Highest first:

1. `MAKEGOOD_API_URL` and `MAKEGOOD_API_TOKEN`, from the environment or a `.env` file in the
   working folder (as every other MAKEGOOD_* setting);
2. the config file `makegood login` writes: `$XDG_CONFIG_HOME/makegood/config.toml`, by default
   `~/.config/makegood/config.toml`, with two keys:

       url = "https://makegood.example.com"
       token = "tok-4f..."

3. the URL `http://127.0.0.1:8080`, where `make run` serves the API; there is no default token.

The file must be its owner's alone (mode 0600): one that others may read or write is refused,
as ssh refuses such a key. A token never travels in clear text beyond this machine: an
`http://` URL is refused unless its host is loopback.
"""

from __future__ import annotations

import json
import os
import stat
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from dotenv import dotenv_values

from makegood.cli.base import NoCredentials
from makegood.loopback import is_loopback

DEFAULT_URL = "http://127.0.0.1:8080"
URL_VAR, TOKEN_VAR = "MAKEGOOD_API_URL", "MAKEGOOD_API_TOKEN"
KEYS = ("url", "token")


@dataclass(frozen=True)
class ApiAccess:
    """The API's base URL and the caller's token, with where each came from (for messages)."""

    url: str
    url_from: str
    token: str | None = field(repr=False)
    token_from: str | None
    config_file: Path


def config_file(environ: Mapping[str, str]) -> Path:
    base = environ.get("XDG_CONFIG_HOME") or str(Path(environ.get("HOME", "~")) / ".config")
    return Path(base).expanduser() / "makegood" / "config.toml"


def load_access(
    environ: Mapping[str, str] | None = None, dotenv: Path = Path(".env"), *, check: bool = True
) -> ApiAccess:
    """The URL and token to use; NoCredentials naming every problem (nothing is sent then).

    `check=False` (login, logout) takes what can be read and ignores the rest: they are how
    a refused file gets replaced or removed.
    """
    env = dict(os.environ if environ is None else environ)
    if dotenv.is_file():
        for key, value in dotenv_values(dotenv).items():
            if key in (URL_VAR, TOKEN_VAR) and value is not None:
                env.setdefault(key, value)
    path = config_file(env)
    problems: list[str] = []
    saved = read_config(path, problems)
    url, url_from, where = DEFAULT_URL, "the default", DEFAULT_URL
    if env.get(URL_VAR):
        url, url_from = env[URL_VAR], URL_VAR
        where = f"{URL_VAR}={url}"
    elif saved.get("url"):
        url, url_from = saved["url"], str(path)
        where = f"{path}: url {url}"
    token, token_from = None, None
    if env.get(TOKEN_VAR):
        token, token_from = env[TOKEN_VAR].strip(), TOKEN_VAR
    elif saved.get("token"):
        token, token_from = saved["token"].strip(), str(path)
    problems += [f"{where}: {p}" for p in url_problems(url)]
    if token is not None and (not token or any(c.isspace() for c in token)):
        problems.append(f"{token_from}: a token is one word without spaces")
    if problems and check:
        raise NoCredentials("API settings refused, nothing was sent:\n  " + "\n  ".join(problems))
    return ApiAccess(url.rstrip("/"), url_from, token, token_from, path)


def read_config(path: Path, problems: list[str]) -> dict[str, str]:
    """The config file's keys (none if it does not exist); its problems added to `problems`."""
    try:
        info = path.stat()
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as err:
        problems.append(f"{path}: cannot read it: {err.strerror}")
        return {}
    if os.name == "posix" and info.st_mode & 0o077:
        problems.append(
            f"{path}: others may read or change it (mode {stat.filemode(info.st_mode)}); "
            f"it holds a token: chmod 600 {path}"
        )
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        problems.append(f"{path}: not TOML: {err}")
        return {}
    for key, value in data.items():
        if key not in KEYS:
            problems.append(f"{path}: unknown key {key!r}; the file holds {' and '.join(KEYS)}")
        elif not isinstance(value, str):
            problems.append(f"{path}: {key} must be a string")
    return {k: v for k, v in data.items() if k in KEYS and isinstance(v, str)}


def url_problems(url: str) -> list[str]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return ["expected http(s)://host[:port], e.g. https://makegood.example.com"]
    if parts.query or parts.fragment:
        return ["no query or fragment, just the API's base URL"]
    try:
        parts.port  # noqa: B018 (a port out of range raises)
    except ValueError as err:
        return [str(err)]
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        return ["a token would travel in clear text: use https:// (plain http only on this host)"]
    return []


def write_config(path: Path, url: str, token: str) -> None:
    """Save the URL and token, readable by their owner alone (mode 0600, folder 0700)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # O_CREAT's mode does not apply to a file left over
        # TOML basic strings take JSON's escapes.
        os.write(fd, f"url = {json.dumps(url)}\ntoken = {json.dumps(token)}\n".encode())
    finally:
        os.close(fd)
    os.replace(partial, path)
