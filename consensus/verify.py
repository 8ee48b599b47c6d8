"""Verification of a ledger export. Pure: JSON Lines in, one VerifyResult out.

The export is entry lines, seq 1, 2, … of one room, then checkpoint lines (docs/ledger-format.md).
Verification has two stages. `check_line` looks at one line on its own: well-formed, its hash,
its text commitment. The hash is always that of the entry's canonical encoding, so a verifier
written from the documentation alone computes the same hashes; the bytes as found in the file are
hashed only when they provably are that encoding (the exporter writes nothing else), which saves
re-encoding a million entries. The chain stage then takes the lines in order: seq, room, prev
links, the rules in force, erasures, Replayers (recomputed scores and outcomes, written beside the
scoring rules), and finally every checkpoint: signature, Merkle root, and RFC 6962 consistency
with the checkpoint before it. It streams: besides the Merkle tree's hashes (about 64 bytes per
entry) it keeps one byte per entry and the checkpoints. It stops at the first problem, reported
as one sentence naming the entry (or line, or checkpoint).

`export_line`, `checkpoint_line` and `encode_line` are what the exporter writes with, so the writer
and this reader cannot drift apart.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol, cast

from consensus.canonical import canonical_json
from consensus.checkpoint import (
    KEY_BYTES,
    Checkpoint,
    CheckpointError,
    SignedCheckpoint,
    decode_b64,
)
from consensus.ledger import (
    ENTRY_KEYS,
    ERASE,
    GENESIS_PREV,
    RULE_KINDS,
    LedgerEntry,
    LedgerFormatError,
    check_text,
    entry_problem,
    rules_hash,
)
from consensus.merkle import MerkleTree, verify_consistency

ENTRY_LINE_KEYS = frozenset({"entry", "hash", "text", "salt"})
CHECKPOINT_LINE_KEYS = frozenset({"checkpoint", "signature", "key"})
_SALT_HEX = re.compile(r"[0-9a-f]{32}")
_raw_decode = json.JSONDecoder().raw_decode
_SORTED_ENTRY_KEYS = tuple(sorted(ENTRY_KEYS))
_ENTRY_LINE_START = '{"entry":{'
_NO_TEXT = ',"salt":null,"text":null}'
_KINDS_WITH_EFFECTS = RULE_KINDS | {ERASE}  # what the chain stage must act on
# canonical.canonical_json's encoder settings, without its Python-level walk over the value:
# entry_problem has already refused everything the walk would (floats, huge integers, non-JSON
# types), and lone surrogates fail the UTF-8 encoding that follows. Parsed JSON has no cycles.
_encode_canonical = json.JSONEncoder(
    ensure_ascii=False,
    allow_nan=False,
    separators=(",", ":"),
    sort_keys=True,
    check_circular=False,
).encode


class Replayer(Protocol):
    """Recomputes something (scores, outcomes) from the entries, in order."""

    def apply(self, entry: LedgerEntry) -> str | None:
        """Take in the next entry; return a problem phrase if it contradicts the replay."""
        ...


class CheckedLine(NamedTuple):
    """What one export line shows on its own (a tuple: cheap to make, and picklable)."""

    kind: str  # "entry", "checkpoint", "blank" or "bad"
    problem: str | None  # what is wrong with it, as a phrase
    entry: dict[str, Any] | None
    digest: str  # hex hash of the entry's canonical bytes
    leaf: bytes  # its RFC 6962 leaf hash
    has_text: bool  # the line still carries the entry's text
    checkpoint: SignedCheckpoint | None


_BLANK = CheckedLine("blank", None, None, "", b"", False, None)


@dataclass(frozen=True)
class BadLine:
    """A line that could not be parsed, standing in for it so its number is reported."""

    reason: str


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    entries: int  # entries verified (all of them when ok)
    root: str  # hex Merkle root of the verified entries
    head: str  # hash of the last verified entry (64 zeros if none)
    checkpoints: int  # checkpoints verified
    problem: str | None  # the first problem, one sentence (no final period); None when ok


def export_line(entry: LedgerEntry, text: str | None, salt: bytes | None) -> dict[str, Any]:
    """The export line of an entry with its free text and salt (both None once erased)."""
    if (text is None) != (salt is None):
        raise LedgerFormatError("Give an entry's text and its salt together, or neither.")
    if text is not None and salt is not None:
        commitment = entry.text_sha256
        if commitment is None:
            raise LedgerFormatError(f"Entry {entry.seq} has no text commitment.")
        if not check_text(commitment, text, salt):
            raise LedgerFormatError(f"Entry {entry.seq}'s text does not match its commitment.")
    return {
        "entry": entry.to_json(),
        "hash": entry.hash(),
        "text": text,
        "salt": None if salt is None else salt.hex(),
    }


def checkpoint_line(signed: SignedCheckpoint) -> dict[str, Any]:
    return {
        "checkpoint": signed.checkpoint.to_json(),
        "signature": signed.signature,
        "key": signed.key,
    }


def read_checkpoint_line(obj: Mapping[str, Any]) -> SignedCheckpoint:
    if obj.keys() != CHECKPOINT_LINE_KEYS:
        raise CheckpointError("A checkpoint line has exactly the keys checkpoint, signature, key.")
    return SignedCheckpoint(Checkpoint.from_json(obj["checkpoint"]), obj["signature"], obj["key"])


def encode_line(obj: Mapping[str, Any]) -> bytes:
    """One export line: the canonical JSON of the line object and a newline."""
    return canonical_json(obj) + b"\n"


def parse_line(raw: bytes | str) -> object:
    """A parsed export line, or BadLine saying why it isn't JSON."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        # json.loads minus its whitespace regexes, which cost a fifth of the parse.
        start = len(text) - len(text.lstrip()) if text[:1].isspace() else 0
        obj, end = _raw_decode(text, start)
        extra = text[end:].lstrip()
        if extra:
            return BadLine(
                f"it is not valid JSON (extra data at column {len(text) - len(extra) + 1})"
            )
        return obj
    except UnicodeDecodeError:
        return BadLine("it is not UTF-8")
    except json.JSONDecodeError as exc:
        return BadLine(f"it is not valid JSON ({exc.msg} at column {exc.colno})")
    except RecursionError:
        return BadLine("it is nested too deeply")


def _phrase(exc: Exception) -> str:
    text = str(exc).rstrip(".")
    return text[:1].lower() + text[1:]


def _bad(kind: str, problem: str) -> CheckedLine:
    return CheckedLine(kind, problem, None, "", b"", False, None)


def _text_problem(data: dict[str, Any], text: object, salt: object) -> str | None:
    commitment = data.get("text_sha256")
    if commitment is None:
        return "it has text but no text commitment"
    if type(text) is not str or type(salt) is not str or not _SALT_HEX.fullmatch(salt):
        return "text must be a string and salt 32 lowercase hex digits, or both must be null"
    if not check_text(commitment, text, bytes.fromhex(salt)):
        return "text does not match its commitment"
    return None


def _as_found_is_canonical(found: str, entry: dict[str, Any]) -> bool:
    """Whether `found`, the text `entry` was parsed from, is already its canonical encoding.

    True only if nothing canonical encoding would change is present: no backslash (so no escape;
    strict JSON has no raw control characters), no whitespace, no `-0`, no array, exactly the two
    objects entry and data, each key once (every `":` ends a key when nothing is escaped, and a
    string starting with `:` only adds to the count) and in sorted order. Anything else is
    re-encoded, which gives the same hash, only slower.
    """
    data = entry["data"]
    return (
        # `in` scans, ten times faster than a regular expression here. JSON whitespace is these
        # four characters; "[" and "-0" inside strings are harmless, merely sent the slow way.
        "\\" not in found
        and " " not in found
        and "\n" not in found
        and "\r" not in found
        and "\t" not in found
        and "[" not in found
        and "-0" not in found
        and found.count("{") == 2
        and found.count('":') == len(ENTRY_KEYS) + len(data)
        and tuple(entry) == _SORTED_ENTRY_KEYS
        and list(data) == sorted(data)
    )


def _check_entry(
    entry: object, claimed: object, text: object, salt: object, found: str | None
) -> CheckedLine:
    problem = entry_problem(entry)
    if problem:
        return _bad("entry", problem)
    entry = cast(dict[str, Any], entry)
    canonical = found if found and _as_found_is_canonical(found, entry) else None
    try:
        encoded = (canonical or _encode_canonical(entry)).encode("utf-8")
    except UnicodeEncodeError:
        return _bad("entry", "it contains text that is not valid Unicode")
    digest = hashlib.sha256(encoded).hexdigest()
    if claimed != digest:
        return _bad("entry", "hash does not match its contents")
    has_text = text is not None or salt is not None
    if has_text:
        problem = _text_problem(entry["data"], text, salt)
        if problem:
            return _bad("entry", problem)
    leaf = hashlib.sha256(b"\x00" + encoded).digest()
    return CheckedLine("entry", None, entry, digest, leaf, has_text, None)


def check_parsed(obj: object) -> CheckedLine:
    """Check one parsed export line (or the BadLine that stands for it) on its own."""
    if isinstance(obj, BadLine):
        return _bad("bad", obj.reason)
    if type(obj) is dict and "entry" in obj:
        if obj.keys() != ENTRY_LINE_KEYS:
            return _bad("entry", "its line must have exactly the keys entry, hash, text and salt")
        return _check_entry(obj["entry"], obj["hash"], obj["text"], obj["salt"], None)
    if type(obj) is dict and "checkpoint" in obj:
        try:
            signed = read_checkpoint_line(obj)
        except CheckpointError as exc:
            return _bad("bad", _phrase(exc))
        return CheckedLine("checkpoint", None, None, "", b"", False, signed)
    return _bad("bad", "it is neither an entry nor a checkpoint")


def _entry_line_as_written(line: str) -> CheckedLine | None:
    """Check an entry line laid out as the exporter writes it (keys entry, hash, salt, text in
    that order), parsing the entry on its own so the text it was parsed from is at hand; None
    if the line is laid out any other way, or isn't JSON: the general path then checks it."""
    if not line.startswith(_ENTRY_LINE_START):
        return None
    start = len(_ENTRY_LINE_START) - 1
    try:
        entry, end = _raw_decode(line, start)
        found = line[start:end]
        if not line.startswith(',"hash":', end):
            return None
        claimed, end = _raw_decode(line, end + 8)
        if line.startswith(_NO_TEXT, end) and not line[end + len(_NO_TEXT) :].strip():
            return _check_entry(entry, claimed, None, None, found)  # most lines end so
        if not line.startswith(',"salt":', end):
            return None
        salt, end = _raw_decode(line, end + 8)
        if not line.startswith(',"text":', end):
            return None
        text, end = _raw_decode(line, end + 8)
    except (json.JSONDecodeError, RecursionError):
        return None
    if line[end:].rstrip() != "}":
        return None
    return _check_entry(entry, claimed, text, salt, found)


def check_line(raw: bytes | str) -> CheckedLine:
    """Check one raw export line on its own; a blank line is skipped."""
    if raw.isspace() or not raw:
        return _BLANK
    try:
        line = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError:
        return _bad("bad", "it is not UTF-8")
    return _entry_line_as_written(line) or check_parsed(parse_line(line))


class _Problem(Exception):
    """The first problem found; its message is the sentence VerifyResult reports."""


@dataclass(frozen=True)
class _Claim:
    signed: SignedCheckpoint
    label: str


class _Chain:
    """The chain stage: lines in order, then the checkpoints against the whole."""

    def __init__(self, trusted_key: bytes | None, replayers: Sequence[Replayer]) -> None:
        self.trusted_key = trusted_key
        self.replayers = replayers
        self.tree = MerkleTree()
        self.has_text = bytearray()  # 1 where the export still carries the entry's text
        self.head = GENESIS_PREV
        self.room = ""
        self.key = b""
        self.rules: dict[str, Any] = {}
        self.rules_hash = ""
        self.claims: list[_Claim] = []
        self.verified_checkpoints = 0

    def feed(self, line_no: int, line: CheckedLine) -> None:
        if line.kind == "entry":
            n = self.tree.size + 1
            if self.claims:
                raise _Problem(f"line {line_no}: an entry follows the checkpoints")
            if line.problem or line.entry is None:
                raise _Problem(f"entry {n}: {line.problem}")
            self.entry(n, line, line.entry)
        elif line.kind == "checkpoint" and line.checkpoint is not None:
            self.claims.append(_Claim(line.checkpoint, f"the checkpoint on line {line_no}"))
        elif line.kind != "blank":
            raise _Problem(f"line {line_no}: {line.problem}")

    def entry(self, n: int, line: CheckedLine, entry: dict[str, Any]) -> None:
        if entry["seq"] != n:
            raise _Problem(f"entry {n}: its seq is {entry['seq']}, expected {n}")
        if n == 1:
            self.genesis(entry)
        elif entry["room"] != self.room:
            raise _Problem(f"entry {n}: it is for room {entry['room']}, not {self.room}")
        if entry["prev"] != self.head:
            raise _Problem(f"entry {n}: prev is not the hash of entry {n - 1}")
        if entry["rules"] != self.rules_hash:
            raise _Problem(f"entry {n}: rules is not the hash of the rules in force")
        if self.replayers or entry["kind"] in _KINDS_WITH_EFFECTS:
            self.effects(n, entry)
        self.has_text.append(line.has_text)
        self.tree.append(line.leaf)
        self.head = line.digest

    def genesis(self, entry: dict[str, Any]) -> None:
        self.room = entry["room"]
        self.key = decode_b64(entry["data"]["public_key"])
        if self.trusted_key is not None and self.key != self.trusted_key:
            raise _Problem("entry 1: its public key is not the key you trust")
        self.rules = dict(entry["data"]["rules"])
        self.rules_hash = entry["rules"]

    def effects(self, n: int, entry: dict[str, Any]) -> None:
        kind, data = entry["kind"], entry["data"]
        if kind in RULE_KINDS:
            self.rules[data["key"]] = data["value"]
            self.rules_hash = rules_hash(self.rules)
        elif kind == ERASE and self.has_text[data["target"] - 1]:
            raise _Problem(
                f"entry {n}: it erases entry {data['target']}, whose text is still in the export"
            )
        if self.replayers:
            replayed = LedgerEntry.from_json(entry)
            for replayer in self.replayers:
                problem = replayer.apply(replayed)
                if problem:
                    raise _Problem(f"entry {n}: {problem}")

    def finish(self) -> None:
        size = self.tree.size
        if size == 0:
            raise _Problem("the export has no entries")
        earlier: _Claim | None = None
        for claim in sorted(self.claims, key=lambda c: c.signed.checkpoint.size):
            self.check_claim(claim, size)
            self.check_root(claim, earlier)
            earlier = claim
            self.verified_checkpoints += 1

    def check_claim(self, claim: _Claim, size: int) -> None:
        cp, label = claim.signed.checkpoint, claim.label
        if cp.room != self.room:
            raise _Problem(f"{label} is for room {cp.room}, not {self.room}")
        if decode_b64(claim.signed.key) != self.key:
            raise _Problem(f"{label} is signed with a key other than the genesis entry's")
        if not claim.signed.verify():
            raise _Problem(f"{label} has a signature that does not verify")
        if cp.size > size:
            raise _Problem(f"{label} covers {cp.size} entries but the export has {size}")

    def check_root(self, claim: _Claim, earlier: _Claim | None) -> None:
        """The smallest checkpoint's root is recomputed; each later one must extend the one
        before it by an RFC 6962 consistency proof (built from the entries), which holds only
        if its root is the entries' root too."""
        cp = claim.signed.checkpoint
        if earlier is None:
            if self.tree.root(cp.size).hex() != cp.root:
                raise _Problem(f"{claim.label} does not match entries 1 to {cp.size}")
            return
        old = earlier.signed.checkpoint
        proof = self.tree.consistency_proof(old.size, cp.size)
        if not verify_consistency(
            old.size, cp.size, bytes.fromhex(old.root), bytes.fromhex(cp.root), proof
        ):
            raise _Problem(
                f"{claim.label} does not extend {earlier.label}: "
                f"its root is not that of entries 1 to {cp.size}"
            )

    def result(self, problem: str | None) -> VerifyResult:
        return VerifyResult(
            ok=problem is None,
            entries=self.tree.size,
            root=self.tree.root().hex(),
            head=self.head,
            checkpoints=self.verified_checkpoints,
            problem=problem,
        )


def _run(
    lines: Iterable[CheckedLine],
    key: str | None,
    checkpoints: Iterable[str],
    replayers: Sequence[Replayer],
) -> VerifyResult:
    try:
        trusted = None if key is None else decode_b64(key)
    except CheckpointError:
        trusted = b""
    chain = _Chain(trusted, replayers)
    try:
        if trusted is not None and len(trusted) != KEY_BYTES:
            raise _Problem("the trusted key is not an Ed25519 public key in unpadded base64")
        given: list[_Claim] = []
        for index, text in enumerate(checkpoints, 1):
            try:
                signed = SignedCheckpoint.parse(text)
            except CheckpointError as exc:
                raise _Problem(f"given checkpoint {index}: {_phrase(exc)}") from exc
            given.append(_Claim(signed, f"the given checkpoint {index}"))
        for line_no, line in enumerate(lines, 1):
            chain.feed(line_no, line)
        chain.claims.extend(given)
        chain.finish()
    except _Problem as problem:
        return chain.result(str(problem))
    return chain.result(None)


def verify(
    lines: Iterable[object],
    *,
    key: str | None = None,
    checkpoints: Iterable[str] = (),
    replayers: Sequence[Replayer] = (),
) -> VerifyResult:
    """Verify an export given as parsed JSON Lines (a BadLine for a line that didn't parse).

    `key`: the public key the user trusts (unpadded base64); `checkpoints`: checkpoints in text
    form, as copied from the room; `replayers`: recomputations that see every entry in order.
    """
    return _run(map(check_parsed, lines), key, checkpoints, replayers)


def verify_lines(
    lines: Iterable[bytes | str],
    *,
    key: str | None = None,
    checkpoints: Iterable[str] = (),
    replayers: Sequence[Replayer] = (),
) -> VerifyResult:
    """Verify an export given as raw lines (e.g. a file opened in binary). Blank lines are
    skipped; problems name line numbers as in the file."""
    return _run(map(check_line, lines), key, checkpoints, replayers)
