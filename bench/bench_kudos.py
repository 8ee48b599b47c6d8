"""Benchmark: kudos commands handled per second in-process, with durable commits, and the
latency of `!score` and `!top` on a big ledger.

    .venv/bin/python bench/bench_kudos.py [--commands 20000] [--entries 1000000] [--batch 500]

Commands go through the real path of a sync batch (event -> parser -> rules -> ledger entry with
aggregates -> outbox reply, one pipelined transaction per batch as the sync loop makes them,
synchronous=FULL); the clock stops when the last batch is durable. First it prints a yardstick
of the machine's speed at the moment: single-row commits per second (the kudos aim was set beside
≈ 4,800/s of them). The big ledger for the
read latencies is filled with the same `append` the handlers use. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiosqlite

from bot.app import Bot
from bot.config import load_config
from bot.storage import Storage
from commands.dispatch import dispatch
from consensus.ledger import KUDOS

ROOM = "!bench:localhost"
BOT = "@commons:localhost"
USERS = [f"@user{i}:localhost" for i in range(200)]


def make_config(folder: Path):
    path = folder / "config.yaml"
    path.write_text(
        f'matrix: {{homeserver: "http://127.0.0.1:1", user_id: "{BOT}", password: "x"}}\n'
        "bot: {data_dir: ./data}\n"
        "rules: {kudos.daily_allowance: 1000, kudos.pair_daily_cap: 1000}\n"
    )
    return load_config(path, {})


def event_id(i: int) -> str:
    """An event ID as rooms of version 4 and later make them: a hash, so in no useful order."""
    digest = hashlib.sha256(f"bench {i}".encode()).digest()
    return "$" + base64.urlsafe_b64encode(digest).decode().rstrip("=")


def member(user: str, ts: int) -> dict:
    return {
        "type": "m.room.member", "state_key": user, "sender": user, "event_id": f"$join-{user}",
        "origin_server_ts": ts, "content": {"membership": "join", "displayname": user[1:7]},
    }  # fmt: skip


async def throughput(folder: Path, commands: int, batch: int) -> None:
    storage = await Storage.open(folder / "throughput.db")
    bot = Bot(make_config(folder), storage, client=None, signing_key=bytes(32))
    now = int(time.time() * 1000)
    joins = [member(BOT, now - 10_000)] + [member(u, now - 9_000) for u in USERS]
    async with storage.write() as tx:
        await bot._handle_room(tx, ROOM, [], joins, now, False)
    events = []
    for i in range(commands):
        giver, receiver = USERS[i % len(USERS)], USERS[(i * 7 + 1) % len(USERS)]
        if giver == receiver:
            receiver = USERS[(i + 1) % len(USERS)]
        body = f"!kudos {receiver} for bench {i}" if i % 2 else f"!kudos {receiver}"
        events.append({
            "type": "m.room.message", "event_id": event_id(i), "sender": giver,
            "origin_server_ts": now + i, "content": {"msgtype": "m.text", "body": body},
        })  # fmt: skip
    start = time.perf_counter()
    for i in range(0, len(events), batch):
        # As the sync loop does (Bot.handle_sync): a pipelined transaction per batch.
        async with storage.write(pipelined=True) as tx:
            await bot._handle_room(tx, ROOM, [], events[i : i + batch], now + commands, False)
    await storage.settled()  # the clock stops when the last batch is durable
    elapsed = time.perf_counter() - start
    rows = await storage.query("SELECT count(*) FROM ledger WHERE kind = 'kudos'")
    print(
        f"kudos commands: {commands} in {elapsed:.2f} s = {commands / elapsed:,.0f}/s "
        f"(batches of {batch}, {rows[0][0]} kudos entries written, synchronous=FULL)"
    )
    await storage.close()


async def single_commits(folder: Path, count: int = 3000) -> None:
    """One row per transaction through aiosqlite (WAL, synchronous=FULL): a yardstick of this
    machine's speed at the moment, the figure the kudos aim was set beside (≈ 4,800/s)."""
    db = await aiosqlite.connect(folder / "yardstick.db", isolation_level=None)
    await db.execute("PRAGMA journal_mode = WAL")
    await db.execute("PRAGMA synchronous = FULL")
    await db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    start = time.perf_counter()
    for _ in range(count):
        await db.execute("BEGIN IMMEDIATE")
        await db.execute("INSERT INTO t (v) VALUES (?)", ("x" * 100,))
        await db.execute("COMMIT")
    elapsed = time.perf_counter() - start
    await db.close()
    print(f"yardstick: single-row commits through aiosqlite {count / elapsed:,.0f}/s")


async def read_latency(folder: Path, entries: int) -> None:
    storage = await Storage.open(folder / "big.db")
    bot = Bot(make_config(folder), storage, client=None, signing_key=bytes(32))
    now = int(time.time() * 1000)
    joins = [member(BOT, now - 10_000)] + [member(u, now - 9_000) for u in USERS]
    async with storage.write() as tx:
        await bot._handle_room(tx, ROOM, [], joins, now, False)
    start = time.perf_counter()
    day = 86_400_000
    chunk = 20_000
    for done in range(0, entries, chunk):
        async with storage.write() as tx:
            for i in range(done, min(done + chunk, entries)):
                giver, receiver = USERS[i % 200], USERS[(i * 13 + 5) % 200]
                if giver == receiver:
                    receiver = USERS[(i + 3) % 200]
                await tx.append(
                    ROOM, ts=now - (entries - i) * (365 * day // entries), actor=giver,
                    kind=KUDOS, event=None,
                    data={"to": receiver, "amount": 1, "via": "command", "ref": None,
                          "text_sha256": None},
                )  # fmt: skip
    fill = time.perf_counter() - start
    print(f"filled {entries:,} entries in {fill:.1f} s ({entries / fill:,.0f} appends/s)")

    from bot.app import NioRoomView
    from bot.roomstate import RoomState
    from commands.context import Context

    state = RoomState(ROOM)
    for ev in joins:
        state.apply(ev)

    async def timed(text: str, runs: int = 50) -> None:
        times = []
        for _ in range(runs):
            async with storage.read() as tx:
                head = await tx.ledger_head(ROOM)
                ctx = Context(
                    room_id=ROOM, sender=USERS[0], event_id="$x", event_ts=now, now_ms=now,
                    source_ts=now, prefix="!", bot_user_id=BOT, room=NioRoomView(state, None),
                    registry=bot.registry, store=tx, services=bot.services, rules=head.rules,
                )  # fmt: skip
                t = time.perf_counter()
                await dispatch(ctx, text)
                times.append((time.perf_counter() - t) * 1000)
        print(
            f"{text:<22} median {statistics.median(times):.2f} ms, "
            f"p95 {sorted(times)[int(len(times) * 0.95)]:.2f} ms over {runs} runs"
        )

    await timed(f"!score {USERS[5]}")
    await timed("!top")
    await timed("!top 10 --days 7")
    await timed("!top 10 --days 365")
    await storage.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--commands", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--entries", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(single_commits(Path(folder)))
        asyncio.run(throughput(Path(folder), args.commands, args.batch))
        asyncio.run(read_latency(Path(folder), args.entries))
    print(f"(cpu count {os.cpu_count()})")


if __name__ == "__main__":
    main()
