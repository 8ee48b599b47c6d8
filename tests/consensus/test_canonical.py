"""Canonical JSON, and the reusable encoder that makes it (and outbox rows) without a new C
encoder per call: the same text as the json module's own encoder, for any tree of JSON values."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consensus.canonical import (
    CanonicalJSONError,
    canonical_json,
    canonical_json_of_checked,
    canonical_text_of_checked,
    reusable,
)

scalars = st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(max_size=12)
trees = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=20,
)

ENCODERS = [
    json.JSONEncoder(ensure_ascii=False),
    json.JSONEncoder(ensure_ascii=True, sort_keys=True),
    json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"), sort_keys=True),
]


@given(trees)
def test_reusable_encoders_write_what_json_writes(value: Any) -> None:
    for encoder in ENCODERS:
        assert reusable(encoder)(value) == encoder.encode(value)


@given(trees)
def test_checked_encodings_are_the_canonical_one(value: Any) -> None:
    expected = json.dumps(
        value, ensure_ascii=False, separators=(",", ":"), sort_keys=True
    ).encode()
    assert canonical_json(value) == expected
    assert canonical_json_of_checked(value) == expected
    assert canonical_text_of_checked(value).encode() == expected


def test_reusable_refuses_what_json_refuses() -> None:
    encode = reusable(ENCODERS[2])
    with pytest.raises(ValueError, match="not JSON compliant"):
        encode({"x": float("nan")})
    with pytest.raises(TypeError, match="not JSON serializable"):
        encode({"x": object()})


def test_canonical_json_names_what_has_no_canonical_form() -> None:
    with pytest.raises(CanonicalJSONError, match=r"\$\.a\[1\]: floats are not allowed"):
        canonical_json({"a": [1, 2.5]})
    with pytest.raises(CanonicalJSONError, match=r"\$\.b: invalid Unicode"):
        canonical_json({"b": "\ud800"})
    with pytest.raises(CanonicalJSONError, match="out of range"):
        canonical_json(2**53)
