"""The ledger in SQLite: append-only, and its aggregates always equal a replay of its entries."""

import os
import sqlite3

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.storage import Storage
from consensus.checkpoint import public_key_b64
from consensus.ledger import KUDOS, MOD_VOID, REVERSAL
from consensus.rules import RoomRules
from consensus.scoring import ScoreBook
from consensus.verify import export_line, verify

ROOM = "!r:example.org"
BOT = "@bot:example.org"
USERS = ["@a:example.org", "@b:example.org", "@c:example.org"]
T0 = 1_764_150_000_000
DAY = 86_400_000


async def new_ledger(path, **rules):
    store = await Storage.open(path)
    values = {**RoomRules.defaults().as_json(), **rules}
    async with store.write() as tx:
        await tx.start_ledger(
            ROOM,
            ts=T0,
            actor=BOT,
            rules=RoomRules(values),
            sources={},
            public_key=public_key_b64(bytes(32)),
            event=None,
        )
    return store


async def test_the_ledger_refuses_update_and_delete(tmp_path):
    store = await new_ledger(tmp_path / "c.db")
    await store.close()
    with sqlite3.connect(tmp_path / "c.db") as db:
        for sql in ("UPDATE ledger SET actor = 'x'", "DELETE FROM ledger"):
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                db.execute(sql)


# One step: (kind, giver index, receiver index, amount, day offset, target pick)
steps = st.lists(
    st.tuples(
        st.sampled_from(["kudos", "kudos", "kudos", "reversal", "void", "appeal"]),
        st.integers(0, 2),
        st.integers(0, 2),
        st.integers(1, 3),
        st.integers(0, 2),
        st.integers(0, 1000),
    ),
    max_size=40,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=steps)
async def test_aggregates_equal_a_replay_of_the_entries(tmp_path_factory, steps):
    # Generous caps: this property is about bookkeeping, not about refusals.
    store = await new_ledger(
        tmp_path_factory.mktemp("db") / "c.db",
        **{"kudos.daily_allowance": 1000, "kudos.pair_daily_cap": 1000},
    )
    try:
        kudos_seqs: list[int] = []
        void_seqs: list[int] = []
        async with store.write() as tx:
            for kind, g, r, amount, day, pick in steps:
                giver, receiver = USERS[g], USERS[r]
                ts = T0 + day * DAY
                if kind == "kudos":
                    if giver == receiver:
                        continue
                    entry = await tx.append(
                        ROOM,
                        ts=ts,
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
                        text="thanks" if amount == 2 else None,
                        salt=os.urandom(16) if amount == 2 else None,
                    )
                    kudos_seqs.append(entry.seq)
                    continue
                pool = void_seqs if kind == "appeal" else kudos_seqs
                if not pool:
                    continue
                target = pool[pick % len(pool)]
                if kind == "void":
                    if await tx.voided_by(ROOM, target) is not None:
                        continue
                    e = await tx.append(
                        ROOM,
                        ts=ts,
                        actor=BOT,
                        kind=MOD_VOID,
                        data={"target": target, "text_sha256": None},
                        event=None,
                    )
                    void_seqs.append(e.seq)
                    continue
                stored = await tx.entry(ROOM, target)
                if kind == "reversal":
                    if await tx.voided_by(ROOM, target) is not None:
                        continue
                    await tx.append(
                        ROOM,
                        ts=ts,
                        actor=stored.entry.actor,
                        kind=REVERSAL,
                        data={"target": target, "cause": "redaction", "item": None},
                        event=None,
                    )
                else:  # an appeal reverses a void, once, while its target is still voided by it
                    voided = stored.entry.data["target"]
                    if await tx.voided_by(ROOM, voided) != target:
                        continue
                    await tx.append(
                        ROOM,
                        ts=ts,
                        actor=BOT,
                        kind=REVERSAL,
                        data={"target": target, "cause": "appeal", "item": None},
                        event=None,
                    )
                    void_seqs.remove(target)
            entries = await tx.entries(ROOM)
            book = ScoreBook()
            for stored in entries:
                assert book.apply(stored.entry) is None
            for user in USERS:
                assert await tx.score(ROOM, user) == book.total(user)
                days = {d: n for d, n in (await tx.score_days(ROOM, user)).items()}
                assert days == book.received_days(user)
                for day in range(3):
                    d = f"2025-11-{26 + day}"
                    state = await tx.giver_state(ROOM, user, USERS, d)
                    assert state.given_today == book.given_on(user, d)
                    assert state.pair_today == {to: book.pair_on(user, to, d) for to in USERS}
        # The export of what the database holds verifies, scores included.
        lines = [export_line(s.entry, s.text, s.salt) for s in entries]
        result = verify(lines, replayers=[ScoreBook()])
        assert result.ok, result.problem
    finally:
        await store.close()
