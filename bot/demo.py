"""Try Commons in one command: a local homeserver, two accounts, a room, and the bot running.

Rule: everything lives in ./demo (gitignored) and is reused by the next run (same accounts,
passwords and room); nothing listens beyond 127.0.0.1, and the homeserver stops with the demo.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import subprocess
import sys
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import yaml

from bot.devserver import LocalSynapse, MatrixRequestError, RegisteredUser, request_json

ROOM_NAME = "Commons demo"
BOT_NAME = "commons"
USER_NAME = "demo"


@dataclass(frozen=True)
class DemoSetup:
    bot: RegisteredUser
    user: RegisteredUser
    room_id: str
    config_path: Path


def load_credentials(path: Path) -> dict[str, str]:
    """`name=password` lines; comments and blank lines ignored."""
    if not path.exists():
        return {}
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {name.strip(): value.strip() for name, value in pairs if not name.startswith("#")}


def save_credentials(path: Path, passwords: dict[str, str]) -> None:
    lines = ["# Commons demo accounts (delete the demo folder to start over)"]
    lines += [f"{name}={password}" for name, password in passwords.items()]
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)


def _room_path(room_id: str, rest: str) -> str:
    return f"/_matrix/client/v3/rooms/{urllib.parse.quote(room_id, safe='')}/{rest}"


def find_or_create_room(base_url: str, user: RegisteredUser, bot_id: str) -> str:
    """The demo user's room named ROOM_NAME, created (with the bot invited) if missing."""
    token = user.access_token
    joined = request_json(base_url, "GET", "/_matrix/client/v3/joined_rooms", access_token=token)
    rooms: list[str] = joined.get("joined_rooms", [])
    for room_id in rooms:
        try:
            name = request_json(
                base_url, "GET", _room_path(room_id, "state/m.room.name"), access_token=token
            )
        except MatrixRequestError:
            continue  # a room without a name
        if name.get("name") == ROOM_NAME:
            _ensure_invited(base_url, token, room_id, bot_id)
            return room_id
    body = {"name": ROOM_NAME, "preset": "private_chat", "invite": [bot_id]}
    created = request_json(
        base_url, "POST", "/_matrix/client/v3/createRoom", body, access_token=token
    )
    new_room: str = created["room_id"]
    return new_room


def _ensure_invited(base_url: str, token: str, room_id: str, bot_id: str) -> None:
    # The bot may have left (or been kicked) since the last run.
    member = _room_path(room_id, f"state/m.room.member/{urllib.parse.quote(bot_id, safe='')}")
    try:
        membership = request_json(base_url, "GET", member, access_token=token).get("membership")
    except MatrixRequestError:
        membership = None
    if membership not in ("join", "invite"):
        invite = _room_path(room_id, "invite")
        request_json(base_url, "POST", invite, {"user_id": bot_id}, access_token=token)


def write_config(demo_dir: Path, base_url: str, bot: RegisteredUser, server_name: str) -> Path:
    config = {
        "matrix": {"homeserver": base_url, "user_id": bot.user_id, "password": bot.password},
        "bot": {"data_dir": "./bot-data", "command_prefix": "!", "max_command_age": "24h"},
        "invites": {"allowed_servers": [server_name], "allowed_users": []},
        "rules": {"timezone": "UTC"},
    }
    path = demo_dir / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)
    return path


def prepare(demo_dir: Path, synapse: LocalSynapse) -> DemoSetup:
    """Accounts, room and bot config on a running homeserver; idempotent across runs."""
    credentials = demo_dir / "credentials.txt"
    passwords = load_credentials(credentials)
    try:
        bot = synapse.register(BOT_NAME, passwords.get(BOT_NAME))
        user = synapse.register(USER_NAME, passwords.get(USER_NAME))
    except MatrixRequestError as error:
        raise SystemExit(
            f"demo: cannot log in to the demo accounts ({error}); delete {demo_dir} to start over"
        ) from None
    save_credentials(credentials, {BOT_NAME: bot.password, USER_NAME: user.password})
    room_id = find_or_create_room(synapse.base_url, user, bot.user_id)
    # Each run logs in again; drop those sessions so the accounts don't pile up devices.
    for account in (bot, user):
        with contextlib.suppress(MatrixRequestError):
            request_json(
                synapse.base_url, "POST", "/_matrix/client/v3/logout", {},
                access_token=account.access_token,
            )  # fmt: skip
    config_path = write_config(demo_dir, synapse.base_url, bot, synapse.server_name)
    return DemoSetup(bot=bot, user=user, room_id=room_id, config_path=config_path)


def instructions(setup: DemoSetup, synapse: LocalSynapse, demo_dir: Path) -> str:
    return f"""
================================ Commons demo ================================
Log in with any Matrix client (Element Desktop, or https://app.element.io:
"Sign in", then edit the homeserver):

  Homeserver   {synapse.base_url}
  User         {USER_NAME}   (Matrix ID {setup.user.user_id})
  Password     {setup.user.password}
  Room         "{ROOM_NAME}"  {setup.room_id}
               you are in it and the bot {setup.bot.user_id} is invited

Say !help in the room. Everything is kept in {demo_dir} (passwords in
credentials.txt); delete that folder to start over. Ctrl-C stops the demo.
==============================================================================
"""


def _raise_exit(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def run_bot(config_path: Path) -> int:
    """The bot in the foreground; returns its exit code (0 after Ctrl-C)."""
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "bot", "run", "--config", str(config_path)]
    )
    interrupted = False
    try:
        return process.wait()
    except KeyboardInterrupt:
        interrupted = True
        return 0
    finally:
        # A second Ctrl-C must not leave the bot or the homeserver behind.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        _stop(process, already_signalled=interrupted)


def _stop(process: subprocess.Popen[bytes], *, already_signalled: bool) -> None:
    if process.poll() is not None:
        return
    if already_signalled:  # Ctrl-C reached the bot too: let it finish on its own first
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(10)
        if process.poll() is not None:
            return
    process.terminate()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/demo", description=__doc__)
    parser.add_argument("--port", type=int, default=8008, help="homeserver port (8008)")
    parser.add_argument("--dir", type=Path, default=Path("demo"), help="data folder (./demo)")
    args = parser.parse_args(argv)
    demo_dir: Path = args.dir.resolve()
    demo_dir.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, _raise_exit)

    synapse = LocalSynapse(demo_dir / "synapse", port=args.port)
    print(f"Starting the homeserver on {synapse.base_url} ...", flush=True)
    try:
        synapse.start()
    except RuntimeError as error:
        print(f"demo: {error}", file=sys.stderr)
        if "already in use" in str(error):
            print("demo: choose another one with --port", file=sys.stderr)
        return 1
    try:
        setup = prepare(demo_dir, synapse)
        print(instructions(setup, synapse, demo_dir), flush=True)
        return run_bot(setup.config_path)
    finally:
        print("Stopping the homeserver ...", flush=True)
        synapse.stop()


if __name__ == "__main__":
    sys.exit(main())
