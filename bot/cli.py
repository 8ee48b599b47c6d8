"""The `commons` command: run the bot, check a config, and the offline tools.

Exit code 0 on success; otherwise one clear line on stderr and a non-zero code. Each command
imports the bot's heavy parts (matrix-nio, storage) only when it needs them: `commons verify`
needs neither, and matrix-nio alone takes longer to import than a 100k-entry export to verify.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import re
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from bot import __version__
from bot.config import Config, ConfigError, load_config

if TYPE_CHECKING:
    from bot.storage import Storage

log = logging.getLogger("commons")


class SecretFilter(logging.Filter):
    """Blanks out known secrets in every log record, whoever logs them (us or a library)."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            message = record.getMessage()
            for secret in self.secrets:
                if secret and secret in message:
                    message = message.replace(secret, "***")
            record.msg, record.args = message, None
        return True


SECRETS = SecretFilter()


def setup_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(SECRETS)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # nio logs every event it parses at INFO; keep ours readable.
    logging.getLogger("nio").setLevel(max(logging.WARNING, root.level))
    logging.getLogger("apscheduler").setLevel(max(logging.WARNING, root.level))


def _fail(message: str, code: int = 1) -> int:
    print(f"commons: {message}", file=sys.stderr)
    return code


async def run_bot(config: Config) -> None:
    from nio import AsyncClient, AsyncClientConfig

    from bot.app import Bot
    from bot.keys import load_or_create
    from bot.session import login
    from bot.storage import Storage

    storage = await Storage.open(config.bot.data_dir / "commons.db")
    token = await storage.get_kv("session.access_token")
    if token:
        SECRETS.secrets.add(token)
    client = AsyncClient(
        config.matrix.homeserver,
        config.matrix.user_id,
        config=AsyncClientConfig(
            max_limit_exceeded=0,  # we wait out 429s ourselves, per room, in the outbox
            max_timeouts=0,  # and back off from network errors ourselves
            store_sync_tokens=False,
            encryption_enabled=False,
            request_timeout=90,
        ),
    )
    try:
        await login(client, config, storage)
        if client.access_token:
            SECRETS.secrets.add(client.access_token)
        bot = Bot(config, storage, client, load_or_create(config.bot.data_dir))
        # Everything loaded so far lives as long as the process: keep the garbage collector
        # from walking it again on every collection (reports build 100k objects at once).
        gc.freeze()
        task = asyncio.current_task()

        def shutdown() -> None:
            # Cancelling interrupts a long-poll at once; an open transaction rolls back and
            # its batch is simply fetched again at the next start.
            bot.stop()
            if task is not None:
                task.cancel()

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, shutdown)
        await bot.run()
    finally:
        await client.close()
        await storage.close()


def cmd_run(args: argparse.Namespace) -> int:
    from bot.app import FatalError
    from bot.session import LoginFailed
    from bot.storage import StorageError

    config = load_config(Path(args.config), os.environ)
    SECRETS.secrets.update(s for s in (config.matrix.password, config.matrix.access_token) if s)
    setup_logging(config.bot.log_level)
    try:
        asyncio.run(run_bot(config))
    except asyncio.CancelledError:
        log.info("stopped")
    except (FatalError, LoginFailed, StorageError) as exc:
        return _fail(str(exc))
    return 0


async def open_room_storage(config: Config, room: str) -> Storage:
    """The database, for offline tools; StorageError if it or the room's ledger is missing."""
    from bot.storage import Storage, StorageError

    path = config.bot.data_dir / "commons.db"
    if not path.exists():
        raise StorageError(f"{path}: no database here yet")
    storage = await Storage.open(path)
    async with storage.read() as tx:
        found = await tx.ledger_head(room)
    if found is None:
        await storage.close()
        raise StorageError(f"no ledger for room {room} in {path}")
    return storage


def cmd_check_config(args: argparse.Namespace) -> int:
    config = load_config(Path(args.config), os.environ)
    print(f"{args.config}: ok (bot {config.matrix.user_id} on {config.matrix.homeserver})")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from bot.export import write_export
    from bot.storage import StorageError

    config = load_config(Path(args.config), os.environ)

    async def export() -> int:
        storage = await open_room_storage(config, args.room)
        try:
            if args.out:
                with open(args.out, "wb") as out:
                    return await write_export(storage, args.room, out)
            return await write_export(storage, args.room, sys.stdout.buffer)
        finally:
            await storage.close()

    try:
        count = asyncio.run(export())
    except (StorageError, OSError) as exc:
        return _fail(str(exc))
    print(f"exported {count} entries of {args.room}", file=sys.stderr)
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from collections import deque
    from collections.abc import Callable, Iterable, Iterator
    from concurrent.futures import Future, ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool
    from contextlib import ExitStack
    from typing import TypeVar

    from consensus.bulk import gc_paused
    from consensus.items import ItemBook
    from consensus.scoring import ScoreBook
    from consensus.verify import CHUNK_BYTES, ChunkMap, verify_bytes

    In = TypeVar("In")
    Out = TypeVar("Out")
    # Worker processes check blocks of lines while this one runs the chain and the replays on
    # the results, in order, as they come; below a few blocks starting them costs more than
    # they save.
    if hasattr(os, "sched_getaffinity"):
        workers = len(os.sched_getaffinity(0))
    else:
        workers = os.cpu_count() or 1
    try:
        parallel = workers > 1 and os.path.getsize(args.file) > 4 * CHUNK_BYTES
    except OSError as exc:
        return _fail(f"{args.file}: {exc.strerror or exc}")

    def read_ahead(pool: ProcessPoolExecutor) -> Callable[..., Iterator[Out]]:
        def map_chunks(fn: Callable[[In], Out], chunks: Iterable[In]) -> Iterator[Out]:
            # Executor.map would read the whole file at once; a few chunks ahead keep the
            # workers busy and memory flat.
            pending: deque[Future[Out]] = deque()
            for chunk in chunks:
                pending.append(pool.submit(fn, chunk))
                if len(pending) > 2 * workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()

        return map_chunks

    # The replay keeps a million small objects and makes no cycles (see `gc_paused`).
    try:
        with gc_paused(), open(args.file, "rb") as file, ExitStack() as stack:
            map_chunks: ChunkMap = map
            if parallel:
                pool = ProcessPoolExecutor(workers, initializer=gc.disable)
                map_chunks = read_ahead(stack.enter_context(pool))
            result = verify_bytes(
                iter(lambda: file.read(CHUNK_BYTES), b""),
                key=args.key,
                checkpoints=args.checkpoint,
                # The replayers recompute every score and every recorded outcome.
                replayers=[ScoreBook(), ItemBook()],
                map_chunks=map_chunks,
            )
    except OSError as exc:
        return _fail(f"{args.file}: {exc.strerror or exc}")
    except BrokenProcessPool:
        return _fail(f"{args.file}: a worker process stopped; nothing was verified")
    if not result.ok:
        return _fail(f"{args.file}: {result.problem}")
    print(
        f"{args.file}: ok — {result.entries} entries, {result.checkpoints} checkpoints, "
        f"root {result.root}"
    )
    return 0


def cmd_rules_set(args: argparse.Namespace) -> int:
    """An operator override: recorded in the ledger and announced in the room."""
    from bot.storage import StorageError
    from commands.render import Reply, message_content, seq, txn_id
    from consensus.ledger import MOD_OVERRIDE
    from consensus.rules import RuleError, format_rule_value, parse_rule

    config = load_config(Path(args.config), os.environ)
    try:
        value = parse_rule(args.key, args.value)
    except RuleError as exc:
        return _fail(str(exc))

    async def override() -> int:
        storage = await open_room_storage(config, args.room)
        try:
            async with storage.write() as tx:
                entry = await tx.append(
                    args.room,
                    ts=int(time.time() * 1000),
                    actor=config.matrix.user_id,
                    kind=MOD_OVERRIDE,
                    data={"key": args.key, "value": value, "text_sha256": None},
                    event=None,
                    rule_source="operator override",
                )
                text = (
                    f"The operator of this bot overrode a room rule: {args.key} is now "
                    f"{format_rule_value(value)} (ledger entry #{entry.seq}). Rules normally "
                    "change only by a passed proposal; this override is public in the ledger "
                    "and in the next report."
                )
                content = message_content(Reply(seq(text), as_reply=False))
                source = f"override:{args.room}:{entry.seq}"
                await tx.enqueue(
                    args.room, txn_id(source, at=entry.ts), "m.room.message", content, entry.ts
                )
                return entry.seq
        finally:
            await storage.close()

    try:
        seq_no = asyncio.run(override())
    except StorageError as exc:
        return _fail(str(exc))
    print(
        f"{args.key} = {args.value} in {args.room} (ledger entry #{seq_no}); the bot announces it"
    )
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """A room's report for a day, offline from the database (Markdown on standard output)."""
    from bot.app import NioRoomView
    from bot.clock import now_ms
    from bot.roomstate import RoomState
    from bot.storage import StorageError
    from commands.context import Context, Services
    from commands.declare import REGISTRY
    from commands.report_render import report_markdown
    from commands.reports import checkpoint_info, gather_report
    from consensus import scoring

    config = load_config(Path(args.config), os.environ)

    async def build() -> str:
        storage = await open_room_storage(config, args.room)
        try:
            async with storage.read() as tx:
                head = await tx.ledger_head(args.room)
                assert head is not None  # noqa: S101 (open_room_storage checked it)
                state = RoomState(args.room)
                for user_id in await tx.members_since(args.room):
                    state.members[user_id] = None
                now = now_ms()
                day = args.date or scoring.local_day(now, head.rules.timezone)
                ctx = Context(
                    room_id=args.room,
                    sender=config.matrix.user_id,
                    event_id="cli:report",
                    event_ts=now,
                    now_ms=now,
                    source_ts=now,
                    prefix=config.bot.command_prefix,
                    bot_user_id=config.matrix.user_id,
                    room=NioRoomView(state, None),
                    registry=REGISTRY,
                    store=tx,
                    services=Services(new_salt=lambda: b"", public_key="", signing_key=b""),
                    rules=head.rules,
                )
                checkpoints = await tx.checkpoints(args.room)
                latest = (
                    checkpoint_info(checkpoints[-1].signed, None, None) if checkpoints else None
                )
                return report_markdown(await gather_report(ctx, day, latest))
        finally:
            await storage.close()

    if args.date is not None and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", args.date):
        return _fail(f"--date must look like 2026-11-26, not {args.date!r}")
    try:
        print(asyncio.run(build()), end="")
    except StorageError as exc:
        return _fail(str(exc))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="commons", description="Commons: a Matrix bot for self-organising communities."
    )
    parser.add_argument("--version", action="version", version=f"commons {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the bot")
    run.add_argument("--config", required=True, help="path to config.yaml")
    run.set_defaults(func=cmd_run)
    check = sub.add_parser("check-config", help="load a config file and report the first error")
    check.add_argument("--config", required=True)
    check.set_defaults(func=cmd_check_config)
    export = sub.add_parser("export", help="write a room's ledger as JSON Lines")
    export.add_argument("--config", required=True)
    export.add_argument("--room", required=True, help="the room ID")
    export.add_argument("--out", help="file to write (default: standard output)")
    export.set_defaults(func=cmd_export)
    verify = sub.add_parser("verify", help="check an exported ledger; needs nothing but the file")
    verify.add_argument("file")
    verify.add_argument("--key", help="the bot's public key you trust (unpadded base64)")
    verify.add_argument(
        "--checkpoint",
        action="append",
        default=[],
        help="a signed checkpoint copied from the room (repeatable)",
    )
    verify.set_defaults(func=cmd_verify)
    report = sub.add_parser("report", help="a room's daily report, offline from the database")
    report.add_argument("--config", required=True)
    report.add_argument("--room", required=True)
    report.add_argument("--date", help="the local day, YYYY-MM-DD (default: today so far)")
    report.set_defaults(func=cmd_report)
    rules = sub.add_parser("rules", help="operator overrides of room rules")
    rules_sub = rules.add_subparsers(dest="rules_command", required=True)
    rules_set = rules_sub.add_parser(
        "set", help="override a room rule (announced in the room and logged in its ledger)"
    )
    rules_set.add_argument("--config", required=True)
    rules_set.add_argument("--room", required=True)
    rules_set.add_argument("key")
    rules_set.add_argument("value")
    rules_set.set_defaults(func=cmd_rules_set)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except ConfigError as exc:
        return _fail(str(exc), 2)
    except KeyboardInterrupt:
        return 130
    return code
