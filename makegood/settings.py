"""Configuration from MAKEGOOD_* environment variables (or a .env file); defaults need nothing.

The Temporal connection is not here: it uses the SDK's TEMPORAL_* settings (makegood.connection).
"""

from __future__ import annotations

import contextlib
import json
import os
import tomllib
from datetime import timedelta
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlparse

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from makegood import credentials as dev
from makegood.adapters.blobs import BlobStore, open_store
from makegood.domain.errors import field_errors
from makegood.domain.links import Links
from makegood.domain.playbook import PlaybookSet


def bundled(name: str) -> str:
    """A data file shipped inside the package (playbooks, the example seed), installed or not."""
    return resources.files("makegood").joinpath(name).read_text(encoding="utf-8")


# Cases kept in a worker's memory between their tasks: enough for every case that is busy at
# once at the rates `bench.arrivals` measures, while 1,000 cases waiting for their customers
# stay under 300 MB (`bench.memory`); the SDK's default of 1,000 took 700 MB.
DEFAULT_WORKFLOW_CACHE = 250


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MAKEGOOD_", env_file=".env", extra="ignore")

    # Where Temporal is comes from the SDK's own settings (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE,
    # TLS, API key, profiles): see makegood.connection. The two settings that used to say it are
    # read only so that start-up can refuse them instead of quietly connecting to localhost.
    renamed_temporal_address: str | None = Field(
        default=None, validation_alias="MAKEGOOD_TEMPORAL_ADDRESS", exclude=True
    )
    renamed_temporal_namespace: str | None = Field(
        default=None, validation_alias="MAKEGOOD_TEMPORAL_NAMESPACE", exclude=True
    )
    task_queue: str = "makegood"
    data_dir: Path = Path("data")
    playbooks: Path | None = Field(
        default=None,
        description="playbook file; default: the bundled makegood/playbooks/default.toml",
    )
    seed: Path | None = Field(
        default=None,
        description="fleet, bookings and stock for the "
        "local adapters; default: the bundled example seed",
    )
    ops_contact: str = "ops@makegood.example.com"
    # Which adapter each provider uses: `local` (SQLite, the default) or the real protocol.
    email: Literal["local", "smtp"] = "local"
    sms: Literal["local", "http"] = "local"
    push: Literal["local", "http"] = "local"
    payments: Literal["local", "http"] = "local"
    product: Literal["local", "http"] = "local"
    telephony: Literal["local", "http"] = "local"
    smtp_host: str = "localhost"
    smtp_port: int = 587
    smtp_starttls: bool = True
    smtp_tls: bool = False
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_sender: str = "Makegood <care@makegood.example.com>"
    smtp_ca_file: str | None = None
    sms_url: str = "http://localhost:9101"
    push_url: str = "http://localhost:9102"
    payments_url: str = "http://localhost:9103"
    product_url: str = "http://localhost:9104"
    telephony_url: str = "http://localhost:9105"
    # The defaults of the secrets (and of api_tokens) are the public dev credentials, which
    # makegood.secure accepts only on loopback with local providers.
    provider_secret: SecretStr = Field(
        default=SecretStr(dev.DEV_PROVIDER_SECRET),
        description="signs requests to the HTTP providers",
    )
    provider_timeout_s: float = 10.0
    log_format: Literal["console", "json"] = "console"
    log_level: str = "INFO"
    ui_port: int = 8233
    retention_days: int = Field(
        default=30,
        ge=1,
        le=3650,
        description="how long the embedded dev server keeps closed cases' histories (its own "
        "default is one day); a production namespace's retention is set by its operators",
    )
    receipt_store: str = Field(
        default="",
        description="where receipt files are kept: a folder path, file:///path or "
        "s3://bucket/prefix; default <data_dir>/receipts",
    )
    archive_store: str = Field(
        default="",
        description="where closed cases are archived: a folder path, file:///path or "
        "s3://bucket/prefix; default <data_dir>/archive",
    )
    max_receipt_bytes: int = Field(
        default=5 * 1024 * 1024,
        ge=1024,
        le=100 * 1024 * 1024,
        description="the largest receipt file the API takes (POST /cases/{id}/receipts)",
    )
    case_index: str = Field(
        default="",
        description="the durable case index (ticket -> case, S2 look-ups beyond retention): a "
        "SQLite path or sqlite:///path; default <data_dir>/cases.sqlite",
    )
    database_url: str = Field(
        default="",
        description="PostgreSQL for the case index, the receipt index and the webhook replay "
        "guard: postgresql://user@host:port/db (password in the URL or PGPASSWORD; needs the "
        "postgres extra); unset, they are SQLite files in <data_dir>",
    )
    archive_every_s: float = Field(
        default=60.0,
        gt=0,
        description="how often the worker archives closed cases (a sweep of at most 20)",
    )
    s3_endpoint_url: str | None = Field(
        default=None,
        description="an S3-compatible endpoint (MinIO, ...) for s3:// stores; credentials come "
        "from the standard AWS variables (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)",
    )
    metrics_bind: str | None = Field(
        default=None,
        description="host:port of the worker's Prometheus endpoint (/metrics: the SDK's metrics "
        "and Makegood's); unset, `makegood dev` serves it on 127.0.0.1:9464 when that is free "
        "and other workers serve none",
    )
    otlp_endpoint: str | None = Field(
        default=None,
        description="an OTLP/HTTP collector (e.g. http://collector:4318) to send each case's "
        "traces to; needs the otel extra",
    )
    workflow_cache: int = Field(
        default=DEFAULT_WORKFLOW_CACHE,
        ge=0,
        le=100_000,
        description="cases a worker keeps in memory between their tasks (about 0.6 MiB each); "
        "a case beyond it is replayed from its history on its next event. 0 keeps none",
    )
    shutdown_grace_s: float = Field(
        default=20.0,
        ge=0,
        le=600,
        description="on SIGTERM, how long the worker lets activities in flight finish before "
        "cancelling them (compose's stop_grace_period must be longer)",
    )
    api_host: str = "127.0.0.1"
    api_port: int = 8080
    # Values are checked by makegood.credentials.TokenTable, not here: a validation error would
    # quote a key that is a token in clear text.
    api_tokens: dict[str, object] = Field(
        default_factory=lambda: dict[str, object](dev.DEV_TOKEN_TABLE),
        description="sha256:<hex of a bearer token> -> role:id (agent, manager or auditor); "
        "JSON in the env var; `makegood token new ROLE:ID` makes an entry",
    )
    telephony_webhook_secret: SecretStr = Field(
        default=SecretStr(dev.DEV_TELEPHONY_WEBHOOK_SECRET),
        description="Standard Webhooks secret (whsec_...) of the telephony provider's callbacks",
    )
    payments_webhook_secret: SecretStr = Field(
        default=SecretStr(dev.DEV_PAYMENTS_WEBHOOK_SECRET),
        description="Standard Webhooks secret (whsec_...) of the payment provider's callbacks",
    )
    sms_webhook_secret: SecretStr = Field(
        default=SecretStr(dev.DEV_SMS_WEBHOOK_SECRET),
        description="Standard Webhooks secret (whsec_...) of the SMS provider's inbound replies",
    )
    zendesk_secret: SecretStr = Field(
        default=SecretStr(dev.DEV_ZENDESK_SECRET),
        description="the signing secret of the Zendesk webhook",
    )
    # One secret for every provider's callbacks let each forge the others' events; read only
    # so that start-up can refuse it with the names that replace it.
    renamed_webhook_secret: SecretStr | None = Field(
        default=None, validation_alias="MAKEGOOD_WEBHOOK_SECRET", exclude=True
    )
    web_secret: SecretStr = Field(
        default=SecretStr(dev.DEV_WEB_SECRET),
        description="signs the console's session cookies and the customers' links (worker and "
        "API share it); at least 32 characters: `makegood token secret` makes one",
    )
    public_url: str = Field(
        default="",
        description="where customers reach the API (their links point there); default "
        "http://<api_host>:<api_port>",
    )
    link_ttl_days: int = Field(
        default=14,
        ge=1,
        le=90,
        description="a customer link's life at most (it also ends when its question closes)",
    )
    webhook_tolerance_s: int = 300
    max_body_bytes: int = 64 * 1024
    # Personal data protection (makegood.privacy): payload encryption and keyed pseudonyms.
    # Unset, a Temporal server on loopback uses <data_dir>/keys.json (generated, mode 0600);
    # any other server refuses to start without them.
    payload_keys: SecretStr | None = Field(
        default=None,
        description='payload encryption keys, JSON {"key-id": "<base64 of 32 bytes>", ...}',
    )
    payload_key_id: str | None = Field(
        default=None, description="the key id in payload_keys that encrypts new payloads"
    )
    pseudonym_key: SecretStr | None = Field(
        default=None, description="base64 of at least 32 bytes: keys search-attribute pseudonyms"
    )
    ui_origin: str = Field(
        default="http://localhost:8233",
        description="the Temporal UI's origin, allowed to call the codec endpoint (CORS)",
    )

    @field_validator("s3_endpoint_url", "metrics_bind", "otlp_endpoint", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        """`VAR=` (compose's `${VAR:-}`) means "not set", never an endpoint named ""."""
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("database_url")
    @classmethod
    def _postgresql_url(cls, value: str) -> str:
        value = value.strip()
        if value and urlparse(value).scheme not in ("postgres", "postgresql"):
            raise ValueError("expected postgresql://user@host:port/db (or unset: SQLite files)")
        return value

    def secret_values(self) -> list[str]:
        """Every secret configured here, for the log redactor (`makegood.logsetup.Redact`)."""
        found = []
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                raw = value.get_secret_value()
                found += [raw, raw.removeprefix("whsec_")]
                if name == "payload_keys":
                    with contextlib.suppress(ValueError, AttributeError):
                        found += [str(k) for k in json.loads(raw).values()]
        found.append(os.environ.get("AWS_SECRET_ACCESS_KEY", ""))  # an s3:// store's secret
        found.append(os.environ.get("PGPASSWORD", ""))  # MAKEGOOD_DATABASE_URL's password
        with contextlib.suppress(ValueError):
            found.append(unquote(urlparse(self.database_url).password or ""))
        return [s for s in found if s]

    def renamed_temporal_settings(self) -> list[str]:
        """The retired MAKEGOOD_TEMPORAL_* variables this configuration still sets."""
        return [
            name
            for name, value in (
                ("MAKEGOOD_TEMPORAL_ADDRESS", self.renamed_temporal_address),
                ("MAKEGOOD_TEMPORAL_NAMESPACE", self.renamed_temporal_namespace),
            )
            if value is not None
        ]

    @property
    def store_path(self) -> Path:
        return self.data_dir / "adapters.sqlite"

    @property
    def receipt_index_path(self) -> Path:
        return self.data_dir / "receipts.sqlite"

    @property
    def temporal_db(self) -> Path:
        return self.data_dir / "temporal.sqlite"

    def receipts(self) -> BlobStore:
        return open_store(
            self.receipt_store,
            default=self.data_dir / "receipts",
            endpoint_url=self.s3_endpoint_url,
        )

    @property
    def base_url(self) -> str:
        """Where people reach the API: MAKEGOOD_PUBLIC_URL, else its own address."""
        if self.public_url.strip():
            return self.public_url.strip().rstrip("/")
        host = f"[{self.api_host}]" if ":" in self.api_host else self.api_host
        return f"http://{host}:{self.api_port}"

    def links(self) -> Links:
        return Links(
            self.web_secret.get_secret_value(), self.base_url, timedelta(days=self.link_ttl_days)
        )

    def archive(self) -> BlobStore:
        return open_store(
            self.archive_store, default=self.data_dir / "archive", endpoint_url=self.s3_endpoint_url
        )

    @property
    def case_index_default(self) -> Path:
        return self.data_dir / "cases.sqlite"

    @cached_property
    def playbook_set(self) -> PlaybookSet:
        return load_playbooks(self.playbooks)

    def seed_data(self) -> dict[str, Any]:
        if self.seed is None:
            return json.loads(bundled("examples/seed.json"))  # type: ignore[no-any-return]
        try:
            return json.loads(self.seed.read_text())  # type: ignore[no-any-return]
        except (OSError, ValueError) as err:
            raise SystemExit(f"MAKEGOOD_SEED={self.seed}: cannot be read as JSON: {err}") from None


class PlaybookFileError(SystemExit):
    """A playbook file that cannot be used: the process stops, saying where and why."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        super().__init__(f"playbooks file {path} is not valid:\n  " + "\n  ".join(problems))
        self.problems = problems


def load_playbooks(path: Path | None = None) -> PlaybookSet:
    """The playbook file at `path`, or the bundled default one."""
    shown = path or Path("makegood/playbooks/default.toml")
    try:
        text = path.read_text() if path is not None else bundled("playbooks/default.toml")
        return PlaybookSet.from_toml(text)
    except OSError as err:
        raise PlaybookFileError(shown, [f"cannot read it: {err.strerror}"]) from None
    except tomllib.TOMLDecodeError as err:
        raise PlaybookFileError(shown, [f"not TOML: {err}"]) from None
    except ValidationError as err:
        raise PlaybookFileError(shown, field_errors(err, root="(file)")) from None
