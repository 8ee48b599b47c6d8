from commands import decisions
from commands.render import to_plain

from .conftest import ROOM

A, B, C = "@alice:example.org", "@bob:example.org", "@carol:example.org"
HOUR = 3_600_000


async def close(room, number):
    async with room.storage.write() as tx:
        head = await tx.ledger_head(ROOM)
        item = await tx.item(ROOM, number)
        ctx = room.context(tx, "@commons:example.org", rules=head.rules, event_id="job:close")
        reply = await decisions.close_item(ctx, item)
    return to_plain(reply.body)


async def test_a_majority_proposal_passes_by_text_votes(room):
    opened = await room.say(A, "!propose Paint the shed --method majority --closes 2h\nGreen.")
    assert opened.startswith("Proposal #1: Paint the shed")
    assert "Decided by majority, quorum 3" in opened
    assert "voting closes" in opened
    assert "counted" in await room.say(A, "!vote #1 agree")
    assert "counted" in await room.say(B, "!vote #1 yes")
    assert "counted" in await room.say(C, "!vote #1 no")
    show = await room.say(A, "!show #1")
    assert "If it closed now: passed" in show
    room.now += 2 * HOUR
    result = await close(room, 1)
    assert result.startswith("#1 passed")
    assert "Voting on #1 closed" in await room.say(B, "!vote #1 disagree")


async def test_consent_is_blocked_with_a_reason(room):
    await room.say(A, "!propose Paint it pink")
    assert "A block needs a reason" in await room.say(B, "!vote #1 block")
    await room.say(A, "!vote #1 agree")
    await room.say(C, "!vote #1 agree")
    assert "counted" in await room.say(B, "!vote #1 block -- too bright")
    result = await close(room, 1)
    assert "blocked" in result and "too bright" in result


async def test_a_changed_vote_replaces_the_old_one(room):
    await room.say(A, "!poll Lunch? | Pizza | Soup | Salad")
    assert "counted: Pizza" in await room.say(B, "!vote #1 pizza")
    assert "changed: Soup" in await room.say(B, "!vote #1 2")
    async with room.storage.read() as tx:
        votes = await tx.votes(ROOM, 1)
    assert [(v.voter, v.choice) for v in votes] == [(B, [2])]


async def test_bad_votes_are_one_sentence(room):
    await room.say(A, "!poll Lunch? | Pizza | Soup")
    for text, expected in [
        ("!vote #9 agree", "There is no #9"),
        ("!vote #1 4", ""),
        ("!vote #1 agree", ""),
    ]:
        reply = await room.say(B, text)
        assert "\n" not in reply
        assert expected in reply
    assert "at least two options" in await room.say(A, "!poll Lunch? | Pizza")
    many = " | ".join(f"o{i}" for i in range(21))
    assert "at most 20 options" in await room.say(A, f"!poll Q | {many}")
    assert "already passed" in await room.say(A, "!poll Q | a | b --closes 2020-01-01")


async def test_withdraw_and_close_permissions(room):
    await room.say(A, "!propose Something")
    assert "Only the author" in await room.say(B, "!withdraw #1")
    assert "Only the author of #1 or a moderator" in await room.say(B, "!close #1")
    assert "withdrawn" in await room.say(A, "!withdraw #1")
    assert "not open" in await room.say(A, "!close #1")


async def test_a_passed_rule_proposal_changes_the_rule(room):
    opened = await room.say(A, "!propose rule kudos.daily_allowance 2")
    assert "Change the rule kudos.daily_allowance to 2" in opened
    assert "Decided by supermajority, quorum 3" in opened
    for voter in (A, B, C):
        await room.say(voter, "!vote #1 agree")
    room.now += 73 * HOUR
    result = await close(room, 1)
    assert "The rule kudos.daily_allowance is now 2 (proposal #1)" in result
    rules = await room.say(A, "!rules")
    assert "kudos.daily_allowance = 2" in rules and "proposal #1" in rules
    assert "+2" in await room.say(A, "!kudos @bob:example.org 2")
    assert "kudos.daily_allowance" in await room.say(A, "!kudos @carol:example.org")


async def test_a_failed_rule_proposal_changes_nothing(room):
    await room.say(A, "!propose rule kudos.daily_allowance 2")
    await room.say(A, "!vote #1 agree")
    room.now += 73 * HOUR
    assert "quorum" in await close(room, 1)
    assert "kudos.daily_allowance = 10" in await room.say(A, "!rules")


async def test_bad_rule_values_are_refused(room):
    reply = await room.say(A, "!propose rule kudos.daily_allowance lots")
    assert "kudos.daily_allowance" in reply and "\n" not in reply
    assert "already" in await room.say(A, "!propose rule kudos.daily_allowance 10")
