"""Signed checkpoints: a room's ledger size and Merkle root at a moment, signed by the bot.

Pure: the private key and the time are passed in. The signed payload is the canonical JSON of
exactly {"room", "size", "root", "ts"}; Ed25519 keys and signatures travel in unpadded standard
base64, as Matrix writes them, and are read strictly (one spelling per value, so no bit of a
posted checkpoint can change without breaking it). The one-line text form is what the bot posts
in the room and what a member pastes into `verify --checkpoint`: ASCII, no characters a shell or
a chat client rewrites, and parsed tolerantly of the whitespace, wrapping and quoting that
copy/paste adds.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from consensus.canonical import MAX_SAFE_INT, canonical_json

TEXT_MARKER = "commons-checkpoint"
TEXT_VERSION = "v1"
CHECKPOINT_KEYS = ("room", "size", "root", "ts")
KEY_BYTES = 32
SIGNATURE_BYTES = 64

_HEX64 = re.compile(r"[0-9a-f]{64}")
_DIGITS = re.compile(r"[0-9]{1,16}")
_B64 = re.compile(r"[A-Za-z0-9+/]*")
_TEXT_FIELDS = ("room", "size", "root", "ts", "key", "sig")
# Chat clients and editors slip these into copied text; none can be part of a checkpoint.
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"))
_QUOTES = "`'\"“”‘’"  # noqa: RUF001 -- curly quotes are what chat clients paste


class CheckpointError(ValueError):
    """Not a valid checkpoint, key or signature; the message is one sentence."""


def encode_b64(raw: bytes) -> str:
    """Unpadded standard base64, as Matrix writes keys and signatures."""
    return base64.b64encode(raw).decode("ascii").rstrip("=")


def decode_b64(text: str) -> bytes:
    """Read unpadded standard base64, refusing every other spelling of the same bytes."""
    if len(text) % 4 == 1 or _B64.fullmatch(text) is None:
        raise CheckpointError("Not unpadded base64.")
    # With the alphabet and the length checked, the padded text always decodes.
    raw = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    if encode_b64(raw) != text:  # unused low bits set: another spelling of the same bytes
        raise CheckpointError("Not canonical unpadded base64.")
    return raw


@dataclass(frozen=True)
class Checkpoint:
    """The tree of a room's first `size` entries has `root` (hex), as of `ts` (UTC ms)."""

    room: str
    size: int
    root: str
    ts: int

    def __post_init__(self) -> None:
        if not isinstance(self.room, str) or not self.room.startswith("!") or len(self.room) < 2:
            raise CheckpointError("A checkpoint's room must be a room ID.")
        for name in ("size", "ts"):
            value = getattr(self, name)
            if type(value) is not int or not 0 <= value <= MAX_SAFE_INT:
                raise CheckpointError(f"A checkpoint's {name} must be a non-negative integer.")
        if not isinstance(self.root, str) or _HEX64.fullmatch(self.root) is None:
            raise CheckpointError("A checkpoint's root must be 64 lowercase hex digits.")

    def to_json(self) -> dict[str, Any]:
        return {"room": self.room, "size": self.size, "root": self.root, "ts": self.ts}

    @classmethod
    def from_json(cls, obj: object) -> Checkpoint:
        if not isinstance(obj, dict) or obj.keys() != set(CHECKPOINT_KEYS):
            raise CheckpointError(
                "A checkpoint must be an object with exactly room, size, root and ts."
            )
        return cls(**obj)

    def payload(self) -> bytes:
        """The signed bytes: canonical JSON of room, size, root and ts."""
        return canonical_json(self.to_json())


def _private_key(private_key_raw: bytes) -> Ed25519PrivateKey:
    if len(private_key_raw) != KEY_BYTES:
        raise CheckpointError(f"An Ed25519 private key is {KEY_BYTES} raw bytes.")
    return Ed25519PrivateKey.from_private_bytes(private_key_raw)


def public_key_b64(private_key_raw: bytes) -> str:
    """The public key of a raw 32-byte Ed25519 private key, in unpadded base64."""
    public = _private_key(private_key_raw).public_key()
    return encode_b64(public.public_bytes(Encoding.Raw, PublicFormat.Raw))


def sign(cp: Checkpoint, private_key_raw: bytes) -> str:
    """The Ed25519 signature of the checkpoint's payload, in unpadded base64."""
    return encode_b64(_private_key(private_key_raw).sign(cp.payload()))


def verify_signature(cp: Checkpoint, signature_b64: str, public_key_b64: str) -> bool:
    """Whether `signature_b64` is `public_key_b64`'s signature of the checkpoint's payload."""
    try:
        signature, key = decode_b64(signature_b64), decode_b64(public_key_b64)
    except CheckpointError:
        return False
    if len(signature) != SIGNATURE_BYTES or len(key) != KEY_BYTES:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(key).verify(signature, cp.payload())
    except InvalidSignature:
        return False
    return True


@dataclass(frozen=True)
class SignedCheckpoint:
    """A checkpoint with its signature and the public key that made it (both unpadded base64)."""

    checkpoint: Checkpoint
    signature: str
    key: str

    def __post_init__(self) -> None:
        for name, size in (("signature", SIGNATURE_BYTES), ("key", KEY_BYTES)):
            value = getattr(self, name)
            try:
                ok = isinstance(value, str) and len(decode_b64(value)) == size
            except CheckpointError:
                ok = False
            if not ok:
                raise CheckpointError(
                    f"A checkpoint's {name} must be {size} bytes in unpadded base64."
                )

    @classmethod
    def create(cls, cp: Checkpoint, private_key_raw: bytes) -> SignedCheckpoint:
        return cls(cp, sign(cp, private_key_raw), public_key_b64(private_key_raw))

    def verify(self) -> bool:
        """Whether the signature is valid for `key` (whether `key` is trusted is the caller's)."""
        return verify_signature(self.checkpoint, self.signature, self.key)

    def to_text(self) -> str:
        """The single ASCII line posted in the room (the room ID is percent-encoded, so `!`
        can't trigger a shell's history expansion)."""
        cp = self.checkpoint
        return (
            f"{TEXT_MARKER} {TEXT_VERSION} room={quote(cp.room, safe=':')} size={cp.size}"
            f" root={cp.root} ts={cp.ts} key={self.key} sig={self.signature}"
        )

    @classmethod
    def parse(cls, text: str) -> SignedCheckpoint:
        """Read the text form, as copied from the room (surrounding text, quotes, line breaks
        and invisible characters are tolerated); CheckpointError says what is wrong."""
        cleaned = text.translate(_INVISIBLE)
        start = cleaned.find(TEXT_MARKER)
        if start < 0:
            raise CheckpointError(f"A checkpoint starts with '{TEXT_MARKER} {TEXT_VERSION}'.")
        tokens = [t.strip(_QUOTES) for t in cleaned[start:].split()]
        if tokens[0] != TEXT_MARKER or len(tokens) < 2 or tokens[1] != TEXT_VERSION:
            raise CheckpointError(f"Only '{TEXT_MARKER} {TEXT_VERSION}' checkpoints are known.")
        fields = _text_fields(tokens[2:])
        for name, pattern in (("size", _DIGITS), ("ts", _DIGITS), ("root", _HEX64)):
            if pattern.fullmatch(fields[name]) is None:
                raise CheckpointError(f"The checkpoint's {name} is not valid.")
        try:
            room = unquote(fields["room"], errors="strict")
        except UnicodeDecodeError as exc:
            raise CheckpointError("The checkpoint's room is not valid.") from exc
        cp = Checkpoint(
            room=room,
            size=int(fields["size"]),
            root=fields["root"],
            ts=int(fields["ts"]),
        )
        return cls(cp, fields["sig"], fields["key"])


def _text_fields(tokens: list[str]) -> dict[str, str]:
    fields: dict[str, str] = {}
    last: str | None = None
    for token in tokens:
        if not token:
            continue
        name, equals, value = token.partition("=")
        if equals:
            if name not in _TEXT_FIELDS:
                raise CheckpointError(f"A checkpoint has no field '{name}'.")
            if name in fields:
                raise CheckpointError(f"The checkpoint gives '{name}' twice.")
            fields[name], last = value, name
        elif last is not None:
            # A client wrapped a long value: no value contains whitespace, so glue it back.
            fields[last] += token
        else:
            raise CheckpointError(f"Unexpected '{token}' in the checkpoint.")
    missing = [name for name in _TEXT_FIELDS if name not in fields]
    if missing:
        raise CheckpointError(f"The checkpoint lacks '{missing[0]}='.")
    return fields
