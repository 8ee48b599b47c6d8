"""The bot's Ed25519 signing key: made once at first start, kept in the data folder, never logged.

Losing it does not endanger old checkpoints (they stay verifiable with the public key in each
room's genesis entry), but new checkpoints would be signed by a different key, so back it up.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

KEY_FILE = "signing.key"


class SigningKeyError(Exception):
    """The key file exists but can't be read as an Ed25519 key."""


def load_or_create(data_dir: Path) -> bytes:
    """The raw 32-byte private key, created (mode 0600) if the data folder has none."""
    path = data_dir / KEY_FILE
    if path.exists():
        try:
            raw = base64.b64decode(path.read_text().strip(), validate=True)
        except ValueError as exc:
            raise SigningKeyError(f"{path}: not a base64 Ed25519 key") from exc
        if len(raw) != 32:
            raise SigningKeyError(f"{path}: an Ed25519 key has 32 bytes, this one {len(raw)}")
        return raw
    data_dir.mkdir(parents=True, exist_ok=True)
    raw = Ed25519PrivateKey.generate().private_bytes(
        Encoding.Raw, PrivateFormat.Raw, NoEncryption()
    )
    # Written to a temporary name first, so a crash never leaves a half-written key behind.
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(base64.b64encode(raw).decode() + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    return raw
