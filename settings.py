"""Configuration from MAKEGOOD_* environment variables (or a .env file); defaults need nothing."""

from __future__ import annotations

import tomllib
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from domain.errors import field_errors
from domain.playbook import PlaybookSet

ROOT = Path(__file__).resolve().parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MAKEGOOD_", env_file=".env", extra="ignore")

    temporal_address: str = "localhost:7233"
    temporal_namespace: str = "default"
    task_queue: str = "makegood"
    data_dir: Path = ROOT / "data"
    playbooks: Path = ROOT / "playbooks" / "default.toml"
    seed: Path | None = Field(default=ROOT / "examples" / "seed.json",
                              description="fleet, bookings and stock for the local adapters")
    ops_contact: str = "ops@makegood.example.com"
    notifier: Literal["local"] = "local"
    payments: Literal["local"] = "local"
    product: Literal["local"] = "local"
    telephony: Literal["local"] = "local"
    log_format: Literal["console", "json"] = "console"
    log_level: str = "INFO"
    ui_port: int = 8233

    @property
    def store_path(self) -> Path:
        return self.data_dir / "adapters.sqlite"

    @property
    def temporal_db(self) -> Path:
        return self.data_dir / "temporal.sqlite"

    @cached_property
    def playbook_set(self) -> PlaybookSet:
        return load_playbooks(self.playbooks)


class PlaybookFileError(SystemExit):
    """A playbook file that cannot be used: the process stops, saying where and why."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        super().__init__(f"playbooks file {path} is not valid:\n  " + "\n  ".join(problems))
        self.problems = problems


def load_playbooks(path: Path) -> PlaybookSet:
    try:
        return PlaybookSet.from_toml(path.read_text())
    except OSError as err:
        raise PlaybookFileError(path, [f"cannot read it: {err.strerror}"]) from None
    except tomllib.TOMLDecodeError as err:
        raise PlaybookFileError(path, [f"not TOML: {err}"]) from None
    except ValidationError as err:
        raise PlaybookFileError(path, field_errors(err)) from None
