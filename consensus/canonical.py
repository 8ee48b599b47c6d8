"""Canonical JSON, as Matrix defines it: sorted keys, no spaces, UTF-8, no NaN, integers only.

The same value must give the same bytes on every machine, because hashes and signatures are
computed over them. Floats are refused outright (the ledger keeps fractions as strings), and so
are integers outside the range every JSON reader represents exactly (±(2**53 - 1)).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

MAX_SAFE_INT = 2**53 - 1

_ENCODER = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, separators=(",", ":"), sort_keys=True
)


class CanonicalJSONError(ValueError):
    """The value has no canonical JSON form (float, huge integer, non-string key, bad text)."""


def _check(value: Any, path: str) -> None:
    if value is None or isinstance(value, bool | str):
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise CanonicalJSONError(f"{path}: invalid Unicode (lone surrogate)") from exc
        return
    if isinstance(value, int):
        if not -MAX_SAFE_INT <= value <= MAX_SAFE_INT:
            raise CanonicalJSONError(f"{path}: integer out of range")
        return
    if isinstance(value, float):
        raise CanonicalJSONError(f"{path}: floats are not allowed; use an integer or a string")
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise CanonicalJSONError(f"{path}: object keys must be strings")
            _check(key, path)
            _check(item, f"{path}.{key}")
        return
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check(item, f"{path}[{index}]")
        return
    raise CanonicalJSONError(f"{path}: {type(value).__name__} is not a JSON value")


def canonical_json(value: Any) -> bytes:
    """Encode `value` as canonical JSON bytes, refusing anything without a canonical form."""
    _check(value, "$")
    return _ENCODER.encode(value).encode("utf-8")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
