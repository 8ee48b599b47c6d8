"""The `commons` command: run the bot, check a config, and the offline tools.

Exit code 0 on success; otherwise one clear line on stderr and a non-zero code.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from nio import AsyncClient, AsyncClientConfig

from bot import __version__
from bot.config import Config, ConfigError, load_config
from bot.storage import Storage, StorageError

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


def _fail(message: str, code: int = 1) -> int:
    print(f"commons: {message}", file=sys.stderr)
    return code


async def run_bot(config: Config) -> None:
    from bot.app import Bot
    from bot.session import login

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
        bot = Bot(config, storage, client)
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


def cmd_check_config(args: argparse.Namespace) -> int:
    config = load_config(Path(args.config), os.environ)
    print(f"{args.config}: ok (bot {config.matrix.user_id} on {config.matrix.homeserver})")
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
