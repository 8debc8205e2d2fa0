"""The keys that keep personal data out of Temporal: payload keys and the pseudonym key.

Payload keys (MAKEGOOD_PAYLOAD_KEYS, a JSON object of key id -> base64 of 32 random bytes)
encrypt every payload with AES-256-GCM; MAKEGOOD_PAYLOAD_KEY_ID names the one that encrypts,
the others only decrypt what they wrote before a rotation. MAKEGOOD_PSEUDONYM_KEY (base64, at
least 32 bytes) keys the pseudonyms in search attributes.

Where a key is not set, a Temporal server on this machine (the embedded `makegood dev`, a local
docker-compose) may use a local one: `<MAKEGOOD_DATA_DIR>/keys.json`, generated on first use
with mode 0600 and reused after. Against any other server a missing key refuses start-up: dev
secrets exist only for loopback. A key that is malformed, or an active key id that names no
key, always refuses start-up, naming the setting and the reason and never the key.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import re
import secrets
import stat
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from pydantic import SecretStr

from makegood.domain.pseudonyms import Pseudonyms
from makegood.settings import Settings

KEYS_VAR: Final = "MAKEGOOD_PAYLOAD_KEYS"
ACTIVE_VAR: Final = "MAKEGOOD_PAYLOAD_KEY_ID"
PSEUDONYM_VAR: Final = "MAKEGOOD_PSEUDONYM_KEY"
DEV_FILE: Final = "keys.json"
KEY_BYTES: Final = 32
KEY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
GENERATE_HINT: Final = (
    'generate one with: python -c "import os, base64; print(base64.b64encode(os.urandom(32))'
    '.decode())"'
)


class KeyConfigError(SystemExit):
    """Key settings that cannot work: the process stops before it reads or writes a case."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(
            "makegood: encryption key settings refused, nothing was started:\n  "
            + "\n  ".join(problems)
        )
        self.problems = problems


@dataclass(frozen=True)
class KeyRing:
    """Payload keys by id, the id that encrypts, and the pseudonym key; never shown.

    A ring without payload keys reads only payloads that were never encrypted (the committed
    scenario histories, an export read where no key is configured) and encrypts nothing, so
    `makegood.connection.connect` refuses it: nothing reaches a server unencrypted.
    """

    payload_keys: Mapping[str, bytes] = field(repr=False)
    active: str | None
    pseudonym_key: bytes | None = field(repr=False)
    source: str = "settings"  # where the keys came from, for log lines and errors

    @property
    def pseudonyms(self) -> Pseudonyms:
        if self.pseudonym_key is None:
            raise KeyConfigError([f"{PSEUDONYM_VAR} is not set: cases cannot be searched by it"])
        return Pseudonyms(self.pseudonym_key)

    @classmethod
    def generate(cls, key_id: str | None = None, source: str = "generated") -> KeyRing:
        key_id = key_id or f"local-{secrets.token_hex(4)}"
        return cls({key_id: os.urandom(KEY_BYTES)}, key_id, os.urandom(KEY_BYTES), source)

    def as_env(self) -> dict[str, str]:
        """These keys as the MAKEGOOD_* variables that configure them (for a child process)."""
        env = {}
        if self.payload_keys:
            env[KEYS_VAR] = json.dumps({k: _b64(v) for k, v in self.payload_keys.items()})
        if self.active:
            env[ACTIVE_VAR] = self.active
        if self.pseudonym_key is not None:
            env[PSEUDONYM_VAR] = _b64(self.pseudonym_key)
        return env

    def summary(self) -> dict[str, Any]:
        """What a log line may say: key ids and where they came from, never key material."""
        return {"key_id": self.active, "key_ids": sorted(self.payload_keys), "keys": self.source}


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _key(text: str, where: str, problems: list[str], *, exact: bool) -> bytes | None:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        problems.append(f"{where}: not base64; {GENERATE_HINT}")
        return None
    if (exact and len(raw) != KEY_BYTES) or len(raw) < KEY_BYTES:
        need = "exactly" if exact else "at least"
        problems.append(
            f"{where}: decodes to {len(raw)} bytes, {need} {KEY_BYTES} are needed; {GENERATE_HINT}"
        )
        return None
    return raw


def _secret(value: SecretStr | None) -> str | None:
    text = value.get_secret_value().strip() if value is not None else ""
    return text or None


def parse_payload_keys(text: str, where: str, problems: list[str]) -> dict[str, bytes]:
    """Key id -> 32 key bytes from the JSON `{"id": "<base64>"}`; problems name `where`."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:  # the message names a position, never the content
        problems.append(f'{where}: not JSON ({err.msg}); expected {{"key-id": "<base64>", ...}}')
        return {}
    if not isinstance(data, dict) or not data:
        problems.append(f'{where}: expected a non-empty JSON object {{"key-id": "<base64>"}}')
        return {}
    keys: dict[str, bytes] = {}
    for key_id, value in data.items():
        if not KEY_ID.fullmatch(key_id):
            problems.append(
                f"{where}: key id {key_id[:70]!r} must be 1-64 letters, digits, '.', '_' or '-'"
            )
        elif not isinstance(value, str):
            problems.append(f"{where}: key {key_id!r} must be a base64 string")
        elif (raw := _key(value, f"{where}: key {key_id!r}", problems, exact=True)) is not None:
            keys[key_id] = raw
    return keys


def load_keys(settings: Settings, *, loopback: bool | None) -> KeyRing:
    """The keys this process works with, or every reason the settings cannot work.

    `loopback`: True when Temporal is on this machine (the local key file may be created),
    False when it is elsewhere (every key must be configured), None for commands that read
    exported histories without a server (configured keys, else an existing local file).
    """
    problems: list[str] = []
    keys: dict[str, bytes] = {}
    # An empty variable (`MAKEGOOD_PAYLOAD_KEY_ID=` in a compose file) counts as unset.
    active = settings.payload_key_id or None
    configured = _secret(settings.payload_keys)
    pseudonym_text = _secret(settings.pseudonym_key)
    if configured is not None:
        keys = parse_payload_keys(configured, KEYS_VAR, problems)
        if keys and active is None and len(keys) > 1:
            problems.append(
                f"{KEYS_VAR} holds {len(keys)} keys ({', '.join(sorted(keys))}): set {ACTIVE_VAR} "
                "to the one that encrypts new payloads"
            )
        elif keys and active is None:
            active = next(iter(keys))
        elif keys and active not in keys:
            problems.append(
                f"{ACTIVE_VAR}={active}: no such key in {KEYS_VAR} (it has: "
                f"{', '.join(sorted(keys))}); add the key or name one of these"
            )
    elif active is not None:
        problems.append(f"{ACTIVE_VAR}={active} is set but {KEYS_VAR} is not: set both")
    pseudonym: bytes | None = None
    if pseudonym_text is not None:
        pseudonym = _key(pseudonym_text, PSEUDONYM_VAR, problems, exact=False)
    if problems:
        raise KeyConfigError(problems)
    if configured is not None and pseudonym is not None:
        return KeyRing(keys, active, pseudonym, "settings")
    missing = [
        name
        for name, value in ((KEYS_VAR, configured), (PSEUDONYM_VAR, pseudonym))
        if value is None
    ]
    path = settings.data_dir / DEV_FILE
    if loopback is False:
        raise KeyConfigError(
            [
                f"{name} is not set: it is required when Temporal is not on this machine (a "
                f"local key in {path} is only for a server on loopback); {GENERATE_HINT}"
                for name in missing
            ]
        )
    local = read_local_keys(path, create=loopback is True)
    if local is None:  # offline, nothing (or not all) configured: reads what it can
        return KeyRing(keys, active, pseudonym, "settings" if keys else "none")
    if configured is None:
        keys, active = dict(local.payload_keys), local.active
    return KeyRing(keys, active, pseudonym or local.pseudonym_key, str(path))


def read_local_keys(path: Path, *, create: bool) -> KeyRing | None:
    """The local key file, created (mode 0600) if missing and `create`; None if neither."""
    if not path.exists():
        if not create:
            return None
        _create_local_keys(path)
    problems: list[str] = []
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            problems.append(
                f"{path}: readable by others (mode {mode:04o}); its keys decrypt every case: "
                f"chmod 600 {path}"
            )
        data = json.loads(path.read_text())
        keys = parse_payload_keys(json.dumps(data["payload_keys"]), str(path), problems)
        active = data["payload_key_id"]
        pseudonym = _key(data["pseudonym_key"], f"{path}: pseudonym_key", problems, exact=False)
    except OSError as err:
        raise KeyConfigError([f"{path}: cannot read it: {err.strerror}"]) from None
    except (ValueError, KeyError, TypeError) as err:
        raise KeyConfigError(
            [f"{path}: not a Makegood key file ({type(err).__name__}: {err}); move it away"]
        ) from None
    if keys and active not in keys:
        problems.append(f"{path}: payload_key_id {active!r} names no key in the file")
    if problems:
        raise KeyConfigError(problems)
    return KeyRing(keys, active, pseudonym, str(path))


def _create_local_keys(path: Path) -> None:
    """Write a new key file atomically: two processes starting at once agree on one file."""
    ring = KeyRing.generate()
    content = {
        "about": "Makegood's local development keys: losing this file loses the cases' data",
        "payload_keys": {k: _b64(v) for k, v in ring.payload_keys.items()},
        "payload_key_id": ring.active,
        "pseudonym_key": _b64(ring.pseudonym_key or b""),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".keys-")  # mode 0600
    try:
        with os.fdopen(fd, "w") as out:
            json.dump(content, out, indent=2)
            out.write("\n")
            out.flush()
            os.fsync(out.fileno())
        with contextlib.suppress(FileExistsError):  # another process was first: use its file
            os.link(tmp, path)
    finally:
        os.unlink(tmp)
