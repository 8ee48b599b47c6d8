"""A write transaction defers its hot inserts and aggregate additions (see `Tx`): reads inside it
still see them, a rolled-back savepoint drops exactly its own, and the commit writes them all."""

import sqlite3

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.storage import Storage
from consensus.checkpoint import public_key_b64
from consensus.ledger import KUDOS, OPTIN, OPTOUT
from consensus.rules import RoomRules
from consensus.scoring import ScoreBook, local_day
from tests.bot.test_ledger_store import ROOM, T0, USERS
from tests.bot.test_ledger_store import new_ledger as ledger_with

DAY = local_day(T0, "UTC")
LIMITS = {"kudos.daily_allowance": 1000, "kudos.pair_daily_cap": 1000}


class Boom(Exception):
    pass


async def new_ledger(path):
    return await ledger_with(path, **LIMITS)


@pytest.fixture
async def store(tmp_path):
    opened = await new_ledger(tmp_path / "c.db")
    yield opened
    await opened.close()


async def kudos(tx, giver, receiver, amount=1, text=None):
    return await tx.append(
        ROOM,
        ts=T0 + 1000,
        actor=giver,
        kind=KUDOS,
        data={
            "to": receiver,
            "amount": amount,
            "via": "command",
            "ref": None,
            "text_sha256": None,
        },
        event=None,
        text=text,
        salt=bytes(16) if text else None,
    )


async def test_reads_in_the_transaction_see_what_it_deferred(store):
    a, b, _ = USERS
    async with store.write() as tx:
        entry = await kudos(tx, a, b, 2, text="for the soup")
        await tx.mark_handled("$e", ROOM, a, "command", T0)
        # The hot reads add what is still deferred ...
        assert await tx.score(ROOM, b) == 2
        state = await tx.giver_state(ROOM, a, [b], DAY)
        assert (state.given_today, state.pair_today) == (2, {b: 2})
        # ... and any other statement writes it out first.
        stored = await tx.entry(ROOM, entry.seq)
        assert stored is not None
        assert (stored.entry, stored.text) == (entry, "for the soup")
        assert (await tx.handled_event("$e")).sender == a
        assert await tx.score_days(ROOM, b) == {DAY: 2}
        # Deferred again after the write-out, and still seen.
        await kudos(tx, a, b)
        assert await tx.score(ROOM, b) == 3
    async with store.read() as tx:
        assert await tx.score(ROOM, b) == 3
        assert (await tx.giver_state(ROOM, a, [b], DAY)).given_today == 3


@pytest.mark.parametrize("written_out_inside", [False, True])
async def test_a_rolled_back_savepoint_drops_only_its_own_writes(store, written_out_inside):
    a, b, c = USERS
    async with store.write() as tx:
        kept = await kudos(tx, a, b)
        await tx.mark_handled("$kept", ROOM, a, "command", T0)
        await tx.enqueue(ROOM, "t-kept", "m.room.message", {"body": "kept"}, T0)
        with pytest.raises(Boom):
            async with tx.savepoint():
                await kudos(tx, a, c, 3)
                await tx.mark_handled("$undone", ROOM, a, "command", T0)
                await tx.enqueue(ROOM, "t-undone", "m.room.message", {"body": "undone"}, T0)
                if written_out_inside:
                    # Writes out the kept rows too, inside the savepoint: its rollback undoes
                    # them in the database, so they must be deferred again, not lost.
                    assert await tx.entry(ROOM, kept.seq + 1) is not None
                raise Boom
        assert await tx.score(ROOM, c) == 0
        assert (await tx.giver_state(ROOM, a, [b, c], DAY)).given_today == 1
        after = await kudos(tx, a, c)  # takes the seq the undone entry had
        assert after.seq == kept.seq + 1
    async with store.read() as tx:
        seqs = [s.entry.seq for s in await tx.entries(ROOM)]
        assert seqs == [1, kept.seq, after.seq]
        assert (await tx.score(ROOM, b), await tx.score(ROOM, c)) == (1, 1)
        assert await tx.handled_event("$kept") is not None
        assert await tx.handled_event("$undone") is None
    assert [r.content["body"] for r in await store.pending_outbox()] == ["kept"]


async def test_nested_savepoints_roll_back_inner_writes_only(store):
    a, b, c = USERS
    async with store.write() as tx:
        async with tx.savepoint():
            await kudos(tx, a, b)
            with pytest.raises(Boom):
                async with tx.savepoint():
                    await kudos(tx, a, c)
                    await tx.entries(ROOM)  # a write-out inside both savepoints
                    raise Boom
            await kudos(tx, b, c)
        with pytest.raises(Boom):
            async with tx.savepoint():
                async with tx.savepoint():
                    await kudos(tx, c, a)
                    await tx.entries(ROOM)
                raise Boom
    async with store.read() as tx:
        got = [(s.entry.actor, s.entry.data["to"]) for s in (await tx.entries(ROOM))[1:]]
        assert got == [(a, b), (b, c)]
        totals = [await tx.score(ROOM, u) for u in USERS]
        assert totals == [0, 1, 1]


# One step: (giver, receiver, amount, fails, written out inside, commit after); a batch whose
# last step has commit == 1 fails as a whole.
steps = st.lists(
    st.tuples(
        st.integers(0, 2),
        st.integers(0, 2),
        st.integers(1, 3),
        st.booleans(),
        st.booleans(),
        st.integers(0, 4),
    ),
    max_size=30,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=steps)
async def test_any_mix_of_rollbacks_and_write_outs_keeps_aggregates_true(tmp_path_factory, steps):
    path = tmp_path_factory.mktemp("wb") / "c.db"
    store = await new_ledger(path)
    # Transactions end where a step says so (commit == 0 ends it, commit == 1 fails it).
    batches: list[list[tuple[int, int, int, bool, bool]]] = [[]]
    failing: list[bool] = [False]
    for *step, commit in steps:
        batches[-1].append(tuple(step))
        if commit in (0, 1):
            failing[-1] = commit == 1
            batches.append([])
            failing.append(False)
    kept = 0
    try:
        for batch, fail in zip(batches, failing, strict=True):
            kept_here = 0
            try:
                async with store.write() as tx:
                    for giver, receiver, amount, fails, write_out in batch:
                        if giver == receiver:
                            continue
                        # The hot reads fill the committed values kept in memory, from inside
                        # savepoints and transactions that may be rolled back.
                        await tx.giver_state(ROOM, USERS[giver], [USERS[receiver]], DAY)
                        await tx.score(ROOM, USERS[receiver])
                        try:
                            async with tx.savepoint():
                                await kudos(tx, USERS[giver], USERS[receiver], amount)
                                if write_out:
                                    await tx.entries(ROOM, limit=1)
                                await tx.score(ROOM, USERS[giver])
                                if fails:
                                    raise Boom
                            kept_here += 1
                        except Boom:
                            pass
                    if fail:
                        raise Boom
            except Boom:
                kept_here = 0
            kept += kept_here
        await expect_book(store, kept)
    finally:
        await store.close()
    # The same from the database alone, with nothing kept in memory.
    store = await Storage.open(path)
    try:
        await expect_book(store, kept)
    finally:
        await store.close()


async def expect_book(store, kept):
    """The store's aggregates are those of replaying its `kept` entries (and genesis)."""
    async with store.read() as tx:
        entries = await tx.entries(ROOM)
        assert len(entries) == kept + 1
        book = ScoreBook()
        for stored in entries:
            assert book.apply(stored.entry) is None
        for user in USERS:
            assert await tx.score(ROOM, user) == book.total(user)
            assert await tx.score_days(ROOM, user) == book.received_days(user)
            state = await tx.giver_state(ROOM, user, USERS, DAY)
            assert state.given_today == book.given_on(user, DAY)
            assert state.pair_today == {to: book.pair_on(user, to, DAY) for to in USERS}


async def test_opting_out_and_joining_are_seen_at_once(store):
    a, b, c = USERS
    async with store.write() as tx:
        before = await tx.giver_state(ROOM, a, [b], DAY)  # remembered
        assert (before.opted_out, before.member_since_ms) == (frozenset(), None)
        await tx.set_member(ROOM, a, T0 + 5)
        await tx.append(ROOM, ts=T0 + 6, actor=b, kind=OPTOUT, data={}, event=None)
        during = await tx.giver_state(ROOM, a, [b, c], DAY)
        assert (during.opted_out, during.member_since_ms) == ({b}, T0 + 5)
    async with store.write() as tx:
        after = await tx.giver_state(ROOM, a, [b, c], DAY)
        assert (after.opted_out, after.member_since_ms) == ({b}, T0 + 5)
        await tx.append(ROOM, ts=T0 + 7, actor=b, kind=OPTIN, data={}, event=None)
    async with store.write() as tx:
        assert (await tx.giver_state(ROOM, a, [b], DAY)).opted_out == frozenset()


async def test_a_rolled_back_opt_out_leaves_the_remembered_facts_alone(store):
    a, b, _ = USERS
    with pytest.raises(Boom):
        async with store.write() as tx:
            await tx.giver_state(ROOM, a, [b], DAY)
            await tx.append(ROOM, ts=T0 + 6, actor=b, kind=OPTOUT, data={}, event=None)
            assert (await tx.giver_state(ROOM, a, [b], DAY)).opted_out == {b}
            raise Boom
    async with store.write() as tx:
        assert (await tx.giver_state(ROOM, a, [b], DAY)).opted_out == frozenset()


async def test_another_process_writing_is_noticed(store, tmp_path):
    a, b, _ = USERS
    async with store.write() as tx:
        assert await tx.score(ROOM, b) == 0  # remembered as 0
        assert (await tx.giver_state(ROOM, a, [b], DAY)).opted_out == frozenset()
    # An operator's tool writes beside the running bot.
    with sqlite3.connect(tmp_path / "c.db") as other:
        other.execute("INSERT INTO score (room, user, total) VALUES (?, ?, 5)", (ROOM, b))
        other.execute("INSERT INTO optout (room, user) VALUES (?, ?)", (ROOM, b))
    async with store.write() as tx:
        assert await tx.score(ROOM, b) == 5
        assert (await tx.giver_state(ROOM, a, [b], DAY)).opted_out == {b}
    async with store.read() as tx:
        assert await tx.score(ROOM, b) == 5


async def test_a_ledger_started_in_a_rolled_back_savepoint_is_gone(store):
    other = "!other:example.org"
    async with store.write() as tx:
        with pytest.raises(Boom):
            async with tx.savepoint():
                await tx.start_ledger(
                    other, ts=T0, actor=USERS[0], rules=RoomRules.defaults(), sources={},
                    public_key=public_key_b64(bytes(32)), event=None,
                )  # fmt: skip
                await kudos(tx, USERS[0], USERS[1])  # and an entry in the first room
                raise Boom
        assert await tx.ledger_head(other) is None
        assert (await tx.ledger_head(ROOM)).size == 1
    async with store.read() as tx:
        assert await tx.ledger_head(other) is None
        assert (await tx.ledger_head(ROOM)).size == 1
    assert await store.query("SELECT room FROM ledger_head") == [(ROOM,)]
