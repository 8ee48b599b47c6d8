"""Action calls through a real Synapse: going, conditions, the native poll, being called off
at the deadline, and attendance kudos."""

from __future__ import annotations

from .test_decisions import POLL_RESPONSE, POLL_START, plain, room_of
from .test_foundation import ask


def from_bot(bot, text):
    def match(event):
        content = event.get("content", {})
        return event.get("sender") == bot.user_id and text in content.get("body", "")

    return match


async def test_a_call_goes_when_the_second_person_commits(bot_factory, user_factory):
    _bot, (alice, bob), room_id = await room_of(bot_factory, user_factory, n=2)
    _, opened = await ask(alice, room_id, "!action Park cleanup --at 2d --need 2")
    assert "It goes ahead if 2 people commit" in plain(opened)
    _, first = await ask(alice, room_id, "!in #1")
    assert "1 of 2 needed" in plain(first)
    _, go = await ask(bob, room_id, "!in #1")
    assert plain(go).startswith("GO! Action #1 goes ahead")
    assert go["content"]["msgtype"] == "m.text"
    assert sorted(go["content"]["m.mentions"]["user_ids"]) == sorted([alice.user_id, bob.user_id])


async def test_a_conditional_commitment_and_the_native_poll(bot_factory, user_factory):
    bot, (alice, bob, carol), room_id = await room_of(bot_factory, user_factory)
    await ask(alice, room_id, "!action Banner painting --at 2d --need 3")
    poll = await alice.wait_for(room_id, lambda e: e.get("type") == POLL_START)
    _, cond = await ask(alice, room_id, "!in #1 if 2")
    assert "0 of 3 needed" in plain(cond)
    _, second = await ask(bob, room_id, "!in #1")
    assert "1 of 3 needed" in plain(second)  # alice's condition isn't met by one other
    await carol.send_event(
        room_id,
        POLL_RESPONSE,
        {
            "m.relates_to": {"rel_type": "m.reference", "event_id": poll["event_id"]},
            POLL_RESPONSE: {"answers": ["in"]},
        },
    )
    go = await alice.wait_for(room_id, from_bot(bot, "GO! Action #1"))
    assert len(go["content"]["m.mentions"]["user_ids"]) == 3


async def test_a_call_is_called_off_at_its_deadline(bot_factory, user_factory):
    bot, (alice, bob), room_id = await room_of(bot_factory, user_factory, n=2)
    _, opened = await ask(alice, room_id, "!action Picnic --at 1h --need 3 --deadline 6s")
    assert "It goes ahead if 3 people commit" in plain(opened)
    await ask(alice, room_id, "!in #1")
    off = await alice.wait_for(room_id, from_bot(bot, "is called off"), timeout=30)
    assert off["content"]["msgtype"] == "m.text"
    assert off["content"]["m.mentions"] == {"user_ids": [alice.user_id]}
    _, late = await ask(bob, room_id, "!in #1")
    assert "called off" in plain(late)


async def test_attendance_earns_kudos(bot_factory, user_factory):
    bot, (alice, bob), room_id = await room_of(bot_factory, user_factory, n=2)
    await ask(alice, room_id, "!action Quick one --at 10s --need 2 --deadline 5s")
    await ask(alice, room_id, "!in #1")
    await ask(bob, room_id, "!in #1")
    await alice.wait_for(room_id, from_bot(bot, "GO! Action #1"))
    import asyncio

    await asyncio.sleep(10)
    _, confirmed = await ask(alice, room_id, f"!attended #1 {bob.user_id}")
    assert "(+1)" in plain(confirmed)
    _, score = await ask(bob, room_id, "!score")
    assert "has 1 kudos" in plain(score)
