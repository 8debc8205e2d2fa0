"""A throwaway PostgreSQL cluster for the stores' tests: initdb in a temp folder, a free port
on loopback and a unix socket in that folder, password authentication (so the URL and
PGPASSWORD paths are the real ones), stopped and deleted at the end of the session.

The binaries are taken from PATH or /usr/lib/postgresql/*/bin. Without them the fixture
FAILS, never skips: the PostgreSQL stores must be tested, so CI installs them (.ci/run).
PostgreSQL refuses to run as root: as root, initdb and pg_ctl run as the `postgres` user (or
`nobody`), owning the temp folder.

Use in a test module: `from tests.postgres import pg_cluster, pg_url  # noqa: F401`.
"""

from __future__ import annotations

import asyncio
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from tests.api_harness import free_port

USER = "makegood"
PASSWORD = "test-pg-password"


def bin_dir() -> Path:
    """The folder of initdb and pg_ctl: PATH first, then the newest Debian-style install."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).resolve().parent

    def version(initdb: str) -> int:
        name = Path(initdb).parent.parent.name
        return int(name) if name.isdigit() else 0

    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=version)
    if not versions:
        pytest.fail(
            "PostgreSQL's server binaries (initdb, pg_ctl) are neither on PATH nor under "
            "/usr/lib/postgresql/*/bin: install them (apt-get install postgresql); "
            "the PostgreSQL stores' tests do not skip",
            pytrace=False,
        )
    return Path(versions[-1]).parent


def run_as() -> list[str]:
    """The command prefix that drops root: PostgreSQL will not run as root."""
    if os.geteuid() != 0:
        return []
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return ["runuser", "-u", name, "--"]
    pytest.fail("running as root with neither a postgres nor a nobody user", pytrace=False)


@dataclass(frozen=True)
class Cluster:
    port: int
    socket_dir: Path

    def url(self, database: str, *, password: bool = True) -> str:
        """Over TCP on loopback; without the password, it must come from PGPASSWORD."""
        secret = f":{PASSWORD}" if password else ""
        return f"postgresql://{USER}{secret}@127.0.0.1:{self.port}/{database}"

    def socket_url(self, database: str) -> str:
        return f"postgresql://{USER}:{PASSWORD}@/{database}?host={self.socket_dir}&port={self.port}"

    async def create_database(self) -> str:
        """A new, empty database: each test has its own tables."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        conn = await asyncpg.connect(self.url("postgres"))
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        return name


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    bindir = bin_dir()
    prefix = run_as()
    # Not under pytest's tmp_path: its parents are root-only, and the socket path must be short.
    root = Path(tempfile.mkdtemp(prefix="mg-pg-"))
    data, log = root / "data", root / "server.log"
    (root / "pwfile").write_text(PASSWORD + "\n")
    if prefix:
        owner = pwd.getpwnam(prefix[2])
        for path in (root, root / "pwfile"):
            os.chown(path, owner.pw_uid, owner.pw_gid)
    port = free_port()

    def run(*args: str) -> None:
        done = subprocess.run(
            [*prefix, *args], capture_output=True, text=True, timeout=120, cwd=root, check=False
        )
        if done.returncode != 0:
            server_log = log.read_text() if log.exists() else ""
            pytest.fail(f"{args[0]} failed:\n{done.stdout}{done.stderr}{server_log}", pytrace=False)

    try:
        run(
            str(bindir / "initdb"),
            "-D",
            str(data),
            "-U",
            USER,
            "--auth=scram-sha-256",
            f"--pwfile={root / 'pwfile'}",
            "--encoding=UTF8",
            "--no-sync",
        )
        options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
        run(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "start")
        try:
            yield Cluster(port, root)
        finally:
            run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def pg_url(pg_cluster: Cluster) -> str:
    """The URL of a fresh database of this test's own, password included. Synchronous (on a
    loop of its own), so that a parametrized fixture can ask for it only when needed."""
    return pg_cluster.url(asyncio.run(pg_cluster.create_database()))
