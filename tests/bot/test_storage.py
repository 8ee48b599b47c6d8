import sqlite3

import pytest

from bot import storage as module
from bot.storage import MIGRATIONS, Storage, StorageError
from tests.bot.test_ledger_store import ROOM, T0, USERS, new_ledger


async def test_migrates_and_reopens(tmp_path):
    path = tmp_path / "c.db"
    store = await Storage.open(path)
    assert await store.query("PRAGMA user_version") == [(len(MIGRATIONS),)]
    assert await store.query("PRAGMA journal_mode") == [("wal",)]
    async with store.write() as tx:
        await tx.set_kv("sync.next_batch", "s1")
    await store.close()
    store = await Storage.open(path)
    assert await store.get_kv("sync.next_batch") == "s1"
    await store.close()


async def test_refuses_a_newer_database(tmp_path):
    path = tmp_path / "c.db"
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(StorageError, match="upgrade Commons instead"):
        await Storage.open(path)


async def test_refuses_a_corrupt_database(tmp_path):
    path = tmp_path / "c.db"
    path.write_bytes(b"SQLite format 3\x00" + b"\xff" * 4000)
    with pytest.raises((StorageError, sqlite3.DatabaseError)):
        await Storage.open(path)


async def test_failed_transaction_leaves_nothing(tmp_path):
    store = await Storage.open(tmp_path / "c.db")
    with pytest.raises(RuntimeError):
        async with store.write() as tx:
            await tx.set_kv("a", "1")
            await tx.enqueue("!r:x", "t1", "m.room.message", {"body": "x"}, 1)
            raise RuntimeError("boom")
    assert await store.get_kv("a") is None
    assert await store.pending_outbox() == []
    await store.close()


async def test_savepoint_undoes_only_its_own_writes(tmp_path):
    store = await Storage.open(tmp_path / "c.db")
    async with store.write() as tx:
        await tx.set_kv("kept", "1")
        with pytest.raises(ValueError):
            async with tx.savepoint():
                await tx.set_kv("undone", "1")
                raise ValueError
        await tx.mark_handled("$e", "!r:x", "@a:x", "command", 5)
    assert await store.get_kv("kept") == "1"
    assert await store.get_kv("undone") is None
    async with store.read() as tx:
        assert await tx.is_handled("$e")
        assert (await tx.handled_event("$e")).sender == "@a:x"
    await store.close()


async def test_outbox_deduplicates_by_txn_id_and_keeps_order(tmp_path):
    store = await Storage.open(tmp_path / "c.db")
    async with store.write() as tx:
        await tx.enqueue("!r:x", "t1", "m.room.message", {"body": "one"}, 1)
        await tx.enqueue("!r:x", "t1", "m.room.message", {"body": "again"}, 2)
        await tx.enqueue("!r:x", "t2", "m.room.message", {"body": "two ✓"}, 3)
    rows = await store.pending_outbox()
    assert [r.content["body"] for r in rows] == ["one", "two ✓"]
    await store.mark_sent(rows[0].id, "$sent", 4)
    await store.mark_failed(rows[1].id, "M_FORBIDDEN")
    assert await store.pending_outbox() == []
    await store.close()


async def test_rooms_rejoin_resets_join_point(tmp_path):
    store = await Storage.open(tmp_path / "c.db")
    async with store.write() as tx:
        await tx.add_room("!r:x", 100, "$join1")
        await tx.mark_left("!r:x", 200)
        await tx.add_room("!r:x", 300, "$join2")
        room = await tx.get_room("!r:x")
    assert (room.joined_ts, room.join_event, room.left_ts) == (300, "$join2", None)
    await store.close()


async def test_reaction_kudos_are_found_across_the_index_migration(tmp_path, monkeypatch):
    # A database from before migration 5 (every entry's event indexed) holds a reaction's
    # kudos and a command's; after the upgrade only the reaction's is indexed, and found.
    path = tmp_path / "c.db"
    monkeypatch.setattr(module, "MIGRATIONS", MIGRATIONS[:4])
    store = await new_ledger(path)
    async with store.write() as tx:
        for via, event in (("reaction", "$react"), ("command", "$cmd")):
            await tx.append(
                ROOM, ts=T0 + 1, actor=USERS[0], kind="kudos", event=event,
                data={"to": USERS[1], "amount": 1, "via": via, "ref": None, "text_sha256": None},
            )  # fmt: skip
    await store.close()
    monkeypatch.setattr(module, "MIGRATIONS", MIGRATIONS)
    store = await Storage.open(path)
    try:
        assert await store.query("PRAGMA user_version") == [(len(MIGRATIONS),)]
        indexes = {row[1] for row in await store.query("PRAGMA index_list(ledger)")}
        assert "ledger_by_reaction" in indexes and "ledger_by_event" not in indexes
        async with store.read() as tx:
            found = await tx.reaction_kudos(ROOM, "$react")
            assert found is not None and found.entry.data["via"] == "reaction"
            assert await tx.reaction_kudos(ROOM, "$cmd") is None
    finally:
        await store.close()
