"""Canonical JSON, as Matrix defines it: sorted keys, no spaces, UTF-8, no NaN, integers only.

The same value must give the same bytes on every machine, because hashes and signatures are
computed over them. Floats are refused outright (the ledger keeps fractions as strings), and so
are integers outside the range every JSON reader represents exactly (±(2**53 - 1)).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from typing import Any

MAX_SAFE_INT = 2**53 - 1


def reusable(encoder: json.JSONEncoder) -> Callable[[Any], str]:
    """`encoder.encode` for trees of dicts, lists and scalars (no cycles), made faster.

    `JSONEncoder.encode` builds a new C encoder for every call, a visible cost for values as
    small as a ledger entry's data; this builds it once. Where the C encoder is missing, or
    takes other arguments than the ones below (it is private to the json module), it is
    `encoder.encode` itself.
    """
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None or encoder.indent is not None:
        return encoder.encode
    try:
        c_encode = make(
            None,  # no markers: the values encoded here are trees
            encoder.default,
            json.encoder.encode_basestring_ascii
            if encoder.ensure_ascii
            else json.encoder.encode_basestring,
            None,
            encoder.key_separator,
            encoder.item_separator,
            encoder.sort_keys,
            encoder.skipkeys,
            encoder.allow_nan,
        )
        c_encode({"probe": [1, "x", None, True]}, 0)
    except TypeError:
        return encoder.encode
    join = "".join

    def encode(value: Any) -> str:
        if isinstance(value, str):
            return encoder.encode(value)
        return join(c_encode(value, 0))

    return encode


_ENCODER = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, separators=(",", ":"), sort_keys=True
)
_encode_checked = reusable(_ENCODER)


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


def _plain(value: Any) -> bool:
    """Whether `value` is built of exact JSON types only, with keys that are strings and integers
    in range: the common case, checked without building the paths `_check` names problems by."""
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return True
    if kind is int:
        in_range: bool = -MAX_SAFE_INT <= value <= MAX_SAFE_INT
        return in_range
    if kind is dict:
        return all(type(key) is str and _plain(item) for key, item in value.items())
    if kind is list or kind is tuple:
        return all(_plain(item) for item in value)
    return False


def canonical_json_of_checked(value: Any) -> bytes:
    """Canonical JSON of a value already known to hold only exact JSON types, with string keys
    and integers in range (as `ledger.entry_problem` proves of an entry): only a lone surrogate
    can still be wrong, and encoding finds that."""
    try:
        return _encode_checked(value).encode("utf-8")
    except UnicodeEncodeError:
        _check(value, "$")  # raises, naming where the lone surrogate is
        raise


def canonical_text_of_checked(value: Any) -> str:
    """`canonical_json_of_checked` as text, not yet encoded: a lone surrogate is still in it,
    for the caller's encoding to find."""
    return _encode_checked(value)


def canonical_json(value: Any) -> bytes:
    """Encode `value` as canonical JSON bytes, refusing anything without a canonical form."""
    if not _plain(value):
        _check(value, "$")  # raises, naming where; or the value is fine after all (a Mapping)
    try:
        return _ENCODER.encode(value).encode("utf-8")
    except UnicodeEncodeError:
        _check(value, "$")  # a lone surrogate: raise naming where it is
        raise


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
