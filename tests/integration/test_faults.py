"""Faults with their own homeserver: Synapse killed and restarted under the bot."""

from __future__ import annotations

import asyncio
import re
import time

from bot.devserver import LocalSynapse

from .conftest import BotProcess
from .matrix_user import MatrixUser
from .test_foundation import ask, body, room_with_bot


async def test_the_homeserver_going_away_and_coming_back(tmp_path):
    server = LocalSynapse(tmp_path / "synapse")
    server.start()
    bot = BotProcess(server, tmp_path / "bot")
    alice: MatrixUser | None = None
    try:
        bot.start()
        account = server.register("alice")
        alice = await MatrixUser.login(server.base_url, account, tmp_path / "a")
        room_id = await room_with_bot(alice, bot)
        await ask(alice, room_id, "!help")
        await alice.close()
        alice = None

        server.stop()
        started = time.monotonic()
        await asyncio.sleep(8)
        down_for = time.monotonic() - started
        failures = len(re.findall(r"sync failed", bot.log_text()))
        # Backoff with jitter: a handful of attempts while down, never a hot loop.
        assert 1 <= failures <= 8, f"{failures} sync attempts in {down_for:.0f} s"
        assert bot.returncode is None  # still running, waiting for the server

        server.start()
        alice = await MatrixUser.login(server.base_url, account, tmp_path / "b")
        await alice.join(room_id)  # already a member: this waits until its sync has the room
        sent = await alice.send_text(room_id, "!help nothing")
        reply = await alice.wait_reply(room_id, sent, timeout=90)
        assert body(reply) == "There is no command !nothing; send !help for the list."
    finally:
        if alice is not None:
            await alice.close()
        bot.kill()
        server.stop()
