from commands import actions as action_commands
from commands.render import to_plain

from .conftest import ROOM

A, B, C = "@alice:example.org", "@bob:example.org", "@carol:example.org"
HOUR = 3_600_000


async def job(room, fn, number, *args):
    async with room.storage.write() as tx:
        head = await tx.ledger_head(ROOM)
        item = await tx.item(ROOM, number)
        ctx = room.context(tx, "@commons:example.org", rules=head.rules, event_id="job:x")
        return await fn(ctx, item, *args)


async def test_a_call_goes_when_the_second_person_commits(room):
    opened = await room.say(A, "!action Park cleanup --at 2d --need 2 --where north gate")
    assert opened.startswith("Action call #1: Park cleanup at north gate")
    assert "goes ahead if 2 people commit" in opened
    assert "1 of 2 needed would go now" in await room.say(A, "!in #1")
    reply = await room.say(B, "!in #1")
    assert reply.startswith("GO! Action #1 goes ahead")
    assert A in reply and B in reply
    async with room.storage.read() as tx:
        assert (await tx.item(ROOM, 1)).status == "go"


async def test_a_conditional_commitment_counts_only_with_enough_others(room):
    await room.say(A, "!action Banner --at 2d --need 2")
    assert "0 of 2" in await room.say(A, "!in #1 if 2")
    assert "0 of 2" in await room.say(B, "!in #1 if 2")
    reply = await room.say(C, "!in #1")
    assert reply.startswith("GO!")


async def test_called_off_at_the_deadline(room):
    await room.say(A, "!action Picnic --at 3h --need 3 --deadline 1h")
    await room.say(A, "!in #1")
    room.now += HOUR + 1
    reply = await job(room, action_commands.deadline, 1)
    assert "is called off" in to_plain(reply.body)
    assert reply.ping == (A,)
    assert "called off" in await room.say(B, "!in #1")


async def test_bad_calls_are_one_sentence(room):
    for text, expected in [
        ("!action X --at 2d --need 0", "at least 1"),
        ("!action X --at 2020-01-01 --need 2", "already passed"),
        ("!action X --at 2d --need 2 --deadline 3d", "after the action"),
        ("!action X --at blorp --need 2", "--at"),
        ("!action X --need 2", "needs --at and --need"),
    ]:
        reply = await room.say(A, text)
        assert expected in reply and "\n" not in reply, reply
    await room.say(A, "!action Y --at 2d --need 3")
    await room.say(A, "!in #1")
    assert "already in" in await room.say(A, "!in #1")
    assert "not committed" in await room.say(B, "!out #1")


async def test_attendance_gives_kudos_once_confirmed(room):
    await room.say(A, "!action Cleanup --at 3h --need 2")
    await room.say(A, "!in #1")
    await room.say(B, "!in #1")
    assert "hasn't started" in await room.say(A, "!attended #1 @bob:example.org")
    room.now += 4 * HOUR
    assert "(self-reported)" in await room.say(C, "!attended #1")
    assert await room.score(C) == 0
    reply = await room.say(A, "!attended #1 @bob:example.org @carol:example.org")
    assert "+1" in reply
    assert await room.score(B) == 1 and await room.score(C) == 1
    assert "recorded already" in await room.say(A, "!attended #1 @bob:example.org")
    assert await room.score(B) == 1
    show = await room.say(A, "!show #1")
    assert "Follow-through: 1 of 2 who committed came." in show


async def test_withdrawing_after_go_tells_the_room(room):
    await room.say(A, "!action Cleanup --at 3h --need 2")
    await room.say(A, "!in #1")
    await room.say(B, "!in #1")
    reply = await room.say(B, "!out #1")
    assert "fell below the number needed" in reply


async def test_reminders_ping_the_people_going_and_say_when_late(room):
    await room.say(A, "!action Cleanup --at 30h --need 2")
    await room.say(A, "!in #1")
    await room.say(B, "!in #1")
    async with room.storage.read() as tx:
        due = [d for r, i, d in await tx.pending_reminders() if r == ROOM and i == 1]
    assert len(due) == 2  # 24 h and 1 h before, both still ahead
    room.now = due[0]
    reply = await job(room, action_commands.reminder, 1, due[0])
    assert to_plain(reply.body).startswith("Reminder: action #1 is")
    assert "late" not in to_plain(reply.body)
    assert sorted(reply.ping) == [A, B]
    await room.say(B, "!out #1")
    room.now = due[1] + 3 * HOUR  # the bot was away when this one was due
    reply = await job(room, action_commands.reminder, 1, due[1])
    assert "(late: I was offline at the planned time)" in to_plain(reply.body)
    assert reply.ping == (A,)


async def test_no_commitments_once_the_action_started(room):
    await room.say(A, "!action Cleanup --at 3h --need 2")
    room.now += 3 * HOUR
    assert "commitments are closed" in await room.say(B, "!in #1")
