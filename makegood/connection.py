"""How Makegood reaches Temporal: the SDK's environment configuration, checked before connecting.

The settings are the SDK's own (`temporalio.envconfig`, shared with the `temporal` CLI): a TOML
file (TEMPORAL_CONFIG_FILE, else ~/.config/temporalio/temporal.toml) with one `[profile.<name>]`
table per environment, TEMPORAL_PROFILE choosing one (else `default`), and TEMPORAL_* variables
overriding it field by field. Nothing set means localhost:7233, namespace `default`, no TLS:
where `makegood dev` starts its server.

The SDK is lenient where a wrong setting should stop the process: a missing
TEMPORAL_CONFIG_FILE reads as an empty file, a misspelt key is ignored, TEMPORAL_TLS=yes means
nothing, an unreadable certificate fails only inside `Client.connect`. `load_connection`
refuses all of these before anything connects, naming the variable or profile field and why.
"""

from __future__ import annotations

import os
import re
import sys
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dotenv import dotenv_values  # pydantic-settings' own .env reader
from temporalio.client import Client, Interceptor
from temporalio.envconfig import (
    ClientConfigProfile,
    ClientConfigTLS,
    ClientConnectConfig,
    DataSource,
)
from temporalio.service import RetryConfig

from makegood.loopback import is_loopback
from makegood.privacy.codec import data_converter
from makegood.privacy.keys import KEYS_VAR, KeyConfigError, KeyRing, load_keys
from makegood.settings import Settings

DEFAULT_ADDRESS = "localhost:7233"
DEFAULT_NAMESPACE = "default"
DEFAULT_PROFILE = "default"
# Ours until 0.1; the SDK's names replace them. Refused rather than ignored, so a deployment
# that still sets them does not quietly connect to localhost.
RENAMED = {
    "MAKEGOOD_TEMPORAL_ADDRESS": "TEMPORAL_ADDRESS",
    "MAKEGOOD_TEMPORAL_NAMESPACE": "TEMPORAL_NAMESPACE",
}
# What the SDK reads from a profile (its strict mode's list); anything else is a typo.
KNOWN_KEYS: dict[str, frozenset[str]] = {
    "": frozenset({"address", "namespace", "api_key", "tls", "codec", "grpc_meta"}),
    "tls": frozenset(
        {
            "disabled",
            "client_cert_path",
            "client_cert_data",
            "client_key_path",
            "client_key_data",
            "server_ca_cert_path",
            "server_ca_cert_data",
            "server_name",
            "disable_host_verification",
        }
    ),
    "codec": frozenset({"endpoint", "auth"}),
}
BOOLEANS = {"true": True, "1": True, "false": False, "0": False}  # as the SDK parses them
_ADDRESS = re.compile(
    r"(?:\[(?P<ipv6>[0-9A-Fa-f:.]+)\]|(?P<host>[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?))"
    r":(?P<port>[0-9]{1,5})"
)
_PRIVATE_KEY = re.compile(rb"-----BEGIN (?:(?:RSA|EC) )?PRIVATE KEY-----")


class ConnectionConfigError(SystemExit):
    """Connection settings that cannot work: the process stops before it connects.

    A SystemExit, so an entry point without its own handling prints the problems and exits
    non-zero instead of showing a traceback; the CLI maps it to its bad-input status, 2.
    """

    def __init__(self, problems: list[str]) -> None:
        super().__init__(
            "makegood: Temporal connection settings refused, nothing was connected:\n  "
            + "\n  ".join(problems)
        )
        self.problems = problems


@dataclass(frozen=True)
class TemporalConnection:
    """Checked keyword arguments for `Client.connect`, and where they came from."""

    args: ClientConnectConfig = field(repr=False)  # carries the API key and the private key
    profile: str
    config_file: Path | None  # the TOML file read; None when there was none

    @property
    def address(self) -> str:
        return self.args["target_host"]

    @property
    def namespace(self) -> str:
        return self.args["namespace"]

    @property
    def host(self) -> str:
        return split_address(self.address)[0]

    @property
    def port(self) -> int:
        return split_address(self.address)[1]

    @property
    def tls(self) -> bool:
        return self.args.get("tls", False) is not False

    def summary(self) -> dict[str, Any]:
        """What a log line may say about the connection: never the key or the certificates."""
        tls = self.args.get("tls", False)
        return {
            "address": self.address,
            "namespace": self.namespace,
            "tls": "off" if tls is False else "mtls" if getattr(tls, "client_cert", None) else "on",
            "api_key": "api_key" in self.args,
            "profile": self.profile,
            "config_file": str(self.config_file) if self.config_file else None,
        }


# A person waits on the API's answer: while Temporal is down, say so (503) within about two
# seconds instead of the SDK's default ten of retries. Workers keep the default patience.
IMPATIENT = RetryConfig(max_elapsed_time_millis=2000, max_retries=4)


async def connect(
    connection: TemporalConnection,
    keys: KeyRing,
    *,
    retry: RetryConfig | None = None,
    interceptors: Sequence[Interceptor] = (),
) -> Client:
    """A client speaking the SDK's pydantic converter with Makegood's payload codec, as the
    worker and the replayer do (`makegood.privacy.codec.data_converter`); `interceptors` (the
    tracing one) apply to every worker built on it too."""
    if keys.active is None:
        raise KeyConfigError([f"{KEYS_VAR} is not set: nothing is sent to Temporal unencrypted"])
    args: dict[str, Any] = dict(connection.args)
    if retry is not None:
        args["retry_config"] = retry
    return await Client.connect(
        **args, data_converter=data_converter(keys), interceptors=list(interceptors)
    )


def connection_keys(settings: Settings, connection: TemporalConnection) -> KeyRing:
    """The keys for cases on this connection: a server on this machine may use the local key
    file (`makegood.privacy.keys`), any other needs every key configured."""
    return load_keys(settings, loopback=is_loopback(connection.host))


def split_address(address: str) -> tuple[str, int]:
    """`host:port` (or `[ipv6]:port`) as the host without brackets and the port number."""
    match = _ADDRESS.fullmatch(address)
    if match is None or not 0 < int(match["port"]) < 65536:
        raise ValueError(f"not host:port: {address!r}")
    return match["ipv6"] or match["host"], int(match["port"])


def default_config_file(env: Mapping[str, str]) -> Path | None:
    """Where the SDK looks when TEMPORAL_CONFIG_FILE is unset (the Rust `dirs` crate's rule)."""
    if sys.platform == "darwin":
        base = Path(env["HOME"]) / "Library" / "Application Support" if "HOME" in env else None
    elif sys.platform == "win32":
        base = Path(env["APPDATA"]) if "APPDATA" in env else None
    else:
        xdg = env.get("XDG_CONFIG_HOME", "")
        base = (
            Path(xdg)
            if os.path.isabs(xdg)
            else Path(env["HOME"]) / ".config"
            if "HOME" in env
            else None
        )
    return base / "temporalio" / "temporal.toml" if base else None


def dot_env(path: Path = Path(".env")) -> dict[str, str]:
    """The TEMPORAL_* variables of a `.env` file: the SDK reads only the process environment."""
    if not path.is_file():
        return {}
    return {
        k: v for k, v in dotenv_values(path).items() if k.startswith("TEMPORAL_") and v is not None
    }


def load_connection(
    settings: Settings | None = None, env: Mapping[str, str] | None = None
) -> TemporalConnection:
    """The connection the SDK's configuration describes, or every reason it cannot work.

    `env` defaults to the process environment, over the TEMPORAL_* lines of the `.env` file
    that Settings reads too; `settings` is only asked about the renamed MAKEGOOD_TEMPORAL_*
    settings (which that file may still hold).
    """
    env = {**dot_env(), **os.environ} if env is None else dict(env)
    renamed = set(env) | set(settings.renamed_temporal_settings() if settings else ())
    problems = [
        f"{old} was renamed: set {new} instead (the Temporal SDK's own name)"
        for old, new in RENAMED.items()
        if old in renamed
    ]
    # Each step needs the one before it to have worked; all problems found so far are shown.
    config = _ConfigFile.read(env)
    if config.problem:
        raise ConnectionConfigError([*problems, config.problem])
    sources = _Sources(env, config)
    if unknown := sources.unknown_profile():
        raise ConnectionConfigError([*problems, unknown])
    problems += sources.unknown_keys()
    try:
        # The file's bytes, not its path: the SDK would read a missing file as an empty one.
        profile = ClientConfigProfile.load(config_source=config.data, override_env_vars=env)
    except RuntimeError as err:  # the SDK's ConfigError: TOML types, path and data both given
        raise ConnectionConfigError([*problems, sources.sdk_error(str(err))]) from None
    if problems := problems + sources.check(profile):
        raise ConnectionConfigError(problems)
    try:
        args = profile.to_client_connect_config()  # reads the certificate files checked above
    except OSError as err:  # changed in the meantime
        raise ConnectionConfigError([f"{err.filename}: cannot read it: {err.strerror}"]) from None
    args.setdefault("target_host", DEFAULT_ADDRESS)
    args.setdefault("namespace", DEFAULT_NAMESPACE)
    return TemporalConnection(args, sources.profile, config.path if config.data else None)


@dataclass(frozen=True)
class _ConfigFile:
    path: Path | None
    data: bytes = b""  # empty when there is no file
    profiles: dict[str, Any] = field(default_factory=dict)
    problem: str | None = None

    @classmethod
    def read(cls, env: Mapping[str, str]) -> _ConfigFile:
        """The TOML file, read here so that a named file that is missing is an error."""
        named = env.get("TEMPORAL_CONFIG_FILE", "")
        path = Path(named) if named else default_config_file(env)
        if path is None or (not named and not path.exists()):
            return cls(path)
        where = f"TEMPORAL_CONFIG_FILE={named}" if named else f"config file {path}"
        try:
            data = path.read_bytes()
            parsed = tomllib.loads(data.decode("utf-8"))
        except OSError as err:
            return cls(path, problem=f"{where}: cannot read it: {err.strerror}")
        except UnicodeDecodeError:
            return cls(path, problem=f"{where}: not UTF-8 text")
        except tomllib.TOMLDecodeError as err:
            return cls(path, problem=f"{where}: not valid TOML: {err}")
        profiles = parsed.get("profile", {})
        return cls(path, data, profiles if isinstance(profiles, dict) else {})


def _table(parent: Mapping[str, Any], key: str) -> dict[str, Any]:
    found = parent.get(key, {}) if key else parent
    return found if isinstance(found, dict) else {}


class _Sources:
    """Which variable or profile field each setting came from, for messages that name it."""

    def __init__(self, env: Mapping[str, str], config: _ConfigFile) -> None:
        self.env = env
        self.config = config
        self.profile = env.get("TEMPORAL_PROFILE") or DEFAULT_PROFILE
        self.table = _table(config.profiles, self.profile)

    def unknown_profile(self) -> str | None:
        """Why the profile TEMPORAL_PROFILE names cannot be used, if it cannot."""
        config = self.config
        if not self.env.get("TEMPORAL_PROFILE") or self.profile in config.profiles:
            return None
        if config.path is None or not config.path.exists():
            looked = f"looked for {config.path}" if config.path else "no HOME to look in"
            where = f"there is no config file ({looked})"
        else:
            names = ", ".join(sorted(config.profiles)) or "none"
            where = f"{config.path} has no [profile.{self.profile}] (it has: {names})"
        return f"TEMPORAL_PROFILE={self.profile}: unknown profile; {where}"

    def unknown_keys(self) -> list[str]:
        """Fields of the profile the SDK does not read: typos it would silently ignore."""
        return [
            f"{self._field(f'{section}.{key}' if section else key)}: unknown setting "
            f"(expected one of {', '.join(sorted(known))})"
            for section, known in KNOWN_KEYS.items()
            for key in sorted(_table(self.table, section))
            if key not in known
        ]

    def _field(self, key: str, shown: str = "") -> str:
        return f"profile.{self.profile}.{key}{shown} in {self.config.path}"

    def where(self, env_names: tuple[str, ...], key: str, *, value: bool = True) -> str:
        """`VAR=value` if a variable set it, else the profile field (and value) in the file."""
        value = value and key != "api_key"  # a secret, never shown
        for name in env_names:
            if name in self.env:
                return f"{name}={self.env[name]}" if value and "_DATA" not in name else name
        section, _, leaf = key.rpartition(".")
        table = _table(self.table, section)
        for found in (leaf, f"{leaf}_path", f"{leaf}_data"):
            if found in table:
                shown = f" = {table[found]!r}" if value and not found.endswith("_data") else ""
                return self._field(f"{section}.{found}" if section else found, shown)
        return env_names[0]

    def sdk_error(self, message: str) -> str:
        """The SDK's ConfigError, prefixed with the file when it is about the file's content."""
        detail = message.removeprefix("Invalid configuration: ")
        if detail.startswith("Configuration loading error: "):
            detail = " ".join(detail.removeprefix("Configuration loading error: ").split())
            return f"config file {self.config.path}: {detail}"
        return detail

    def check(self, profile: ClientConfigProfile) -> list[str]:
        problems: list[str] = []
        if profile.address is not None and not profile.address.strip():
            problems.append(
                f"{self.where(('TEMPORAL_ADDRESS',), 'address', value=False)}: set but empty"
            )
        elif profile.address is not None:
            problems += _address_problems(
                self.where(("TEMPORAL_ADDRESS",), "address"), profile.address
            )
        for name, key, got in (
            ("TEMPORAL_NAMESPACE", "namespace", profile.namespace),
            ("TEMPORAL_API_KEY", "api_key", profile.api_key),
        ):
            where = self.where((name,), key, value=False)
            if got is not None and not got.strip():
                problems.append(f"{where}: set but empty")
            elif got is not None and re.search(r"[\s\x00-\x1f\x7f]", got):
                problems.append(
                    f"{where}: contains whitespace or control characters "
                    "(a trailing newline from a file?)"
                )
        for name in ("TEMPORAL_TLS", "TEMPORAL_TLS_DISABLE_HOST_VERIFICATION"):
            if name in self.env and self.env[name].lower() not in BOOLEANS:
                problems.append(f"{name}={self.env[name]}: expected true or false (or 1 or 0)")
        no_verify = "TEMPORAL_TLS_DISABLE_HOST_VERIFICATION"
        if BOOLEANS.get(self.env.get(no_verify, "").lower()) or (
            no_verify not in self.env
            and _table(self.table, "tls").get("disable_host_verification") is True
        ):
            problems.append(
                f"{self.where((no_verify,), 'tls.disable_host_verification')}: not supported by "
                "the Python SDK, which always verifies the server; give its CA "
                "(TEMPORAL_TLS_SERVER_CA_CERT_PATH) and the name in its certificate "
                "(TEMPORAL_TLS_SERVER_NAME) instead"
            )
        if profile.tls is not None:
            problems += self._tls_problems(profile, profile.tls)
        return problems

    def _tls_problems(self, profile: ClientConfigProfile, tls: ClientConfigTLS) -> list[str]:
        material = [
            (_CERT_ENV, "tls.client_cert", tls.client_cert, "certificate"),
            (_KEY_ENV, "tls.client_key", tls.client_private_key, "private key"),
            (_CA_ENV, "tls.server_ca_cert", tls.server_root_ca_cert, "certificate"),
        ]
        if tls.disabled:
            off = self.where(("TEMPORAL_TLS",), "tls.disabled")
            unused = [self.where(names, key) for names, key, source, _ in material if source]
            if tls.server_name is not None:
                unused.append(self.where(("TEMPORAL_TLS_SERVER_NAME",), "tls.server_name"))
            problems = [
                f"{where}: given while TLS is turned off by {off}; it would not be used"
                for where in unused
            ]
            if profile.api_key and not is_loopback(_host_of(profile.address)):
                problems.append(
                    f"{self.where(('TEMPORAL_API_KEY',), 'api_key')} with TLS turned off by "
                    f"{off}: the key would cross the network in clear text; turn TLS on "
                    "(Temporal Cloud requires it)"
                )
            return problems
        problems = []
        if tls.client_cert is not None and tls.client_private_key is None:
            problems.append(
                f"{self.where(_CERT_ENV, 'tls.client_cert')}: a client certificate needs its "
                "private key; set TEMPORAL_TLS_CLIENT_KEY_PATH (or tls.client_key_path)"
            )
        if tls.client_private_key is not None and tls.client_cert is None:
            problems.append(
                f"{self.where(_KEY_ENV, 'tls.client_key')}: a client key needs its certificate; "
                "set TEMPORAL_TLS_CLIENT_CERT_PATH (or tls.client_cert_path)"
            )
        for names, key, source, kind in material:
            if source is not None and (problem := _pem_problem(source, kind)):
                problems.append(f"{self.where(names, key)}: {problem}")
        return problems


_CERT_ENV = ("TEMPORAL_TLS_CLIENT_CERT_PATH", "TEMPORAL_TLS_CLIENT_CERT_DATA")
_KEY_ENV = ("TEMPORAL_TLS_CLIENT_KEY_PATH", "TEMPORAL_TLS_CLIENT_KEY_DATA")
_CA_ENV = ("TEMPORAL_TLS_SERVER_CA_CERT_PATH", "TEMPORAL_TLS_SERVER_CA_CERT_DATA")


def _host_of(address: str | None) -> str:
    try:
        return split_address(address or DEFAULT_ADDRESS)[0]
    except ValueError:
        return ""


def _address_problems(where: str, address: str) -> list[str]:
    match = _ADDRESS.fullmatch(address)
    if match and not 0 < int(match["port"]) < 65536:
        return [f"{where}: the port must be 1 to 65535"]
    if match is None:
        hint = " without a scheme" if "://" in address else ""
        return [
            f"{where}: expected host:port{hint}, e.g. localhost:7233 or "
            "<namespace>.<account>.tmprl.cloud:7233"
        ]
    return []


def _pem_problem(source: DataSource, kind: str) -> str | None:
    """Why this certificate or key cannot be used, if it cannot; None if it looks right."""
    if isinstance(source, Path):
        try:
            data = source.read_bytes()
        except OSError as err:
            return f"cannot read it: {err.strerror}"
    else:
        data = source.encode() if isinstance(source, str) else source
    if kind == "certificate" and b"-----BEGIN CERTIFICATE-----" not in data:
        return "not a PEM certificate (no '-----BEGIN CERTIFICATE-----' line)"
    if kind == "private key":
        if b"-----BEGIN ENCRYPTED PRIVATE KEY-----" in data:
            return "an encrypted private key, which the SDK cannot use; decrypt it"
        if not _PRIVATE_KEY.search(data):
            return "not a PEM private key (no '-----BEGIN PRIVATE KEY-----' line)"
    return None
