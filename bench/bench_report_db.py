"""Benchmark: the daily report of a busy day of a million-entry room, from a real database.

    .venv/bin/python bench/bench_report_db.py [--size 1000000] [--day-entries 100000]
        [--members 2000] [--runs 3] [--rebuild] [--profile]

The database has the real schema (`Storage.open`) and one room whose ledger holds `--size` valid,
hash-chained entries over 61 days in Europe/Berlin, the last `--day-entries` of them on the
reported day: mostly kudos between `--members` members, votes, commitments and attendance, some
reversals (of recent and of older kudos), moderator voids, erasures, items opened and closed,
reviews and a rule change. Beside it: the ledger head (size, hash, Merkle frontier, rules), the
items, commitments, attendance, members, the score aggregates, and a signed checkpoint and a
report row for every earlier day, so the day's report checks the entries since the previous one.

Entries are made as `make_entry` makes them (each one checked by `entry_problem`, hashed over its
canonical JSON), without building a `LedgerEntry` each, and written with `executemany` through a
plain sqlite3 connection. The built database is kept in /tmp for the next run (`--rebuild` makes
it anew) and opened by `Storage.open`, so its migrations run. Then each run makes the report as
`Bot._report` does, in a write transaction rolled back at the end so the database stays as built:
`daily_report` (which re-hashes the entries since the previous report's checkpoint while reading
the day's, in one pass) and `report_messages`; the target is a total under one second. For
comparison it also times the two passes `daily_checkpoint`, then `gather_report`. The chart
(`render_chart`) and the other report files are timed apart. Prints figures; asserts only that the
checkpoint check passed and the report saw every entry of the day.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import hashlib
import json
import os
import pstats
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.reportfiles import render_chart, report_html
from bot.storage import Storage
from commands import reports
from commands.context import Context, Services
from commands.declare import REGISTRY
from commands.report_render import report_json, report_markdown, report_messages
from consensus import merkle
from consensus.canonical import canonical_json
from consensus.checkpoint import Checkpoint, SignedCheckpoint, public_key_b64
from consensus.ledger import (
    ATTEND,
    COMMIT,
    ERASE,
    GENESIS,
    GENESIS_PREV,
    ITEM_CLOSE,
    ITEM_OPEN,
    KUDOS,
    MOD_VOID,
    OPTOUT,
    REVERSAL,
    REVIEW,
    RULE_CHANGE,
    VOTE,
    commit_text,
    entry_problem,
    genesis_data,
)
from consensus.report import Report
from consensus.rules import RoomRules
from consensus.scoring import day_start, next_day_start

ROOM = "!bench:localhost"
BOT = "@commons:localhost"
MOD = "@mod:localhost"
DAY = "2026-11-26"
TZ = "Europe/Berlin"
EARLIER_DAYS = 60
HOUR = 3_600_000
DAY_MS = 24 * HOUR
SIGNING_KEY = bytes(range(32))
FORMAT = 1  # bump when the generated database changes, so a stale cached one is not used
FLUSH_ROWS = 50_000


class Rollback(Exception):
    """Raised at the end of a timed run: the transaction is undone, the database stays."""


class LedgerBuilder:
    """Makes a room's entries one after the other and the rows they leave in each table."""

    def __init__(self, db: sqlite3.Connection, members: int, rng: random.Random) -> None:
        self.db = db
        self.rng = rng
        self.users = [f"@user{i}:localhost" for i in range(members)]
        self.rules = RoomRules.defaults().with_change("timezone", TZ)
        self.rules_hash = self.rules.hash()
        self.sources = {key: "default" for key in self.rules.values}
        self.sources["timezone"] = "config"
        self.seq = 0
        self.prev = GENESIS_PREV
        self.frontier = merkle.MerkleFrontier()
        self.rows: list[tuple[Any, ...]] = []
        self.texts: dict[int, tuple[str, str]] = {}  # seq -> text, salt (hex)
        self.with_text: list[int] = []  # seqs whose text is still there, for erasures
        self.erased: list[int] = []
        self.kudos: dict[int, tuple[str, str, int, str]] = {}  # seq -> giver, to, amount, day
        self.recent_kudos: list[int] = []  # reversed or voided soon after
        self.older_kudos: list[int] = []  # reversed days later
        self.voided: dict[int, int] = {}
        self.proposals: list[int] = []  # open, oldest first
        self.actions: list[int] = []
        self.items: dict[int, list[Any]] = {}
        self.commitments: dict[tuple[int, str], tuple[int, int]] = {}
        self.attendance: dict[tuple[int, str], int] = {}
        self.received: dict[tuple[str, str], int] = {}
        self.given: dict[tuple[str, str], int] = {}

    def add(
        self,
        ts: int,
        actor: str,
        kind: str,
        data: dict[str, Any],
        text: str | None = None,
    ) -> int:
        """Append one entry: checked and hashed as `make_entry` would, kept as a ledger row."""
        self.seq += 1
        if text is not None:
            salt = self.rng.randbytes(16)
            data["text_sha256"] = commit_text(text, salt)
            self.texts[self.seq] = (text, salt.hex())
            self.with_text.append(self.seq)
        fields = {
            "room": ROOM, "seq": self.seq, "ts": ts, "actor": actor, "kind": kind, "data": data,
            "event": f"$ev{self.seq}", "rules": self.rules_hash, "prev": self.prev,
        }  # fmt: skip
        problem = entry_problem(fields)
        if problem is not None:
            raise ValueError(f"entry {self.seq}: {problem}")
        canonical = canonical_json(fields)
        digest = hashlib.sha256(canonical).hexdigest()
        self.frontier.append(merkle.leaf_hash(canonical))
        stored_data = json.dumps(data, ensure_ascii=False, sort_keys=True)
        self.rows.append(
            (ROOM, self.seq, ts, actor, kind, stored_data, fields["event"], self.rules_hash,
             self.prev, digest)
        )  # fmt: skip
        self.prev = digest
        if len(self.rows) >= FLUSH_ROWS:
            self.flush()
        return self.seq

    def flush(self) -> None:
        self.db.executemany(
            "INSERT INTO ledger (room, seq, ts, actor, kind, data, event, rules, prev, hash) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            self.rows,
        )
        self.rows.clear()

    def day(self, day: str, n: int, reported: bool) -> None:
        """`n` entries spread over local `day`, as a busy day brings them."""
        rng, users = self.rng, self.users
        start = day_start(day, TZ)
        length = next_day_start(start, TZ) - start
        times = sorted(start + rng.randrange(length) for _ in range(n))
        if self.seq == 0:  # the room's first day begins with genesis and three opt-outs
            self.add(times[0], BOT, GENESIS, genesis_data(self.rules.as_json(), public_key()))
            for k, user in enumerate(users[-3:]):
                self.add(times[k + 1], user, OPTOUT, {})
            times = times[4:]
        rule_change_at = len(times) // 2 if reported else -1
        for i, ts in enumerate(times):
            roll = rng.random()
            actor = rng.choice(users)
            if i == rule_change_at:
                self.change_rule(ts)
            elif roll < 0.70:
                self.give(ts, actor, day)
            elif roll < 0.85 and self.proposals:
                choice = rng.choice(("agree", "agree", "disagree", "abstain"))
                data = {"item": rng.choice(self.proposals[-25:]), "choice": choice,
                        "via": rng.choice(("poll", "command")), "text_sha256": None}  # fmt: skip
                self.add(ts, actor, VOTE, data)
            elif roll < 0.875 and self.recent_kudos:
                self.take_back(ts, actor, self.recent_kudos, REVERSAL)
            elif roll < 0.88 and self.older_kudos:
                self.take_back(ts, actor, self.older_kudos, REVERSAL)
            elif roll < 0.925 and self.actions:
                item = rng.choice(self.actions[-10:])
                self.add(ts, actor, COMMIT, {"item": item, "state": "in", "min_others": 0,
                                             "via": "command"})  # fmt: skip
                self.commitments[(item, actor)] = (ts, self.seq)
            elif roll < 0.955 and self.actions:
                item, user = rng.choice(self.actions[-10:]), rng.choice(users)
                self.add(ts, actor, ATTEND, {"item": item, "user": user, "kudos": 1})
                self.attendance[(item, user)] = self.seq
                self.received[(user, day)] = self.received.get((user, day), 0) + 1
            elif roll < 0.965 and self.recent_kudos:
                self.take_back(ts, MOD, self.recent_kudos, MOD_VOID, "a second account")
            elif roll < 0.97 and self.with_text:
                target = self.with_text.pop(rng.randrange(len(self.with_text)))
                self.add(ts, MOD, ERASE, {"target": target, "text_sha256": None})
                self.erased.append(target)
            elif roll < 0.975:
                self.open_item(ts, actor, "action" if rng.random() < 0.2 else "proposal")
            elif roll < 0.976 and self.close_item(ts):
                pass
            elif roll < 0.9761:
                review = {"date": reports.previous_day(day, TZ), "text_sha256": None}
                self.add(ts, MOD, REVIEW, review)
            else:
                self.give(ts, actor, day)
        # Kudos of this day are "older" from the next day on.
        self.older_kudos += self.recent_kudos
        self.recent_kudos = []

    def give(self, ts: int, actor: str, day: str) -> None:
        rng = self.rng
        receiver = rng.choice(self.users)
        while receiver == actor:
            receiver = rng.choice(self.users)
        via = rng.choice(("command", "plusplus", "reaction", "reply"))
        reason = "for the help" if via == "command" and rng.random() < 0.5 else None
        amount = rng.randint(1, 3)
        data = {"to": receiver, "amount": amount, "via": via, "ref": None, "text_sha256": None}
        seq = self.add(ts, actor, KUDOS, data, reason)
        self.kudos[seq] = (actor, receiver, amount, day)
        self.recent_kudos.append(seq)
        self.received[(receiver, day)] = self.received.get((receiver, day), 0) + amount
        self.given[(actor, day)] = self.given.get((actor, day), 0) + amount

    def take_back(
        self, ts: int, actor: str, pool: list[int], kind: str, text: str | None = None
    ) -> None:
        pick = self.rng.randrange(len(pool))
        pool[pick], pool[-1] = pool[-1], pool[pick]
        target = pool.pop()
        if kind == REVERSAL:
            data: dict[str, Any] = {"target": target, "cause": "redaction", "item": None}
        else:
            data = {"target": target, "text_sha256": None}
        self.voided[target] = self.add(ts, actor, kind, data, text)
        giver, receiver, amount, day = self.kudos[target]
        self.received[(receiver, day)] -= amount
        self.given[(giver, day)] -= amount

    def open_item(self, ts: int, actor: str, kind: str) -> None:
        number = len(self.items) + 1
        at = ts + 2 * DAY_MS if kind == "action" else None
        data = {
            "item": number, "type": kind, "method": None if kind == "action" else "consent",
            "options": 0, "quorum": None if kind == "action" else 3,
            "closes": at if at else ts + 3 * DAY_MS, "at": at,
            "need": 5 if kind == "action" else None, "rule_key": None, "rule_value": None,
            "target": None, "text_sha256": None,
        }  # fmt: skip
        seq = self.add(ts, actor, ITEM_OPEN, data, f"Item {number}: an idea\nwith its reasons")
        self.items[number] = [
            ROOM, number, kind, actor, seq, f"$ev{seq}", "open", data["method"], "[]",
            data["quorum"], data["closes"], at, data["need"], None, "null", None, None,
        ]  # fmt: skip
        (self.actions if kind == "action" else self.proposals).append(number)

    def close_item(self, ts: int) -> bool:
        """Close the oldest open item of a kind, if enough are open; whether one was closed."""
        pool = self.actions if self.rng.random() < 0.2 else self.proposals
        if len(pool) < 12:
            return False
        number = pool.pop(0)
        outcome = "go" if pool is self.actions else self.rng.choice(("passed", "failed"))
        tally = {"agree": 5, "voters": 6} if pool is self.proposals else {"in": 6}
        data = {"item": number, "outcome": outcome, "winners": [], "tally": tally}
        self.add(ts, BOT, ITEM_CLOSE, data)
        self.items[number][6] = "go" if outcome == "go" else "closed"
        return True

    def change_rule(self, ts: int) -> None:
        item = self.proposals[-1] if self.proposals else 1
        self.add(ts, BOT, RULE_CHANGE, {"key": "kudos.daily_allowance", "value": 12, "item": item})
        self.rules = self.rules.with_change("kudos.daily_allowance", 12)
        self.rules_hash = self.rules.hash()
        self.sources["kudos.daily_allowance"] = f"entry {self.seq}"

    def checkpoint(self, ts: int) -> None:
        """Sign the ledger as it is now, as the day's report does."""
        root = self.frontier.root().hex()
        signed = SignedCheckpoint.create(Checkpoint(ROOM, self.seq, root, ts), SIGNING_KEY)
        self.db.execute(
            "INSERT INTO checkpoints (room, size, root, ts, signature, key, frontier) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (ROOM, self.seq, root, ts, signed.signature, signed.key,
             json.dumps(self.frontier.to_hex())),
        )  # fmt: skip

    def finish(self, day: str, members_since: Mapping[str, int]) -> None:
        """Write everything but the ledger rows themselves (already written)."""
        self.flush()
        db = self.db
        texts = [(ROOM, s, t, salt) for s, (t, salt) in self.texts.items()]
        db.executemany("INSERT INTO ledger_text (room, seq, text, salt) VALUES (?,?,?,?)", texts)
        db.executemany(
            "DELETE FROM ledger_text WHERE room = ? AND seq = ?", [(ROOM, s) for s in self.erased]
        )
        db.execute(
            "INSERT INTO ledger_head (room, size, head, frontier, rules, rule_sources) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (ROOM, self.seq, self.prev, json.dumps(self.frontier.to_hex()),
             json.dumps(self.rules.as_json()), json.dumps(self.sources)),
        )  # fmt: skip
        first = day_start(day, TZ) - EARLIER_DAYS * DAY_MS
        db.execute(
            "INSERT INTO rooms (room_id, joined_ts, join_event) VALUES (?, ?, ?)",
            (ROOM, first, "$join"),
        )
        db.executemany(
            "INSERT INTO members (room, user, since) VALUES (?, ?, ?)",
            [(ROOM, u, since) for u, since in members_since.items()],
        )
        db.executemany(
            "INSERT INTO optout (room, user) VALUES (?, ?)", [(ROOM, u) for u in self.users[-3:]]
        )
        db.executemany(
            "INSERT INTO items VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            list(self.items.values()),
        )
        db.executemany(
            "INSERT INTO commitments (room, item, user, min_others, ts, seq) "
            "VALUES (?, ?, ?, 0, ?, ?)",
            [(ROOM, i, u, ts, s) for (i, u), (ts, s) in self.commitments.items()],
        )
        db.executemany(
            "INSERT INTO attendance (room, item, user, credited, seq) VALUES (?, ?, ?, 1, ?)",
            [(ROOM, i, u, s) for (i, u), s in self.attendance.items()],
        )
        db.executemany(
            "INSERT INTO voided (room, seq, by_seq) VALUES (?, ?, ?)",
            [(ROOM, s, by) for s, by in self.voided.items()],
        )
        db.executemany(
            "INSERT INTO score_day (room, user, day, received) VALUES (?, ?, ?, ?)",
            [(ROOM, u, d, n) for (u, d), n in self.received.items()],
        )
        db.executemany(
            "INSERT INTO given_day (room, giver, day, given) VALUES (?, ?, ?, ?)",
            [(ROOM, u, d, n) for (u, d), n in self.given.items()],
        )
        totals: dict[str, int] = {}
        for (user, _), n in self.received.items():
            totals[user] = totals.get(user, 0) + n
        db.executemany(
            "INSERT INTO score (room, user, total) VALUES (?, ?, ?)",
            [(ROOM, u, n) for u, n in totals.items()],
        )
        db.executemany(
            "INSERT INTO expired_commands (event_id, room_id, sender, ts, received_ts) "
            "VALUES (?, ?, ?, ?, ?)",
            [(f"$old{i}", ROOM, self.users[i], first, day_start(day, TZ) + i) for i in range(2)],
        )


def public_key() -> str:
    return public_key_b64(SIGNING_KEY)


def local_days(day: str, before: int) -> list[str]:
    """The `before` local days up to `day`, and `day`."""
    days = [day]
    for _ in range(before):
        days.append(reports.previous_day(days[-1], TZ))
    return days[::-1]


def build(path: Path, size: int, day_entries: int, members: int) -> None:
    """Make the database at `path` (schema by `Storage.open`, rows by plain sqlite3)."""
    temp = path.with_name(path.name + ".building")
    for stale in (temp, Path(f"{temp}-wal"), Path(f"{temp}-shm")):
        stale.unlink(missing_ok=True)

    async def schema() -> None:
        await (await Storage.open(temp)).close()

    asyncio.run(schema())
    db = sqlite3.connect(temp, isolation_level=None)
    db.execute("PRAGMA synchronous = OFF")
    db.execute("BEGIN")
    rng = random.Random(4711)
    builder = LedgerBuilder(db, members, rng)
    days = local_days(DAY, EARLIER_DAYS)
    earlier = size - day_entries
    for k, d in enumerate(days):
        reported = d == DAY
        if reported:
            n = day_entries
        else:  # spread evenly over the earlier days
            n = earlier * (k + 1) // EARLIER_DAYS - earlier * k // EARLIER_DAYS
        builder.day(d, n, reported)
        if not reported:
            # The report of `d` is made five minutes into the next day, with its checkpoint.
            made = next_day_start(day_start(d, TZ), TZ) + 300_000
            builder.checkpoint(made)
            db.execute(
                "INSERT INTO reports (room, day, made_ts, checkpoint_size) VALUES (?, ?, ?, ?)",
                (ROOM, d, made, builder.seq),
            )
    start = day_start(DAY, TZ)
    since = {u: start - 100 * DAY_MS for u in builder.users}
    since.update({u: start - DAY_MS for u in builder.users[-20:]})  # newcomers
    since.update({MOD: start - 100 * DAY_MS, BOT: start - 100 * DAY_MS})
    builder.finish(DAY, since)
    db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    if builder.seq != size:
        raise SystemExit(f"built {builder.seq} entries instead of {size}")
    os.replace(temp, path)


class BenchRoom:
    """The room as the bot sees it through nio: members, one moderator, the bot."""

    def __init__(self, members: int) -> None:
        self._members: dict[str, str | None] = {
            f"@user{i}:localhost": None for i in range(members)
        }
        self._members.update({MOD: "Mod", BOT: "Commons"})

    async def members(self) -> Mapping[str, str | None]:
        return self._members

    async def power_level(self, user_id: str) -> int:
        return 100 if user_id in (MOD, BOT) else 0

    async def event_sender(self, event_id: str) -> str | None:
        return None


def timed(fn: Any, times: dict[str, float], key: str) -> Any:
    """`fn` (a coroutine function) adding the time of each call to `times[key]`."""

    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        mark = time.perf_counter()
        try:
            return await fn(*args, **kwargs)
        finally:
            times[key] = times.get(key, 0.0) + time.perf_counter() - mark

    return wrapper


async def run_once(
    storage: Storage, room: BenchRoom, profile: cProfile.Profile | None, one_pass: bool
) -> Any:
    """One report as `Bot._report` makes it: in one pass over the ledger (`daily_report`) or in
    two (`daily_checkpoint`, then `gather_report`). Returns the timings and the report."""
    day = DAY
    now = next_day_start(day_start(day, TZ), TZ) + 300_000
    times: dict[str, float] = {}
    built: list[Report] = []
    # The parts of one pass: reading (and checking) the rows, then the rest of the report.
    parts = {"_read_day": reports._read_day, "_build": reports._build}
    for name, fn in parts.items():
        setattr(reports, name, timed(fn, times, name))
    try:
        async with storage.write() as tx:
            if profile is not None:
                profile.enable()
            began, cpu = time.perf_counter(), time.process_time()
            head = await tx.ledger_head(ROOM)
            assert head is not None
            made = await tx.report_days(ROOM)
            ctx = Context(
                room_id=ROOM, sender=BOT, event_id=f"job:report:{ROOM}:{day}", event_ts=now,
                now_ms=now, source_ts=now, prefix="!", bot_user_id=BOT, room=room,
                registry=REGISTRY,
                store=tx, services=Services(lambda: os.urandom(16), public_key(), SIGNING_KEY),
                rules=head.rules,
            )  # fmt: skip
            if one_pass:
                report = await reports.daily_report(ctx, day, made[max(made)])
            else:
                checkpoint = await reports.daily_checkpoint(ctx, made[max(made)])
                times["checkpoint"] = time.perf_counter() - began
                report = await reports.gather_report(ctx, day, checkpoint)
            times["report"] = time.perf_counter() - began
            mark = time.perf_counter()
            messages = report_messages(report, include_flags=True)
            times["messages"] = time.perf_counter() - mark
            times["total"] = time.perf_counter() - began
            times["cpu"] = time.process_time() - cpu
            if profile is not None:
                profile.disable()
            assert report.checkpoint is not None
            assert report.checkpoint.consistent is True, "the checkpoint check failed"
            built.append(report)
            times["parts"] = len(messages)
            raise Rollback
    except Rollback:
        pass
    finally:
        for name, fn in parts.items():
            setattr(reports, name, fn)
    return times, built[0]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


async def measure(path: Path, args: argparse.Namespace) -> None:
    storage = await Storage.open(path)
    room = BenchRoom(args.members)
    try:
        runs, two_pass = [], []
        for run in range(args.runs):
            times, report = await run_once(storage, room, None, one_pass=True)
            runs.append(times)
            print(
                f"run {run + 1}, one pass: daily_report {ms(times['report'])} (reading and "
                f"checking the rows {ms(times['_read_day'])}, the rest {ms(times['_build'])}) "
                f"+ report_messages {ms(times['messages'])} = {ms(times['total'])} "
                f"({ms(times['cpu'])} of CPU)"
            )
            times, _ = await run_once(storage, room, None, one_pass=False)
            two_pass.append(times)
            print(
                f"run {run + 1}, two passes: daily_checkpoint {ms(times['checkpoint'])} "
                f"+ gather_report {ms(times['report'] - times['checkpoint'])} "
                f"+ report_messages {ms(times['messages'])} = {ms(times['total'])} "
                f"({ms(times['cpu'])} of CPU)"
            )
        if args.profile:
            profile = cProfile.Profile()
            await run_once(storage, room, profile, one_pass=True)
            pstats.Stats(profile).sort_stats("cumulative").print_stats(30)
    finally:
        await storage.close()
    assert report.entries == args.day_entries, report.entries
    for name, timings in (("one pass", runs), ("two passes", two_pass)):
        totals = [r["total"] for r in timings]
        print(
            f"report without the chart, {name}: {ms(min(totals))} best, "
            f"{ms(statistics.median(totals))} median of {args.runs} (target < 1000 ms)"
        )
    k = report.kudos
    print(
        f"report: {runs[0]['parts']} message(s); {report.entries:,} entries, {k.total:,} kudos "
        f"({k.entries:,} entries, {k.reversed:,} reversed), {len(report.decisions)} decisions, "
        f"{len(report.actions)} action calls, {len(report.moderation)} moderator actions, "
        f"{len(report.flags)} flags"
    )
    chart = []
    for _ in range(3):
        began = time.perf_counter()
        png = render_chart(report)
        chart.append(time.perf_counter() - began)
    print(
        f"chart (render_chart, {len(png):,} bytes): {chart[0] * 1000:.0f} ms the first time "
        f"(loading matplotlib), then {min(chart[1:]) * 1000:.0f} ms"
    )
    began = time.perf_counter()
    report_json(report)
    report_markdown(report)
    report_html(report, chart=f"{report.day}.png")
    files = time.perf_counter() - began
    print(f"other report files (JSON, Markdown, HTML): {files * 1000:.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--day-entries", type=int, default=100_000)
    parser.add_argument("--members", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rebuild", action="store_true", help="make the database anew")
    parser.add_argument("--profile", action="store_true", help="profile one more run")
    args = parser.parse_args()
    if not 0 < args.day_entries < args.size:
        parser.error("--day-entries must be between 0 and --size")
    name = f"commons-bench-report-v{FORMAT}-{args.size}-{args.day_entries}-{args.members}.sqlite"
    path = Path(tempfile.gettempdir()) / name
    if args.rebuild or not path.exists():
        began = time.perf_counter()
        build(path, args.size, args.day_entries, args.members)
        print(f"built {path} in {time.perf_counter() - began:.0f} s")
    print(
        f"database: {path} ({path.stat().st_size / 2**20:.0f} MiB), {args.size:,} entries, "
        f"{args.day_entries:,} on {DAY} ({TZ}), {args.members:,} members"
    )
    asyncio.run(measure(path, args))


if __name__ == "__main__":
    main()
