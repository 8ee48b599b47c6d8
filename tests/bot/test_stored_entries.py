"""Reading ledger entries back: the same entries that were appended, damaged rows found out."""

import gc
import sqlite3

import pytest

from bot.storage import Storage
from consensus import ledger
from consensus.checkpoint import public_key_b64
from consensus.ledger import ERASE, KUDOS, REVERSAL, VOTE, LedgerFormatError
from consensus.rules import RoomRules

ROOM = "!r:example.org"
BOT = "@bot:example.org"
A, B = "@a:example.org", "@b:example.org"
T0 = 1_764_150_000_000
DAY = 86_400_000
SALT = bytes(range(16))
# A reference that json.dumps writes differently from the canonical form (", " and ": "), with
# characters that need escaping: read back, it is checked in full.
ODD_REF = 'say "hi", then: go \\ \x01 ünïcode 🎉'


def kudos(to: str, amount: int = 1, ref: str | None = None) -> dict:
    return {"to": to, "amount": amount, "via": "command", "ref": ref, "text_sha256": None}


async def filled(path):
    """A ledger of genesis and six entries, one of them with ODD_REF; their appended forms."""
    store = await Storage.open(path)
    rules = RoomRules.defaults()
    steps = [
        (T0 + 1, A, KUDOS, kudos(B, 2), "$1", "for the soup, thanks"),
        (T0 + DAY, B, KUDOS, kudos(A, ref=ODD_REF), '$odd"ev\\', None),
        (T0 + 2, B, REVERSAL, {"target": 2, "cause": "redaction", "item": None}, None, None),
        (T0 + DAY + 1, A, VOTE, {"item": 1, "choice": [2, 1], "via": "command",
                                 "text_sha256": None}, "$v", None),
        (T0 + 3, A, ERASE, {"target": 2, "text_sha256": None}, None, None),
        (T0 + 2 * DAY, A, KUDOS, kudos(B), "$late", None),
    ]  # fmt: skip
    async with store.write() as tx:
        key = public_key_b64(bytes(32))
        genesis = await tx.start_ledger(
            ROOM, ts=T0, actor=BOT, rules=rules, sources={}, public_key=key, event=None
        )
        made = [genesis]
        for ts, actor, kind, data, event, text in steps:
            salt = SALT if text else None
            made.append(
                await tx.append(
                    ROOM,
                    ts=ts,
                    actor=actor,
                    kind=kind,
                    data=data,
                    event=event,
                    text=text,
                    salt=salt,
                )
            )
    return store, made


def same(read, appended) -> None:
    assert read == appended
    assert read.canonical() == appended.canonical()
    assert read.hash() == appended.hash()
    assert dict(read.data) == dict(appended.data)
    with pytest.raises(TypeError):
        read.data["amount"] = 99  # type: ignore[index]


async def test_entries_read_back_as_they_were_appended(tmp_path):
    store, made = await filled(tmp_path / "c.db")
    async with store.read() as tx:
        everything = await tx.entries(ROOM)
        assert [s.entry.seq for s in everything] == list(range(1, 8))
        for stored, appended in zip(everything, made, strict=True):
            same(stored.entry, appended)
            one = await tx.entry(ROOM, appended.seq)
            assert one is not None
            same(one.entry, appended)
        assert everything[1].text == "for the soup, thanks" and everything[1].salt == SALT
        assert everything[2].text is None and everything[2].entry.data["ref"] == ODD_REF
        newest = await tx.entries(ROOM, limit=2, newest_first=True)
        assert [s.entry.seq for s in newest] == [7, 6]
    await store.close()


async def test_only_rows_that_do_not_hash_as_recorded_are_checked_in_full(tmp_path, monkeypatch):
    store, _ = await filled(tmp_path / "c.db")
    checked: list[int] = []
    problem = ledger.entry_problem

    def counting(obj):
        checked.append(obj["seq"])
        return problem(obj)

    monkeypatch.setattr(ledger, "entry_problem", counting)
    async with store.read() as tx:
        await tx.entries(ROOM)
    # Only the entry whose data json.dumps spells otherwise than the canonical encoder.
    assert checked == [3]
    await store.close()


async def test_day_seqs_bound_the_days_entries(tmp_path):
    store, _ = await filled(tmp_path / "c.db")
    async with store.read() as tx:
        # Entries 1, 2, 4 and 6 are on the first day, 3 and 5 on the second.
        assert await tx.day_seqs(ROOM, T0, T0 + DAY) == (1, 6)
        assert await tx.day_seqs(ROOM, T0 + DAY, T0 + 2 * DAY) == (3, 5)
        assert await tx.day_seqs(ROOM, T0 + 3 * DAY, T0 + 4 * DAY) is None
    await store.close()


def damage(path, seq: int, data: str) -> None:
    """Change an entry's data behind the bot's back (dropping the append-only guard first)."""
    with sqlite3.connect(path) as db:
        db.execute("DROP TRIGGER ledger_no_update")
        db.execute("UPDATE ledger SET data = ? WHERE room = ? AND seq = ?", (data, ROOM, seq))


async def test_a_damaged_row_is_read_as_it_now_is(tmp_path):
    store, made = await filled(tmp_path / "c.db")
    await store.close()
    path = tmp_path / "c.db"
    changed = {**kudos(B, 3)}
    damage(path, 7, '{"amount": 3, "ref": null, "text_sha256": null, "to": "@b:example.org", '
           '"via": "command"}')  # fmt: skip
    store = await Storage.open(path)
    async with store.read() as tx:
        found = await tx.entry(ROOM, 7)
        assert found is not None
        assert dict(found.entry.data) == changed
        # Its hash is the damaged content's, so the chain and the Merkle root no longer agree.
        assert found.entry.hash() != made[6].hash()
        assert found.entry.canonical() == ledger.LedgerEntry(
            room=ROOM, seq=7, ts=T0 + 2 * DAY, actor=A, kind=KUDOS, data=changed,
            event="$late", rules=made[6].rules, prev=made[6].prev,
        ).canonical()  # fmt: skip
    await store.close()


async def test_a_row_damaged_into_an_invalid_entry_is_refused(tmp_path):
    store, _ = await filled(tmp_path / "c.db")
    await store.close()
    path = tmp_path / "c.db"
    damage(path, 7, '{"amount": 1.5, "ref": null, "text_sha256": null, "to": "@b:example.org", '
           '"via": "command"}')  # fmt: skip
    store = await Storage.open(path)
    async with store.read() as tx:
        with pytest.raises(LedgerFormatError, match="amount"):
            await tx.entries(ROOM)
        # The garbage collector, paused while the rows were read, runs again.
        assert gc.isenabled()
    await store.close()
