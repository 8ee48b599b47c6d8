"""Verification of a ledger export. Pure: JSON Lines in, one VerifyResult out.

The export is entry lines, seq 1, 2, … of one room, then checkpoint lines (docs/ledger-format.md).
Verification has two stages. `check_line` looks at one line on its own: well-formed, its hash,
its text commitment. The hash is always that of the entry's canonical encoding, so a verifier
written from the documentation alone computes the same hashes; the bytes as found in the file are
hashed only when they provably are that encoding (the exporter writes nothing else), which saves
re-encoding a million entries. Nearly every line the exporter writes is parsed, and proven to be
so, by one regular-expression match; any other spelling takes json's way. The chain stage then
takes the lines in order: seq, room, prev links, the rules in force, erasures, Replayers
(recomputed scores and outcomes, written beside the scoring rules), and finally every checkpoint:
signature, Merkle root, and RFC 6962 consistency with the checkpoint before it. It streams:
besides the Merkle tree's hashes (about 64 bytes per entry) it keeps one byte per entry and the
checkpoints. It stops at the first problem, reported as one sentence naming the entry (or line,
or checkpoint).

The first stage needs nothing from other lines, so `verify_bytes` can run it on blocks of lines
elsewhere, e.g. in worker processes through a `map` its caller gives (this module starts none),
while the chain stage, the one sequential part, takes their compact results in order. A block's
entries that follow one another come as one Run: their leaf hashes and Merkle subtrees, and the
fields the Replayers read (ReplayedEntry), so that the chain stage links only the first to the
entries before and leaves the rest of the work per entry to the blocks' checks.

`export_line`, `checkpoint_line` and `encode_line` are what the exporter writes with, so the writer
and this reader cannot drift apart.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol, TypeVar, cast

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
    GENESIS,
    GENESIS_PREV,
    KIND_FIELDS,
    KINDS,
    RULE_KINDS,
    LedgerEntry,
    LedgerFormatError,
    check_text,
    data_problem,
    entry_problem,
    rules_hash,
)
from consensus.merkle import (
    HASH_SIZE,
    InnerNodes,
    MerkleTree,
    inner_nodes,
    verify_consistency,
)

ENTRY_LINE_KEYS = frozenset({"entry", "hash", "text", "salt"})
CHECKPOINT_LINE_KEYS = frozenset({"checkpoint", "signature", "key"})
CHUNK_BYTES = 1 << 21
"""About how many bytes of whole lines `verify_bytes` checks at a time (some 4,000 entries)."""

_SALT_HEX = re.compile(r"[0-9a-f]{32}")
_raw_decode = json.JSONDecoder().raw_decode
_SORTED_ENTRY_KEYS = tuple(sorted(ENTRY_KEYS))
_SORTED_DATA_KEYS = {kind: tuple(sorted(fields)) for kind, fields in KIND_FIELDS.items()}
_ENTRY_LINE_START = '{"entry":{'
_NO_TEXT = ',"salt":null,"text":null}'
_KINDS_WITH_EFFECTS = RULE_KINDS | {ERASE}  # what the chain stage must act on
_KINDS_AFTER_GENESIS = KINDS - {GENESIS}
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

# An entry line whose entry can only be spelled as its canonical encoding, data's key order
# aside: no whitespace, the nine keys in order, strings with nothing canonical JSON escapes
# (no quote, backslash or control character), integers without sign or leading zero unless
# needed and no "-0", and data an object of such scalars. One C-level match both parses it and
# proves that, where json would build the objects and a second pass would look for spellings.
# It also proves what entry_problem checks before kind and data: room and actor IDs, seq and ts
# in range (up to 15 digits: a larger one goes the general way), an event ID or null, rules and
# prev 64 lowercase hex digits. The line's text may be any JSON string: it is not hashed with the
# entry.
_PLAIN = r'[^"\\\x00-\x1f]*+'
_SOME = r'[^"\\\x00-\x1f]++'
_HEX64 = r"[0-9a-f]{64}"
_INT = r"0|-?[1-9][0-9]{0,15}"
_SCALAR = rf'"{_PLAIN}"|{_INT}|null|true|false'
_CANONICAL_ENTRY_LINE = re.compile(
    r'\{"entry":(?P<entry>\{'
    rf'"actor":"(?P<actor>@[^":\\\x00-\x1f]*+:{_PLAIN})",'
    rf'"data":(?P<data>\{{(?:"{_PLAIN}":(?:{_SCALAR})(?:,"{_PLAIN}":(?:{_SCALAR}))*)?\}}),'
    rf'"event":(?:null|"(?P<event>{_SOME})"),'
    rf'"kind":"(?P<kind>{_PLAIN})",'
    rf'"prev":"(?P<prev>{_HEX64})",'
    rf'"room":"(?P<room>!{_SOME})",'
    rf'"rules":"(?P<rules>{_HEX64})",'
    r'"seq":(?P<seq>[1-9][0-9]{0,14}),'
    r'"ts":(?P<ts>0|[1-9][0-9]{0,14})\}),'
    rf'"hash":"(?P<hash>{_PLAIN})",'
    rf'"salt":(?:null|"(?P<salt>{_PLAIN})"),'
    rf'"text":(?:null|"(?P<text>{_PLAIN}(?:\\(?:["\\/bfnrt]|u[0-9a-fA-F]{{4}}){_PLAIN})*)")'
    r"\}\r?\n?"
)


class ReplayedEntry(NamedTuple):
    """An entry of a Run as the chain stage hands it to Replayers: its fields but event and prev,
    which no replay of scores or outcomes reads (the chain stage has checked them). Any other
    entry reaches them as the LedgerEntry itself, which has these fields too."""

    seq: int
    ts: int
    actor: str
    kind: str
    data: Mapping[str, Any]
    room: str
    rules: str


Replayed = LedgerEntry | ReplayedEntry  # what Replayers are given


class Replayer(Protocol):
    """Recomputes something (scores, outcomes) from the entries, in order."""

    def apply(self, entry: Replayed) -> str | None:
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
    canonical: bytes = b""  # the entry's canonical bytes (what digest and leaf are taken over)


_BLANK = CheckedLine("blank", None, None, "", b"", False, None)

# A problem-free entry, as the checks below find it: (entry, canonical, digest, leaf, has_text).
# The entry is a dict of its own (parsed here), in canonical key order. check_line makes it a
# CheckedLine; check_chunk gathers such entries into runs.
_Record = tuple[dict[str, Any], bytes, str, bytes, bool]


def _line(checked: CheckedLine | _Record) -> CheckedLine:
    if isinstance(checked, CheckedLine):
        return checked
    entry, canonical, digest, leaf, has_text = checked
    return CheckedLine("entry", None, entry, digest, leaf, has_text, None, canonical)


class Run(NamedTuple):
    """Problem-free entries on consecutive lines of a block that follow one another: each one's
    seq is the one before's plus one and its prev the one before's hash, all are for one room
    under one rules hash, and none is of a kind the chain stage acts on (genesis, rule changes,
    erasures). The chain stage then need only link the first to the entries before the run; it
    takes the run's leaves and text flags at once, and hands its entries to the Replayers as
    ReplayedEntries. A tuple of a few strings, lists and byte strings: quick to pickle across
    processes, where a dict or tuple for each whole entry would not be."""

    start: int  # where the run's first line starts in its block
    seq: int  # the first entry's seq and prev; the room and rules of every entry
    prev: str
    room: str
    rules: str
    head: str  # the hash of the last entry
    leaves: bytes  # the entries' RFC 6962 leaf hashes, one after the other
    inner: InnerNodes  # the Merkle tree's nodes over them, seq being their place in the log
    has_text: bytes  # 1 for each entry whose line still carries its text, else 0
    replay: list[tuple[int, str, str, dict[str, Any]]]  # each entry's ts, actor, kind and data

    @property
    def size(self) -> int:
        return len(self.has_text)

    def line(self, index: int, block: bytes) -> CheckedLine:
        """Entry `index` of the run as check_line finds it, checked again from `block` (the
        run's): only a problem with the run needs it."""
        lines = io.BytesIO(block)
        lines.seek(self.start)
        for _ in range(index):
            lines.readline()
        return check_line(lines.readline())


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
) -> CheckedLine | _Record:
    problem = entry_problem(entry)
    if problem:
        return _bad("entry", problem)
    entry = cast(dict[str, Any], entry)
    canonical = found if found and _as_found_is_canonical(found, entry) else None
    return _hash_entry(entry, canonical, claimed, text, salt)


def _hash_entry(
    entry: dict[str, Any],
    canonical: str | bytes | None,
    claimed: object,
    text: object,
    salt: object,
) -> CheckedLine | _Record:
    """The rest of an entry's checks once `entry_problem` passed it. `canonical`: its canonical
    encoding if the caller has it (text, or bytes already encoded), else None to encode it."""
    try:
        if isinstance(canonical, bytes):
            encoded = canonical
        else:
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
    if canonical is None:
        # Re-read from its encoding, as LedgerEntry does: key order canonical at every level,
        # and a copy of our own if the entry was the caller's object.
        entry = json.loads(encoded)
    leaf = hashlib.sha256(b"\x00" + encoded).digest()
    return entry, encoded, digest, leaf, has_text


def check_parsed(obj: object) -> CheckedLine:
    """Check one parsed export line (or the BadLine that stands for it) on its own."""
    return _line(_check_parsed(obj))


def _check_parsed(obj: object) -> CheckedLine | _Record:
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


def _entry_line_as_written(line: str) -> CheckedLine | _Record | None:
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


def _canonical_entry_line(raw: bytes | str, line: str) -> CheckedLine | _Record | None:
    """Check an entry line as `_CANONICAL_ENTRY_LINE` matches it (nearly every line the exporter
    writes), or None if it doesn't match: the other paths then check it."""
    match = _CANONICAL_ENTRY_LINE.fullmatch(line)
    if match is None:
        return None
    return _check_match(raw, match, _raw_decode(line, match.start("data"))[0])


def _check_match(
    raw: bytes | str, match: re.Match[str], data: dict[str, Any]
) -> CheckedLine | _Record:
    """`_canonical_entry_line` once the line matched, given its data as json reads it."""
    line = match.string
    # By number, skipping the two big groups only their spans are needed of.
    actor, event, kind, prev, room, rules, seq, ts, claimed, salt, text = match.group(
        2, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13
    )
    data_start, data_end = match.span("data")
    number = int(seq)
    entry = {
        "actor": actor,
        "data": data,
        "event": event,
        "kind": kind,
        "prev": prev,
        "room": room,
        "rules": rules,
        "seq": number,
        "ts": int(ts),
    }
    # What is left of entry_problem once the match passed: kind, the genesis rule and data.
    if kind in _KINDS_AFTER_GENESIS and number != 1:
        problem = data_problem(kind, data, number)
    else:
        problem = entry_problem(entry)
    if problem:
        return _bad("entry", problem)
    if text is not None and "\\" in text:
        text = _raw_decode(line, match.start("text") - 1)[0]
    # entry_problem saw exactly the kind's keys; spelled once each, in order, the match is the
    # canonical encoding. (No string in it holds a quote, so each '":' ends a key.)
    if tuple(data) != _SORTED_DATA_KEYS[kind] or line.count('":', data_start, data_end) != len(
        data
    ):
        return _hash_entry(entry, None, claimed, text, salt)
    start, end = match.span("entry")
    if isinstance(raw, bytes) and line.isascii():  # then the bytes are at the same offsets
        return _hash_entry(entry, raw[start:end], claimed, text, salt)
    return _hash_entry(entry, line[start:end], claimed, text, salt)


def check_line(raw: bytes | str) -> CheckedLine:
    """Check one raw export line on its own; a blank line is skipped."""
    return _line(_check_line(raw))


def _check_line(raw: bytes | str) -> CheckedLine | _Record:
    if raw.isspace() or not raw:
        return _BLANK
    try:
        line = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError:
        return _bad("bad", "it is not UTF-8")
    return (
        _canonical_entry_line(raw, line)
        or _entry_line_as_written(line)
        or _check_parsed(parse_line(line))
    )


_Chunk = list[CheckedLine | Run]
_In = TypeVar("_In")
_Out = TypeVar("_Out")
_ENTRY_AT = len('{"entry":')  # where an entry line as the exporter writes it has the entry
_KINDS_ALONE = _KINDS_WITH_EFFECTS | {GENESIS}  # kinds that are never part of a run


class ChunkMap(Protocol):
    """`map`, or anything that applies `fn` to each chunk and yields the results in order."""

    def __call__(self, fn: Callable[[_In], _Out], chunks: Iterable[_In], /) -> Iterable[_Out]: ...


def check_chunk(block: bytes) -> _Chunk:
    """`check_line` for each line of `block` (whole lines, split after each newline as a file
    is), made compact to cross a process boundary: entries that can be are gathered into Runs,
    any other line is its CheckedLine."""
    raws = list(io.BytesIO(block))
    matches = [_match(raw) for raw in raws]
    # One json call reads the data of every matching line: quicker than one call a line, and
    # each key comes out as one object, which pickle then sends once.
    data = iter(json.loads("[" + ",".join([m["data"] for m in matches if m]) + "]"))
    runs = _Runs()
    at = 0
    for raw, match in zip(raws, matches, strict=True):
        checked = _check_match(raw, match, next(data)) if match else _check_line(raw)
        if isinstance(checked, CheckedLine):
            runs.other(checked)
        elif checked[0]["kind"] in _KINDS_ALONE or not raw.startswith(checked[1], _ENTRY_AT):
            runs.other(_line(checked))  # (or not spelled canonically: its bytes are re-encoded)
        else:
            runs.add(checked, at)
        at += len(raw)
    return runs.done()


def _match(raw: bytes) -> re.Match[str] | None:
    """The one match of a line (see `_canonical_entry_line`), if it is UTF-8 and matches."""
    try:
        return _CANONICAL_ENTRY_LINE.fullmatch(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return None


class _Opening(NamedTuple):
    """A Run's first fields: what its first entry shows."""

    start: int
    seq: int
    prev: str
    room: str
    rules: str


class _Runs:
    """check_chunk's results: the lines that stand alone, and the runs the others make up."""

    def __init__(self) -> None:
        self.chunk: _Chunk = []
        # The run being gathered (None: none yet), its entries so far, the last one's seq and hash.
        self.opening: _Opening | None = None
        self.replay: list[tuple[int, str, str, dict[str, Any]]] = []
        self.leaves: list[bytes] = []
        self.has_text = bytearray()
        self.seq, self.head = 0, ""
        self.shared: dict[str, str] = {}

    def add(self, checked: _Record, at: int) -> None:
        """The next entry, problem-free, on the line that starts at `at` in the block."""
        entry, _, digest, leaf, has_text = checked
        opening = self.opening
        if not (
            opening
            and entry["seq"] == self.seq + 1
            and entry["prev"] == self.head
            and entry["room"] == opening.room
            and entry["rules"] == opening.rules
        ):
            self.end()
            self.opening = _Opening(at, entry["seq"], entry["prev"], entry["room"], entry["rules"])
        # One object for each string that repeats, which pickle then sends once per chunk: less
        # to send, and less to rebuild at the other end.
        kind = self.shared.setdefault(entry["kind"], entry["kind"])
        actor = self.shared.setdefault(entry["actor"], entry["actor"])
        self.replay.append((entry["ts"], actor, kind, entry["data"]))
        self.leaves.append(leaf)
        self.has_text.append(has_text)
        self.seq, self.head = entry["seq"], digest

    def other(self, line: CheckedLine) -> None:
        self.end()
        self.chunk.append(line)

    def end(self) -> None:
        if self.opening:
            leaves, has_text = b"".join(self.leaves), bytes(self.has_text)
            inner = inner_nodes(leaves, self.opening.seq - 1)
            self.chunk.append(Run(*self.opening, self.head, leaves, inner, has_text, self.replay))
            self.opening, self.replay, self.leaves, self.has_text = None, [], [], bytearray()

    def done(self) -> _Chunk:
        self.end()
        return self.chunk


def _whole_lines(pieces: Iterable[bytes]) -> Iterator[bytes]:
    """The bytes of `pieces` again, in blocks of about CHUNK_BYTES that end after a newline (all
    but perhaps the last)."""
    held: list[bytes | memoryview] = []
    size = 0
    for piece in pieces:
        size += len(piece)
        cut = piece.rfind(b"\n") + 1
        if size < CHUNK_BYTES or not cut:
            held.append(piece)
            continue
        # Up to the piece's last newline, copied once; the rest of it begins the next block.
        yield b"".join([*held, memoryview(piece)[:cut]])
        held, size = [piece[cut:]], len(piece) - cut
    last = b"".join(held)
    if last:
        yield last


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

    def feed_lines(self, lines: Iterable[CheckedLine]) -> None:
        for line_no, line in enumerate(lines, 1):
            self.feed(line_no, line)

    def feed_chunks(self, chunks: Iterable[_Chunk], blocks: deque[bytes]) -> None:
        """Chunks from check_chunk, each with its block: the first of `blocks` as it arrives."""
        line_no = 0
        for chunk in chunks:
            block = blocks.popleft()
            for item in chunk:
                if isinstance(item, Run):
                    self.feed_run(line_no, item, block)
                    line_no += item.size
                else:
                    line_no += 1
                    self.feed(line_no, item)

    def feed_run(self, line_no: int, run: Run, block: bytes) -> None:
        """`feed` for each entry of a run (on the lines after `line_no`): the link of its first
        entry to the entries before is the only one left to check, then the replays."""
        n = self.tree.size
        if not (
            run.seq == n + 1
            and run.prev == self.head
            and run.room == self.room
            and run.rules == self.rules_hash
            and not self.claims
        ):
            for index in range(run.size):  # feed names the first entry's problem
                self.feed(line_no + index + 1, run.line(index, block))
            return
        if self.replayers:
            replayers, room, rules = self.replayers, run.room, run.rules
            for index, (ts, actor, kind, data) in enumerate(run.replay):
                entry = ReplayedEntry(n + index + 1, ts, actor, kind, data, room, rules)
                for replayer in replayers:
                    problem = replayer.apply(entry)
                    if problem:
                        self.take(run, index, block)
                        raise _Problem(f"entry {n + index + 1}: {problem}")
        self.take(run, run.size, block)

    def take(self, run: Run, count: int, block: bytes) -> None:
        """Add the first `count` entries of a run that follows on to the tree and the head."""
        if count == run.size:
            self.tree.extend(run.leaves, run.inner)
            self.has_text += run.has_text
            self.head = run.head
        elif count:
            self.tree.extend(run.leaves[: HASH_SIZE * count])
            self.has_text += run.has_text[:count]
            self.head = run.line(count - 1, block).digest

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
            self.effects(n, line, entry)
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

    def effects(self, n: int, line: CheckedLine, entry: dict[str, Any]) -> None:
        kind, data = entry["kind"], entry["data"]
        if kind in RULE_KINDS:
            self.rules[data["key"]] = data["value"]
            self.rules_hash = rules_hash(self.rules)
        elif kind == ERASE and self.has_text[data["target"] - 1]:
            raise _Problem(
                f"entry {n}: it erases entry {data['target']}, whose text is still in the export"
            )
        if self.replayers:
            self.replay(n, LedgerEntry._checked(entry, line.canonical))

    def replay(self, n: int, entry: LedgerEntry) -> None:
        for replayer in self.replayers:
            problem = replayer.apply(entry)
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
    feed: Callable[[_Chain], None],
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
        feed(chain)
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
    checked = map(check_parsed, lines)
    return _run(lambda chain: chain.feed_lines(checked), key, checkpoints, replayers)


def verify_lines(
    lines: Iterable[bytes | str],
    *,
    key: str | None = None,
    checkpoints: Iterable[str] = (),
    replayers: Sequence[Replayer] = (),
) -> VerifyResult:
    """Verify an export given as raw lines (e.g. a file opened in binary). Blank lines are
    skipped; problems name line numbers as in the file."""
    checked = map(check_line, lines)
    return _run(lambda chain: chain.feed_lines(checked), key, checkpoints, replayers)


def verify_bytes(
    pieces: Iterable[bytes],
    *,
    key: str | None = None,
    checkpoints: Iterable[str] = (),
    replayers: Sequence[Replayer] = (),
    map_chunks: ChunkMap = map,
) -> VerifyResult:
    """`verify_lines` for an export given as its bytes, in pieces of any size (e.g. a file read
    a few MB at a time), checked in blocks of whole lines; the same result, line numbers
    included.

    `map_chunks`: a function like `map` (the same arguments, results in order) to check the
    blocks with `check_chunk`, e.g. in worker processes while this one runs the chain stage and
    the replayers. Give one that takes only a few blocks ahead (not `Executor.map`, which takes
    them all at once); reading then stops a few blocks after the first problem.
    """
    blocks: deque[bytes] = deque()  # handed out to map_chunks, their results not yet taken

    def hand_out() -> Iterator[bytes]:
        for block in _whole_lines(pieces):
            blocks.append(block)
            yield block

    chunks = map_chunks(check_chunk, hand_out())
    return _run(lambda chain: chain.feed_chunks(chunks, blocks), key, checkpoints, replayers)
