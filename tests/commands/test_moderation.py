from commands import decisions

from .conftest import ROOM

A, B, C = "@alice:example.org", "@bob:example.org", "@carol:example.org"
HOUR = 3_600_000


async def test_void_is_for_moderators_and_logged(room):
    await room.say(A, "!kudos @bob:example.org 2")
    async with room.storage.read() as tx:
        kudos_seq = (await tx.ledger_head(ROOM)).size
    refused = await room.say(C, f"!void {kudos_seq} ring")
    assert refused.startswith("Only moderators (power level 50 or more) can use !void")
    room.room.levels[C] = 50
    assert "needs a reason" in await room.say(C, f"!void {kudos_seq}")
    voided = await room.say(C, f"!void {kudos_seq} a <b>ring</b>")
    assert voided.startswith(f"Voided entry #{kudos_seq} as entry #{kudos_seq + 1}")
    assert await room.score(B) == 0
    assert "already out of effect" in await room.say(C, f"!void {kudos_seq} again")
    assert "Only kudos and attendance" in await room.say(C, "!void 1 genesis")
    log = await room.say(A, "!modlog")
    assert f"voided #{kudos_seq} — a <b>ring</b>" in log


async def test_an_appeal_that_passes_reverses_the_void(room):
    room.room.levels[C] = 50
    await room.say(A, "!kudos @bob:example.org 2")
    await room.say(C, "!void 2 looked like a ring")
    opened = await room.say(B, "!appeal 3")
    assert "Appeal: reverse the void #3 of entry #2" in opened
    for voter in (A, B, C):
        await room.say(voter, "!vote #1 agree")
    room.now += 49 * HOUR
    async with room.storage.write() as tx:
        head = await tx.ledger_head(ROOM)
        item = await tx.item(ROOM, 1)
        ctx = room.context(tx, "@commons:example.org", rules=head.rules, event_id="job:x")
        await decisions.close_item(ctx, item)
    assert await room.score(B) == 2
    assert "no longer in effect" in await room.say(B, "!appeal 3")


async def test_review_signs_off_a_day(room):
    room.room.levels[C] = 50
    assert "isn't over yet" in await room.say(C, "!review 2030-01-01")
    reply = await room.say(C, "!review -- all fine")
    assert "signed off as reviewed" in reply
    assert "signed off the report of" in await room.say(A, "!modlog")
