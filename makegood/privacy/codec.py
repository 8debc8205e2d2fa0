"""The payload codec: every payload Temporal stores is AES-256-GCM ciphertext.

A payload's bytes (the whole serialized payload, its encoding metadata included) are encrypted
with the active key under a fresh 96-bit nonce; the result carries `encoding:
binary/encrypted` and the key's id, so a payload written before a rotation is decrypted with
the key it names. Payloads without that encoding (histories written before encryption, the
committed scenario histories) pass through unchanged.

One data converter, `data_converter(keys)`, is used by everything that reads or writes cases:
the worker, the API, the CLI (`makegood.connection.connect`), the Replayer and the audit
commands; `keys_of(client)` gives back the keys a client was made with.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload
from temporalio.api.history.v1 import History
from temporalio.client import Client, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import (
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
    PayloadCodec,
)

from makegood.privacy.keys import ACTIVE_VAR, KEYS_VAR, KeyRing

ENCODING: Final = b"binary/encrypted"
KEY_ID: Final = "encryption-key-id"
NONCE_BYTES: Final = 12


class PayloadKeyError(ValueError):
    """A payload that cannot be decrypted with the keys configured here, and why."""


class PayloadCipher(PayloadCodec):
    def __init__(self, keys: KeyRing) -> None:
        super().__init__()
        self.keys = keys
        self._aead = {key_id: AESGCM(key) for key_id, key in keys.payload_keys.items()}

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        key_id = self.keys.active
        if key_id is None:  # a ring that only reads exports: it never writes to a server
            return list(payloads)
        aead, aad = self._aead[key_id], _aad(key_id)
        out = []
        for payload in payloads:
            nonce = os.urandom(NONCE_BYTES)
            sealed = nonce + aead.encrypt(nonce, payload.SerializeToString(), aad)
            metadata = {"encoding": ENCODING, KEY_ID: key_id.encode()}
            out.append(Payload(metadata=metadata, data=sealed))
        return out

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.open(p) for p in payloads]

    def open(self, payload: Payload) -> Payload:
        """The payload as it was before encryption; unencrypted payloads as they are."""
        if payload.metadata.get("encoding") != ENCODING:
            return payload
        key_id = payload.metadata.get(KEY_ID, b"").decode(errors="replace")
        aead = self._aead.get(key_id)
        if aead is None:
            have = ", ".join(sorted(self._aead)) or "none"
            raise PayloadKeyError(
                f"payload encrypted with key id {key_id!r}, which is not configured here "
                f"({KEYS_VAR} has: {have}; keys from {self.keys.source}): add that key to "
                f"{KEYS_VAR} (keep old keys there after a rotation, with {ACTIVE_VAR} naming "
                "the new one)"
            )
        data = payload.data
        try:
            plain = aead.decrypt(data[:NONCE_BYTES], data[NONCE_BYTES:], _aad(key_id))
        except InvalidTag:
            raise PayloadKeyError(
                f"payload encrypted with key id {key_id!r} does not decrypt with the key "
                "configured under that id: the key was replaced, or the payload was altered"
            ) from None
        return Payload.FromString(plain)


def _aad(key_id: str) -> bytes:
    """Authenticated with the ciphertext: a payload cannot be relabelled with another key id."""
    return b"makegood-payload/1:" + key_id.encode()


def data_converter(keys: KeyRing) -> DataConverter:
    """The SDK's pydantic converter with this codec: the one converter of every process.

    Failures keep their message and stack trace in encoded attributes, which the codec
    encrypts: a provider's error ("invalid address ada@...") names people too.
    """
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=PayloadCipher(keys),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


def cipher_of(source: Client | DataConverter) -> PayloadCipher:
    """The codec a client (or converter) was made with; an error naming the fix if none."""
    converter = source.data_converter if isinstance(source, Client) else source
    codec = converter.payload_codec
    if not isinstance(codec, PayloadCipher):
        raise PayloadKeyError(
            "this Temporal client has no Makegood keys: connect with makegood.connection.connect "
            "(or pass makegood.privacy.codec.data_converter(keys) as its data_converter)"
        )
    return codec


def keys_of(source: Client | DataConverter) -> KeyRing:
    """The keys a client (or converter) was made with."""
    return cipher_of(source).keys


async def decode_history(history: WorkflowHistory, converter: DataConverter) -> WorkflowHistory:
    """A copy of the history with every payload decoded by the converter's codec.

    What the timeline and reconcile read; an export keeps the history as Temporal stored it.
    """
    codec = converter.payload_codec
    if codec is None:
        return history
    events = History(events=history.events)  # a copy: the caller's history is left as it is
    found = payloads_in(events)
    if found:
        for payload, decoded in zip(found, await codec.decode(found), strict=True):
            if decoded is not payload:
                payload.CopyFrom(decoded)
    return WorkflowHistory(history.workflow_id, list(events.events))


_PAYLOAD = Payload.DESCRIPTOR.full_name


def payloads_in(message: Message) -> list[Payload]:
    """Every Payload in a message tree (inputs, results, failures, memos, headers...)."""
    found: list[Payload] = []
    _collect(message, found)
    return found


def _repeated(fd: FieldDescriptor) -> bool:
    """`is_repeated` from protobuf 5.29 on (`label` is deprecated there); `label` before it,
    which the lowest temporalio we allow may bring (4.25)."""
    found = getattr(fd, "is_repeated", None)
    if found is None:
        return bool(getattr(fd, "label") == FieldDescriptor.LABEL_REPEATED)  # noqa: B009
    return bool(found)


def _collect(message: Message, found: list[Payload]) -> None:
    for fd, value in message.ListFields():
        kind = fd.message_type
        if fd.type != FieldDescriptor.TYPE_MESSAGE or kind is None:
            continue
        if kind.GetOptions().map_entry:
            entry_value = kind.fields_by_name["value"]
            if entry_value.type != FieldDescriptor.TYPE_MESSAGE:
                continue
            items = list(value.values())
        else:
            items = list(value) if _repeated(fd) else [value]
        for item in items:
            if item.DESCRIPTOR.full_name == _PAYLOAD:
                found.append(item)
            else:
                _collect(item, found)
