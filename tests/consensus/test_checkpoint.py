"""Signed checkpoints: payload, Ed25519 signatures, strict base64 and the copy/paste text form."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consensus.checkpoint import (
    Checkpoint,
    CheckpointError,
    SignedCheckpoint,
    decode_b64,
    encode_b64,
    public_key_b64,
    sign,
    verify_signature,
)

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
ROOT = "ab" * 32
CP = Checkpoint(room="!room:example.org", size=42, root=ROOT, ts=1_700_000_000_000)


def test_payload_is_canonical_json_of_the_four_keys() -> None:
    assert CP.payload() == (
        b'{"room":"!room:example.org","root":"' + ROOT.encode() + b'","size":42,'
        b'"ts":1700000000000}'
    )
    assert json.loads(CP.payload()) == CP.to_json()
    assert Checkpoint.from_json(CP.to_json()) == CP


def test_rfc_8032_test_vector_public_key() -> None:
    secret = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
    public = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
    assert decode_b64(public_key_b64(secret)) == public


def test_signature_verifies_only_for_the_same_checkpoint_and_key() -> None:
    signature = sign(CP, KEY)
    key = public_key_b64(KEY)
    assert len(decode_b64(signature)) == 64
    assert "=" not in signature and "=" not in key
    assert verify_signature(CP, signature, key)
    assert not verify_signature(CP, signature, public_key_b64(OTHER_KEY))
    for changed in (
        Checkpoint(CP.room + "x", CP.size, CP.root, CP.ts),
        Checkpoint(CP.room, CP.size + 1, CP.root, CP.ts),
        Checkpoint(CP.room, CP.size, "cd" * 32, CP.ts),
        Checkpoint(CP.room, CP.size, CP.root, CP.ts + 1),
    ):
        assert not verify_signature(changed, signature, key)


@pytest.mark.parametrize(
    ("signature", "key"),
    [
        ("not base64!", public_key_b64(KEY)),
        (sign(CP, KEY), "not base64!"),
        (sign(CP, KEY)[:-4], public_key_b64(KEY)),  # 61 bytes
        (sign(CP, KEY), encode_b64(b"\x01" * 31)),
        (encode_b64(b"\x00" * 64), public_key_b64(KEY)),
    ],
)
def test_malformed_signatures_and_keys_do_not_verify(signature: str, key: str) -> None:
    assert not verify_signature(CP, signature, key)


def test_signing_needs_a_32_byte_private_key() -> None:
    with pytest.raises(CheckpointError, match="32 raw bytes"):
        sign(CP, b"short")
    with pytest.raises(CheckpointError, match="32 raw bytes"):
        public_key_b64(b"\x00" * 33)


@given(st.binary(max_size=80))
def test_base64_round_trip_is_matrix_unpadded_base64(raw: bytes) -> None:
    text = encode_b64(raw)
    assert text == base64.b64encode(raw).decode().rstrip("=")
    assert decode_b64(text) == raw


@pytest.mark.parametrize(
    "text",
    [
        "QQ==",  # padded
        "QR",  # unused low bits set: another spelling of b"A"
        "Q",  # impossible length
        "QQ-_",  # URL-safe alphabet
        "Q Q",
        "QQé",
    ],
)
def test_base64_has_one_spelling(text: str) -> None:
    with pytest.raises(CheckpointError):
        decode_b64(text)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"room": "room:example.org"}, "room must be a room ID"),
        ({"room": "!"}, "room must be a room ID"),
        ({"room": 5}, "room must be a room ID"),
        ({"size": -1}, "size must be a non-negative integer"),
        ({"size": True}, "size must be a non-negative integer"),
        ({"size": 1.0}, "size must be a non-negative integer"),
        ({"size": 2**53}, "size must be a non-negative integer"),
        ({"ts": "1"}, "ts must be a non-negative integer"),
        ({"root": "AB" * 32}, "root must be 64 lowercase hex"),
        ({"root": "ab" * 31}, "root must be 64 lowercase hex"),
        ({"root": None}, "root must be 64 lowercase hex"),
    ],
)
def test_checkpoint_fields_are_validated(fields: dict[str, object], message: str) -> None:
    with pytest.raises(CheckpointError, match=message):
        Checkpoint(**{**CP.to_json(), **fields})


@pytest.mark.parametrize(
    "obj",
    [
        [],
        {"room": "!r:x", "size": 1, "root": ROOT},
        {"room": "!r:x", "size": 1, "root": ROOT, "ts": 1, "extra": 1},
    ],
)
def test_checkpoint_json_has_exactly_four_keys(obj: object) -> None:
    with pytest.raises(CheckpointError, match="exactly room, size, root and ts"):
        Checkpoint.from_json(obj)


SIGNED = SignedCheckpoint.create(CP, KEY)
TEXT = SIGNED.to_text()


def test_signed_checkpoint_verifies_and_refuses_malformed_parts() -> None:
    assert SIGNED.verify()
    assert SIGNED.key == public_key_b64(KEY)
    assert not SignedCheckpoint(CP, sign(CP, OTHER_KEY), SIGNED.key).verify()
    with pytest.raises(CheckpointError, match="signature must be 64 bytes"):
        SignedCheckpoint(CP, SIGNED.key, SIGNED.key)
    with pytest.raises(CheckpointError, match="key must be 32 bytes"):
        SignedCheckpoint(CP, SIGNED.signature, "not base64")
    with pytest.raises(CheckpointError, match="key must be 32 bytes"):
        SignedCheckpoint(CP, SIGNED.signature, 5)


def test_text_form_is_one_ascii_line_without_shell_specials() -> None:
    assert TEXT.isascii()
    assert "\n" not in TEXT
    assert "!" not in TEXT  # bash expands `!x` inside double quotes
    assert TEXT.startswith("commons-checkpoint v1 room=%21room:example.org size=42 root=")
    assert f" ts={CP.ts} key={SIGNED.key} sig={SIGNED.signature}" in TEXT
    assert SignedCheckpoint.parse(TEXT) == SIGNED


def wrap(text: str, width: int) -> str:
    return "\n".join(text[i : i + width] for i in range(0, len(text), width))


@pytest.mark.parametrize(
    "pasted",
    [
        "  " + TEXT.replace(" ", "   ") + "\n",
        "Checkpoint of today: " + TEXT,
        "`" + TEXT + "`",
        "“" + TEXT + "”",  # curly quotes, as chat clients paste them
        "'" + TEXT + "'",
        '" ' + TEXT + ' "',
        TEXT.replace(" ", "\u00a0"),  # no-break spaces
        TEXT.replace("sig=", "sig=\u200b").replace("root=", "root=\ufeff"),
        TEXT.replace("room=%21", "room=!"),
        wrap(TEXT, 40),  # a client wrapped the line, even inside values
        "commons-checkpoint v1 " + " ".join(reversed(TEXT.split(" ")[2:])),
    ],
)
def test_text_form_survives_copy_and_paste(pasted: str) -> None:
    assert SignedCheckpoint.parse(pasted) == SIGNED


@given(
    st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=40).map(
        lambda s: "!" + s
    ),
    st.integers(0, 2**53 - 1),
    st.integers(0, 2**53 - 1),
)
def test_text_form_round_trips_any_room(room: str, size: int, ts: int) -> None:
    cp = Checkpoint(room=room, size=size, root=ROOT, ts=ts)
    signed = SignedCheckpoint(cp, SIGNED.signature, SIGNED.key)
    text = signed.to_text()
    assert text.isascii()
    assert len(text.split()) == 8
    assert SignedCheckpoint.parse(text) == signed


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("room=%21r:x size=1", "starts with 'commons-checkpoint v1'"),
        ("commons-checkpoint v2 room=%21r:x", "Only 'commons-checkpoint v1'"),
        ("commons-checkpoint", "Only 'commons-checkpoint v1'"),
        (TEXT.replace("checkpoint v1", "checkpointv1"), "Only 'commons-checkpoint v1'"),
        (TEXT + " colour=blue", "no field 'colour'"),
        (TEXT + " size=3", "gives 'size' twice"),
        (TEXT.replace(" ts=", " tx="), "no field 'tx'"),
        (TEXT.split(" sig=")[0], "lacks 'sig='"),
        ("commons-checkpoint v1 stray " + TEXT[22:], "Unexpected 'stray'"),
        (TEXT.replace("size=42", "size=4x2"), "size is not valid"),
        (TEXT.replace("size=42", "size=٤٢"), "size is not valid"),  # Arabic-Indic digits
        (TEXT.replace(f"ts={CP.ts}", "ts="), "ts is not valid"),
        (TEXT.replace(ROOT, ROOT.upper()), "root is not valid"),
        (TEXT.replace("%21room", "%ff%21room"), "room is not valid"),
        (TEXT.replace("%21room", "room"), "room must be a room ID"),
        (TEXT.replace("sig=", "sig=AAAA"), "signature must be 64 bytes"),
    ],
)
def test_text_form_errors_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(CheckpointError, match=message):
        SignedCheckpoint.parse(text)
