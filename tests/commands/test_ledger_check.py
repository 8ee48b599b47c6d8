"""Checking the entries since a checkpoint (`!verify`, daily reports) from the stored rows."""

import hashlib
import json
import sqlite3

import pytest

from commands import ledger
from commands.ledger import check_since
from consensus.ledger import KUDOS, LedgerEntry, LedgerFormatError

from .conftest import BOT, ROOM

A, B, C = "@alice:example.org", "@bob:example.org", "@carol:example.org"
# A reference that json.dumps writes otherwise than the canonical form (", " and ": "), with
# characters that need escaping: its row is read in full.
ODD_REF = 'say "hi", then: go \\ \x01 ünïcode 🎉'


async def filled(room) -> None:
    """Genesis, three kudos by command and one whose data the cheap encoding gets wrong (#5)."""
    for giver, receiver in ((A, B), (B, C), (C, A)):
        await room.say(giver, f"!kudos {receiver} 1")
    async with room.storage.write() as tx:
        data = {"to": A, "amount": 1, "via": "reply", "ref": ODD_REF, "text_sha256": None}
        await tx.append(ROOM, ts=room.now, actor=B, kind=KUDOS, data=data, event="$odd")
    await room.say(A, "!kudos @carol:example.org 2 for the bread")  # 6


async def check(room, last=None) -> str | None:
    return await room.run(BOT, check_since, last)


def change(path, sql: str, *params) -> None:
    """Change the ledger behind the bot's back (dropping the append-only guards first)."""
    with sqlite3.connect(path) as db:
        db.execute("DROP TRIGGER IF EXISTS ledger_no_update")
        db.execute("DROP TRIGGER IF EXISTS ledger_no_delete")
        db.execute(sql, params)


async def test_rows_carry_each_entrys_canonical_bytes_hash_and_data(room):
    await filled(room)
    async with room.storage.read() as tx:
        entries = [stored.entry for stored in await tx.entries(ROOM)]
        rows = list(await tx.ledger_rows(ROOM, after=0, limit=100))
        assert list(await tx.ledger_rows(ROOM, after=2, limit=2)) == rows[2:4]
    assert len(rows) == len(entries) == 6
    for row, entry in zip(rows, entries, strict=True):
        seq, ts, actor, kind, data, prev, digest, canonical = row
        assert (seq, ts, actor, kind, prev) == (entry.seq, entry.ts, entry.actor, entry.kind,
                                                entry.prev)  # fmt: skip
        assert (canonical, digest) == (entry.canonical(), entry.hash())
        assert json.loads(data) == dict(entry.data)
    assert json.loads(rows[4][4])["ref"] == ODD_REF


async def test_an_intact_ledger_checks_from_the_start_and_from_a_checkpoint(room, monkeypatch):
    monkeypatch.setattr(ledger, "ROWS_PER_READ", 2)  # several reads
    await filled(room)
    assert await check(room) is None
    await room.run(BOT, ledger.new_checkpoint)
    await room.say(B, "!kudos @alice:example.org 1")
    async with room.storage.read() as tx:
        last = (await tx.checkpoints(ROOM))[-1]
    assert last.signed.checkpoint.size == 6
    assert await check(room, last) is None


async def test_a_changed_amount_breaks_the_link_to_the_next_entry(room):
    await filled(room)
    change(room.storage.path, "UPDATE ledger SET data = json_set(data, '$.amount', 3) "
           "WHERE seq = 2")  # fmt: skip
    assert await check(room) == "entry 3 does not link to entry 2"


async def test_a_change_with_a_matching_recorded_hash_is_found_as_well(room):
    """The recorded hash only tells which rows to read in full; the chain is what is checked."""
    await filled(room)
    async with room.storage.read() as tx:
        original = (await tx.entry(ROOM, 3)).entry
    forged = LedgerEntry(**{**original.to_json(), "data": {**original.data, "amount": 3}})
    data = json.dumps(dict(forged.data), sort_keys=True, ensure_ascii=False)
    change(room.storage.path, "UPDATE ledger SET data = ?, hash = ? WHERE seq = 3",
           data, forged.hash())  # fmt: skip
    assert await check(room) == "entry 4 does not link to entry 3"


async def test_a_changed_last_entry_does_not_add_up_to_the_head(room):
    await filled(room)
    change(room.storage.path, "UPDATE ledger SET ts = ts + 1 WHERE seq = 6")
    assert await check(room) == "the entries do not add up to the recorded head"


async def test_a_deleted_entry_breaks_the_chain(room):
    await filled(room)
    change(room.storage.path, "DELETE FROM ledger WHERE seq = 5")
    assert await check(room) == "entry 6 does not link to entry 5"


async def test_a_row_changed_into_no_entry_at_all_is_refused(room):
    await filled(room)
    change(room.storage.path, "UPDATE ledger SET data = json_set(data, '$.amount', 1.5) "
           "WHERE seq = 5")  # fmt: skip
    with pytest.raises(LedgerFormatError, match="amount"):
        await check(room)


async def test_a_checkpoint_whose_frontier_does_not_give_its_root(room):
    await filled(room)
    await room.run(BOT, ledger.new_checkpoint)
    fake = hashlib.sha256(b"not the frontier").hexdigest()
    change(room.storage.path, "UPDATE checkpoints SET frontier = ?", json.dumps([fake, fake]))
    async with room.storage.read() as tx:
        last = (await tx.checkpoints(ROOM))[-1]
    assert await check(room, last) == (
        "the stored checkpoint at 6 does not match its own Merkle state"
    )
