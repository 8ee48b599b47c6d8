"""The shell's event handling without a homeserver: synthetic events into a real database."""

import logging
from pathlib import Path

import pytest

from bot.app import CRASHED, Bot, SaltPool, event_time
from bot.config import load_config
from bot.storage import Storage
from commands.declare import Command, Registry
from commands.render import Reply, seq

BOT = "@commons:localhost"
ALICE = "@alice:localhost"
ROOM = "!room:localhost"


def config(tmp_path: Path):
    path = tmp_path / "config.yaml"
    path.write_text(
        f'matrix: {{homeserver: "http://127.0.0.1:1", user_id: "{BOT}", password: "pw"}}\n'
        "bot: {data_dir: ./data}\n"
    )
    return load_config(path, {})


def event(event_id, body, ts=1_000, sender=ALICE, **content):
    return {
        "type": "m.room.message",
        "event_id": event_id,
        "sender": sender,
        "origin_server_ts": ts,
        "content": {"msgtype": "m.text", "body": body, **content},
    }


def join(event_id="$join", ts=500):
    return {
        "type": "m.room.member",
        "state_key": BOT,
        "sender": BOT,
        "event_id": event_id,
        "origin_server_ts": ts,
        "content": {"membership": "join"},
    }


@pytest.fixture
async def bot(tmp_path):
    storage = await Storage.open(tmp_path / "c.db")
    try:
        yield Bot(config(tmp_path), storage, client=None, signing_key=bytes(range(32)))
    finally:
        await storage.close()


async def handle(bot, timeline, received=2_000, initial=False):
    async with bot.storage.write() as tx:
        await bot._handle_room(tx, ROOM, [], timeline, received, initial)


async def bodies(bot):
    return [row.content["body"] for row in await bot.storage.pending_outbox()]


def test_salts_are_fresh_and_never_handed_out_twice():
    pool = SaltPool(16, per_read=4)
    salts = [pool.take() for _ in range(50)]  # across a dozen reads from the system
    assert all(len(s) == 16 for s in salts)
    assert len(set(salts)) == 50


def test_event_time_is_clamped():
    assert event_time(origin_ts=50, joined_ts=100, received_ms=200) == 100
    assert event_time(origin_ts=150, joined_ts=100, received_ms=200) == 150
    assert event_time(origin_ts=999, joined_ts=100, received_ms=200) == 200


async def test_only_events_after_the_join_count(bot):
    await handle(bot, [event("$old", "!help"), join(), event("$new", "!nope")])
    out = await bodies(bot)
    assert len(out) == 2 and out[0].startswith("Hello! I'm Commons.")
    assert out[1] == "I don't know the command !nope; send !help for the list."


async def test_a_replayed_batch_changes_nothing(bot):
    timeline = [join(), event("$a", "!nope")]
    await handle(bot, timeline)
    await handle(bot, timeline)
    assert len(await bodies(bot)) == 2


async def test_a_crashing_handler_is_answered_with_a_reference(bot, caplog):
    registry = Registry()

    async def explode(ctx, args):
        raise ZeroDivisionError("bug")

    async def fine(ctx, args):
        return Reply(seq("fine"))

    registry.add(Command(name="explode", section="T", summary="s", handler=explode))
    registry.add(Command(name="fine", section="T", summary="s", handler=fine))
    bot.registry = registry
    with caplog.at_level(logging.ERROR):
        await handle(bot, [join(), event("$x", "!explode"), event("$y", "!fine")])
    out = await bodies(bot)
    ref = caplog.records[0].getMessage().split("(ref ")[1].rstrip(")")
    assert out[1] == CRASHED.format(ref=ref)
    assert out[2] == "fine"  # the bot went on with the next event
    assert caplog.records[0].exc_info is not None


async def test_notices_and_own_messages_are_not_commands(bot):
    await handle(
        bot,
        [join(), event("$n", "!help", msgtype="m.notice"), event("$o", "!help", sender=BOT)],
    )
    assert len(await bodies(bot)) == 1  # the welcome only


async def test_first_sync_of_a_new_database_treats_old_rooms_as_history(bot):
    await handle(bot, [event("$a", "!nope", ts=1_500)], initial=True)
    assert await bodies(bot) == []
    await handle(bot, [event("$b", "!nope", ts=2_500)], received=3_000)
    assert await bodies(bot) == ["I don't know the command !nope; send !help for the list."]
