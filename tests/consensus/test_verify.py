"""Verifying an export: every check, the first problem as one sentence, that the fast paths
(parsing a canonical line in one match, hashing an entry as found) always agree with parsing and
re-encoding it, and that checking in blocks (as across processes) agrees with line by line."""

from __future__ import annotations

import copy
import io
import json
import pickle
import re
from collections.abc import Callable, Iterable, Iterator
from types import MappingProxyType
from typing import Any, TypeVar
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consensus import ledger, merkle
from consensus import verify as v
from consensus.canonical import CanonicalJSONError, canonical_json, sha256_hex
from consensus.checkpoint import Checkpoint, SignedCheckpoint, public_key_b64
from consensus.ledger import LedgerEntry, LedgerFormatError, commit_text, make_entry, rules_hash
from consensus.verify import (
    BadLine,
    check_line,
    check_parsed,
    checkpoint_line,
    encode_line,
    export_line,
    parse_line,
    read_checkpoint_line,
    verify,
    verify_bytes,
    verify_lines,
)

ROOM = "!room:example.org"
BOT = "@commons:example.org"
KEY = bytes(range(32))
PUB = public_key_b64(KEY)
OTHER_KEY = bytes(range(1, 33))
RULES = {"timezone": "UTC", "kudos.daily_allowance": 10}
NEW_RULES = {**RULES, "kudos.daily_allowance": 12}


def salt(n: int) -> bytes:
    return bytes([n]) * 16


def scenario() -> list[tuple[LedgerEntry, str | None, bytes | None]]:
    """Ten entries: texts, a rule change, an erasure, an operator override."""
    rows: list[tuple[LedgerEntry, str | None, bytes | None]] = []
    rules = rules_hash(RULES)

    def add(kind: str, data: dict[str, Any], text: str | None = None, actor: str = BOT) -> None:
        prev = rows[-1][0] if rows else None
        if text is not None:
            data = {**data, "text_sha256": commit_text(text, salt(len(rows)))}
        entry = make_entry(
            prev=prev,
            room=ROOM,
            ts=1_700_000_000_000 + 1000 * len(rows),
            actor=actor,
            kind=kind,
            data=data,
            event=None if prev is None else f"$e{len(rows)}",
            rules=rules,
        )
        rows.append((entry, text, None if text is None else salt(len(rows))))

    kudos = {"to": "@bob:example.org", "amount": 1, "via": "command", "ref": None}
    add(ledger.GENESIS, ledger.genesis_data(RULES, PUB))
    add(ledger.KUDOS, kudos, "for the soup", actor="@alice:example.org")  # 2, erased by 8
    add(ledger.KUDOS, {**kudos, "text_sha256": None}, actor="@alice:example.org")  # 3
    add(
        ledger.ITEM_OPEN,
        {
            "item": 1,
            "type": "proposal",
            "method": "supermajority",
            "options": 0,
            "quorum": 3,
            "closes": 1_700_100_000_000,
            "at": None,
            "need": None,
            "rule_key": "kudos.daily_allowance",
            "rule_value": 12,
            "target": None,
        },
        "More kudos\nBecause we are many.",
        actor="@alice:example.org",
    )  # 4
    add(ledger.VOTE, {"item": 1, "choice": "agree", "via": "poll"}, 'yes "please"')  # 5
    add(ledger.RULE_CHANGE, {"key": "kudos.daily_allowance", "value": 12, "item": 1})  # 6
    rules = rules_hash(NEW_RULES)
    add(ledger.KUDOS, {**kudos, "amount": 3, "text_sha256": None})  # 7
    add(ledger.ERASE, {"target": 2}, "posted by mistake \\o/ ✓")  # 8
    add(ledger.OPTOUT, {}, actor="@bob:example.org")  # 9
    add(ledger.REVIEW, {"date": "2024-05-01", "text_sha256": None})  # 10
    return rows


ROWS = scenario()
ENTRIES = [row[0] for row in ROWS]
LEAVES = [entry.leaf_hash() for entry in ENTRIES]


def checkpoint(size: int, *, key: bytes = KEY, room: str = ROOM, root: str | None = None) -> Any:
    cp = Checkpoint(room, size, root or merkle.root(LEAVES[:size]).hex(), 1_800_000_000_000 + size)
    return SignedCheckpoint.create(cp, key)


def objects() -> list[dict[str, Any]]:
    """The export as parsed JSON Lines: entries (entry 2's text erased), then 3 checkpoints."""
    lines = [
        export_line(entry, None, None) if entry.seq == 2 else export_line(entry, text, salt_)
        for entry, text, salt_ in ROWS
    ]
    return lines + [checkpoint_line(checkpoint(size)) for size in (3, 7, 10)]


def encode(objs: list[Any]) -> list[bytes]:
    """Lines as the exporter writes them; what it can't write (lone surrogates) as escapes."""
    lines = []
    for obj in objs:
        if not isinstance(obj, dict):
            lines.append(obj)
            continue
        try:
            lines.append(encode_line(obj))
        except CanonicalJSONError:
            lines.append(json.dumps(obj).encode() + b"\n")
    return lines


In, Out = TypeVar("In"), TypeVar("Out")


def through_pickle(value: Any) -> Any:
    return pickle.loads(pickle.dumps(value))  # noqa: S301  (our own objects, as a pool sends them)


def across_processes(fn: Callable[[In], Out], chunks: Iterable[In]) -> Iterator[Out]:
    """`map`, with the function, its arguments and its results pickled as a process pool does."""
    fn = through_pickle(fn)
    for chunk in chunks:
        yield through_pickle(fn(through_pickle(chunk)))


def pieces(export: bytes, size: int) -> list[bytes]:
    return [export[i : i + size] for i in range(0, len(export), size)]


def in_blocks(export: bytes, block: int = 1000, piece: int = 7, **kwargs: Any) -> v.VerifyResult:
    """verify_bytes over `export` read `piece` bytes at a time, in blocks of about `block`."""
    with mock.patch.object(v, "CHUNK_BYTES", block):
        return verify_bytes(pieces(export, piece), map_chunks=across_processes, **kwargs)


def both(objs: list[Any], **kwargs: Any) -> v.VerifyResult:
    """Verify parsed lines, the same lines encoded, and their bytes in blocks; all must agree."""
    parsed = verify([obj if isinstance(obj, dict) else parse_line(obj) for obj in objs], **kwargs)
    lines = encode(objs)
    raw = verify_lines(lines, **kwargs)
    assert raw == parsed
    assert all(line.endswith(b"\n") for line in lines)
    assert in_blocks(b"".join(lines), **kwargs) == raw
    assert in_blocks(b"".join(lines), block=1, piece=10_000, **kwargs) == raw  # a line a block
    return raw


def test_a_good_export_verifies() -> None:
    result = both(objects())
    assert result == v.VerifyResult(
        ok=True,
        entries=10,
        root=merkle.root(LEAVES).hex(),
        head=ENTRIES[-1].hash(),
        checkpoints=3,
        problem=None,
    )


def test_export_lines_are_canonical_json() -> None:
    lines = encode(objects())
    assert all(line.endswith(b"\n") and line.count(b"\n") == 1 for line in lines)
    assert all(canonical_json(json.loads(line)) + b"\n" == line for line in lines)
    assert json.loads(lines[1]) == {
        "entry": ENTRIES[1].to_json(),
        "hash": ENTRIES[1].hash(),
        "text": None,
        "salt": None,
    }
    assert json.loads(lines[3])["salt"] == salt(3).hex()


def test_trusted_key_and_given_checkpoints() -> None:
    given_texts = [checkpoint(size).to_text() for size in (1, 5, 10)]
    assert both(objects(), key=PUB, checkpoints=given_texts).checkpoints == 6
    result = both(objects(), key=public_key_b64(OTHER_KEY))
    assert result.problem == "entry 1: its public key is not the key you trust"
    assert result.entries == 0
    result = both(objects(), key="not a key")
    assert result.problem == "the trusted key is not an Ed25519 public key in unpadded base64"
    result = both(objects(), key=public_key_b64(KEY)[:-3])
    assert result.problem == "the trusted key is not an Ed25519 public key in unpadded base64"


def test_given_checkpoints_are_checked_like_the_exports() -> None:
    result = both(objects(), checkpoints=[checkpoint(4).to_text()[:-30]])
    assert result.problem == (
        "given checkpoint 1: a checkpoint's signature must be 64 bytes in unpadded base64"
    )
    result = both(objects(), checkpoints=["hello"])
    assert result.problem == "given checkpoint 1: a checkpoint starts with 'commons-checkpoint v1'"
    result = both(objects()[:5], checkpoints=[checkpoint(7).to_text()])
    assert result.problem == "the given checkpoint 1 covers 7 entries but the export has 5"
    forged = checkpoint(8, key=OTHER_KEY).to_text()
    assert both(objects(), checkpoints=[forged]).problem == (
        "the given checkpoint 1 is signed with a key other than the genesis entry's"
    )


def entry_line(objs: list[Any], seq: int) -> dict[str, Any]:
    line: dict[str, Any] = objs[seq - 1]
    return line


def rehash(line: dict[str, Any]) -> None:
    line["hash"] = sha256_hex(canonical_json(line["entry"]))


def relink(objs: list[Any], seq: int) -> None:
    """Rehash entry `seq` after a change, and make the entries after it point to it again."""
    for later in range(seq, len(ENTRIES) + 1):
        line = entry_line(objs, later)
        if later > seq:
            line["entry"]["prev"] = entry_line(objs, later - 1)["hash"]
        rehash(line)


def resign(objs: list[Any], index: int, size: int, **fields: Any) -> None:
    objs[index] = checkpoint_line(checkpoint(size, **fields))


def set_entry(seq: int, key: str, value: Any, *, relinked: bool = False) -> Callable[..., None]:
    def change(objs: list[Any]) -> None:
        entry_line(objs, seq)["entry"][key] = value
        if relinked:
            relink(objs, seq)

    return change


def set_line(seq: int, key: str, value: Any) -> Callable[..., None]:
    def change(objs: list[Any]) -> None:
        entry_line(objs, seq)[key] = value

    return change


def set_data(seq: int, key: str, value: Any) -> Callable[..., None]:
    def change(objs: list[Any]) -> None:
        entry_line(objs, seq)["entry"]["data"][key] = value

    return change


PROBLEMS: list[tuple[str, Callable[[list[Any]], None], str]] = [
    ("hash", set_line(3, "hash", "0" * 64), "entry 3: hash does not match its contents"),
    ("hash type", set_line(3, "hash", None), "entry 3: hash does not match its contents"),
    ("content", set_entry(3, "ts", 5), "entry 3: hash does not match its contents"),
    (
        "rewritten",
        lambda objs: (set_entry(3, "ts", 5)(objs), rehash(entry_line(objs, 3))),
        "entry 4: prev is not the hash of entry 3",
    ),
    ("dropped", lambda objs: objs.pop(2), "entry 3: its seq is 4, expected 3"),
    (
        "seq",
        lambda objs: (set_entry(3, "seq", 7)(objs), rehash(entry_line(objs, 3))),
        "entry 3: its seq is 7, expected 3",
    ),
    ("no genesis", lambda objs: objs.pop(0), "entry 1: its seq is 2, expected 1"),
    (
        "room",
        set_entry(3, "room", "!other:example.org", relinked=True),
        "entry 3: it is for room !other:example.org, not !room:example.org",
    ),
    (
        "rules",
        set_entry(3, "rules", "1" * 64, relinked=True),
        "entry 3: rules is not the hash of the rules in force",
    ),
    (
        "rules not changed",
        set_entry(7, "rules", rules_hash(RULES), relinked=True),
        "entry 7: rules is not the hash of the rules in force",
    ),
    ("text", set_line(4, "text", "Less kudos"), "entry 4: text does not match its commitment"),
    (
        "salt",
        set_line(4, "salt", "00" * 16),
        "entry 4: text does not match its commitment",
    ),
    (
        "salt missing",
        set_line(4, "salt", None),
        "entry 4: text must be a string and salt 32 lowercase hex digits, or both must be null",
    ),
    (
        "salt case",
        set_line(4, "salt", "AB" * 16),
        "entry 4: text must be a string and salt 32 lowercase hex digits, or both must be null",
    ),
    (
        "text number",
        set_line(4, "text", 4),
        "entry 4: text must be a string and salt 32 lowercase hex digits, or both must be null",
    ),
    (
        "text without commitment",
        lambda objs: entry_line(objs, 3).update(text="hi", salt="00" * 16),
        "entry 3: it has text but no text commitment",
    ),
    (
        "erased text kept",
        lambda objs: entry_line(objs, 2).update(text="for the soup", salt=salt(1).hex()),
        "entry 8: it erases entry 2, whose text is still in the export",
    ),
    (
        "line keys",
        set_line(3, "note", "hi"),
        "entry 3: its line must have exactly the keys entry, hash, text and salt",
    ),
    (
        "line keys before text",
        set_line(4, "tag", "hi"),
        "entry 4: its line must have exactly the keys entry, hash, text and salt",
    ),
    (
        "line keys after text",
        set_line(3, "zzz", "hi"),
        "entry 3: its line must have exactly the keys entry, hash, text and salt",
    ),
    (
        "unknown kind",
        set_entry(3, "kind", "gift", relinked=True),
        "entry 3: kind must be one of the ledger's kinds",
    ),
    ("data", set_data(3, "amount", 1.5), "entry 3: data.amount must be a positive integer"),
    (
        "surrogate",
        set_entry(3, "event", "$\ud800"),
        "entry 3: it contains text that is not valid Unicode",
    ),
    (
        "not an object",
        lambda objs: objs.insert(3, b"[1, 2]\n"),
        "line 4: it is neither an entry nor a checkpoint",
    ),
    (
        "not JSON",
        lambda objs: objs.insert(3, b"{nope\n"),
        "line 4: it is not valid JSON (Expecting property name enclosed in double quotes "
        "at column 2)",
    ),
    ("not UTF-8", lambda objs: objs.insert(3, b'{"a":"\xff"}\n'), "line 4: it is not UTF-8"),
    (
        "extra data",
        lambda objs: objs.insert(3, b"{} {}\n"),
        "line 4: it is not valid JSON (extra data at column 4)",
    ),
    (
        "entry after checkpoints",
        lambda objs: objs.append(copy.deepcopy(objs[2])),
        "line 14: an entry follows the checkpoints",
    ),
    (
        "checkpoint line keys",
        lambda objs: objs[11].update(note="hi"),
        "line 12: a checkpoint line has exactly the keys checkpoint, signature, key",
    ),
    (
        "checkpoint fields",
        lambda objs: objs[11]["checkpoint"].update(size=-1),
        "line 12: a checkpoint's size must be a non-negative integer",
    ),
    (
        "checkpoint signature",
        lambda objs: objs[11]["checkpoint"].update(ts=5),
        "the checkpoint on line 12 has a signature that does not verify",
    ),
    (
        "checkpoint room",
        lambda objs: resign(objs, 11, 7, room="!other:example.org"),
        "the checkpoint on line 12 is for room !other:example.org, not !room:example.org",
    ),
    (
        "checkpoint key",
        lambda objs: resign(objs, 11, 7, key=OTHER_KEY),
        "the checkpoint on line 12 is signed with a key other than the genesis entry's",
    ),
    (
        "checkpoint beyond",
        lambda objs: objs.append(
            checkpoint_line(SignedCheckpoint.create(Checkpoint(ROOM, 11, "ab" * 32, 1), KEY))
        ),
        "the checkpoint on line 14 covers 11 entries but the export has 10",
    ),
    (
        "first root",
        lambda objs: resign(objs, 10, 3, root="ab" * 32),
        "the checkpoint on line 11 does not match entries 1 to 3",
    ),
    (
        "later root",
        lambda objs: resign(objs, 11, 7, root="ab" * 32),
        "the checkpoint on line 12 does not extend the checkpoint on line 11: "
        "its root is not that of entries 1 to 7",
    ),
    ("no entries", lambda objs: objs.__delitem__(slice(0, 10)), "the export has no entries"),
    ("empty", lambda objs: objs.clear(), "the export has no entries"),
]


@pytest.mark.parametrize(
    ("change", "problem"), [(c, p) for _, c, p in PROBLEMS], ids=[i for i, _, _ in PROBLEMS]
)
def test_the_first_problem_is_named(change: Callable[[list[Any]], None], problem: str) -> None:
    objs = objects()
    change(objs)
    result = both(objs)
    assert not result.ok
    assert result.problem == problem


def test_the_result_covers_the_entries_before_the_problem() -> None:
    objs = objects()
    set_line(4, "text", "changed")(objs)
    result = both(objs)
    assert (result.entries, result.head) == (3, ENTRIES[2].hash())
    assert result.root == merkle.root(LEAVES[:3]).hex()


def test_blank_lines_are_skipped_but_counted() -> None:
    lines = encode(objects())
    lines[3:3] = [b"\n", b"   \r\n", b""]
    assert verify_lines(lines).ok
    lines.insert(6, b"[]\n")
    assert verify_lines(lines).problem == "line 7: it is neither an entry nor a checkpoint"


def test_lines_may_be_text() -> None:
    lines = [line.decode() for line in encode(objects())]
    assert verify_lines(lines).ok
    lines[2] = lines[2].replace('"$e2"', '"$\ud800"')  # a raw lone surrogate, as text can hold
    assert verify_lines(lines).problem == "entry 3: it contains text that is not valid Unicode"


def test_checkpoints_of_equal_size_must_agree() -> None:
    objs = objects()
    objs.append(checkpoint_line(checkpoint(7)))
    assert both(objs).checkpoints == 4
    objs[-1] = checkpoint_line(checkpoint(7, root="cd" * 32))
    assert both(objs).problem == (
        "the checkpoint on line 14 does not extend the checkpoint on line 12: "
        "its root is not that of entries 1 to 7"
    )


class Recorder:
    def __init__(self, objection_at: int | None = None) -> None:
        self.seen: list[int] = []
        self.objection_at = objection_at

    def apply(self, entry: v.Replayed) -> str | None:
        self.seen.append(entry.seq)
        if entry.seq == self.objection_at:
            return "the replayed score of @bob:example.org is 4, not 5"
        return None


def test_replayers_see_every_entry_in_order_and_may_object() -> None:
    first, second = Recorder(), Recorder()
    assert verify_lines(encode(objects()), replayers=[first, second]).ok
    assert first.seen == second.seen == list(range(1, 11))
    for objection_at in range(1, 11):
        results = []
        for run in (
            verify_lines,
            lambda lines, **kw: in_blocks(b"".join(lines), **kw),
            lambda lines, **kw: in_blocks(b"".join(lines), block=10**6, **kw),  # in runs
        ):
            objecting = Recorder(objection_at)
            results.append(run(encode(objects()), replayers=[objecting]))
            assert objecting.seen == list(range(1, objection_at + 1))
        result = results[0]
        assert result.problem == (
            f"entry {objection_at}: the replayed score of @bob:example.org is 4, not 5"
        )
        entries = objection_at - 1  # those before the objection, tree and head included
        assert (result.entries, result.root) == (entries, merkle.root(LEAVES[:entries]).hex())
        assert result.head == (ENTRIES[entries - 1].hash() if entries else ledger.GENESIS_PREV)
        assert results[1] == results[2] == result


def test_verification_streams_and_stops_at_the_first_problem() -> None:
    consumed: list[int] = []
    lines = encode(objects())
    lines[2] = lines[2].replace(b'"amount":1', b'"amount":2')

    def lazily() -> Any:
        for number, line in enumerate(lines, 1):
            consumed.append(number)
            yield line

    assert verify_lines(lazily()).problem == "entry 3: hash does not match its contents"
    assert consumed == [1, 2, 3]


def test_export_line_refuses_text_that_does_not_belong() -> None:
    entry, text, salt_ = ROWS[1]
    assert text is not None and salt_ is not None
    with pytest.raises(LedgerFormatError, match="together, or neither"):
        export_line(entry, text, None)
    with pytest.raises(LedgerFormatError, match="does not match its commitment"):
        export_line(entry, text + "!", salt_)
    with pytest.raises(LedgerFormatError, match="has no text commitment"):
        export_line(ENTRIES[2], "text", salt_)


def test_checkpoint_lines_round_trip() -> None:
    signed = checkpoint(4)
    line = checkpoint_line(signed)
    assert set(line) == {"checkpoint", "signature", "key"}
    assert read_checkpoint_line(json.loads(encode_line(line))) == signed


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b'  {"a": 1}  \n', {"a": 1}),
        (b'{"a":1}', {"a": 1}),
        ('{"a":"é"}', {"a": "é"}),
        (b"[1] 2", BadLine("it is not valid JSON (extra data at column 5)")),
        (
            b"{",
            BadLine(
                "it is not valid JSON (Expecting property name enclosed in double quotes "
                "at column 2)"
            ),
        ),
        (b"\xc3\x28", BadLine("it is not UTF-8")),
        (b"[" * 100_000, BadLine("it is nested too deeply")),
    ],
)
def test_parse_line(raw: bytes | str, expected: object) -> None:
    assert parse_line(raw) == expected


def test_check_parsed_reports_bad_lines() -> None:
    assert check_parsed(BadLine("it is not UTF-8")).problem == "it is not UTF-8"
    assert check_line(b"\xff\n").problem == "it is not UTF-8"
    assert check_line(b"  \n").kind == "blank"


# --- the fast path agrees with re-encoding -----------------------------------------------------

json_texts = st.text(alphabet=st.sampled_from('ab{}[]":,\\ -0é\n\t\x00\u2028😀'), max_size=8)


def spellings(obj: Any, data: st.DataObject) -> str:
    """`obj` as JSON, spelled in one of the ways JSON allows."""
    return json.dumps(
        obj,
        ensure_ascii=data.draw(st.booleans()),
        sort_keys=data.draw(st.booleans()),
        separators=data.draw(st.sampled_from([(",", ":"), (", ", ": "), (",", " :")])),
    )


@settings(max_examples=300)
@given(st.data())
def test_the_fast_path_agrees_with_re_encoding(data: st.DataObject) -> None:
    seq = data.draw(st.integers(1, 10))
    line = copy.deepcopy(objects()[seq - 1])
    entry = line["entry"]
    for key in data.draw(st.lists(st.sampled_from(["event", "actor", "room"]), max_size=2)):
        if entry[key] is not None:
            entry[key] = entry[key][:1] + data.draw(json_texts) + entry[key][1:]
    if data.draw(st.booleans()):
        entry["ts"] = data.draw(st.sampled_from([0, 2**53, 1.0, True]))
    if data.draw(st.booleans()):
        try:
            rehash(line)
        except CanonicalJSONError:
            pass  # not an entry any hash could be right for
    text = spellings(line, data)
    if data.draw(st.booleans()):  # a duplicate key, which json keeps the last of
        text = text.replace('"kind":', '"kind": "gift", "kind":', 1)
    if data.draw(st.booleans()):  # minus zero: the integer 0, spelled another way
        text = re.sub(r'("ts" ?: ?)0([,}])', r"\1-0\2", text)
    fast, general = check_line(text), check_parsed(json.loads(text))
    assert fast == general


@given(st.data())
def test_text_as_found_is_used_only_when_it_is_canonical(data: st.DataObject) -> None:
    seq = data.draw(st.integers(1, 10))
    entry = copy.deepcopy(objects()[seq - 1]["entry"])
    entry["event"] = "$" + data.draw(json_texts)
    if data.draw(st.booleans()):
        entry["data"] = dict(reversed(list(entry["data"].items())))
    found = spellings(entry, data)
    parsed = json.loads(found)
    if ledger.entry_problem(parsed) is None and v._as_found_is_canonical(found, parsed):
        assert found.encode() == canonical_json(parsed)


# --- any change to an exported byte is caught --------------------------------------------------

EXPORT = b"".join(encode(objects()))


@settings(max_examples=400)
@given(st.data())
def test_flipping_any_byte_of_the_export_fails_verification(data: st.DataObject) -> None:
    positions = [i for i, byte in enumerate(EXPORT) if byte != ord("\n")]
    at = data.draw(st.sampled_from(positions))
    new = data.draw(st.integers(0, 255).filter(lambda b: b != EXPORT[at]))
    changed = EXPORT[:at] + bytes([new]) + EXPORT[at + 1 :]
    result = verify_lines(io.BytesIO(changed))
    assert not result.ok
    assert in_blocks(changed) == result
    assert in_blocks(changed, block=10**6) == result  # one block: runs as long as they go


# --- the one-match path for canonical lines ----------------------------------------------------


def spell(value: Any, data: st.DataObject, odd: int | None) -> str:
    """`value` as JSON, spelled canonically but at place number `odd` (if that is one), where
    it is spelled another way JSON allows: keys out of order or twice, a space, an escape, -0."""
    places = iter(range(10**6))

    def here() -> bool:
        return next(places) == odd

    def spelled(value: Any) -> str:
        if isinstance(value, dict):
            items = sorted(value.items())
            if here() and len(items) > 1:
                items = data.draw(st.permutations(items).filter(lambda p: p != items))
            if items and here():  # a duplicate key, which json keeps the last of
                items.insert(0, (items[-1][0], data.draw(st.sampled_from([0, "x", None]))))
            colon = ": " if here() else ":"
            return "{" + ",".join(spelled(k) + colon + spelled(x) for k, x in items) + "}"
        if isinstance(value, list):
            return "[" + (", " if here() else ",").join(spelled(x) for x in value) + "]"
        if isinstance(value, str) and value and here():
            at = data.draw(st.integers(0, len(value) - 1))
            escaped = f"\\u{ord(value[at]):04x}" if ord(value[at]) < 0x10000 else value[at]
            before, after = (
                json.dumps(p, ensure_ascii=False) for p in (value[:at], value[at + 1 :])
            )
            return before[:-1] + escaped + after[1:]
        if value == 0 and type(value) is int and here():
            return "-0"
        return json.dumps(value, ensure_ascii=here())

    return spelled(value)


def resolved(chunk: list[Any], block: bytes) -> list[v.CheckedLine]:
    """check_chunk's results as CheckedLines, after checking that each run holds what its lines
    do (as check_line finds them again from the block)."""
    lines: list[v.CheckedLine] = []
    for item in chunk:
        if not isinstance(item, v.Run):
            lines.append(item)
            continue
        run = [item.line(index, block) for index in range(item.size)]
        entries = [line.entry for line in run]
        assert all(line.kind == "entry" and line.problem is None for line in run)
        assert (item.seq, item.prev) == (entries[0]["seq"], entries[0]["prev"])
        assert {(e["room"], e["rules"]) for e in entries} == {(item.room, item.rules)}
        assert item.head == run[-1].digest
        assert item.leaves == b"".join(line.leaf for line in run)
        assert item.has_text == bytes(line.has_text for line in run)
        assert item.replay == [(e["ts"], e["actor"], e["kind"], e["data"]) for e in entries]
        assert item.inner == merkle.inner_nodes(item.leaves, item.seq - 1)
        lines += run
    return lines


@settings(max_examples=500)
@given(st.data())
def test_every_path_agrees_with_parsing_and_re_encoding(data: st.DataObject) -> None:
    seq = data.draw(st.integers(1, 10))
    line = copy.deepcopy(objects()[seq - 1])
    entry = line["entry"]
    for key in data.draw(st.lists(st.sampled_from(["event", "actor", "room"]), max_size=2)):
        if entry[key] is not None:
            entry[key] = entry[key][:1] + data.draw(json_texts) + entry[key][1:]
    if data.draw(st.integers(0, 3)) == 0:
        entry["ts"] = data.draw(st.sampled_from([0, 2**53, 10**16, 1.0, True, "1", -1]))
    if data.draw(st.integers(0, 3)) == 0:
        entry["data"] = {**entry["data"], **data.draw(st.sampled_from([{"x": 1}, {"item": []}]))}
    if data.draw(st.booleans()):
        try:
            rehash(line)
        except CanonicalJSONError:
            pass  # not an entry any hash could be right for
    text = spell(line, data, data.draw(st.none() | st.integers(0, 80)))
    text += data.draw(st.sampled_from(["\n", "\r\n", "", " \n"]))
    general = check_parsed(parse_line(text))
    assert check_line(text) == general
    if general.problem is None:
        assert general.canonical == canonical_json(general.entry)
        assert general.digest == sha256_hex(general.canonical)
        assert general.leaf == merkle.leaf_hash(general.canonical)
    try:
        raw = text.encode("utf-8")
    except UnicodeEncodeError:
        return  # a lone surrogate: no file holds that
    assert check_line(raw) == general
    if b"\n" not in raw.rstrip(b"\n"):
        chunk = across_processes(v.check_chunk, [raw])
        assert resolved(next(chunk), raw) == [general]


def in_order(obj: Any, data_order: Callable[[list[str]], list[str]] = sorted) -> str:
    """The line `obj` spelled canonically, but for the order of its entry's data keys."""
    entry = obj["entry"]
    entry = {k: entry[k] for k in sorted(entry)}
    entry["data"] = {k: entry["data"][k] for k in data_order(list(entry["data"]))}
    line = {**{k: obj[k] for k in sorted(obj)}, "entry": entry}
    return json.dumps(line, ensure_ascii=False, separators=(",", ":"))


def first_data_key_twice(text: str) -> str:
    key = text.split('"data":{"', 1)[1].split('"', 1)[0] if '"data":{"' in text else None
    return text.replace('"data":{', f'"data":{{"{key}":0,', 1) if key else text


SPELLINGS: list[tuple[str, Callable[[str], str]]] = [
    ("as written", lambda text: text),
    ("data keys reversed", lambda text: in_order(json.loads(text), lambda keys: keys[::-1])),
    (
        "data keys rotated",
        lambda text: in_order(json.loads(text), lambda keys: keys[1:] + keys[:1]),
    ),
    ("a data key twice", first_data_key_twice),
    ("minus zero", lambda text: re.sub(r'":0([,}])', r'":-0\1', text, count=1)),
    ("an escaped character", lambda text: text.replace('"actor":"@', '"actor":"\\u0040', 1)),
    ("an escaped dot", lambda text: text.replace(":example.org", ":example\\u002eorg", 1)),
    ("a space", lambda text: text.replace('"kind":', '"kind": ', 1)),
    ("a float", lambda text: re.sub(r'"ts":(\d+)', r'"ts":\1.0', text, count=1)),
    ("an exponent", lambda text: re.sub(r'"seq":(\d+)', r'"seq":\1e0', text, count=1)),
    ("a long integer", lambda text: re.sub(r'"ts":(\d+)', r'"ts":99999\1', text, count=1)),
    ("a raw control character", lambda text: text.replace("example.org", "exa\tmple.org", 1)),
    ("text escaped", lambda text: text.replace('"text":"', '"text":"\\u0041', 1)),
    ("a line break", lambda text: text + "\r\n"),
]


@pytest.mark.parametrize("spelling", [s for _, s in SPELLINGS], ids=[i for i, _ in SPELLINGS])
@pytest.mark.parametrize("seq", range(1, 11))
def test_the_one_match_path_agrees_on_every_spelling(seq: int, spelling: Callable) -> None:
    """Every way to spell an exported entry line that the one match might wrongly take for the
    canonical one: the checks must come out as parsing the line and re-encoding would."""
    line = copy.deepcopy(objects()[seq - 1])
    if seq == 3:  # non-ASCII in the entry itself (its hash follows)
        line["entry"]["event"] = "$é3"
        rehash(line)
    text = spelling(encode_line(line).decode().rstrip("\n"))
    general = check_parsed(parse_line(text))
    assert check_line(text) == general
    assert check_line(text.encode()) == general
    assert resolved(next(across_processes(v.check_chunk, [text.encode()])), text.encode()) == [
        general
    ]


# Values at the edges of what the one match takes for well-formed (see _CANONICAL_ENTRY_LINE):
# each value is spelled canonically, and the entry rehashed.
EDGES: list[tuple[str, str, Any]] = [
    ("uppercase prev", "prev", "AB" * 32),
    ("short rules", "rules", "a" * 63),
    ("16-digit seq", "seq", 10**15),
    ("largest seq", "seq", 2**53 - 1),
    ("too large a seq", "seq", 2**53),
    ("16-digit ts", "ts", 10**15),
    ("negative ts", "ts", -1),
    ("actor without a server", "actor", "@alice"),
    ("actor not a user", "actor", "alice:example.org"),
    ("a bare room sigil", "room", "!"),
    ("room not a room", "room", "#room:example.org"),
    ("empty event", "event", ""),
    ("unknown kind", "kind", "gift"),
    ("seq 1 not genesis", "seq", 1),
]


@pytest.mark.parametrize(("key", "value"), [e[1:] for e in EDGES], ids=[e[0] for e in EDGES])
@pytest.mark.parametrize("seq", [3, 4, 9])
def test_the_one_match_path_agrees_at_the_edges_of_each_field(
    seq: int, key: str, value: Any
) -> None:
    line = copy.deepcopy(objects()[seq - 1])
    line["entry"][key] = value
    try:
        rehash(line)
    except CanonicalJSONError:
        pass  # not an entry any hash could be right for
    raw = json.dumps(line, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()
    general = check_parsed(parse_line(raw))
    assert check_line(raw) == general
    assert resolved(next(across_processes(v.check_chunk, [raw])), raw) == [general]


def test_exported_entry_lines_take_the_one_match_path() -> None:
    """All but the genesis entry (its data holds an object), texts with escapes included."""
    lines = [line.decode() for line in encode(objects()[:10])]
    matched = [bool(v._CANONICAL_ENTRY_LINE.fullmatch(line)) for line in lines]
    assert matched == [False] + [True] * 9


def shape(chunk: list[Any]) -> list[int | str]:
    return [item.size if isinstance(item, v.Run) else item.kind for item in chunk]


def test_a_chunk_gathers_entries_that_follow_one_another_into_runs() -> None:
    """Genesis, rule changes and erasures stand alone; so does a line spelled another way, and a
    run ends where the next entry doesn't follow on (the chain stage then names the problem)."""
    lines = encode(objects())
    assert (
        shape(v.check_chunk(b"".join(lines)))
        == ["entry", 4, "entry", 1, "entry", 2] + ["checkpoint"] * 3
    )
    lines[3] = lines[3].replace(b'"kind":', b'"kind": ')
    lines[4:4] = [b"\n"]
    assert shape(v.check_chunk(b"".join(lines))) == [
        *("entry", 2, "entry", "blank", 1, "entry", 1, "entry", 2),
        *["checkpoint"] * 3,
    ]
    objs = objects()
    set_entry(10, "seq", 11, relinked=True)(objs)
    set_entry(3, "prev", "0" * 64)(objs)
    rehash(objs[2])
    chunk = v.check_chunk(b"".join(encode(objs)))
    assert shape(chunk) == ["entry", 1, 1, 2, "entry", 1, "entry", 1, 1] + ["checkpoint"] * 3
    assert both(objs).problem == "entry 3: prev is not the hash of entry 2"


# --- blocks, chunks and processes ----------------------------------------------------------------


@given(
    st.lists(st.binary(max_size=30).map(lambda b: b.replace(b"\n", b"") + b"\n"), max_size=30),
    st.binary(max_size=10).map(lambda b: b.replace(b"\n", b"")),
    st.integers(1, 100),
    st.integers(1, 50),
)
def test_whole_lines_cuts_after_newlines(
    lines: list[bytes], tail: bytes, block: int, piece: int
) -> None:
    export = b"".join(lines) + tail
    with mock.patch.object(v, "CHUNK_BYTES", block):
        blocks = list(v._whole_lines(pieces(export, piece)))
    assert b"".join(blocks) == export
    assert all(b and b.endswith(b"\n") for b in blocks[:-1])
    assert all(len(b) < block + piece + 32 for b in blocks)


def test_verify_bytes_reads_only_a_little_past_the_first_problem() -> None:
    lines = encode(objects())
    lines[2] = lines[2].replace(b'"amount":1', b'"amount":2')
    taken: list[int] = []

    def read() -> Iterator[bytes]:
        for number, line in enumerate(lines, 1):
            taken.append(number)
            yield line

    with mock.patch.object(v, "CHUNK_BYTES", 1):
        result = verify_bytes(read())
    assert result.problem == "entry 3: hash does not match its contents"
    assert taken == [1, 2, 3]  # each piece ends with its line's newline here


def test_lines_are_numbered_across_blocks() -> None:
    lines = encode(objects())
    lines[3:3] = [b"\n", b"  \r\n"]
    lines.insert(8, b"[]\n")
    for block in (1, 600, 1500, 10**6):
        result = in_blocks(b"".join(lines), block=block, piece=64)
        assert result.problem == "line 9: it is neither an entry nor a checkpoint"
    unterminated = b"".join(encode(objects())).rstrip(b"\n")
    assert in_blocks(unterminated, block=700).ok


# --- the entries replayers see -----------------------------------------------------------------


def test_an_entry_made_from_checked_fields_is_the_entry() -> None:
    for entry in ENTRIES:
        made = LedgerEntry._checked(json.loads(entry.canonical()), entry.canonical())
        assert made == entry
        assert (made.canonical(), made.hash(), made.leaf_hash()) == (
            entry.canonical(),
            entry.hash(),
            entry.leaf_hash(),
        )
        assert hash(made) == hash(entry)
        assert repr(made) == repr(entry)
        assert made.to_json() == entry.to_json()
        assert isinstance(made.data, MappingProxyType)


REPLAYED = ("seq", "ts", "actor", "kind", "data", "room", "rules")


def test_replayers_see_every_field_they_read() -> None:
    """The entries themselves, or within a run ReplayedEntries: every field but event and prev."""

    class Keeper:
        def __init__(self) -> None:
            self.seen: list[v.Replayed] = []

        def apply(self, entry: v.Replayed) -> str | None:
            self.seen.append(entry)
            return None

    objs = objects()
    reordered = in_order(objs[3], lambda keys: keys[::-1]).encode() + b"\n"  # re-encoded
    lines = [*encode(objs[:3]), reordered, *encode(objs[4:])]
    for run in (
        lambda k: verify(objs, replayers=[k]),
        lambda k: verify_lines(lines, replayers=[k]),
        lambda k: in_blocks(b"".join(lines), replayers=[k]),
        lambda k: in_blocks(b"".join(lines), block=10**6, replayers=[k]),
    ):
        keeper = Keeper()
        assert run(keeper).ok
        for seen, entry in zip(keeper.seen, ENTRIES, strict=True):
            assert [getattr(seen, key) for key in REPLAYED] == [
                getattr(entry, key) for key in REPLAYED
            ]
            assert list(seen.data) == list(entry.data)
    in_runs = Keeper()
    in_blocks(b"".join(lines), block=10**6, replayers=[in_runs])
    assert [type(e) for e in in_runs.seen] == [
        LedgerEntry,  # genesis
        *[v.ReplayedEntry] * 2,
        LedgerEntry,  # the line spelled another way
        v.ReplayedEntry,
        LedgerEntry,  # rule.change
        v.ReplayedEntry,
        LedgerEntry,  # erase
        *[v.ReplayedEntry] * 2,
    ]
    keeper = Keeper()
    verify(objs, replayers=[keeper])
    objs[1]["entry"]["data"]["amount"] = 99  # the caller's object, after the verification
    assert keeper.seen[1].data["amount"] == 1


def test_an_entry_that_would_fit_the_chain_still_may_not_follow_a_checkpoint() -> None:
    objs = objects()
    objs.insert(2, checkpoint_line(checkpoint(2)))  # entry 3, plain kudos, comes after it
    for block in (1, 600, 10**6):  # the entry after it in the checkpoint's block, or the next
        result = in_blocks(b"".join(encode(objs)), block=block)
        assert result.problem == "line 4: an entry follows the checkpoints"
    assert both(objs).problem == "line 4: an entry follows the checkpoints"
