"""Pipelined transactions (`Storage.write(pipelined=True)`, one per sync batch): the COMMIT runs
on its own thread while the next batch is handled from memory; nothing is read or sent before it
is durable; another process's write makes the next batch run again; a failed commit breaks the
storage instead of letting a later batch build on what was lost."""

import asyncio
import sqlite3
import threading

import pytest

from bot import storage as storage_module
from bot.storage import Storage, StorageBroken, StorageError
from consensus.ledger import KUDOS
from consensus.scoring import local_day
from tests.bot.test_ledger_store import ROOM, T0, USERS, new_ledger

A, B, C = USERS
DAY = local_day(T0 + 1000, "UTC")


@pytest.fixture
async def store(tmp_path):
    opened = await new_ledger(tmp_path / "c.db")
    yield opened
    await opened.close()


async def kudos(tx, giver, receiver, event):
    await tx.append(
        ROOM, ts=T0 + 1000, actor=giver, kind=KUDOS, event=event,
        data={"to": receiver, "amount": 1, "via": "command", "ref": None, "text_sha256": None},
    )  # fmt: skip
    await tx.mark_handled(event, ROOM, giver, "command", T0)


def hold_commits(store):
    """Keep the committer thread busy until the returned event is set (in 10 s at the latest,
    so that a test that blocks on the commit fails instead of hanging)."""
    gate = threading.Event()
    store._committer.submit(gate.wait, 10)
    return gate


async def seqs(store):
    async with store.read() as tx:
        return [s.entry.seq for s in await tx.entries(ROOM)]


async def test_pipelined_batches_commit_in_order_and_durably(store, tmp_path):
    for i in range(3):
        async with store.write(pipelined=True) as tx:
            await kudos(tx, A, B, f"$e{i}")
    await store.settled()
    await store.close()
    again = await Storage.open(tmp_path / "c.db")
    try:
        assert await seqs(again) == [1, 2, 3, 4]
        async with again.read() as tx:
            assert await tx.score(ROOM, B) == 3
            assert await tx.handled_among(["$e0", "$e1", "$e2", "$x"]) == {"$e0", "$e1", "$e2"}
    finally:
        await again.close()


async def test_a_batch_works_from_memory_while_the_one_before_commits(store):
    async with store.write(pipelined=True) as tx:
        # What every batch reads is remembered: the room, the giver's facts, the scores.
        assert await tx.get_room(ROOM) is None
        await tx.giver_state(ROOM, A, [B, C], DAY)
        await tx.score(ROOM, B)
        await kudos(tx, A, B, "$first")
    gate = hold_commits(store)
    async with store.write(pipelined=True) as tx:
        await kudos(tx, A, B, "$held")
    async with store.write(pipelined=True) as tx:
        # The batch before is not committed yet, and this one needs no database to go on.
        assert store._committing is not None and not store._committing.done()
        assert await tx.handled_among(["$first", "$held", "$new"]) == {"$first", "$held"}
        assert await tx.get_room(ROOM) is None
        assert await tx.score(ROOM, B) == 2
        state = await tx.giver_state(ROOM, A, [B, C], DAY)
        assert (state.given_today, state.pair_today) == (2, {B: 2, C: 0})
        await kudos(tx, A, C, "$second")
        assert not tx.begun
        gate.set()  # the end of the block begins the transaction: after the commit before
    assert await seqs(store) == [1, 2, 3, 4]
    async with store.read() as tx:
        assert (await tx.giver_state(ROOM, A, [B, C], DAY)).pair_today == {B: 2, C: 1}


async def test_reads_wait_for_the_commit_in_flight(store):
    gate = hold_commits(store)
    async with store.write(pipelined=True) as tx:
        await kudos(tx, A, B, "$first")
    reading = asyncio.create_task(store.query("SELECT count(*) FROM ledger"))
    await asyncio.sleep(0.05)
    assert not reading.done()
    gate.set()
    assert await reading == [(2,)]


async def test_another_process_writing_makes_the_next_batch_run_again(store, tmp_path):
    async with store.write(pipelined=True) as tx:
        await kudos(tx, A, B, "$first")
    await store.settled()
    with sqlite3.connect(tmp_path / "c.db") as other:  # an operator's tool, say
        other.execute("INSERT INTO kv (key, value) VALUES ('note', 'x')")
    with pytest.raises(StorageError, match="another process wrote"):
        async with store.write(pipelined=True) as tx:
            await kudos(tx, A, C, "$second")
    async with store.write(pipelined=True) as tx:  # the batch, handled again
        await kudos(tx, A, C, "$second")
    assert await seqs(store) == [1, 2, 3]
    assert await store.get_kv("note") == "x"


async def test_a_failed_commit_breaks_the_storage(store, tmp_path, monkeypatch):
    def failing_commit(db):
        db.execute("ROLLBACK")
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(storage_module, "_commit", failing_commit)
    async with store.write(pipelined=True) as tx:
        await kudos(tx, A, B, "$lost")
    # The next batch may have been handled on top of the lost one: it must not commit, even
    # if a handler caught the error.
    with pytest.raises(StorageBroken, match="disk I/O error"):
        async with store.write(pipelined=True) as tx:
            with pytest.raises(StorageBroken):
                await tx.handled_event("$lost")  # needs the database: waits, finds the loss
            await kudos(tx, A, C, "$next")
    with pytest.raises(StorageBroken, match="disk I/O error"):
        await store.pending_outbox()
    with pytest.raises(StorageBroken):
        async with store.write() as tx:
            await tx.set_kv("x", "y")
    await store.close()
    again = await Storage.open(tmp_path / "c.db")
    try:
        assert await seqs(again) == [1]
    finally:
        await again.close()
