"""Gathering a day's report from the ledger, and checking the entries since the last report."""

import sqlite3

from commands import reports
from consensus.report import ActionLine, DecisionLine, ModLine
from consensus.scoring import local_day

from .conftest import BOT, ROOM

A, B, C = "@alice:example.org", "@bob:example.org", "@carol:example.org"
DAY = 86_400_000


async def test_a_days_report_takes_what_it_refers_to_from_earlier_days(room):
    room.room.levels[C] = 50
    await room.say(A, "!kudos @bob:example.org 2 for the soup")  # entry 2
    await room.say(A, "!action Park cleanup --at 3d --need 2")  # item #1
    room.now += DAY
    await room.say(C, "!void 2 a second account")  # entry 4
    await room.say(B, "!in #1")
    await room.say(B, "!propose Paint the shed\nGreen, of course.")  # item #2, opened that day
    await room.say(A, "!vote #2 agree")
    await room.say(A, "!vote #2 disagree")
    report = await room.run(A, reports.gather_report, local_day(room.now, "UTC"), None)
    assert report.entries == 5
    assert report.kudos.reversed == 2 and report.kudos.total == 0
    assert report.moderation == (ModLine(4, "mod.void", C, 2, "a second account"),)
    assert report.decisions == (DecisionLine(2, "proposal", "Paint the shed", True, None, {}),)
    assert report.actions == (ActionLine(1, "Park cleanup", "open", 2, 1, 0),)


def damage(path, seq: int) -> None:
    """Raise the amount of kudos entry `seq` behind the bot's back."""
    with sqlite3.connect(path) as db:
        db.execute("DROP TRIGGER IF EXISTS ledger_no_update")
        db.execute(
            "UPDATE ledger SET data = json_set(data, '$.amount', 3) WHERE room = ? AND seq = ?",
            (ROOM, seq),
        )


async def test_the_daily_checkpoint_checks_the_entries_since_the_last_report(room):
    await room.say(A, "!kudos @bob:example.org 1")
    first = await room.run(BOT, reports.daily_checkpoint, None)
    assert (first.size, first.previous_size, first.consistent) == (2, None, None)
    for giver, receiver in ((A, C), (B, C), (C, A)):
        await room.say(giver, f"!kudos {receiver} 1")
    second = await room.run(BOT, reports.daily_checkpoint, first.size)
    assert (second.size, second.previous_size, second.consistent) == (5, 2, True)
    assert (await room.run(BOT, reports.daily_checkpoint, 4)).consistent is False  # none at 4

    await room.say(B, "!kudos @alice:example.org 1")
    await room.say(C, "!kudos @bob:example.org 1")
    damage(room.storage.path, 6)  # the chain breaks after it
    third = await room.run(BOT, reports.daily_checkpoint, second.size)
    assert (third.size, third.consistent) == (7, False)
    damage(room.storage.path, 3)  # before the last report's checkpoint: not checked again
    assert (await room.run(BOT, reports.daily_checkpoint, third.size)).consistent is True
