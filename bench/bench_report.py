"""Benchmark: building one day's report from a busy day of a big room's ledger.

    .venv/bin/python bench/bench_report.py [--entries 100000] [--members 2000] [--runs 5]

The room has a million entries; the day is its last `--entries` of them, in Europe/Berlin. The
mix is that of a busy day: mostly kudos (by command, ++ and reactions), votes, commitments and
attendance, some reversals (of that day's kudos and of earlier ones), moderator voids, erasures,
items opened and closed, a review, a rule change, a pair and a triangle giving to each other and a
few newcomers. Setup (building and validating the entries with `make_entry`) is timed apart; the
figure that matters is `build_report` alone. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from consensus.ledger import (
    ATTEND,
    COMMIT,
    ERASE,
    ITEM_CLOSE,
    ITEM_OPEN,
    KUDOS,
    MOD_VOID,
    OPTOUT,
    REVERSAL,
    REVIEW,
    RULE_CHANGE,
    VOTE,
    LedgerEntry,
    make_entry,
)
from consensus.report import build_report
from consensus.scoring import day_start, next_day_start

ROOM = "!bench:localhost"
BOT = "@commons:localhost"
MOD = "@mod:localhost"
DAY = "2026-11-26"
TZ = "Europe/Berlin"
HEX = "ab" * 32
ROOM_SIZE = 1_000_000
HOUR = 3_600_000
DAY_MS = 24 * HOUR


def item_open(item: int, kind: str, at: int | None = None) -> dict[str, Any]:
    return {
        "item": item, "type": kind, "method": None if kind == "action" else "consent",
        "options": 0, "quorum": None, "closes": None if at is None else at - 2 * HOUR, "at": at,
        "need": 5 if kind == "action" else None, "rule_key": None, "rule_value": None,
        "target": None, "text_sha256": HEX,
    }  # fmt: skip


def make_day(n: int, members: int, rng: random.Random) -> dict[str, Any]:
    users = [f"@user{i}:localhost" for i in range(members)]
    start = day_start(DAY, TZ)
    length = next_day_start(start, TZ) - start
    times = sorted(start + rng.randrange(length) for _ in range(n))
    first = ROOM_SIZE - n + 1
    earlier_start = first - 1000  # earlier entries the day refers to
    targets: dict[int, tuple[LedgerEntry, str | None]] = {}
    item_opens: dict[int, tuple[LedgerEntry, str | None]] = {}
    for k in range(200):  # earlier kudos, some reversed or voided today
        old = LedgerEntry(
            room=ROOM, seq=earlier_start + k, ts=start - HOUR, actor=users[k],
            kind=KUDOS, data={"to": users[k + 1], "amount": 1, "via": "command", "ref": None,
                              "text_sha256": None},
            event=None, rules=HEX, prev=HEX,
        )  # fmt: skip
        targets[old.seq] = (old, None)
    for k in range(50):  # items opened earlier: proposals, then action calls
        number = 1000 + k
        kind = "proposal" if k < 25 else "action"
        at = start + 20 * HOUR if kind == "action" else None
        opened = LedgerEntry(
            room=ROOM, seq=earlier_start + 500 + k, ts=start - DAY_MS // 2, actor=users[k],
            kind=ITEM_OPEN, data=item_open(number, kind, at), event=None, rules=HEX, prev=HEX,
        )  # fmt: skip
        item_opens[number] = (opened, f"Earlier item {number}\nmore text")
    prev = LedgerEntry(
        room=ROOM,
        seq=first - 1,
        ts=start - 1,
        actor=BOT,
        kind=OPTOUT,
        data={},
        event=None,
        rules=HEX,
        prev=HEX,
    )
    entries: list[tuple[LedgerEntry, str | None]] = []
    kudos_seqs: list[int] = []
    next_item = 2000
    ring, others = users[:5], users[5:]  # a pair and a triangle, who give only to each other

    def add(actor: str, kind: str, data: dict[str, Any], text: str | None = None) -> None:
        nonlocal prev
        prev = make_entry(
            prev=prev, room=ROOM, ts=times[len(entries)], actor=actor, kind=kind, data=data,
            event=f"$e{len(entries)}", rules=HEX,
        )  # fmt: skip
        entries.append((prev, text))

    earlier_kudos = list(targets)
    ring_gifts = [(0, 1), (1, 0), (2, 3), (3, 4), (4, 2)]
    while len(entries) < n:
        roll = rng.random()
        actor = rng.choice(others)
        if ring_gifts:
            giver, receiver = ring_gifts.pop()
            add(ring[giver], KUDOS, {"to": ring[receiver], "amount": 3, "via": "command",
                                     "ref": None, "text_sha256": None})  # fmt: skip
        elif roll < 0.70:
            receiver = rng.choice(users)
            while receiver == actor:
                receiver = rng.choice(users)
            via = rng.choice(("command", "plusplus", "reaction", "reply"))
            reason = "for the help" if via == "command" and rng.random() < 0.5 else None
            add(actor, KUDOS, {"to": receiver, "amount": rng.randint(1, 3), "via": via,
                               "ref": None, "text_sha256": HEX if reason else None},
                reason)  # fmt: skip
            kudos_seqs.append(prev.seq)
        elif roll < 0.85:
            add(actor, VOTE, {"item": 1000 + rng.randrange(25), "choice": "agree",
                              "via": "poll", "text_sha256": None})  # fmt: skip
        elif roll < 0.88 and kudos_seqs:
            add(actor, REVERSAL, {"target": kudos_seqs.pop(rng.randrange(len(kudos_seqs))),
                                  "cause": "redaction", "item": None})  # fmt: skip
        elif roll < 0.885 and earlier_kudos:
            add(actor, REVERSAL, {"target": earlier_kudos.pop(), "cause": "redaction",
                                  "item": None})  # fmt: skip
        elif roll < 0.93:
            add(actor, COMMIT, {"item": 1025 + rng.randrange(25), "state": "in",
                                "min_others": 0, "via": "command"})  # fmt: skip
        elif roll < 0.96:
            add(actor, ATTEND, {"item": 1025 + rng.randrange(25), "user": rng.choice(users),
                                "kudos": 1})  # fmt: skip
        elif roll < 0.97 and kudos_seqs:
            target = kudos_seqs.pop(rng.randrange(len(kudos_seqs)))
            add(MOD, MOD_VOID, {"target": target, "text_sha256": HEX}, "a second account")
        elif roll < 0.975:
            add(MOD, ERASE, {"target": prev.seq, "text_sha256": None})
        elif roll < 0.98:
            add(actor, ITEM_OPEN, item_open(next_item, "proposal"), "A new idea\nbecause")
            next_item += 1
        elif roll < 0.981:
            add(BOT, ITEM_CLOSE, {"item": 1000 + rng.randrange(25), "outcome": "passed",
                                  "winners": [], "tally": {"agree": 5, "voters": 5}})  # fmt: skip
        elif roll < 0.9811:
            add(MOD, REVIEW, {"date": "2026-11-25", "text_sha256": None})
        elif roll < 0.9812:
            add(BOT, RULE_CHANGE, {"key": "kudos.daily_allowance", "value": 12, "item": 1001})
        else:
            add(actor, VOTE, {"item": 1000 + rng.randrange(25), "choice": "disagree",
                              "via": "command", "text_sha256": None})  # fmt: skip
    since = {u: start - 100 * DAY_MS for u in users}
    since.update({u: start - DAY_MS for u in users[-20:]})  # newcomers
    return {
        "room": ROOM, "day": DAY, "timezone": TZ, "entries": entries, "targets": targets,
        "item_opens": item_opens,
        "action_state": {1025 + k: (rng.randrange(10), rng.randrange(6)) for k in range(25)},
        "baseline_kudos": {f"2026-10-{d:02d}": rng.randrange(40_000, 60_000) for d in range(28)},
        "member_since": since, "optouts": 3, "expired_commands": 1, "unreviewed": ["2026-11-24"],
        "moderators": {MOD}, "checkpoint": None,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--members", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    began = time.perf_counter()
    inputs = make_day(args.entries, args.members, random.Random(4711))
    print(f"setup: {args.entries:,} entries made in {time.perf_counter() - began:.1f} s")
    timings = []
    for _ in range(args.runs):
        began = time.perf_counter()
        report = build_report(**inputs)
        timings.append(time.perf_counter() - began)
    k = report.kudos
    print(
        f"build_report: {args.entries:,} entries of a {ROOM_SIZE:,}-entry room in "
        f"{min(timings) * 1000:.0f} ms best, {statistics.median(timings) * 1000:.0f} ms median "
        f"of {args.runs} (target < 1000 ms)"
    )
    print(
        f"report: {report.entries:,} entries, {len(report.hourly)} hours, {k.total:,} kudos "
        f"({k.entries:,} entries, {k.reversed:,} reversed) from {k.givers:,} givers, "
        f"{len(report.decisions)} decisions, {len(report.actions)} action calls, "
        f"{len(report.moderation)} moderator actions, {len(report.flags)} flags"
    )


if __name__ == "__main__":
    main()
