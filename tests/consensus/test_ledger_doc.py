"""docs/ledger-format.md: its worked example and its tables agree with the code.

The example's blocks are marked `<!-- example: NAME -->`; every value in them is recomputed here
from the inputs the page gives (the key, the salts, the texts), never copied.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from consensus import merkle
from consensus.canonical import canonical_json
from consensus.checkpoint import Checkpoint, SignedCheckpoint, public_key_b64, sign
from consensus.ledger import (
    ENTRY_KEYS,
    KIND_FIELDS,
    LedgerEntry,
    commit_text,
    rules_hash,
)
from consensus.verify import checkpoint_line, encode_line, export_line, verify_lines

DOC = (Path(__file__).parents[2] / "docs" / "ledger-format.md").read_text(encoding="utf-8")
BLOCKS = dict(re.findall(r"<!-- example: ([\w-]+) -->\n```\w*\n(.*?)\n```", DOC, re.DOTALL))


def block(name: str) -> str:
    return BLOCKS[name]


def entries() -> list[LedgerEntry]:
    return [LedgerEntry.from_json(json.loads(block(f"entry-{seq}"))) for seq in (1, 2, 3)]


def test_the_example_has_every_block() -> None:
    assert set(BLOCKS) == {
        "private-key",
        "public-key",
        "rules",
        "rules-hash",
        *(f"{what}-{seq}" for what in ("entry", "hash") for seq in (1, 2, 3)),
        *(f"{what}-{seq}" for what in ("text", "salt") for seq in (2, 3)),
        "commitment-2",
        "leaves",
        "node-1-2",
        "root",
        "checkpoint-payload",
        "signature",
        "checkpoint-text",
        "export",
    }


def test_key_and_rules() -> None:
    key = bytes.fromhex(block("private-key"))
    assert key == bytes(range(32))
    assert public_key_b64(key) == block("public-key")
    rules = json.loads(block("rules"))
    assert canonical_json(rules).decode() == block("rules")
    assert rules_hash(rules) == block("rules-hash")


def test_entries_hashes_and_chain() -> None:
    genesis, kudos, erase = entries()
    for seq, entry in enumerate((genesis, kudos, erase), 1):
        assert entry.seq == seq
        assert entry.canonical().decode() == block(f"entry-{seq}")
        assert entry.hash() == block(f"hash-{seq}")
        assert entry.rules == block("rules-hash")
    assert genesis.prev == "0" * 64
    assert kudos.prev == genesis.hash()
    assert erase.prev == kudos.hash()
    assert genesis.data["public_key"] == block("public-key")
    assert dict(genesis.data["rules"]) == json.loads(block("rules"))
    assert erase.data["target"] == kudos.seq


def test_text_commitments() -> None:
    _, kudos, erase = entries()
    for seq, entry in ((2, kudos), (3, erase)):
        commitment = commit_text(block(f"text-{seq}"), bytes.fromhex(block(f"salt-{seq}")))
        assert entry.text_sha256 == commitment
    assert kudos.text_sha256 == block("commitment-2")
    assert len(block("text-2").encode("utf-8")) == 23  # as the page says
    assert bytes.fromhex(block("salt-2")) == bytes(range(16))
    assert bytes.fromhex(block("salt-3")) == bytes(range(16, 32))


def test_merkle_tree() -> None:
    leaves = [entry.leaf_hash() for entry in entries()]
    assert block("leaves").split("\n") == [leaf.hex() for leaf in leaves]
    node = merkle.node_hash(leaves[0], leaves[1])
    assert node.hex() == block("node-1-2")
    assert merkle.node_hash(node, leaves[2]).hex() == block("root")
    assert merkle.root(leaves).hex() == block("root")


def signed_checkpoint() -> SignedCheckpoint:
    payload = json.loads(block("checkpoint-payload"))
    cp = Checkpoint(room=payload["room"], size=3, root=block("root"), ts=payload["ts"])
    assert cp.payload().decode() == block("checkpoint-payload")
    key = bytes.fromhex(block("private-key"))
    return SignedCheckpoint(cp, sign(cp, key), public_key_b64(key))


def test_checkpoint() -> None:
    signed = signed_checkpoint()
    assert signed.checkpoint.room == entries()[0].room
    assert signed.signature == block("signature")
    assert signed.verify()
    assert signed.to_text() == block("checkpoint-text")
    assert SignedCheckpoint.parse(block("checkpoint-text")) == signed


def test_export() -> None:
    genesis, kudos, erase = entries()
    expected = [
        export_line(genesis, None, None),
        export_line(kudos, None, None),
        export_line(erase, block("text-3"), bytes.fromhex(block("salt-3"))),
        checkpoint_line(signed_checkpoint()),
    ]
    lines = [line.encode("utf-8") + b"\n" for line in block("export").split("\n")]
    assert lines == [encode_line(obj) for obj in expected]
    result = verify_lines(lines, key=block("public-key"), checkpoints=[block("checkpoint-text")])
    assert result.ok
    assert (result.entries, result.root, result.head) == (3, block("root"), block("hash-3"))


def test_the_failure_the_page_describes() -> None:
    lines = block("export").replace('"wrong person"', '"right person"').split("\n")
    problem = verify_lines(lines).problem
    assert problem == "entry 3: text does not match its commitment"
    assert f"`{problem}`" in DOC


def table_rows(heading: str) -> list[list[str]]:
    section = DOC.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows]


def test_the_entry_table_lists_exactly_the_nine_keys() -> None:
    assert [row[0].strip("`") for row in table_rows("Entries")] == list(ENTRY_KEYS)


def test_the_kinds_table_lists_every_kind_and_its_data_keys() -> None:
    documented = {
        row[0].strip("`"): set(re.findall(r"`([^`]+)`", row[1])) for row in table_rows("Kinds")
    }
    assert documented == {kind: set(fields) for kind, fields in KIND_FIELDS.items()}


@pytest.mark.parametrize("kind", sorted(KIND_FIELDS))
def test_every_kind_is_explained(kind: str) -> None:
    row = next(row for row in table_rows("Kinds") if row[0] == f"`{kind}`")
    assert len(row[2]) > 20
