"""Proposals and polls through a real Synapse: text votes, native poll answers, closing early,
votes after close, and a deadline that passes while the bot is down."""

from __future__ import annotations

import asyncio

from .test_foundation import ask, body, room_with_bot

POLL_START = "org.matrix.msc3381.poll.start"
POLL_RESPONSE = "org.matrix.msc3381.poll.response"
POLL_END = "org.matrix.msc3381.poll.end"


async def room_of(bot_factory, user_factory, n=3, overrides=None):
    bot = bot_factory(overrides)
    users = [await user_factory(name) for name in ("alice", "bob", "carol")[:n]]
    room_id = await room_with_bot(users[0], bot)
    for other in users[1:]:
        await users[0].invite(room_id, other.user_id)
        await other.join(room_id)
    return bot, users, room_id


def plain(event) -> str:
    return body(event).replace("\u2063", "")


async def test_majority_proposal_passes_by_text_votes(bot_factory, user_factory):
    _bot, (alice, bob, carol), room_id = await room_of(bot_factory, user_factory)
    _, opened = await ask(alice, room_id, "!propose Buy a kettle --method majority")
    assert plain(opened).startswith("Proposal #1: Buy a kettle")
    poll = await alice.wait_for(room_id, lambda e: e.get("type") == POLL_START)
    assert poll["content"][POLL_START]["answers"][0]["id"] == "agree"
    for user, choice in ((alice, "agree"), (bob, "agree"), (carol, "disagree")):
        _, reply = await ask(user, room_id, f"!vote #1 {choice}")
        assert "counted" in plain(reply)
    _close_cmd, closed = await ask(alice, room_id, "!close #1")
    assert plain(closed).startswith("#1 passed")
    end = await alice.wait_for(room_id, lambda e: e.get("type") == POLL_END)
    assert end["content"]["m.relates_to"]["event_id"] == poll["event_id"]
    _, late = await ask(bob, room_id, "!vote #1 disagree")
    assert "Voting on #1 closed" in plain(late)


async def test_consent_proposal_blocked_with_a_reason(bot_factory, user_factory):
    _bot, (alice, bob, carol), room_id = await room_of(bot_factory, user_factory)
    await ask(alice, room_id, "!propose Paint the hall <b>pink</b>")
    await ask(alice, room_id, "!vote #1 agree")
    await ask(carol, room_id, "!vote #1 agree")
    _, reply = await ask(bob, room_id, "!vote #1 block -- <i>too</i> bright")
    assert "counted" in plain(reply)
    _, closed = await ask(alice, room_id, "!close #1")
    assert "blocked" in plain(closed) and "<i>too</i> bright" in plain(closed)
    assert "&lt;i&gt;too&lt;/i&gt;" in closed["content"]["formatted_body"]


async def test_vote_by_answering_the_native_poll_and_changing_it(bot_factory, user_factory):
    _bot, (alice, bob), room_id = await room_of(bot_factory, user_factory, n=2)
    await ask(alice, room_id, "!poll Lunch? | Pizza | Soup | Salad")
    poll = await alice.wait_for(room_id, lambda e: e.get("type") == POLL_START)

    def answer(ids):
        return {
            "m.relates_to": {"rel_type": "m.reference", "event_id": poll["event_id"]},
            POLL_RESPONSE: {"answers": ids},
        }

    await bob.send_event(room_id, POLL_RESPONSE, answer(["2"]))
    _, shown = await ask(alice, room_id, "!show #1")
    assert f"{bob.user_id}: Soup" in plain(shown)
    await bob.send_event(room_id, POLL_RESPONSE, answer(["3"]))
    _, changed = await ask(bob, room_id, "!vote #1 pizza")
    assert "changed: Pizza" in plain(changed)
    _, shown = await ask(alice, room_id, "!show #1")
    assert f"{bob.user_id}: Pizza" in plain(shown)
    assert "Soup" not in plain(shown).split("If it closed now")[1]


async def test_a_block_answered_in_the_poll_asks_for_a_reason(bot_factory, user_factory):
    _bot, (alice, bob), room_id = await room_of(bot_factory, user_factory, n=2)
    await ask(alice, room_id, "!propose Quiet hours")
    poll = await alice.wait_for(room_id, lambda e: e.get("type") == POLL_START)
    await bob.send_event(
        room_id,
        POLL_RESPONSE,
        {
            "m.relates_to": {"rel_type": "m.reference", "event_id": poll["event_id"]},
            POLL_RESPONSE: {"answers": ["block"]},
        },
    )
    asked = await bob.wait_for(
        room_id, lambda e: "please give the reason" in e.get("content", {}).get("body", "")
    )
    assert asked["content"]["msgtype"] == "m.text"
    assert asked["content"]["m.mentions"] == {"user_ids": [bob.user_id]}
    _, shown = await ask(alice, room_id, "!show #1")
    assert "(no reason given)" in plain(shown)


async def test_a_deadline_that_passes_while_the_bot_is_down(bot_factory, user_factory):
    bot, (alice, bob, carol), room_id = await room_of(bot_factory, user_factory)
    _, opened = await ask(
        alice, room_id, "!propose Short one --method majority --quorum 2 --closes 8s"
    )
    assert "voting closes" in plain(opened)
    await ask(alice, room_id, "!vote #1 agree")
    bot.kill()
    await bob.send_text(room_id, "!vote #1 agree")  # before the deadline, while the bot is down
    await asyncio.sleep(9)
    late = await carol.send_text(room_id, "!vote #1 disagree")  # after it
    bot.start()

    def outcome(event):
        content = event.get("content", {})
        return (
            event.get("sender") == bot.user_id
            and event.get("type") == "m.room.message"
            and content.get("body", "").startswith("#1 ")
        )

    result = await alice.wait_for(room_id, outcome, timeout=30)
    assert plain(result).startswith("#1 passed"), plain(result)
    refused = await carol.wait_reply(room_id, late)
    assert "Voting on #1 closed" in plain(refused)


async def test_a_rule_change_voted_through_changes_behaviour(bot_factory, user_factory):
    _bot, (alice, bob, carol), room_id = await room_of(bot_factory, user_factory)
    _, opened = await ask(alice, room_id, "!propose rule kudos.daily_allowance 1")
    assert "Decided by supermajority, quorum 3" in plain(opened)
    for user in (alice, bob, carol):
        await ask(user, room_id, "!vote #1 agree")
    _, closed = await ask(alice, room_id, "!close #1")
    assert "The rule kudos.daily_allowance is now 1 (proposal #1)" in plain(closed)
    _, rules = await ask(bob, room_id, "!rules")
    assert "kudos.daily_allowance = 1" in plain(rules) and "proposal #1" in plain(rules)
    _, given = await ask(alice, room_id, f"!kudos {bob.user_id}")
    assert "+1" in plain(given)
    _, refused = await ask(alice, room_id, f"!kudos {carol.user_id}")
    assert "kudos.daily_allowance" in plain(refused)


async def test_a_failed_rule_proposal_changes_nothing(bot_factory, user_factory):
    _bot, (alice, bob, carol), room_id = await room_of(bot_factory, user_factory)
    await ask(alice, room_id, "!propose rule kudos.daily_allowance 1")
    await ask(alice, room_id, "!vote #1 agree")
    await ask(bob, room_id, "!vote #1 disagree")
    await ask(carol, room_id, "!vote #1 disagree")
    _, closed = await ask(alice, room_id, "!close #1")
    assert plain(closed).startswith("#1 failed")
    _, rules = await ask(bob, room_id, "!rules")
    assert "kudos.daily_allowance = 10" in plain(rules)


async def test_an_empty_or_redacted_poll_answer_withdraws_the_vote(bot_factory, user_factory):
    _bot, (alice, bob), room_id = await room_of(bot_factory, user_factory, n=2)
    await ask(alice, room_id, "!poll Lunch? | Pizza | Soup")
    poll = await alice.wait_for(room_id, lambda e: e.get("type") == POLL_START)

    def answer(ids):
        return {
            "m.relates_to": {"rel_type": "m.reference", "event_id": poll["event_id"]},
            POLL_RESPONSE: {"answers": ids},
        }

    await bob.send_event(room_id, POLL_RESPONSE, answer(["1"]))
    _, shown = await ask(alice, room_id, "!show #1")
    assert f"{bob.user_id}: Pizza" in plain(shown)
    await bob.send_event(room_id, POLL_RESPONSE, answer([]))
    _, shown = await ask(alice, room_id, "!show #1")
    assert bob.user_id not in plain(shown)
    response = await bob.send_event(room_id, POLL_RESPONSE, answer(["2"]))
    _, shown = await ask(alice, room_id, "!show #1")
    assert f"{bob.user_id}: Soup" in plain(shown)
    await bob.redact(room_id, response)
    _, shown = await ask(alice, room_id, "!show #1")
    assert bob.user_id not in plain(shown)


async def test_a_poll_answer_from_outside_the_room_does_not_count(bot_factory, user_factory):
    _bot, (alice, bob), room_id = await room_of(bot_factory, user_factory, n=2)
    await ask(alice, room_id, "!poll Lunch? | Pizza | Soup")
    poll = await alice.wait_for(room_id, lambda e: e.get("type") == POLL_START)
    await bob.client.room_leave(room_id)
    _, shown = await ask(alice, room_id, "!show #1")  # the bot has seen the leave
    # bob can't send into the room any more; the homeserver refuses it, so nothing counts.
    try:
        await bob.send_event(
            room_id,
            POLL_RESPONSE,
            {
                "m.relates_to": {"rel_type": "m.reference", "event_id": poll["event_id"]},
                POLL_RESPONSE: {"answers": ["1"]},
            },
        )
    except Exception as err:
        assert "M_FORBIDDEN" in str(err) or "403" in str(err) or "No such room" in str(err)
    _, shown = await ask(alice, room_id, "!show #1")
    assert bob.user_id not in plain(shown)
