"""Configuration from MAKEGOOD_* environment variables (or a .env file); defaults need nothing."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

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


def load_playbooks(path: Path) -> PlaybookSet:
    try:
        text = path.read_text()
    except OSError as err:
        raise SystemExit(f"cannot read playbooks file {path}: {err.strerror}") from None
    return PlaybookSet.from_toml(text)
