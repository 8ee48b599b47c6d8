"""Kudos and the ledger through a real Synapse: every way of giving, taking back, reading,
exporting and verifying."""

from __future__ import annotations

import asyncio
import subprocess
import sys

from .test_foundation import ask, body, room_with_bot


async def room_of_three(bot_factory, user_factory, rules=None):
    bot = bot_factory({"rules": rules} if rules else None)
    alice = await user_factory("alice")
    bob = await user_factory("bob")
    room_id = await room_with_bot(alice, bot)
    await alice.invite(room_id, bob.user_id)
    await bob.join(room_id)
    return bot, alice, bob, room_id


def plain(event) -> str:
    return body(event).replace("\u2063", "")


async def score_of(user, room_id, who) -> str:
    _, reply = await ask(user, room_id, f"!score {who}")
    return plain(reply)


async def test_every_way_of_giving_kudos(bot_factory, user_factory):
    rules = {"kudos.pair_daily_cap": 20, "kudos.daily_allowance": 20}
    _, alice, bob, room_id = await room_of_three(bot_factory, user_factory, rules)
    b = bob.user_id

    _, reply = await ask(alice, room_id, f"!kudos {b} 2 for the <b>soup</b>")
    assert plain(reply) == f"👏 Kudos from {alice.user_id}: {b} +2 (now 2)"
    assert reply["content"]["m.mentions"] == {}

    pill = f'<a href="https://matrix.to/#/{b}">{bob.user_id.split(":")[0][1:]}</a>'
    _, reply = await ask(
        alice, room_id, "!kudos bob", formatted_body=f"!kudos {pill}", mentions={"user_ids": [b]}
    )
    assert plain(reply).endswith(f"{b} +1 (now 3)")

    _, reply = await ask(alice, room_id, f"thanks {b}++")
    assert plain(reply).endswith(f"{b} +1 (now 4)")

    hello = await bob.send_text(room_id, "I fixed the bike")
    _, reply = await ask(alice, room_id, "!kudos", reply_to=hello)
    assert plain(reply).endswith(f"{b} +1 (now 5)")

    reaction = await alice.react(room_id, hello, "👏")
    assert "has 6 kudos" in await score_of(alice, room_id, b)
    await alice.redact(room_id, reaction)
    assert "has 5 kudos" in await score_of(alice, room_id, b)

    _, why = await ask(alice, room_id, f"!why {b}")
    assert "&lt;b&gt;soup&lt;/b&gt;" in why["content"]["formatted_body"]
    assert "<b>soup" not in why["content"]["formatted_body"]
    assert "taken back by" in plain(why)


async def test_refusals_are_one_sentence_and_ping_nobody(bot_factory, user_factory):
    _, alice, bob, room_id = await room_of_three(bot_factory, user_factory)
    _, reply = await ask(alice, room_id, f"!kudos {alice.user_id}")
    assert "yourself" in plain(reply)
    _, reply = await ask(alice, room_id, f"!kudos {bob.user_id} -- " + "@room " * 10_000)
    assert "under 500" in plain(reply)
    pills = " ".join(f"@u{i}:localhost" for i in range(20))
    _, reply = await ask(alice, room_id, f"!kudos {bob.user_id} for @room {pills}")
    assert reply["content"]["m.mentions"] == {}
    _, reply = await ask(alice, room_id, "!kudos @nobody:localhost")
    assert "not in this room" in plain(reply)
    # Only the accepted kudos (the one with @room in its reason) is in the score.
    assert "has 1 kudos" in await score_of(alice, room_id, bob.user_id)


async def test_rooms_are_isolated(bot_factory, user_factory):
    bot, alice, bob, room_id = await room_of_three(bot_factory, user_factory)
    other = await room_with_bot(alice, bot)
    await alice.invite(other, bob.user_id)
    await bob.join(other)
    await ask(alice, room_id, f"!kudos {bob.user_id} 3")
    _, top = await ask(alice, other, "!top")
    assert plain(top) == "Top: no kudos yet."
    assert "has 0 kudos" in await score_of(alice, other, bob.user_id)


async def test_export_in_chat_and_verify_offline(bot_factory, user_factory, tmp_path):
    bot, alice, bob, room_id = await room_of_three(bot_factory, user_factory)
    await ask(alice, room_id, f"!kudos {bob.user_id} 2 for the soup")
    await ask(bob, room_id, f"!kudos {alice.user_id} for the bread")
    _, verified = await ask(alice, room_id, "!verify")
    checkpoint = next(
        line for line in plain(verified).splitlines() if line.startswith("commons-checkpoint")
    )
    export_cmd = await alice.send_text(room_id, "!export")

    def is_file(event):
        content = event.get("content", {})
        return content.get("msgtype") == "m.file" and (
            content.get("m.relates_to", {}).get("m.in_reply_to", {}).get("event_id") == export_cmd
        )

    file_event = await alice.wait_for(room_id, is_file, timeout=30)
    download = await alice.client.download(file_event["content"]["url"])
    exported = tmp_path / "ledger.jsonl"
    exported.write_bytes(download.body)

    def verify(*args):
        return subprocess.run(
            [sys.executable, "-m", "bot", "verify", *args],
            capture_output=True,
            text=True,
            check=False,
        )

    ok = verify(str(exported), "--checkpoint", checkpoint)
    assert ok.returncode == 0, ok.stderr
    assert "ok — 3 entries" in ok.stdout

    # The CLI export from the running bot's database gives the same entries.
    cli = tmp_path / "cli.jsonl"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bot",
            "export",
            "--config",
            str(bot.config_path),
            "--room",
            room_id,
            "--out",
            str(cli),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert cli.read_bytes().splitlines()[:3] == exported.read_bytes().splitlines()[:3]

    tampered = tmp_path / "tampered.jsonl"
    tampered.write_bytes(exported.read_bytes().replace(b'"amount":2', b'"amount":5', 1))
    bad = verify(str(tampered))
    assert bad.returncode != 0
    assert "entry 2" in bad.stderr


async def test_concurrent_kudos_add_up_exactly(bot_factory, user_factory):
    rules = {"kudos.pair_daily_cap": 100, "kudos.daily_allowance": 100}
    bot = bot_factory({"rules": rules})
    alice, bob, carol = [await user_factory(n) for n in ("alice", "bob", "carol")]
    room_id = await room_with_bot(alice, bot)
    for other in (bob, carol):
        await alice.invite(room_id, other.user_id)
        await other.join(room_id)

    async def burst(giver, receiver, n):
        return [await giver.send_text(room_id, f"!kudos {receiver.user_id}") for _ in range(n)]

    sent = await asyncio.gather(
        burst(alice, bob, 20), burst(carol, bob, 20), burst(bob, alice, 20)
    )
    for event_id in [e for group in sent for e in group]:
        await alice.wait_reply(room_id, event_id, timeout=60)
    assert "has 40 kudos" in await score_of(alice, room_id, bob.user_id)
    assert "has 20 kudos" in await score_of(alice, room_id, alice.user_id)
