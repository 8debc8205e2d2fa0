"""The Temporal connection settings: what the SDK will be given, and what is refused.

Each case writes a real TOML file and passes an explicit environment, so the developer's own
TEMPORAL_* variables and ~/.config/temporalio/temporal.toml play no part.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from pathlib import Path

import pytest
from temporalio.service import TLSConfig

from makegood.connection import ConnectionConfigError, TemporalConnection, load_connection
from makegood.devserver import dev_server_args, dev_server_problems, wait_for_port
from makegood.settings import Settings
from tests.api_harness import free_port
from tests.tls_proxy import Pki

API_KEY = "eyJhbGciOi.secret-api-key.x1y2"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki.create(tmp_path_factory.mktemp("pki"))


def load(tmp_path: Path, toml: str | None = None, **env: str) -> TemporalConnection:
    """`load_connection` with only these variables, and this text as the config file."""
    variables = {"HOME": str(tmp_path / "home"), **env}
    if toml is not None:
        (tmp_path / "temporal.toml").write_text(toml)
        variables.setdefault("TEMPORAL_CONFIG_FILE", str(tmp_path / "temporal.toml"))
    return load_connection(None, variables)


def refused(tmp_path: Path, toml: str | None = None, **env: str) -> list[str]:
    with pytest.raises(ConnectionConfigError) as caught:
        load(tmp_path, toml, **env)
    assert API_KEY not in str(caught.value)  # a refusal never prints the key
    return caught.value.problems


def test_nothing_set_means_the_local_dev_server(tmp_path: Path) -> None:
    connection = load(tmp_path)
    assert connection.args == {"target_host": "localhost:7233", "namespace": "default"}
    assert (connection.host, connection.port, connection.tls) == ("localhost", 7233, False)
    assert connection.config_file is None


def test_a_profile_from_the_file_with_variables_overriding_it(tmp_path: Path, pki: Pki) -> None:
    toml = f"""
[profile.default]
address = "localhost:7233"

[profile.prod]
address = "prod-ns.a1b2c.tmprl.cloud:7233"
namespace = "prod-ns.a1b2c"

[profile.prod.tls]
server_name = "frontend.prod.example"
server_ca_cert_path = "{pki.ca_pem}"
client_cert_path = "{pki.client_pem}"
client_key_path = "{pki.client_key}"
"""
    connection = load(tmp_path, toml, TEMPORAL_PROFILE="prod", TEMPORAL_NAMESPACE="other-ns")
    assert connection.args == {
        "target_host": "prod-ns.a1b2c.tmprl.cloud:7233",
        "namespace": "other-ns",  # the variable wins over the file, field by field
        "tls": TLSConfig(
            domain="frontend.prod.example",
            server_root_ca_cert=pki.ca_pem.read_bytes(),
            client_cert=pki.client_pem.read_bytes(),
            client_private_key=pki.client_key.read_bytes(),
        ),
    }
    assert (connection.profile, connection.config_file) == ("prod", tmp_path / "temporal.toml")
    assert connection.summary()["tls"] == "mtls"


def test_variables_alone_give_mutual_tls_and_the_key_stays_out_of_logs(
    tmp_path: Path, pki: Pki
) -> None:
    connection = load(
        tmp_path,
        TEMPORAL_ADDRESS="temporal.internal:7233",
        TEMPORAL_NAMESPACE="makegood",
        TEMPORAL_TLS_SERVER_CA_CERT_PATH=str(pki.ca_pem),
        TEMPORAL_TLS_CLIENT_CERT_PATH=str(pki.client_pem),
        TEMPORAL_TLS_CLIENT_KEY_DATA=pki.client_key.read_text(),
    )
    tls = connection.args["tls"]
    assert isinstance(tls, TLSConfig)
    assert tls.client_cert == pki.client_pem.read_bytes()
    assert tls.client_private_key == pki.client_key.read_bytes()
    assert tls.server_root_ca_cert == pki.ca_pem.read_bytes()
    assert "PRIVATE KEY" not in repr(connection) + str(connection.summary())


def test_temporal_cloud_with_an_api_key_turns_tls_on(tmp_path: Path) -> None:
    connection = load(
        tmp_path,
        TEMPORAL_ADDRESS="prod-ns.a1b2c.tmprl.cloud:7233",
        TEMPORAL_NAMESPACE="prod-ns.a1b2c",
        TEMPORAL_API_KEY=API_KEY,
    )
    assert connection.args == {
        "target_host": "prod-ns.a1b2c.tmprl.cloud:7233",
        "namespace": "prod-ns.a1b2c",
        "api_key": API_KEY,
        "tls": True,
    }
    assert connection.summary()["api_key"] is True and connection.summary()["tls"] == "on"
    assert API_KEY not in repr(connection) + str(connection.summary())


def test_an_api_key_without_tls_is_allowed_on_loopback_only(tmp_path: Path) -> None:
    local = load(
        tmp_path, TEMPORAL_ADDRESS="127.0.0.1:7233", TEMPORAL_API_KEY=API_KEY, TEMPORAL_TLS="0"
    )
    assert local.args["tls"] is False and local.args["api_key"] == API_KEY
    (problem,) = refused(
        tmp_path, TEMPORAL_ADDRESS="temporal.internal:7233", TEMPORAL_API_KEY=API_KEY,
        TEMPORAL_TLS="false",
    )  # fmt: skip
    assert problem.startswith("TEMPORAL_API_KEY with TLS turned off by TEMPORAL_TLS=false: ")
    assert "the key would cross the network in clear text" in problem


@pytest.mark.skipif(sys.platform != "linux", reason="the default location is Linux's here")
def test_the_default_file_is_the_sdks(tmp_path: Path) -> None:
    folder = tmp_path / "xdg" / "temporalio"
    folder.mkdir(parents=True)
    (folder / "temporal.toml").write_text('[profile.default]\nnamespace = "from-the-file"\n')
    connection = load(tmp_path, XDG_CONFIG_HOME=str(tmp_path / "xdg"))
    assert connection.namespace == "from-the-file"
    assert connection.config_file == folder / "temporal.toml"


def test_the_renamed_makegood_settings_are_refused_from_the_environment_and_dot_env(
    tmp_path: Path,
) -> None:
    (problem,) = refused(tmp_path, MAKEGOOD_TEMPORAL_ADDRESS="temporal:7233")
    assert problem == (
        "MAKEGOOD_TEMPORAL_ADDRESS was renamed: set TEMPORAL_ADDRESS instead "
        "(the Temporal SDK's own name)"
    )
    (tmp_path / ".env").write_text("MAKEGOOD_TEMPORAL_NAMESPACE=prod\n")
    settings = Settings(_env_file=tmp_path / ".env")  # type: ignore[call-arg]
    with pytest.raises(ConnectionConfigError) as caught:
        load_connection(settings, {"HOME": str(tmp_path)})
    assert caught.value.problems == [
        "MAKEGOOD_TEMPORAL_NAMESPACE was renamed: set TEMPORAL_NAMESPACE instead "
        "(the Temporal SDK's own name)"
    ]


def test_the_process_environment_wins_over_the_dot_env_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [n for n in os.environ if n.startswith("TEMPORAL_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("TEMPORAL_ADDRESS", "127.0.0.1:7300")
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text(
        "TEMPORAL_ADDRESS=elsewhere:7233\nTEMPORAL_NAMESPACE=from-dot-env\n"
    )
    connection = load_connection(Settings())
    assert (connection.address, connection.namespace) == ("127.0.0.1:7300", "from-dot-env")


PROFILE = '[profile.default]\naddress = "localhost:7233"\n'
# (toml file, variables, what each problem says); {dir} is the test's folder.
REFUSED: dict[str, tuple[str | None, dict[str, str], str | tuple[str, ...]]] = {
    "unknown profile": (
        PROFILE + "[profile.prod]\n",
        {"TEMPORAL_PROFILE": "staging"},
        "TEMPORAL_PROFILE=staging: unknown profile; {dir}/temporal.toml has no "
        "[profile.staging] (it has: default, prod)",
    ),
    "unknown profile, no file": (
        None,
        {"TEMPORAL_PROFILE": "staging"},
        "TEMPORAL_PROFILE=staging: unknown profile; there is no config file (looked for "
        "{dir}/home/.config/temporalio/temporal.toml)",
    ),
    "missing config file": (
        None,
        {"TEMPORAL_CONFIG_FILE": "{dir}/nowhere.toml"},
        "TEMPORAL_CONFIG_FILE={dir}/nowhere.toml: cannot read it: No such file or directory",
    ),
    "config file is a folder": (
        None,
        {"TEMPORAL_CONFIG_FILE": "{dir}"},
        "TEMPORAL_CONFIG_FILE={dir}: cannot read it: Is a directory",
    ),
    "unparsable toml": (
        "[profile.default\naddress = 1",
        {},
        "TEMPORAL_CONFIG_FILE={dir}/temporal.toml: not valid TOML: ",
    ),
    "wrong type in toml": (
        "[profile.default]\naddress = 7233\n",
        {},
        "config file {dir}/temporal.toml: TOML parse error at line 2, column 11 | 2 | "
        "address = 7233 | ^^^^ invalid type: integer `7233`, expected a string",
    ),
    "misspelt field": (
        '[profile.default]\napi-key = "x"\n',
        {},
        "profile.default.api-key in {dir}/temporal.toml: unknown setting (expected one of "
        "address, api_key, codec, grpc_meta, namespace, tls)",
    ),
    "misspelt tls field": (
        '[profile.default.tls]\nclient_cert = "c.pem"\n',
        {},
        "profile.default.tls.client_cert in {dir}/temporal.toml: unknown setting",
    ),
    "address without port": (
        None,
        {"TEMPORAL_ADDRESS": "temporal.internal"},
        "TEMPORAL_ADDRESS=temporal.internal: expected host:port, e.g. localhost:7233",
    ),
    "address with a scheme": (
        None,
        {"TEMPORAL_ADDRESS": "https://x.tmprl.cloud:7233"},
        "TEMPORAL_ADDRESS=https://x.tmprl.cloud:7233: expected host:port without a scheme",
    ),
    "port out of range": (
        None,
        {"TEMPORAL_ADDRESS": "localhost:72330"},
        "TEMPORAL_ADDRESS=localhost:72330: the port must be 1 to 65535",
    ),
    "malformed address in the profile": (
        '[profile.default]\naddress = "temporal 7233"\n',
        {},
        "profile.default.address = 'temporal 7233' in {dir}/temporal.toml: expected host:port",
    ),
    "empty address": (None, {"TEMPORAL_ADDRESS": ""}, "TEMPORAL_ADDRESS: set but empty"),
    "empty address in the profile": (
        '[profile.default]\naddress = ""\n',
        {},
        "profile.default.address in {dir}/temporal.toml: set but empty",
    ),
    "empty namespace": (None, {"TEMPORAL_NAMESPACE": " "}, "TEMPORAL_NAMESPACE: set but empty"),
    "api key with a newline": (
        None,
        {"TEMPORAL_API_KEY": API_KEY + "\n"},
        "TEMPORAL_API_KEY: contains whitespace or control characters",
    ),
    "tls neither true nor false": (
        None,
        {"TEMPORAL_TLS": "yes"},
        "TEMPORAL_TLS=yes: expected true or false (or 1 or 0)",
    ),
    "host verification off": (
        None,
        {"TEMPORAL_TLS_DISABLE_HOST_VERIFICATION": "true"},
        "TEMPORAL_TLS_DISABLE_HOST_VERIFICATION=true: not supported by the Python SDK",
    ),
    "certificate without its key": (
        None,
        {"TEMPORAL_TLS_CLIENT_CERT_PATH": "{client_pem}"},
        "TEMPORAL_TLS_CLIENT_CERT_PATH={client_pem}: a client certificate needs its private "
        "key; set TEMPORAL_TLS_CLIENT_KEY_PATH",
    ),
    "key without its certificate": (
        '[profile.default.tls]\nclient_key_path = "{client_key}"\n',
        {},
        "profile.default.tls.client_key_path = '{client_key}' in {dir}/temporal.toml: a client "
        "key needs its certificate",
    ),
    "unreadable certificate": (
        None,
        {
            "TEMPORAL_TLS_CLIENT_CERT_PATH": "{dir}/missing.pem",
            "TEMPORAL_TLS_CLIENT_KEY_PATH": "{client_key}",
        },
        "TEMPORAL_TLS_CLIENT_CERT_PATH={dir}/missing.pem: cannot read it: No such file or "
        "directory",
    ),
    "unreadable ca in the profile": (
        '[profile.default.tls]\nserver_ca_cert_path = "{dir}"\n',
        {},
        "profile.default.tls.server_ca_cert_path = '{dir}' in {dir}/temporal.toml: cannot read "
        "it: Is a directory",
    ),
    "certificate and key swapped": (
        None,
        {
            "TEMPORAL_TLS_CLIENT_CERT_PATH": "{client_key}",
            "TEMPORAL_TLS_CLIENT_KEY_PATH": "{client_pem}",
        },
        (
            "TEMPORAL_TLS_CLIENT_CERT_PATH={client_key}: not a PEM certificate",
            "TEMPORAL_TLS_CLIENT_KEY_PATH={client_pem}: not a PEM private key",
        ),
    ),
    "key data that is no key": (
        None,
        {
            "TEMPORAL_TLS_CLIENT_CERT_PATH": "{client_pem}",
            "TEMPORAL_TLS_CLIENT_KEY_DATA": "not a key",
        },
        "TEMPORAL_TLS_CLIENT_KEY_DATA: not a PEM private key",
    ),
    "path and data for one certificate": (
        None,
        {"TEMPORAL_TLS_SERVER_CA_CERT_PATH": "{ca}", "TEMPORAL_TLS_SERVER_CA_CERT_DATA": "x"},
        "Cannot specify both TEMPORAL_TLS_SERVER_CA_CERT_PATH and TEMPORAL_TLS_SERVER_CA_CERT_DATA",
    ),
    "certificate with tls turned off": (
        '[profile.default.tls]\ndisabled = true\nserver_ca_cert_path = "{ca}"\n',
        {},
        "profile.default.tls.server_ca_cert_path = '{ca}' in {dir}/temporal.toml: given while "
        "TLS is turned off by profile.default.tls.disabled = True in {dir}/temporal.toml; it "
        "would not be used",
    ),
}


@pytest.mark.parametrize("case", REFUSED, ids=list(REFUSED))
def test_bad_settings_are_refused_naming_the_setting_and_the_reason(
    case: str, tmp_path: Path, pki: Pki
) -> None:
    toml, env, expected = REFUSED[case]
    paths = {
        "dir": str(tmp_path),
        "client_pem": str(pki.client_pem),
        "client_key": str(pki.client_key),
        "ca": str(pki.ca_pem),
    }
    problems = refused(
        tmp_path,
        toml.format(**paths) if toml is not None else None,
        **{k: v.format(**paths) for k, v in env.items()},
    )
    each = (expected,) if isinstance(expected, str) else expected
    assert len(problems) == len(each), problems
    for problem, says in zip(problems, each, strict=True):
        assert says.format(**paths) in problem, problem


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    problems = refused(
        tmp_path,
        '[profile.default]\nadress = "x:1"\n',
        MAKEGOOD_TEMPORAL_ADDRESS="old:7233",
        TEMPORAL_ADDRESS="temporal",
        TEMPORAL_TLS="on",
        TEMPORAL_API_KEY="",
    )
    assert [p.partition(":")[0] for p in problems] == [
        "MAKEGOOD_TEMPORAL_ADDRESS was renamed",
        f"profile.default.adress in {tmp_path}/temporal.toml",
        "TEMPORAL_ADDRESS=temporal",
        "TEMPORAL_API_KEY",
        "TEMPORAL_TLS=on",
    ]


def test_the_dev_server_serves_where_the_client_connects(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, ui_port=8299)
    connection = load(tmp_path, TEMPORAL_ADDRESS="127.0.0.1:7299", TEMPORAL_NAMESPACE="mg")
    args = dev_server_args(settings, connection)
    assert args[args.index("--ip") + 1] == "127.0.0.1"
    assert args[args.index("--port") + 1] == "7299"
    assert args[args.index("--namespace") + 1] == "mg"
    assert dev_server_problems(connection) == []
    assert dev_server_problems(load(tmp_path)) == []  # nothing set: localhost:7233, default


def test_the_dev_server_refuses_tls_and_remote_addresses(tmp_path: Path) -> None:
    cloud = load(
        tmp_path, TEMPORAL_ADDRESS="prod-ns.a1b2c.tmprl.cloud:7233", TEMPORAL_API_KEY=API_KEY
    )
    tls, remote = dev_server_problems(cloud)
    assert tls.startswith("`makegood dev` runs a local dev server without TLS, but the ")
    assert "prod-ns.a1b2c.tmprl.cloud:7233 (TEMPORAL_ADDRESS)" in remote


async def test_waiting_for_the_dev_server_is_not_fooled_by_a_socket_connected_to_itself() -> None:
    """Polling a local port nobody listens on can connect a socket to itself (its source port
    is the port polled): that is no dev server, and it holds the port the server would bind."""
    port = free_port()
    sleeper = await asyncio.create_subprocess_exec("sleep", "30")
    try:
        # Every poll comes from the polled port itself: each connection it makes is to itself.
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(1.5):
                await wait_for_port("127.0.0.1", port, sleeper, local_addr=("127.0.0.1", port))
        with socket.socket() as server:  # a real listener is found at once
            server.bind(("127.0.0.1", 0))
            server.listen()
            async with asyncio.timeout(5):
                await wait_for_port("127.0.0.1", server.getsockname()[1], sleeper)
    finally:
        sleeper.kill()
        await sleeper.wait()
