"""Public moderation and operator overrides through a real Synapse."""

from __future__ import annotations

import subprocess
import sys

from .test_decisions import plain, room_of
from .test_foundation import ask


async def test_void_by_a_moderator_refusal_for_others_and_an_appeal(bot_factory, user_factory):
    _bot, (alice, bob, carol), room_id = await room_of(bot_factory, user_factory)
    _, given = await ask(carol, room_id, f"!kudos {bob.user_id} 2")
    assert "+2" in plain(given)
    _, ledger = await ask(alice, room_id, "!ledger 1")
    seq = int(plain(ledger).split("• #")[1].split(" ")[0])
    _, refused = await ask(bob, room_id, f"!void {seq} nope")
    assert plain(refused).startswith("Only moderators (power level 50 or more) can use !void")
    _, voided = await ask(alice, room_id, f"!void {seq} looked like a ring")  # the room's creator
    assert plain(voided).startswith(f"Voided entry #{seq} as entry #{seq + 1}")
    _, score = await ask(bob, room_id, "!score")
    assert "has 0 kudos" in plain(score)
    _, log = await ask(carol, room_id, "!modlog")
    assert "looked like a ring" in plain(log)
    _, opened = await ask(bob, room_id, f"!appeal {seq + 1}")
    assert "Appeal: reverse the void" in plain(opened)
    for user in (alice, bob, carol):
        await ask(user, room_id, "!vote #1 agree")
    _, closed = await ask(bob, room_id, "!close #1")
    assert "The appeal passed" in plain(closed)
    _, score = await ask(bob, room_id, "!score")
    assert "has 2 kudos" in plain(score)


async def test_an_operator_override_is_announced_and_logged(bot_factory, user_factory, tmp_path):
    bot, (alice, bob), room_id = await room_of(bot_factory, user_factory, n=2)
    done = subprocess.run(
        [sys.executable, "-m", "bot", "rules", "set", "--config", str(bot.config_path),
         "--room", room_id, "kudos.daily_allowance", "1"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    notice = await alice.wait_for(
        room_id, lambda e: "overrode a room rule" in e.get("content", {}).get("body", "")
    )
    assert notice["sender"] == bot.user_id
    _, rules = await ask(alice, room_id, "!rules")
    assert "kudos.daily_allowance = 1" in plain(rules) and "operator override" in plain(rules)
    await ask(alice, room_id, f"!kudos {bob.user_id}")
    _, refused = await ask(alice, room_id, f"!kudos {bob.user_id}")
    assert "kudos.daily_allowance" in plain(refused)
    bad = subprocess.run(
        [sys.executable, "-m", "bot", "rules", "set", "--config", str(bot.config_path),
         "--room", room_id, "kudos.daily_allowance", "lots"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert bad.returncode != 0 and "kudos.daily_allowance" in bad.stderr
