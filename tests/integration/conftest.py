"""Fixtures that run the bot against a real Synapse on loopback.

Rule: one homeserver per test session (starting one costs ~1.5 s); everything a test creates on
it is unique (users get a counter suffix), so tests never see each other's rooms or users. The
bot runs as a real subprocess, exactly as an operator would start it.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.devserver import LocalSynapse, RegisteredUser

from .matrix_user import MatrixUser

REPO = Path(__file__).resolve().parents[2]
READY_MARKER = "commons: ready"
_serial = itertools.count(1)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(Path(__file__).parent):
            item.add_marker(pytest.mark.integration)


def unique_name(base: str) -> str:
    """A Matrix localpart no other test in this session uses."""
    return f"{base.lower()}-{next(_serial)}"


def deep_merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """`base` with `overrides` applied; nested dicts merge, anything else replaces."""
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


class BotProcess:
    """The bot as a subprocess, with its own fresh Matrix account, config and data folder."""

    def __init__(
        self,
        synapse: LocalSynapse,
        tmp_path: Path,
        *,
        config_overrides: dict[str, Any] | None = None,
        command: Sequence[str] | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.extra_env = dict(env or {})
        self.folder = tmp_path
        self.folder.mkdir(parents=True, exist_ok=True)
        self.user = synapse.register(unique_name("commons"))
        self.user_id = self.user.user_id
        self.config: dict[str, Any] = deep_merge(
            {
                "matrix": {
                    "homeserver": synapse.base_url,
                    "user_id": self.user_id,
                    "password": self.user.password,
                },
                "bot": {"data_dir": "./bot-data", "command_prefix": "!", "max_command_age": "24h"},
                "invites": {"allowed_servers": [synapse.server_name], "allowed_users": []},
                "rules": {"timezone": "UTC"},
            },
            config_overrides or {},
        )
        self.config_path = self.folder / "config.yaml"
        self.config_path.write_text(yaml.safe_dump(self.config, sort_keys=False))
        self.data_dir = self.folder / "bot-data"
        self.log_path = self.folder / "bot.log"
        # `command` exists so the harness itself can be tested with a stand-in bot.
        prefix = command or [sys.executable, "-m", "bot", "run", "--config"]
        self.command = [*prefix, str(self.config_path)]
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def returncode(self) -> int | None:
        return None if self._process is None else self._process.poll()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def start(self, timeout: float = 30) -> None:
        """Start the bot and wait until it logs the ready marker (after its first sync)."""
        assert self._process is None or self._process.poll() is not None, "already running"
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.extra_env}
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                self.command,
                cwd=REPO,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while True:
            with self.log_path.open("rb") as log:
                log.seek(offset)
                if READY_MARKER.encode() in log.read():
                    return
            code = self._process.poll()
            if code is not None:
                pytest.fail(f"bot exited with code {code} before ready; log:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.kill()
                pytest.fail(f"bot not ready after {timeout} s; log:\n{self.log_tail()}")
            time.sleep(0.05)

    def stop(self, timeout: float = 15) -> int | None:
        """SIGTERM and wait (SIGKILL after `timeout` s); returns the exit code."""
        process = self._process
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return process.returncode

    def kill(self) -> None:
        """SIGKILL: a crash at an arbitrary point."""
        process = self._process
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()

    def restart(self, timeout: float = 30) -> None:
        self.stop()
        self.start(timeout)


@pytest.fixture(scope="session")
def synapse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSynapse]:
    server = LocalSynapse(tmp_path_factory.mktemp("synapse"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def register(synapse: LocalSynapse) -> Callable[..., RegisteredUser]:
    """`register("alice")` -> a fresh user `@alice-<n>:localhost` (`admin=True` allowed)."""

    def make(name: str, *, admin: bool = False) -> RegisteredUser:
        return synapse.register(unique_name(name), admin=admin)

    return make


@pytest.fixture
async def user_factory(
    synapse: LocalSynapse,
    register: Callable[..., RegisteredUser],
    tmp_path: Path,
) -> AsyncIterator[Callable[[str | RegisteredUser], Awaitable[MatrixUser]]]:
    """`await user_factory("alice")` -> a fresh syncing MatrixUser (or one for a given user)."""
    users: list[MatrixUser] = []

    async def make(who: str | RegisteredUser) -> MatrixUser:
        account = register(who) if isinstance(who, str) else who
        store = tmp_path / "nio" / f"{account.user_id}-{account.device_id}".strip("@")
        user = await MatrixUser.login(synapse.base_url, account, store)
        users.append(user)
        return user

    yield make
    for user in users:
        await user.close()


@pytest.fixture
def bot_factory(synapse: LocalSynapse, tmp_path: Path) -> Iterator[Callable[..., BotProcess]]:
    """`bot_factory(config_overrides=None, *, start=True)` -> a BotProcess (ready if started)."""
    bots: list[BotProcess] = []

    def make(
        config_overrides: dict[str, Any] | None = None,
        *,
        start: bool = True,
        command: Sequence[str] | None = None,
        env: dict[str, str] | None = None,
    ) -> BotProcess:
        folder = tmp_path / f"bot{len(bots) + 1}"
        bot = BotProcess(
            synapse, folder, config_overrides=config_overrides, command=command, env=env
        )
        bots.append(bot)
        if start:
            bot.start()
        return bot

    yield make
    for bot in bots:
        bot.kill()
