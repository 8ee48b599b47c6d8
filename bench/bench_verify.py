"""Benchmark: how fast `verify` checks a large ledger export.

Builds an export of N kudos entries (a quarter with a reason) and a daily checkpoint, written
through the real writer (`make_entry`, `export_line`, `encode_line`) into a temporary folder,
then times `verify_lines` over the file and prints entries per second and total seconds.

    .venv/bin/python bench/bench_verify.py [N] [--profile]      (N defaults to 1,000,000)
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import random
import tempfile
import time
from pathlib import Path

from consensus.checkpoint import Checkpoint, SignedCheckpoint, public_key_b64
from consensus.ledger import GENESIS, KUDOS, commit_text, genesis_data, make_entry, rules_hash
from consensus.merkle import MerkleFrontier
from consensus.verify import checkpoint_line, encode_line, export_line, verify_lines

ROOM = "!bench:example.org"
BOT = "@commons:example.org"
KEY = bytes(range(32))
RULES = {"timezone": "UTC", "kudos.daily_allowance": 10, "proposal.supermajority": "2/3"}
DAY_MS = 86_400_000
REASONS = ("for the soup", "für die Hilfe beim Umzug 🎉", "for fixing the door", "merci !")


def build(path: Path, n: int, rng: random.Random) -> None:
    users = [f"@user{i}:example.org" for i in range(1000)]
    rules = rules_hash(RULES)
    data = genesis_data(RULES, public_key_b64(KEY))
    ts = 1_700_000_000_000
    entry = make_entry(
        prev=None, room=ROOM, ts=ts, actor=BOT, kind=GENESIS, data=data, event=None, rules=rules
    )
    frontier = MerkleFrontier()
    checkpoints = []
    with path.open("wb") as out:
        out.write(encode_line(export_line(entry, None, None)))
        frontier.append(entry.leaf_hash())
        for seq in range(2, n + 1):
            ts += rng.randrange(1, 2000)
            giver, receiver = rng.sample(users, 2)
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
                    "amount": rng.randrange(1, 4),
                    "via": "command",
                    "ref": None,
                    "text_sha256": commitment,
                },
                event=f"$event{seq}",
                rules=rules,
            )
            out.write(encode_line(export_line(entry, text, salt)))
            frontier.append(entry.leaf_hash())
            if ts // DAY_MS != (ts + 2000) // DAY_MS or seq == n:
                cp = Checkpoint(ROOM, frontier.size, frontier.root().hex(), ts + 1)
                checkpoints.append(SignedCheckpoint.create(cp, KEY))
        for signed in checkpoints:
            out.write(encode_line(checkpoint_line(signed)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("entries", nargs="?", type=int, default=1_000_000)
    parser.add_argument("--profile", action="store_true", help="print the top functions")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "export.jsonl"
        started = time.perf_counter()
        build(path, args.entries, random.Random(1))
        built = time.perf_counter() - started
        size_mb = path.stat().st_size / 1e6
        print(f"built {args.entries:,} entries ({size_mb:,.0f} MB) in {built:.1f} s")
        profiler = cProfile.Profile() if args.profile else None
        with path.open("rb") as lines:
            started, cpu_started = time.perf_counter(), time.process_time()
            if profiler:
                profiler.enable()
            result = verify_lines(lines)
            if profiler:
                profiler.disable()
            seconds = time.perf_counter() - started
            cpu = time.process_time() - cpu_started
    if not result.ok:
        raise SystemExit(f"verify failed: {result.problem}")
    # CPU time too: on a shared machine it is the steadier figure of the two.
    print(
        f"verified {result.entries:,} entries and {result.checkpoints} checkpoints"
        f" in {seconds:.2f} s ({cpu:.2f} s CPU): {result.entries / seconds:,.0f} entries/s"
    )
    if profiler:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(15)


if __name__ == "__main__":
    main()
