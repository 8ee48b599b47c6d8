"""Ledger entries: the per-room, append-only, hash-chained record of every state change.

Pure: entries are built from values passed in; no clock, no randomness (salts come from the
caller). The format is fixed from a room's first entry forever, so this module refuses anything
outside it: an entry has exactly the nine ENTRY_KEYS, numbers are integers within ±(2**53 - 1),
text is valid Unicode, and each kind's `data` has exactly the keys listed in KIND_FIELDS. Free text
never enters `data`: only its salted commitment `text_sha256` does, so erasing the text leaves the
chain intact. docs/ledger-format.md is the contract; this module is its reference implementation.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from json.encoder import encode_basestring as _quote
from types import MappingProxyType
from typing import Any, NamedTuple

from consensus import merkle
from consensus.canonical import (
    MAX_SAFE_INT,
    CanonicalJSONError,
    canonical_json,
    canonical_json_of_checked,
    canonical_text_of_checked,
    sha256_hex,
)
from consensus.checkpoint import CheckpointError, decode_b64

GENESIS_PREV = "0" * 64
FORMAT_VERSION = 1
SALT_BYTES = 16
ENTRY_KEYS = ("room", "seq", "ts", "actor", "kind", "data", "event", "rules", "prev")

GENESIS = "genesis"
KUDOS = "kudos"
REVERSAL = "reversal"
VOTE = "vote"
ITEM_OPEN = "item.open"
ITEM_CLOSE = "item.close"
COMMIT = "commit"
ATTEND = "attend"
RULE_CHANGE = "rule.change"
MOD_OVERRIDE = "mod.override"
MOD_VOID = "mod.void"
ERASE = "erase"
REVIEW = "review"
OPTOUT = "optout"
OPTIN = "optin"

RULE_KINDS = frozenset({RULE_CHANGE, MOD_OVERRIDE})
"""Kinds whose `data.key` / `data.value` change the rules in force for the entries after them."""

PROPOSAL_ANSWERS = ("agree", "abstain", "disagree", "block")
PROPOSAL_METHODS = ("majority", "supermajority", "consent", "consensus")
POLL_METHODS = ("single", "approval", "ranked", "score")

_ENTRY_KEY_SET = frozenset(ENTRY_KEYS)
_hex64_match = re.compile(r"[0-9a-f]{64}").fullmatch
_date_match = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}").fullmatch

JSONScalar = str | int | bool | None


class LedgerFormatError(ValueError):
    """A value is not a valid ledger entry (or text commitment); the message is one sentence."""


# --- field checks ---------------------------------------------------------------------------
# Exact `type(...) is` tests on purpose: bool is a subclass of int, and JSON has no int subclasses.


def _is_int(v: object) -> bool:
    return type(v) is int and -MAX_SAFE_INT <= v <= MAX_SAFE_INT


def _is_nat(v: object) -> bool:
    return type(v) is int and 0 <= v <= MAX_SAFE_INT


def _is_pos(v: object) -> bool:
    return type(v) is int and 1 <= v <= MAX_SAFE_INT


def _is_text(v: object) -> bool:
    return type(v) is str and v != ""


def _is_user(v: object) -> bool:
    return type(v) is str and v.startswith("@") and ":" in v


def _is_room(v: object) -> bool:
    return type(v) is str and len(v) > 1 and v.startswith("!")


def _is_hex64(v: object) -> bool:
    return type(v) is str and _hex64_match(v) is not None


def _is_rule_value(v: object) -> bool:
    return v is None or type(v) is str or _is_int(v)


def _is_json(v: object) -> bool:
    """Any JSON value with a canonical form (no floats, integers in range, string keys)."""
    if v is None or type(v) in (str, bool) or _is_int(v):
        return True
    if type(v) is list:
        return all(_is_json(item) for item in v)
    if type(v) is dict:
        return all(type(k) is str and _is_json(item) for k, item in v.items())
    return False


def _is_int_list(v: object) -> bool:
    return type(v) is list and all(_is_int(item) for item in v)


def _is_rules(v: object) -> bool:
    return type(v) is dict and all(
        type(k) is str and k != "" and _is_rule_value(item) for k, item in v.items()
    )


def _is_public_key(v: object) -> bool:
    if type(v) is not str:
        return False
    try:
        return len(decode_b64(v)) == 32
    except CheckpointError:
        return False


class _Field(NamedTuple):
    check: Callable[[object], bool]
    expected: str


def _or_null(field: _Field) -> _Field:
    check = field.check
    return _Field(lambda v: v is None or check(v), f"{field.expected} or null")


def _one_of(*values: str) -> _Field:
    allowed = frozenset(values)
    return _Field(lambda v: type(v) is str and v in allowed, "one of " + ", ".join(values))


_NAT = _Field(_is_nat, "a non-negative integer")
_POS = _Field(_is_pos, "a positive integer")
_TEXT = _Field(_is_text, "a non-empty string")
_USER = _Field(_is_user, "a Matrix user ID")
_SEQ = _Field(_is_pos, "the seq of an earlier entry")
_TEXT_SHA256 = _or_null(_Field(_is_hex64, "64 lowercase hex digits"))
_RULE_VALUE = _Field(_is_rule_value, "a string, an integer or null")
_CHOICE = _Field(
    lambda v: (type(v) is str and v in PROPOSAL_ANSWERS) or _is_int_list(v),
    "one of " + ", ".join(PROPOSAL_ANSWERS) + " or a list of integers",
)
_VIA_VOTE = _one_of("command", "poll")

KIND_FIELDS: Mapping[str, Mapping[str, _Field]] = MappingProxyType(
    {
        GENESIS: {
            "format": _Field(lambda v: v == FORMAT_VERSION and _is_int(v), f"{FORMAT_VERSION}"),
            "public_key": _Field(_is_public_key, "an Ed25519 public key in unpadded base64"),
            "rules": _Field(_is_rules, "an object of rule values (strings, integers, null)"),
        },
        KUDOS: {
            "to": _USER,
            "amount": _POS,
            "via": _one_of("command", "plusplus", "reaction", "reply"),
            "ref": _or_null(_TEXT),
            "text_sha256": _TEXT_SHA256,
        },
        REVERSAL: {
            "target": _SEQ,
            "cause": _one_of("redaction", "appeal"),
            "item": _or_null(_POS),
        },
        VOTE: {"item": _POS, "choice": _CHOICE, "via": _VIA_VOTE, "text_sha256": _TEXT_SHA256},
        ITEM_OPEN: {
            "item": _POS,
            "type": _one_of("proposal", "poll", "action"),
            "method": _or_null(_one_of(*PROPOSAL_METHODS, *POLL_METHODS)),
            "options": _NAT,
            "quorum": _or_null(_NAT),
            "closes": _or_null(_NAT),
            "at": _or_null(_NAT),
            "need": _or_null(_POS),
            "rule_key": _or_null(_TEXT),
            "rule_value": _RULE_VALUE,
            "target": _or_null(_SEQ),
            "text_sha256": _TEXT_SHA256,
        },
        ITEM_CLOSE: {
            "item": _POS,
            "outcome": _one_of("passed", "failed", "decided", "go", "called_off", "withdrawn"),
            "winners": _Field(_is_int_list, "a list of integers"),
            "tally": _Field(lambda v: type(v) is dict and _is_json(v), "a JSON object"),
        },
        COMMIT: {
            "item": _POS,
            "state": _one_of("in", "out"),
            "min_others": _NAT,
            "via": _VIA_VOTE,
        },
        ATTEND: {"item": _POS, "user": _USER, "kudos": _NAT},
        RULE_CHANGE: {"key": _TEXT, "value": _RULE_VALUE, "item": _POS},
        MOD_OVERRIDE: {"key": _TEXT, "value": _RULE_VALUE, "text_sha256": _TEXT_SHA256},
        MOD_VOID: {"target": _SEQ, "text_sha256": _TEXT_SHA256},
        ERASE: {"target": _SEQ, "text_sha256": _TEXT_SHA256},
        REVIEW: {
            "date": _Field(
                lambda v: type(v) is str and _date_match(v) is not None, "a YYYY-MM-DD date"
            ),
            "text_sha256": _TEXT_SHA256,
        },
        OPTOUT: {},
        OPTIN: {},
    }
)
"""Every kind and the exact keys of its `data`, each with its check (see docs/ledger-format.md)."""

KINDS = frozenset(KIND_FIELDS)
_KIND_KEYS = {kind: frozenset(fields) for kind, fields in KIND_FIELDS.items()}
# (key, check, problem) triples, flattened once: entries are checked a million at a time.
_KIND_CHECKS = {
    kind: tuple((key, f.check, f"data.{key} must be {f.expected}") for key, f in fields.items())
    for kind, fields in KIND_FIELDS.items()
}


def _key_problem(what: str, obj: Mapping[Any, Any], expected: frozenset[str]) -> str:
    missing = sorted(expected - obj.keys())
    if missing:
        return f"{what} lacks the key {missing[0]!r}"
    return f"{what} has an unexpected key {sorted(map(repr, obj.keys() - expected))[0]}"


_SCALARS = frozenset({str, int, bool, type(None)})


def data_problem(kind: str, data: object, seq: int) -> str | None:
    """Why `data` is not the data of a `kind` entry at `seq`, as a phrase; None if it is."""
    if type(data) is not dict:
        return "data must be a JSON object"
    if data.keys() != _KIND_KEYS[kind]:
        return _key_problem(f"{kind} data", data, _KIND_KEYS[kind])
    for key, check, problem in _KIND_CHECKS[kind]:
        if not check(data[key]):
            return problem
    target = data.get("target")
    if target is not None and target >= seq:
        return "data.target must be the seq of an earlier entry"
    return None


def entry_problem(obj: object) -> str | None:
    """Why `obj` (parsed JSON) is not a well-formed entry, as a phrase; None if it is one.

    Covers keys, types, ranges and per-kind data, with exact type tests: an entry it passes holds
    nothing but str, int in range, bool, None, and lists and string-keyed dicts of those, so
    `canonical_json_of_checked` may encode it. Lone surrogates inside strings are found when the
    entry is encoded, not here: there they cost nothing extra.
    """
    if type(obj) is not dict:
        return "an entry must be a JSON object"
    if obj.keys() != _ENTRY_KEY_SET:
        return _key_problem("the entry", obj, _ENTRY_KEY_SET)
    seq, ts, kind, event = obj["seq"], obj["ts"], obj["kind"], obj["event"]
    # Written out rather than table-driven: this runs once per entry of a million-entry export.
    if not _is_room(obj["room"]):
        return "room must be a room ID"
    if type(seq) is not int or not 1 <= seq <= MAX_SAFE_INT:
        return "seq must be a positive integer"
    if type(ts) is not int or not 0 <= ts <= MAX_SAFE_INT:
        return "ts must be a non-negative integer (UTC milliseconds)"
    if not _is_user(obj["actor"]):
        return "actor must be a Matrix user ID"
    if type(kind) is not str or kind not in KINDS:
        return "kind must be one of the ledger's kinds"
    if event is not None and (type(event) is not str or not event):
        return "event must be an event ID or null"
    if not _is_hex64(obj["rules"]):
        return "rules must be 64 lowercase hex digits"
    if not _is_hex64(obj["prev"]):
        return "prev must be 64 lowercase hex digits"
    if (seq == 1) != (kind == GENESIS):
        return "entry 1, and only entry 1, must be genesis"
    problem = data_problem(kind, obj["data"], seq)
    if problem or kind != GENESIS:
        return problem
    if obj["prev"] != GENESIS_PREV:
        return "the genesis entry's prev must be 64 zeros"
    if obj["rules"] != rules_hash(obj["data"]["rules"]):
        return "the genesis entry's rules must be the hash of its data.rules"
    return None


def rules_hash(rules: Mapping[str, JSONScalar]) -> str:
    """Hex SHA-256 of the canonical JSON of the complete rules in force: an entry's `rules`."""
    return sha256_hex(canonical_json(dict(rules)))


@dataclass(frozen=True, init=False)
class LedgerEntry:
    """One ledger entry. Construction validates it; `data` is a read-only private copy."""

    room: str
    seq: int
    ts: int
    actor: str
    kind: str
    data: Mapping[str, Any]
    event: str | None
    rules: str
    prev: str

    def __init__(
        self,
        room: str,
        seq: int,
        ts: int,
        actor: str,
        kind: str,
        data: Mapping[str, Any],
        event: str | None,
        rules: str,
        prev: str,
    ) -> None:
        # Frozen: the fields go straight into __dict__ (one update, where the generated
        # __init__ would make nine guarded assignments), then they are checked.
        fields = self.__dict__  # the dataclass fields, nothing else yet
        fields.update(
            room=room,
            seq=seq,
            ts=ts,
            actor=actor,
            kind=kind,
            data=data,
            event=event,
            rules=rules,
            prev=prev,
        )
        given = fields["data"]
        if type(given) is not dict and isinstance(given, Mapping):
            fields = {**fields, "data": dict(given)}
        problem = entry_problem(fields)
        if problem:
            raise LedgerFormatError(f"Not a valid ledger entry: {problem}.")
        try:
            data_json, encoded = _encode_checked(fields)
        except UnicodeEncodeError:
            try:
                canonical_json_of_checked(fields)  # raises, naming where the lone surrogate is
            except CanonicalJSONError as exc:
                raise LedgerFormatError(f"Not a valid ledger entry: {exc}.") from exc
            raise
        # A copy nobody else holds, so the hash stays true, in canonical key order: a copy of
        # the data is deep enough when every value is a scalar; else re-read its JSON.
        data = fields["data"]
        if _SCALARS.issuperset(map(type, data.values())):
            data = {key: data[key] for key in sorted(data)}
        else:
            data = json.loads(data_json)
        # Kept beside the fields (not one of them: not compared, not shown), computed once.
        self.__dict__.update(data=MappingProxyType(data), _canonical=encoded, _data_json=data_json)

    def __hash__(self) -> int:
        return hash(self.canonical())

    def canonical(self) -> bytes:
        """The entry's canonical JSON: the bytes its hash and Merkle leaf are taken over."""
        encoded: bytes = self.__dict__["_canonical"]
        return encoded

    def to_json(self) -> dict[str, Any]:
        """The entry as a fresh JSON object (safe to modify)."""
        result: dict[str, Any] = json.loads(self.canonical())
        return result

    def hash(self) -> str:
        """Hex SHA-256 of the canonical bytes: the next entry's `prev`."""
        digest: str | None = self.__dict__.get("_hash")
        if digest is None:
            digest = self.__dict__["_hash"] = sha256_hex(self.canonical())
        return digest

    def data_json(self) -> str:
        """The canonical JSON of `data` (as text): the span of the canonical bytes it fills."""
        encoded: str | None = self.__dict__.get("_data_json")
        if encoded is None:
            encoded = self.__dict__["_data_json"] = canonical_json(dict(self.data)).decode()
        return encoded

    def leaf_hash(self) -> bytes:
        """The entry's RFC 6962 Merkle leaf: SHA-256(0x00 ‖ canonical bytes)."""
        return merkle.leaf_hash(self.canonical())

    @property
    def text_sha256(self) -> str | None:
        """The commitment to the entry's free text, if its kind has one and it has text."""
        value = self.data.get("text_sha256")
        return value if isinstance(value, str) else None

    @classmethod
    def from_json(cls, obj: object) -> LedgerEntry:
        """Read a parsed JSON entry, refusing missing or extra keys and wrong types."""
        if type(obj) is not dict or obj.keys() != _ENTRY_KEY_SET:
            raise LedgerFormatError(f"Not a valid ledger entry: {entry_problem(obj)}.")
        return cls(**obj)  # validated by __post_init__

    @classmethod
    def _checked(cls, fields: dict[str, Any], canonical: bytes) -> LedgerEntry:
        """An entry from a parsed JSON entry that `entry_problem` already passed and whose
        canonical encoding is `canonical`: the verifier's way, skipping the second validation
        and encoding that `from_json` would make a million times over. `fields` must be the
        caller's own, shared with nobody (its `data` is kept, not copied), and in canonical key
        order at every level, as parsed from `canonical`: then the entry is what `from_json`
        would make."""
        entry = object.__new__(cls)
        # Frozen: the attributes go straight into __dict__, as dataclass's own __init__ would.
        entry.__dict__.update(fields)
        entry.__dict__["data"] = MappingProxyType(fields["data"])
        entry.__dict__["_canonical"] = canonical
        return entry


def _encode_checked(fields: Mapping[str, Any]) -> tuple[str, bytes]:
    """The canonical JSON of an entry `entry_problem` passed, as (its data's JSON text, the
    whole entry's bytes): the nine keys are known, so they are written in their sorted order
    around the values, each encoded as the canonical encoder would. UnicodeEncodeError if a
    string holds a lone surrogate."""
    data_json = canonical_text_of_checked(fields["data"])
    event = fields["event"]
    # kind, prev and rules are checked to be plain ASCII words (a kind, hex digits) with
    # nothing to escape; the other strings are escaped.
    encoded = (
        f'{{"actor":{_quote(fields["actor"])},"data":{data_json},'
        f'"event":{"null" if event is None else _quote(event)},"kind":"{fields["kind"]}",'
        f'"prev":"{fields["prev"]}","room":{_quote(fields["room"])},'
        f'"rules":"{fields["rules"]}","seq":{fields["seq"]:d},"ts":{fields["ts"]:d}}}'
    ).encode()
    return data_json, encoded


def make_entry(
    *,
    prev: LedgerEntry | None,
    room: str,
    ts: int,
    actor: str,
    kind: str,
    data: Mapping[str, Any],
    event: str | None,
    rules: str,
) -> LedgerEntry:
    """The entry that follows `prev` (or the genesis entry when `prev` is None)."""
    if prev is None:
        seq, prev_hash = 1, GENESIS_PREV
    elif prev.room != room:
        raise LedgerFormatError(f"The entry is for room {room} but the chain is {prev.room}'s.")
    else:
        seq, prev_hash = prev.seq + 1, prev.hash()
    return LedgerEntry(
        room=room,
        seq=seq,
        ts=ts,
        actor=actor,
        kind=kind,
        data=data,
        event=event,
        rules=rules,
        prev=prev_hash,
    )


def genesis_data(rules: Mapping[str, JSONScalar], public_key_b64: str) -> dict[str, Any]:
    """The `data` of a room's genesis entry: starting rules, the bot's key, the format version."""
    data = {"format": FORMAT_VERSION, "public_key": public_key_b64, "rules": dict(rules)}
    problem = data_problem(GENESIS, data, 1)
    if problem:
        raise LedgerFormatError(f"Not valid genesis data: {problem}.")
    return data


def commit_text(text: str, salt: bytes) -> str:
    """Hex SHA-256(salt ‖ UTF-8 text): the `text_sha256` that stands for free text in `data`."""
    if len(salt) != SALT_BYTES:
        raise LedgerFormatError(f"A text salt must be {SALT_BYTES} bytes, not {len(salt)}.")
    try:
        encoded = text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise LedgerFormatError("The text is not valid Unicode (lone surrogate).") from exc
    return hashlib.sha256(salt + encoded).hexdigest()


def check_text(commitment: str, text: str, salt: bytes) -> bool:
    """Whether `text` with `salt` is what `commitment` was made from."""
    try:
        expected = commit_text(text, salt)
    except LedgerFormatError:
        return False
    return expected == commitment
