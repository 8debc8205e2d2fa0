"""Keys, the payload codec and pseudonyms, without a server: what is encrypted, with which
key, what a rotation keeps readable, and every key setting that is refused and why."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import stat
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr
from temporalio.api.common.v1 import Payload

from makegood.activities.history import related_query
from makegood.connection import connect, load_connection
from makegood.devserver import dev_server_args
from makegood.domain.provider import RelatedQuery
from makegood.domain.pseudonyms import Pseudonyms, legacy
from makegood.privacy.codec import ENCODING, KEY_ID, PayloadKeyError, data_converter
from makegood.privacy.keys import DEV_FILE, KeyConfigError, KeyRing, load_keys
from makegood.settings import Settings
from tests.harness import ROOT, temporal_env

SECRET = {"email": "ada@example.com", "summary": "car not at bay 4", "phone": "+15551234567"}


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def settings(tmp_path: Path, **values: object) -> Settings:
    return Settings(data_dir=tmp_path, **values)  # type: ignore[arg-type]


async def test_payloads_are_ciphertext_that_names_its_key_and_decodes_back() -> None:
    converter = data_converter(KeyRing.generate("k-a"))
    (sealed,) = await converter.encode([SECRET])
    assert sealed.metadata["encoding"] == ENCODING
    assert sealed.metadata[KEY_ID] == b"k-a"
    for plain in SECRET.values():
        assert plain.encode() not in sealed.SerializeToString()
    assert await converter.decode([sealed], [dict]) == [SECRET]
    # A fresh nonce each time: the same value never encrypts to the same bytes.
    (again,) = await converter.encode([SECRET])
    assert again.data != sealed.data


async def test_a_rotation_keeps_old_payloads_readable_and_encrypts_with_the_new_key() -> None:
    a = KeyRing.generate("k-a")
    (old,) = await data_converter(a).encode([SECRET])
    rotated = KeyRing({**a.payload_keys, "k-b": os.urandom(32)}, "k-b", a.pseudonym_key)
    converter = data_converter(rotated)
    assert await converter.decode([old], [dict]) == [SECRET]
    (new,) = await converter.encode([SECRET])
    assert new.metadata[KEY_ID] == b"k-b"

    only_b = KeyRing({"k-b": rotated.payload_keys["k-b"]}, "k-b", a.pseudonym_key, "the test")
    with pytest.raises(PayloadKeyError, match=r"key id 'k-a', which is not configured here"):
        await data_converter(only_b).decode([old], [dict])


async def test_a_replaced_key_or_an_altered_payload_or_relabelled_key_id_fails_clearly() -> None:
    a = KeyRing.generate("k-a")
    (sealed,) = await data_converter(a).encode([SECRET])
    impostor = KeyRing({"k-a": os.urandom(32)}, "k-a", a.pseudonym_key)
    with pytest.raises(PayloadKeyError, match=r"'k-a' does not decrypt with the key configured"):
        await data_converter(impostor).decode([sealed], [dict])
    altered = Payload()
    altered.CopyFrom(sealed)
    altered.data = sealed.data[:-1] + bytes([sealed.data[-1] ^ 1])
    with pytest.raises(PayloadKeyError, match="altered"):
        await data_converter(a).decode([altered], [dict])
    # Two keys: a payload relabelled with the other key id does not open either.
    both = KeyRing({**a.payload_keys, "k-b": os.urandom(32)}, "k-a", a.pseudonym_key)
    relabelled = Payload()
    relabelled.CopyFrom(sealed)
    relabelled.metadata[KEY_ID] = b"k-b"
    with pytest.raises(PayloadKeyError, match="'k-b'"):
        await data_converter(both).decode([relabelled], [dict])


async def test_unencrypted_payloads_pass_through_so_old_histories_still_read() -> None:
    plain = data_converter(KeyRing({}, None, None)).payload_converter.to_payloads([SECRET])
    assert await data_converter(KeyRing.generate()).decode(plain, [dict]) == [SECRET]
    # A ring without keys (reading exports where none is configured) encrypts nothing...
    reader = data_converter(KeyRing({}, None, None))
    assert (await reader.encode([SECRET]))[0].metadata["encoding"] == b"json/plain"
    # ...so nothing may connect to Temporal with it.
    with pytest.raises(KeyConfigError, match="MAKEGOOD_PAYLOAD_KEYS is not set"):
        await connect(
            load_connection(None, {"TEMPORAL_CONFIG_FILE": os.devnull}), KeyRing({}, None, None)
        )


def test_configured_keys_are_used_and_several_need_the_active_id(tmp_path: Path) -> None:
    a, b, p = os.urandom(32), os.urandom(32), os.urandom(48)
    ring = load_keys(
        settings(
            tmp_path,
            payload_keys=SecretStr(json.dumps({"k-a": b64(a), "k-b": b64(b)})),
            payload_key_id="k-b",
            pseudonym_key=SecretStr(b64(p)),
        ),
        loopback=False,
    )
    assert (dict(ring.payload_keys), ring.active, ring.pseudonym_key) == (
        {"k-a": a, "k-b": b},
        "k-b",
        p,
    )
    assert b64(a) not in repr(ring) and b64(p) not in repr(ring)
    assert not (tmp_path / DEV_FILE).exists()  # configured keys write no local file


def test_each_bad_key_setting_is_refused_by_name_all_at_once_never_showing_a_key(
    tmp_path: Path,
) -> None:
    short = b64(os.urandom(16))
    with pytest.raises(KeyConfigError) as bad:
        load_keys(
            settings(
                tmp_path,
                payload_keys=SecretStr(
                    json.dumps({"k-a": short, "k b": b64(os.urandom(32)), "k-c": "%%%"})
                ),
                payload_key_id="k-z",
                pseudonym_key=SecretStr("c2hvcnQ="),
            ),
            loopback=True,
        )
    problems = bad.value.problems
    assert len(problems) == 4
    assert any(
        p.startswith("MAKEGOOD_PAYLOAD_KEYS: key id 'k b' must be 1-64 letters") for p in problems
    )
    assert any(
        p.startswith("MAKEGOOD_PAYLOAD_KEYS: key 'k-a': decodes to 16 bytes, exactly 32")
        for p in problems
    )
    assert any(p.startswith("MAKEGOOD_PAYLOAD_KEYS: key 'k-c': not base64") for p in problems)
    assert any(
        p.startswith("MAKEGOOD_PSEUDONYM_KEY: decodes to 5 bytes, at least 32") for p in problems
    )
    assert short not in str(bad.value)
    assert not (tmp_path / DEV_FILE).exists()

    cases = [
        ({"payload_keys": SecretStr("{not json")}, "MAKEGOOD_PAYLOAD_KEYS: not JSON"),
        (
            {"payload_keys": SecretStr("{}")},
            "MAKEGOOD_PAYLOAD_KEYS: expected a non-empty JSON object",
        ),
        (
            {
                "payload_keys": SecretStr(json.dumps({"k-a": b64(os.urandom(32))})),
                "payload_key_id": "k-b",
            },
            "MAKEGOOD_PAYLOAD_KEY_ID=k-b: no such key in MAKEGOOD_PAYLOAD_KEYS (it has: k-a)",
        ),
        (
            {
                "payload_keys": SecretStr(
                    json.dumps({"k-a": b64(os.urandom(32)), "k-b": b64(os.urandom(32))})
                )
            },
            "MAKEGOOD_PAYLOAD_KEYS holds 2 keys (k-a, k-b): set MAKEGOOD_PAYLOAD_KEY_ID",
        ),
        (
            {"payload_key_id": "k-a"},
            "MAKEGOOD_PAYLOAD_KEY_ID=k-a is set but MAKEGOOD_PAYLOAD_KEYS is not",
        ),
    ]
    for values, message in cases:
        with pytest.raises(KeyConfigError) as refused:
            load_keys(settings(tmp_path, **values), loopback=True)
        assert refused.value.problems[0].startswith(message), refused.value.problems


def test_a_server_elsewhere_needs_configured_keys(tmp_path: Path) -> None:
    with pytest.raises(KeyConfigError) as refused:
        load_keys(settings(tmp_path), loopback=False)
    assert [p.split(":")[0] for p in refused.value.problems] == [
        "MAKEGOOD_PAYLOAD_KEYS is not set",
        "MAKEGOOD_PSEUDONYM_KEY is not set",
    ]
    assert "required when Temporal is not on this machine" in refused.value.problems[0]
    assert not (tmp_path / DEV_FILE).exists()
    # Empty variables (a compose file's `${VAR:-}`) count as unset, not as a malformed key.
    blank = settings(tmp_path, payload_keys=SecretStr(""), payload_key_id="", pseudonym_key=None)
    with pytest.raises(KeyConfigError) as refused:
        load_keys(blank, loopback=False)
    assert refused.value.problems[0].startswith("MAKEGOOD_PAYLOAD_KEYS is not set")


def test_on_loopback_a_local_key_file_is_made_once_private_and_reused(tmp_path: Path) -> None:
    first = load_keys(settings(tmp_path), loopback=True)
    path = tmp_path / DEV_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert first.active is not None and first.active.startswith("local-")
    again = load_keys(settings(tmp_path), loopback=True)
    assert (again.payload_keys, again.active, again.pseudonym_key) == (
        first.payload_keys,
        first.active,
        first.pseudonym_key,
    )
    assert [p.name for p in tmp_path.iterdir()] == [DEV_FILE]  # no temporary file left
    # Reading an export without a server uses the file if it is there, and makes none.
    assert load_keys(settings(tmp_path), loopback=None).active == first.active
    empty = tmp_path / "elsewhere"
    assert load_keys(settings(empty), loopback=None).payload_keys == {}
    assert not empty.exists()

    path.chmod(0o644)
    with pytest.raises(KeyConfigError, match=r"readable by others \(mode 0644\).*chmod 600"):
        load_keys(settings(tmp_path), loopback=True)


def test_a_configured_pseudonym_key_wins_over_the_local_file(tmp_path: Path) -> None:
    p = os.urandom(32)
    ring = load_keys(settings(tmp_path, pseudonym_key=SecretStr(b64(p))), loopback=True)
    assert ring.pseudonym_key == p and ring.active is not None  # payload key from the file


def test_pseudonyms_are_keyed_and_lookups_search_the_legacy_form_too() -> None:
    one, two = Pseudonyms(b"1" * 32), Pseudonyms(b"2" * 32)
    assert one.customer("M-42") == one.customer("M-42") != two.customer("M-42")
    assert one.customer("M-42") != one.asset("M-42")
    assert one.customer("M-42") != legacy("customer", "M-42")
    assert "M-42" not in one.customer("M-42")
    query = related_query(RelatedQuery(case_id="c", customer_id="M-42", reference="R-1"), one)
    for form in (*one.forms("customer", "M-42"), *one.forms("asset", "R-1")):
        assert f'"{form}"' in query
    with pytest.raises(ValueError, match="at least 32 bytes"):
        Pseudonyms(b"short")


def test_the_dev_server_ui_is_pointed_at_the_apis_codec_endpoint(tmp_path: Path) -> None:
    connection = load_connection(None, {"TEMPORAL_CONFIG_FILE": os.devnull})
    args = dev_server_args(settings(tmp_path, api_port=8123), connection, codec=True)
    at = args.index("--ui-codec-endpoint")
    assert args[at + 1] == "http://localhost:8123/codec"
    assert "--ui-codec-endpoint" not in dev_server_args(settings(tmp_path), connection)


async def test_the_cli_refuses_to_start_without_keys_for_a_remote_server(tmp_path: Path) -> None:
    env = temporal_env("temporal.example.com:7233", MAKEGOOD_DATA_DIR=str(tmp_path))
    env = {
        k: v for k, v in env.items() if not k.startswith(("MAKEGOOD_PAYLOAD", "MAKEGOOD_PSEUDO"))
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / "starter.py"),
        "replay",  # an auditor's command: people's commands go through the API, with no keys
        env=env,
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await proc.communicate()
    assert proc.returncode == 2, err
    assert (
        "MAKEGOOD_PAYLOAD_KEYS is not set: it is required when Temporal is not on this machine"
        in (err.decode())
    )
    assert not (tmp_path / DEV_FILE).exists()
