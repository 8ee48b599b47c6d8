"""Benchmark: how fast an export of a large ledger verifies.

Builds an export of N kudos entries about 30 s apart (a quarter with a reason) and a daily
checkpoint, written through the real writer (`make_entry`, `export_line`, `encode_line`), every
kudos within the default rules so the replay finds nothing. Then times, and prints entries per
second, wall and CPU seconds for:

- `verify_bytes` over the file in this process, as `commons verify` checks a small export (with
  `--replay`, with the replayers the command uses: ScoreBook and ItemBook);
- with `--cli`, the `commons verify FILE` command itself (worker processes included), `--runs`
  times: the best and the median run, as other work on the machine makes single runs noisy.

    .venv/bin/python bench/bench_verify.py [N] [--file PATH] [--replay] [--cli] [--runs R]
                                           [--profile]

N defaults to 1,000,000. Building takes about a minute per million entries: `--file PATH` keeps
the export at PATH and reuses it when it is already there (whatever its N).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import gc
import io
import pstats
import random
import resource
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from bot.cli import main as commons
from consensus.checkpoint import Checkpoint, SignedCheckpoint, public_key_b64
from consensus.items import ItemBook
from consensus.ledger import GENESIS, KUDOS, commit_text, genesis_data, make_entry, rules_hash
from consensus.merkle import MerkleFrontier
from consensus.rules import RoomRules
from consensus.scoring import ScoreBook
from consensus.verify import (
    CHUNK_BYTES,
    Replayer,
    checkpoint_line,
    encode_line,
    export_line,
    verify_bytes,
)

ROOM = "!bench:example.org"
BOT = "@commons:example.org"
KEY = bytes(range(32))
RULES = RoomRules.defaults().as_json()  # the rules every replayed kudos keeps to
DAY_MS = 86_400_000
REASONS = ("for the soup", "für die Hilfe beim Umzug 🎉", "for fixing the door", "merci !")


def build(path: Path, n: int, rng: random.Random) -> None:
    """N entries about 30 s apart from 1,000 members, each kudos within the daily allowance and
    the pair cap (days are UTC days, the default time zone), so replaying them finds nothing."""
    users = [f"@user{i}:example.org" for i in range(1000)]
    rules = rules_hash(RULES)
    allowance, pair_cap = RULES["kudos.daily_allowance"], RULES["kudos.pair_daily_cap"]
    assert RULES["timezone"] == "UTC" and isinstance(allowance, int) and isinstance(pair_cap, int)
    data = genesis_data(RULES, public_key_b64(KEY))
    ts = 1_700_000_000_000
    entry = make_entry(
        prev=None, room=ROOM, ts=ts, actor=BOT, kind=GENESIS, data=data, event=None, rules=rules
    )
    frontier = MerkleFrontier()
    checkpoints = []
    given: Counter[tuple[str, int]] = Counter()
    pairs: Counter[tuple[str, str, int]] = Counter()
    with path.open("wb") as out:
        out.write(encode_line(export_line(entry, None, None)))
        frontier.append(entry.leaf_hash())
        for seq in range(2, n + 1):
            ts += rng.randrange(1, 60_000)
            day = ts // DAY_MS
            while True:
                giver, receiver = rng.sample(users, 2)
                amount = rng.randrange(1, 4)
                if (
                    given[giver, day] + amount <= allowance
                    and pairs[giver, receiver, day] + amount <= pair_cap
                ):
                    break
            given[giver, day] += amount
            pairs[giver, receiver, day] += amount
            text, salt, commitment = None, None, None
            if seq % 4 == 0:
                text, salt = rng.choice(REASONS), rng.randbytes(16)
                commitment = commit_text(text, salt)
            entry = make_entry(
                prev=entry,
                room=ROOM,
                ts=ts,
                actor=giver,
                kind=KUDOS,
                data={
                    "to": receiver,
                    "amount": amount,
                    "via": "command",
                    "ref": None,
                    "text_sha256": commitment,
                },
                event=f"$event{seq}",
                rules=rules,
            )
            out.write(encode_line(export_line(entry, text, salt)))
            frontier.append(entry.leaf_hash())
            if ts // DAY_MS != (ts + 60_000) // DAY_MS or seq == n:
                cp = Checkpoint(ROOM, frontier.size, frontier.root().hex(), ts + 1)
                checkpoints.append(SignedCheckpoint.create(cp, KEY))
        for signed in checkpoints:
            out.write(encode_line(checkpoint_line(signed)))


@contextlib.contextmanager
def export_at(file: str | None, n: int) -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(file) if file else Path(tmp) / "export.jsonl"
        if path.exists():
            print(f"reusing {path} ({path.stat().st_size / 1e6:,.0f} MB)")
        else:
            started = time.perf_counter()
            build(path, n, random.Random(1))
            built = time.perf_counter() - started
            size_mb = path.stat().st_size / 1e6
            print(f"built {n:,} entries ({size_mb:,.0f} MB) in {built:.1f} s")
        yield path


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def in_process(path: Path, replay: bool, profile: bool) -> None:
    replayers: list[Replayer] = [ScoreBook(), ItemBook()] if replay else []
    profiler = cProfile.Profile() if profile else None
    with path.open("rb") as file:
        gc.disable()  # as `commons verify` does
        try:
            started, cpu_started = time.perf_counter(), time.process_time()
            if profiler:
                profiler.enable()
            result = verify_bytes(iter(lambda: file.read(CHUNK_BYTES), b""), replayers=replayers)
            if profiler:
                profiler.disable()
            seconds = time.perf_counter() - started
            cpu = time.process_time() - cpu_started
        finally:
            gc.enable()
    if not result.ok:
        raise SystemExit(f"verify failed: {result.problem}")
    # CPU time too: on a shared machine it is the steadier figure of the two.
    print(
        f"verify_bytes{' with replayers' if replayers else ''}: {result.entries:,} entries"
        f" and {result.checkpoints} checkpoints in {seconds:.2f} s ({cpu:.2f} s CPU):"
        f" {result.entries / seconds:,.0f} entries/s"
    )
    if profiler:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(15)


def command(path: Path, runs: int) -> None:
    timings = []
    for _ in range(runs):
        started, cpu_started = time.perf_counter(), time.process_time()
        workers_started = children_cpu()
        with contextlib.redirect_stdout(io.StringIO()) as out:
            code = commons(["verify", str(path)])
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
        workers = children_cpu() - workers_started
        if code:
            raise SystemExit("commons verify failed")
        timings.append((seconds, cpu, workers))
        entries = int(out.getvalue().split(" — ")[1].split(" ")[0])
        print(
            f"commons verify: {entries:,} entries in {seconds:.2f} s ({cpu:.2f} s CPU here,"
            f" {workers:.2f} s in workers): {entries / seconds:,.0f} entries/s"
        )
    if runs > 1:
        best = min(timings)
        median = sorted(timings)[len(timings) // 2]
        for name, (seconds, cpu, workers) in (("best", best), ("median", median)):
            print(f"  {name}: {seconds:.2f} s ({cpu + workers:.2f} s CPU in all)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("entries", nargs="?", type=int, default=1_000_000)
    parser.add_argument("--file", help="keep the export here; reuse it if it exists")
    parser.add_argument("--replay", action="store_true", help="replay scores and outcomes too")
    parser.add_argument("--cli", action="store_true", help="time `commons verify FILE` too")
    parser.add_argument("--runs", type=int, default=3, help="how many times to run the command")
    parser.add_argument("--profile", action="store_true", help="print the top functions")
    args = parser.parse_args()
    with export_at(args.file, args.entries) as path:
        in_process(path, args.replay, args.profile)
        if args.cli:
            command(path, args.runs)


if __name__ == "__main__":
    main()
