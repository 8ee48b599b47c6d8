"""Ledger entries: the nine keys, per-kind data, hashes, leaves and text commitments."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consensus import ledger
from consensus.canonical import canonical_json, sha256_hex
from consensus.checkpoint import public_key_b64
from consensus.ledger import (
    ENTRY_KEYS,
    GENESIS_PREV,
    KIND_FIELDS,
    KINDS,
    LedgerEntry,
    LedgerFormatError,
    check_text,
    commit_text,
    entry_problem,
    genesis_data,
    make_entry,
    rules_hash,
)

ROOM = "!room:example.org"
BOT = "@commons:example.org"
ALICE = "@alice:example.org"
RULES = {"timezone": "UTC", "kudos.daily_allowance": 10, "report.moderators_room": None}
RULES_HASH = rules_hash(RULES)
PUBLIC_KEY = public_key_b64(bytes(range(32)))
SALT = bytes(range(16))
COMMITMENT = commit_text("thanks for the soup", SALT)

# One valid `data` for every kind (the genesis one is checked separately).
SAMPLE_DATA: dict[str, dict[str, Any]] = {
    ledger.KUDOS: {
        "to": "@bob:example.org",
        "amount": 2,
        "via": "command",
        "ref": None,
        "text_sha256": COMMITMENT,
    },
    ledger.REVERSAL: {"target": 2, "cause": "redaction", "item": None},
    ledger.VOTE: {"item": 1, "choice": "block", "via": "command", "text_sha256": COMMITMENT},
    ledger.ITEM_OPEN: {
        "item": 1,
        "type": "proposal",
        "method": "consent",
        "options": 0,
        "quorum": 3,
        "closes": 1_700_172_800_000,
        "at": None,
        "need": None,
        "rule_key": "kudos.daily_allowance",
        "rule_value": 12,
        "target": None,
        "text_sha256": COMMITMENT,
    },
    ledger.ITEM_CLOSE: {
        "item": 1,
        "outcome": "passed",
        "winners": [],
        "tally": {"agree": 3, "block": [], "rounds": [{"1": 2}], "fraction": "3/3"},
    },
    ledger.COMMIT: {"item": 2, "state": "in", "min_others": 3, "via": "poll"},
    ledger.ATTEND: {"item": 2, "user": "@bob:example.org", "kudos": 1},
    ledger.RULE_CHANGE: {"key": "kudos.daily_allowance", "value": 12, "item": 1},
    ledger.MOD_OVERRIDE: {"key": "timezone", "value": "Europe/Berlin", "text_sha256": None},
    ledger.MOD_VOID: {"target": 2, "text_sha256": COMMITMENT},
    ledger.ERASE: {"target": 2, "text_sha256": None},
    ledger.REVIEW: {"date": "2024-05-01", "text_sha256": None},
    ledger.OPTOUT: {},
    ledger.OPTIN: {},
}


def genesis() -> LedgerEntry:
    return make_entry(
        prev=None,
        room=ROOM,
        ts=1_700_000_000_000,
        actor=BOT,
        kind=ledger.GENESIS,
        data=genesis_data(RULES, PUBLIC_KEY),
        event="$join",
        rules=RULES_HASH,
    )


def entry_after(prev: LedgerEntry, kind: str, data: dict[str, Any], **fields: Any) -> LedgerEntry:
    args: dict[str, Any] = {
        "room": ROOM,
        "ts": prev.ts + 1000,
        "actor": ALICE,
        "kind": kind,
        "data": data,
        "event": "$event",
        "rules": RULES_HASH,
    }
    return make_entry(prev=prev, **{**args, **fields})


def chain_with(kind: str) -> LedgerEntry:
    """An entry of `kind` at seq 3, so it may name entry 2."""
    first = genesis()
    second = entry_after(first, ledger.KUDOS, SAMPLE_DATA[ledger.KUDOS])
    return entry_after(second, kind, SAMPLE_DATA[kind])


def test_format_constants() -> None:
    assert GENESIS_PREV == "0" * 64
    assert ENTRY_KEYS == ("room", "seq", "ts", "actor", "kind", "data", "event", "rules", "prev")
    assert set(SAMPLE_DATA) | {ledger.GENESIS} == KINDS


def test_genesis_entry() -> None:
    entry = genesis()
    assert (entry.seq, entry.prev, entry.rules) == (1, GENESIS_PREV, RULES_HASH)
    assert entry.data == {"format": 1, "public_key": PUBLIC_KEY, "rules": RULES}
    assert RULES_HASH == sha256_hex(canonical_json(RULES))


def test_make_entry_links_each_entry_to_the_one_before() -> None:
    first = genesis()
    second = entry_after(first, ledger.KUDOS, SAMPLE_DATA[ledger.KUDOS])
    third = entry_after(second, ledger.OPTOUT, {})
    assert (second.seq, second.prev) == (2, first.hash())
    assert (third.seq, third.prev) == (3, second.hash())


def test_make_entry_refuses_another_room() -> None:
    with pytest.raises(LedgerFormatError, match=r"chain is !room:example\.org's"):
        entry_after(genesis(), ledger.OPTOUT, {}, room="!other:example.org")


@pytest.mark.parametrize("kind", sorted(SAMPLE_DATA))
def test_hash_and_leaf_are_of_the_canonical_bytes(kind: str) -> None:
    entry = chain_with(kind)
    canonical = canonical_json(entry.to_json())
    assert entry.canonical() == canonical
    assert entry.data_json() == canonical_json(entry.to_json()["data"]).decode()
    assert entry.hash() == hashlib.sha256(canonical).hexdigest()
    assert entry.leaf_hash() == hashlib.sha256(b"\x00" + canonical).digest()
    assert list(json.loads(canonical)) == sorted(ENTRY_KEYS)
    assert LedgerEntry.from_json(json.loads(canonical)) == entry
    assert hash(LedgerEntry.from_json(entry.to_json())) == hash(entry)
    assert entry.text_sha256 == SAMPLE_DATA[kind].get("text_sha256")


def test_data_is_a_private_read_only_copy() -> None:
    data = dict(SAMPLE_DATA[ledger.KUDOS])
    entry = entry_after(genesis(), ledger.KUDOS, data)
    before = entry.hash()
    data["amount"] = 3
    with pytest.raises(TypeError):
        entry.data["amount"] = 3
    exported = entry.to_json()
    exported["data"]["amount"] = 3
    assert entry.data["amount"] == 2
    assert entry.hash() == before
    assert dataclasses.replace(entry, ts=entry.ts).hash() == before


def valid_obj(kind: str = ledger.KUDOS) -> dict[str, Any]:
    return chain_with(kind).to_json()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"room": "room:example.org"}, "room must be a room ID"),
        ({"room": "!"}, "room must be a room ID"),
        ({"seq": "3"}, "seq must be a positive integer"),
        ({"seq": True}, "seq must be a positive integer"),
        ({"seq": 3.0}, "seq must be a positive integer"),
        ({"seq": 0}, "seq must be a positive integer"),
        ({"seq": 2**53}, "seq must be a positive integer"),
        ({"ts": -1}, "ts must be a non-negative integer (UTC milliseconds)"),
        ({"ts": 1.5}, "ts must be a non-negative integer (UTC milliseconds)"),
        ({"ts": 2**53}, "ts must be a non-negative integer (UTC milliseconds)"),
        ({"actor": "alice"}, "actor must be a Matrix user ID"),
        ({"actor": "@alice"}, "actor must be a Matrix user ID"),
        ({"kind": "gift"}, "kind must be one of the ledger's kinds"),
        ({"kind": ["kudos"]}, "kind must be one of the ledger's kinds"),
        ({"event": ""}, "event must be an event ID or null"),
        ({"event": 7}, "event must be an event ID or null"),
        ({"rules": "AB" * 32}, "rules must be 64 lowercase hex digits"),
        ({"rules": None}, "rules must be 64 lowercase hex digits"),
        ({"prev": "0" * 63}, "prev must be 64 lowercase hex digits"),
        ({"data": []}, "data must be a JSON object"),
        ({"kind": "genesis"}, "entry 1, and only entry 1, must be genesis"),
        ({"seq": 1}, "entry 1, and only entry 1, must be genesis"),
    ],
)
def test_malformed_entries_are_refused(change: dict[str, Any], message: str) -> None:
    obj = {**valid_obj(), **change}
    assert entry_problem(obj) == message
    with pytest.raises(LedgerFormatError, match=re.escape(message)):
        LedgerEntry.from_json(obj)


def test_make_entry_refuses_bad_data() -> None:
    with pytest.raises(LedgerFormatError, match=r"data\.amount must be a positive integer"):
        entry_after(genesis(), ledger.KUDOS, {**SAMPLE_DATA[ledger.KUDOS], "amount": 0})
    with pytest.raises(LedgerFormatError, match="kind must be one of the ledger's kinds"):
        entry_after(genesis(), "gift", {})


def test_entries_need_exactly_the_nine_keys() -> None:
    missing = valid_obj()
    del missing["event"]
    assert entry_problem(missing) == "the entry lacks the key 'event'"
    assert entry_problem({**valid_obj(), "extra": 1}) == "the entry has an unexpected key 'extra'"
    assert entry_problem({**valid_obj(), 5: 1}) == "the entry has an unexpected key 5"
    assert entry_problem(["not", "an", "object"]) == "an entry must be a JSON object"
    with pytest.raises(LedgerFormatError, match="lacks the key 'event'"):
        LedgerEntry.from_json(missing)


@pytest.mark.parametrize("kind", sorted(SAMPLE_DATA))
def test_data_needs_exactly_its_kinds_keys(kind: str) -> None:
    obj = valid_obj(kind)
    obj["data"]["unexpected"] = 1
    assert entry_problem(obj) == f"{kind} data has an unexpected key 'unexpected'"
    for key in KIND_FIELDS[kind]:
        obj = valid_obj(kind)
        del obj["data"][key]
        assert entry_problem(obj) == f"{kind} data lacks the key {key!r}"


@pytest.mark.parametrize(
    ("kind", "key"), [(kind, key) for kind, fields in KIND_FIELDS.items() for key in fields]
)
def test_every_data_field_is_type_checked(kind: str, key: str) -> None:
    obj = genesis().to_json() if kind == ledger.GENESIS else valid_obj(kind)
    obj["data"][key] = 1.5  # no field takes a float
    assert entry_problem(obj) == f"data.{key} must be {KIND_FIELDS[kind][key].expected}"


@pytest.mark.parametrize(
    ("kind", "key", "value", "ok"),
    [
        (ledger.KUDOS, "to", "bob", False),
        (ledger.KUDOS, "amount", 0, False),
        (ledger.KUDOS, "via", "reaction", True),
        (ledger.KUDOS, "via", "email", False),
        (ledger.KUDOS, "ref", "$target", True),
        (ledger.KUDOS, "ref", "", False),
        (ledger.KUDOS, "text_sha256", None, True),
        (ledger.KUDOS, "text_sha256", COMMITMENT.upper(), False),
        (ledger.VOTE, "choice", [2, 1, 3], True),
        (ledger.VOTE, "choice", [], True),
        (ledger.VOTE, "choice", "maybe", False),
        (ledger.VOTE, "choice", [1, "2"], False),
        (ledger.VOTE, "choice", [True], False),
        (ledger.ITEM_OPEN, "method", None, True),
        (ledger.ITEM_OPEN, "method", "ranked", True),
        (ledger.ITEM_OPEN, "method", "dictator", False),
        (ledger.ITEM_OPEN, "rule_value", None, True),
        (ledger.ITEM_OPEN, "rule_value", True, False),
        (ledger.ITEM_OPEN, "target", 2, True),
        (ledger.ITEM_OPEN, "target", 3, False),  # not earlier than itself
        (ledger.ITEM_OPEN, "need", 0, False),
        (ledger.ITEM_CLOSE, "tally", {"n": 2**53}, False),
        (ledger.ITEM_CLOSE, "tally", {"n": [None, True, "x", {"m": -1}]}, True),
        (ledger.ITEM_CLOSE, "tally", {"n": (1, 2)}, False),
        (ledger.ITEM_CLOSE, "tally", {5: 1}, False),
        (ledger.ITEM_CLOSE, "winners", [1, 2], True),
        (ledger.REVERSAL, "target", 1, True),
        (ledger.REVERSAL, "target", 3, False),
        (ledger.REVERSAL, "item", 4, True),
        (ledger.REVIEW, "date", "2024-5-1", False),
        (ledger.OPTOUT, None, None, True),
    ],
)
def test_data_field_values(kind: str, key: str | None, value: object, ok: bool) -> None:
    obj = valid_obj(kind)
    if key is not None:
        obj["data"][key] = value
    problem = entry_problem(obj)
    assert (problem is None) is ok, problem


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"format": 2}, "data.format must be 1"),
        ({"format": True}, "data.format must be 1"),
        ({"public_key": PUBLIC_KEY + "A"}, "data.public_key must be an Ed25519 public key"),
        ({"public_key": PUBLIC_KEY[:-2]}, "data.public_key must be an Ed25519 public key"),
        ({"public_key": 5}, "data.public_key must be an Ed25519 public key"),
        ({"rules": {"kudos.half_life": 1.5}}, "data.rules must be an object of rule values"),
        ({"rules": {"": 1}}, "data.rules must be an object of rule values"),
        ({"rules": {"timezone": "Europe/Berlin"}}, "the genesis entry's rules must be the hash"),
    ],
)
def test_genesis_data_is_checked(change: dict[str, Any], message: str) -> None:
    obj = genesis().to_json()
    obj["data"].update(change)
    assert entry_problem(obj).startswith(message)


def test_genesis_must_start_the_chain() -> None:
    obj = genesis().to_json()
    obj["prev"] = "1" * 64
    assert entry_problem(obj) == "the genesis entry's prev must be 64 zeros"


def test_text_is_checked_for_valid_unicode() -> None:
    data = {**SAMPLE_DATA[ledger.MOD_OVERRIDE], "value": "bad \ud800 text"}
    with pytest.raises(LedgerFormatError, match=r"\$\.data\.value: invalid Unicode"):
        entry_after(genesis(), ledger.MOD_OVERRIDE, data)
    with pytest.raises(LedgerFormatError, match=r"\$\.event: invalid Unicode"):
        entry_after(genesis(), ledger.OPTOUT, {}, event="$bad\udc80")


def test_text_commitments() -> None:
    text = "thanks for the soup 🍲"
    commitment = commit_text(text, SALT)
    assert commitment == hashlib.sha256(SALT + text.encode("utf-8")).hexdigest()
    assert check_text(commitment, text, SALT)
    assert not check_text(commitment, text + " ", SALT)
    assert not check_text(commitment, text, bytes(16))
    assert not check_text(commitment, text, SALT[:15])
    assert not check_text(commitment, "\ud800", SALT)


@pytest.mark.parametrize("salt", [b"", bytes(15), bytes(17)])
def test_salts_are_16_bytes(salt: bytes) -> None:
    with pytest.raises(LedgerFormatError, match="16 bytes"):
        commit_text("text", salt)


def test_text_commitment_refuses_invalid_unicode() -> None:
    with pytest.raises(LedgerFormatError, match="not valid Unicode"):
        commit_text("lone \udc00", SALT)


def test_genesis_data_refuses_bad_rules_or_key() -> None:
    with pytest.raises(LedgerFormatError, match=r"data\.rules"):
        genesis_data({"proposal.supermajority": 0.66}, PUBLIC_KEY)
    with pytest.raises(LedgerFormatError, match=r"data\.public_key"):
        genesis_data(RULES, "nope")


users = st.from_regex(r"@[a-z0-9._=-]{1,12}:[a-z0-9.-]{1,12}", fullmatch=True)


@given(
    users,
    users,
    st.integers(1, 100),
    st.integers(0, 2**53 - 1),
    st.sampled_from(["command", "plusplus", "reaction", "reply"]),
    st.none() | st.text(min_size=1, max_size=20),
    st.text(max_size=30),
)
def test_any_kudos_round_trips_through_json(
    actor: str, to: str, amount: int, ts: int, via: str, ref: str | None, reason: str
) -> None:
    commitment = commit_text(reason, SALT)
    data = {"to": to, "amount": amount, "via": via, "ref": ref, "text_sha256": commitment}
    entry = entry_after(genesis(), ledger.KUDOS, data, actor=actor, ts=ts)
    again = LedgerEntry.from_json(json.loads(json.dumps(entry.to_json())))
    assert again == entry
    assert again.hash() == entry.hash()
    assert again.canonical() == canonical_json(again.to_json())
    assert entry.canonical() == canonical_json(entry.to_json())
    assert entry.data_json() == canonical_json(dict(entry.data)).decode()
