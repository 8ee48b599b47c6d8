"""Gathering a day's report from the ledger, and checking the entries since the last report."""

import sqlite3

import pytest

from commands import ledger, reports
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


async def checkpoint_then_gather(ctx, day: str, previous_size: int | None):
    """The two passes `daily_report` makes in one."""
    return await reports.gather_report(
        ctx, day, await reports.daily_checkpoint(ctx, previous_size)
    )


async def two_days(room) -> tuple[str, str]:
    """A report's checkpoint in the middle of day 1, then more on day 1 and on day 2."""
    room.room.levels[C] = 50
    day1 = local_day(room.now, "UTC")
    await room.say(A, "!kudos @bob:example.org 2 for the soup")  # 2
    await room.say(A, "!action Park cleanup --at 3d --need 2")  # 3, item #1
    await room.run(BOT, reports.daily_checkpoint, None)  # at 3
    await room.say(B, "!in #1")  # 4
    await room.say(C, "!void 2 a second account")  # 5
    await room.say(B, "!propose Paint the shed\nGreen, of course.")  # 6, item #2
    room.now += DAY
    await room.say(A, "!vote #2 agree")  # 7, day 2
    await room.say(C, "!kudos @alice:example.org 1")  # 8
    return day1, local_day(room.now, "UTC")


@pytest.mark.parametrize("rows_per_read", [1, 3, 10_000])
async def test_the_daily_report_is_what_checkpoint_and_gathering_make(
    room, monkeypatch, rows_per_read
):
    monkeypatch.setattr(reports, "ROWS_PER_READ", rows_per_read)
    monkeypatch.setattr(ledger, "ROWS_PER_READ", rows_per_read)
    day1, day2 = await two_days(room)
    for day in (day1, day2):  # the check starts in the day, or before it
        one = await room.run(BOT, reports.daily_report, day, 3)
        assert one == await room.run(BOT, checkpoint_then_gather, day, 3)
        assert one.checkpoint.consistent is True
    assert one.entries == 2 and one.kudos.total == 1
    report1 = await room.run(BOT, reports.daily_report, day1, 3)
    assert report1.entries == 6 and report1.kudos.reversed == 2
    assert [a.item for a in report1.actions] == [1] and [d.item for d in report1.decisions] == [2]
    # The day lies before the last checkpoint: the day is read, then the rows after it.
    await room.say(B, "!kudos @carol:example.org 1")  # 9
    again = await room.run(BOT, reports.daily_report, day1, 8)
    assert again == await room.run(BOT, checkpoint_then_gather, day1, 8)
    assert (again.entries, again.checkpoint.size, again.checkpoint.consistent) == (6, 9, True)


async def test_the_daily_report_finds_entries_changed_since_the_last_report(room):
    day1, day2 = await two_days(room)
    damage(room.storage.path, 8)  # after the checkpoint at 3: the chain breaks at its end
    report = await room.run(BOT, reports.daily_report, day2, 3)
    assert (report.checkpoint.size, report.checkpoint.consistent) == (8, False)
    assert report.kudos.total == 3  # the day's entries as they now are
    fresh = await room.run(BOT, reports.daily_report, day2, 8)
    assert fresh.checkpoint.consistent is True  # checked up to 8 last time: not again
    assert (await room.run(BOT, reports.daily_report, day2, 7)).checkpoint.consistent is False
    first = await room.run(BOT, reports.daily_report, day1, None)
    assert (first.checkpoint.previous_size, first.checkpoint.consistent) == (None, None)


async def test_the_daily_report_reads_each_row_it_needs_once(room, monkeypatch):
    monkeypatch.setattr(reports, "ROWS_PER_READ", 2)
    day1, _ = await two_days(room)
    await room.say(B, "!kudos @carol:example.org 1")  # 9, day 2
    read: list[int] = []

    async def report_counting(ctx, day, previous_size):
        rows_of = ctx.store.ledger_rows

        async def counting(room_id, *, after, limit):
            rows = await rows_of(room_id, after=after, limit=limit)
            read.extend(row[0] for row in rows)
            return rows

        monkeypatch.setattr(ctx.store, "ledger_rows", counting)
        return await reports.daily_report(ctx, day, previous_size)

    await room.run(BOT, report_counting, day1, 3)  # signs a checkpoint at 9
    assert read == list(range(1, 10))  # the day from genesis to 6, the check from 4 to 9
    await room.say(A, "!kudos @carol:example.org 1")  # 10
    read.clear()
    await room.run(BOT, report_counting, day1, 9)
    assert read == [1, 2, 3, 4, 5, 6, 10]  # the day, then past the checkpoint at 9
    read.clear()
    await room.run(BOT, report_counting, day1, None)
    assert read == [1, 2, 3, 4, 5, 6]  # the day alone


async def test_a_day_without_entries(room):
    await room.say(A, "!kudos @bob:example.org 1")
    quiet = local_day(room.now - 3 * DAY, "UTC")
    assert (await room.run(A, reports.gather_report, quiet, None)).entries == 0
    room.now += 3 * DAY  # a quiet day after the last report's checkpoint: only the check reads
    first = await room.run(BOT, reports.daily_checkpoint, None)
    report = await room.run(BOT, reports.daily_report, local_day(room.now - DAY, "UTC"), 2)
    assert (first.size, report.entries, report.checkpoint.consistent) == (2, 0, True)


async def test_reports_not_yet_reviewed_are_listed_until_reviewed(room):
    room.room.levels[C] = 50
    days = [local_day(room.now - n * DAY, "UTC") for n in (3, 2, 1)]
    async with room.storage.write() as tx:
        for day in days:
            await tx.add_report(ROOM, day, room.now, 1)
    await room.say(C, f"!review {days[1]} -- all fine")
    today = local_day(room.now, "UTC")
    assert (await room.run(A, reports.gather_report, today, None)).unreviewed == (
        days[0],
        days[2],
    )
    assert (await room.run(A, reports.gather_report, days[2], None)).unreviewed == (days[0],)
