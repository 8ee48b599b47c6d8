"""The bot for real: a Synapse on loopback, the bot as a subprocess, users as nio clients."""

from __future__ import annotations

import asyncio
import sqlite3

from bot.app import EDITED, ENCRYPTED_NOTICE
from bot.devserver import request_json


def is_notice_from(sender):
    def match(event):
        return (
            event.get("sender") == sender
            and event.get("type") == "m.room.message"
            and event["content"].get("msgtype") == "m.notice"
        )

    return match


def body(event) -> str:
    return event["content"]["body"]


async def room_with_bot(user, bot):
    """A room `user` made and invited the bot to, once the bot has posted its welcome."""
    room_id = await user.create_room(invite=[bot.user_id], name="test")
    welcome = await user.wait_for(room_id, is_notice_from(bot.user_id))
    assert "public ledger" in body(welcome)
    assert welcome["content"]["m.mentions"] == {}
    return room_id


async def ask(user, room_id, text, **kwargs):
    event_id = await user.send_text(room_id, text, **kwargs)
    reply = await user.wait_reply(room_id, event_id)
    return event_id, reply


async def test_help_round_trip(bot_factory, user_factory):
    bot = bot_factory()
    alice = await user_factory("alice")
    room_id = await room_with_bot(alice, bot)
    _, reply = await ask(alice, room_id, "!help")
    content = reply["content"]
    assert reply["sender"] == bot.user_id
    assert content["msgtype"] == "m.notice"
    assert content["m.mentions"] == {}
    assert "!help — lists the commands" in content["body"]
    assert "<ul>" in content["formatted_body"]
    _, reply = await ask(alice, room_id, "!help help")
    assert "!help [<command>]" in body(reply)
    # Secrets never reach the log: the password, the access token, the signing key.
    log_text = bot.log_text()
    assert bot.user.password not in log_text
    signing_key = (bot.data_dir / "signing.key").read_text().strip()
    assert signing_key not in log_text
    with sqlite3.connect(bot.data_dir / "commons.db") as db:
        (token,) = db.execute("SELECT value FROM kv WHERE key = 'session.access_token'").fetchone()
    assert token not in log_text


async def test_unknown_command_and_bad_input(bot_factory, user_factory):
    bot = bot_factory()
    alice = await user_factory("alice")
    room_id = await room_with_bot(alice, bot)
    _, reply = await ask(alice, room_id, "!frobnicate <b>now</b>")
    assert body(reply) == "I don't know the command !frobnicate; send !help for the list."
    _, reply = await ask(alice, room_id, "!help <script>x</script>")
    assert "<script>" not in reply["content"]["formatted_body"]
    assert "&lt;script&gt;" in reply["content"]["formatted_body"]
    # A 70 KB command is still answered with one sentence.
    _, reply = await ask(alice, room_id, "!help " + "x" * 60_000)
    assert body(reply).startswith("There is no command !x")
    assert len(body(reply)) < 61_000


async def test_reply_in_a_thread_stays_in_the_thread(bot_factory, user_factory):
    bot = bot_factory()
    alice = await user_factory("alice")
    room_id = await room_with_bot(alice, bot)
    root = await alice.send_text(room_id, "a thread")
    _, reply = await ask(alice, room_id, "!help", thread_root=root)
    relates = reply["content"]["m.relates_to"]
    assert relates["rel_type"] == "m.thread"
    assert relates["event_id"] == root
    assert relates["is_falling_back"] is False


async def test_edited_command_is_not_run_again(bot_factory, user_factory):
    bot = bot_factory()
    alice = await user_factory("alice")
    mallory = await user_factory("mallory")
    room_id = await room_with_bot(alice, bot)
    await alice.invite(room_id, mallory.user_id)
    await mallory.join(room_id)
    original, _ = await ask(alice, room_id, "!help")

    def edit(text):
        return {
            "msgtype": "m.text",
            "body": "* " + text,
            "m.new_content": {"msgtype": "m.text", "body": text},
            "m.relates_to": {"rel_type": "m.replace", "event_id": original},
        }

    forged = await mallory.send_event(room_id, "m.room.message", edit("!help kudos"))
    edited = await alice.send_event(room_id, "m.room.message", edit("!help help"))
    reply = await alice.wait_reply(room_id, edited)
    assert body(reply) == EDITED
    # Barrier: a later command's reply means everything before it was handled.
    await ask(alice, room_id, "!help")
    assert alice.replies_to(room_id, forged) == []
    assert len(alice.replies_to(room_id, original)) == 1


async def test_invite_from_a_server_not_allowed_is_ignored(bot_factory, user_factory):
    bot = bot_factory({"invites": {"allowed_servers": ["otherhost"]}})
    alice = await user_factory("alice")
    room_id = await alice.create_room(invite=[bot.user_id])
    for _ in range(200):
        if f"ignored the invite to {room_id}" in bot.log_text():
            break
        await asyncio.sleep(0.05)
    assert f"from {alice.user_id}: the server localhost is not in invites.allowed_servers" in (
        bot.log_text()
    )
    members = await alice.client.joined_members(room_id)
    assert bot.user_id not in [m.user_id for m in members.members]


async def test_history_from_before_the_join_is_ignored(bot_factory, user_factory):
    bot = bot_factory()
    alice = await user_factory("alice")
    room_id = await alice.create_room(name="old history")
    old = [await alice.send_text(room_id, f"!help {i}") for i in range(3)]
    await alice.invite(room_id, bot.user_id)
    await alice.wait_for(room_id, is_notice_from(bot.user_id))
    await ask(alice, room_id, "!help")
    for event_id in old:
        assert alice.replies_to(room_id, event_id) == []


async def test_commands_sent_while_the_bot_is_down_get_exactly_one_reply(
    bot_factory, user_factory
):
    bot = bot_factory()
    alice = await user_factory("alice")
    room_id = await room_with_bot(alice, bot)
    await ask(alice, room_id, "!help")
    bot.kill()
    sent = [await alice.send_text(room_id, f"!help nope{i}") for i in range(5)]
    bot.start()
    replies = [await alice.wait_reply(room_id, event_id) for event_id in sent]
    assert [body(r) for r in replies] == [
        f"There is no command !nope{i}; send !help for the list." for i in range(5)
    ]
    # Killed again straight after answering, and restarted: nothing is answered twice.
    bot.kill()
    bot.start()
    await ask(alice, room_id, "!help")
    for event_id in sent:
        assert len(alice.replies_to(room_id, event_id)) == 1
    with sqlite3.connect(bot.data_dir / "commons.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)


async def test_a_long_downtime_is_paged_back_in_order(bot_factory, user_factory):
    bot = bot_factory()
    alice = await user_factory("alice")
    room_id = await room_with_bot(alice, bot)
    bot.stop()
    # More than one sync timeline holds (100), so the bot must page back to find them all.
    sent = [await alice.send_text(room_id, f"!help n{i}") for i in range(50)]
    for i in range(80):
        await alice.send_text(room_id, f"chatter {i}")
    bot.start()
    last = await alice.wait_reply(room_id, sent[-1], timeout=60)
    assert body(last) == "There is no command !n49; send !help for the list."
    await ask(alice, room_id, "!help")
    replies = [alice.replies_to(room_id, e) for e in sent]
    assert all(len(r) == 1 for r in replies)
    order = [alice.events(room_id).index(r[0]) for r in replies]
    assert order == sorted(order)


async def test_stale_commands_are_answered_expired(bot_factory, user_factory):
    bot = bot_factory({"bot": {"max_command_age": "2s"}})
    alice = await user_factory("alice")
    room_id = await room_with_bot(alice, bot)
    bot.kill()
    stale = await alice.send_text(room_id, "!help")
    await asyncio.sleep(3)
    bot.start()
    reply = await alice.wait_reply(room_id, stale)
    assert "please send it again" in body(reply)
    with sqlite3.connect(bot.data_dir / "commons.db") as db:
        rows = db.execute("SELECT event_id FROM expired_commands").fetchall()
    assert rows == [(stale,)]


async def test_encrypted_room_gets_a_notice(bot_factory, user_factory):
    bot = bot_factory()
    alice = await user_factory("alice")
    room_id = await alice.create_room(invite=[bot.user_id], encrypted=True)
    notice = await alice.wait_for(room_id, is_notice_from(bot.user_id))
    assert body(notice) == ENCRYPTED_NOTICE


async def test_revoked_token_stops_the_bot_cleanly(bot_factory, synapse):
    bot = bot_factory()
    with sqlite3.connect(bot.data_dir / "commons.db") as db:
        (token,) = db.execute("SELECT value FROM kv WHERE key = 'session.access_token'").fetchone()
    request_json(synapse.base_url, "POST", "/_matrix/client/v3/logout", {}, access_token=token)
    for _ in range(300):
        if bot.returncode is not None:
            break
        await asyncio.sleep(0.05)
    assert bot.returncode == 1
    assert "M_UNKNOWN_TOKEN" in bot.log_text()
    assert token not in bot.log_text()


async def test_sigterm_stops_cleanly(bot_factory):
    bot = bot_factory()
    assert bot.stop() == 0
    assert "stopped" in bot.log_text()
