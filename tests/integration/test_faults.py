"""Faults with their own homeserver: Synapse killed and restarted under the bot."""

from __future__ import annotations

import asyncio
import re
import time
from urllib.parse import quote

from bot.devserver import LocalSynapse, request_json

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


async def test_replies_wait_out_429s_and_none_is_lost(tmp_path):
    # Synapse's default message limit (0.2/s, burst 10) applies to the bot here.
    server = LocalSynapse(tmp_path / "synapse", relaxed_rate_limits=False)
    server.start()
    bot = BotProcess(server, tmp_path / "bot")
    alice: MatrixUser | None = None
    try:
        bot.start()
        account = server.register("alice", admin=True)
        # The test user herself may send fast; only the bot is limited.
        request_json(
            server.base_url,
            "POST",
            f"/_synapse/admin/v1/users/{quote(account.user_id)}/override_ratelimit",
            {"messages_per_second": 0, "burst_count": 0},
            access_token=account.access_token,
        )
        alice = await MatrixUser.login(server.base_url, account, tmp_path / "a")
        room_id = await room_with_bot(alice, bot)
        sent = [await alice.send_text(room_id, f"!help x{i}") for i in range(12)]
        for i, event_id in enumerate(sent):
            reply = await alice.wait_reply(room_id, event_id, timeout=90)
            assert body(reply) == f"There is no command !x{i}; send !help for the list."
        assert "rate limited" in bot.log_text()
        for event_id in sent:
            assert len(alice.replies_to(room_id, event_id)) == 1
    finally:
        if alice is not None:
            await alice.close()
        bot.kill()
        server.stop()
