"""The daily transparency report: gathering a day's facts for `consensus.report`, `!report`.

The same gathering serves the scheduled report (which also signs a checkpoint and is posted
exactly once per room and local day by the shell) and `!report` on demand (today so far by
default, with the latest checkpoint but no new signature).
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from commands.context import Context
from commands.declare import REGISTRY, Args, Kind, Param
from commands.errors import UserError
from commands.ledger import check_since, new_checkpoint
from commands.render import Reply, lines, seq
from commands.report_render import report_messages
from consensus import scoring
from consensus.checkpoint import SignedCheckpoint
from consensus.ledger import ATTEND, COMMIT, ERASE, ITEM_CLOSE, ITEM_OPEN, MOD_VOID, REVERSAL, VOTE
from consensus.report import CheckpointInfo, Report, build_report

BASELINE_DAYS = 28
_TARGETING = (REVERSAL, MOD_VOID, ERASE)
_ITEM_KINDS = (ITEM_OPEN, ITEM_CLOSE, VOTE, COMMIT, ATTEND)


def previous_day(day: str, timezone: str) -> str:
    return scoring.local_day(scoring.day_start(day, timezone) - 1, timezone)


def report_instant(day: str, at: tuple[int, int], timezone: str) -> int:
    """When the report of the day before `day` is due: `day` at the room's report time.

    A time in a daylight-saving gap moves forward; one in an overlap takes the earlier instant
    (zoneinfo's fold=0 does both).
    """
    year, month, dom = (int(p) for p in day.split("-"))
    wall = datetime(year, month, dom, at[0], at[1], tzinfo=ZoneInfo(timezone), fold=0)
    return int(wall.timestamp() * 1000)


def due_report_day(now_ms: int, at: tuple[int, int], timezone: str) -> str:
    """The latest day whose report is due by `now_ms`."""
    today = scoring.local_day(now_ms, timezone)
    yesterday = previous_day(today, timezone)
    if now_ms >= report_instant(today, at, timezone):
        return yesterday
    return previous_day(yesterday, timezone)


def next_report_instant(now_ms: int, at: tuple[int, int], timezone: str) -> int:
    today = scoring.local_day(now_ms, timezone)
    instant = report_instant(today, at, timezone)
    if instant > now_ms:
        return instant
    tomorrow = scoring.local_day(scoring.next_day_start(now_ms, timezone), timezone)
    return report_instant(tomorrow, at, timezone)


async def gather_report(ctx: Context, day: str, checkpoint: CheckpointInfo | None) -> Report:
    tz = ctx.rules.timezone
    start = scoring.day_start(day, tz)
    end = scoring.next_day_start(start, tz)
    stored = await ctx.store.entries_between(ctx.room_id, start, end)
    entries = [(s.entry, s.text) for s in stored]
    in_day = {pair[0].seq: pair for pair in entries}
    wanted: set[int] = set()  # earlier entries the day's take out or erase
    items: set[int] = set()
    for entry, _ in entries:
        if entry.kind in _TARGETING and int(entry.data["target"]) not in in_day:
            wanted.add(int(entry.data["target"]))
        if entry.kind in _ITEM_KINDS:
            items.add(int(entry.data["item"]))
    targets = {}
    for target in sorted(wanted):
        found = await ctx.store.entry(ctx.room_id, target)
        if found is not None:
            targets[target] = (found.entry, found.text)
    item_opens = {}
    action_state = {}
    for number in sorted(items):
        item = await ctx.store.item(ctx.room_id, number)
        if item is None:
            continue
        if item.open_seq in in_day:  # opened that day: no need to read it again
            item_opens[number] = in_day[item.open_seq]
        else:
            opened = await ctx.store.entry(ctx.room_id, item.open_seq)
            if opened is not None:
                item_opens[number] = (opened.entry, opened.text)
        if item.type == "action":
            committed = await ctx.store.commitments(ctx.room_id, number)
            came = await ctx.store.attendance(ctx.room_id, number)
            action_state[number] = (len(committed), len(came))
    # The baseline has a number for every earlier day the room had its ledger (0 when quiet),
    # up to BASELINE_DAYS: missing quiet days would raise the median and hide a spike.
    genesis = await ctx.store.entry(ctx.room_id, 1)
    first_day = scoring.local_day(genesis.entry.ts, tz) if genesis else day
    baseline_days = []
    d = day
    for _ in range(BASELINE_DAYS):
        d = previous_day(d, tz)
        if d < first_day:
            break
        baseline_days.append(d)
    counts = await ctx.store.kudos_per_day(ctx.room_id, min(baseline_days, default=day), day)
    baseline = {d: counts.get(d, 0) for d in baseline_days}
    made = await ctx.store.report_days(ctx.room_id)
    reviewed = await ctx.store.reviewed_days(ctx.room_id)
    unreviewed = tuple(d for d in made if d < day and d not in reviewed)
    members = await ctx.room.members()
    moderators = [
        u for u in members if await ctx.room.power_level(u) >= ctx.rules.moderation_power_level
    ]
    return build_report(
        room=ctx.room_id,
        day=day,
        timezone=tz,
        entries=entries,
        targets=targets,
        item_opens=item_opens,
        action_state=action_state,
        baseline_kudos=baseline,
        member_since=await ctx.store.members_since(ctx.room_id),
        optouts=await ctx.store.optout_count(ctx.room_id),
        expired_commands=await ctx.store.expired_between(ctx.room_id, start, end),
        unreviewed=unreviewed,
        moderators=moderators,
        checkpoint=checkpoint,
    )


def checkpoint_info(
    signed: SignedCheckpoint, previous_size: int | None, consistent: bool | None
) -> CheckpointInfo:
    cp = signed.checkpoint
    return CheckpointInfo(
        size=cp.size,
        root=cp.root,
        ts=cp.ts,
        signature=signed.signature,
        key=signed.key,
        text=signed.to_text(),
        previous_size=previous_size,
        consistent=consistent,
    )


async def daily_checkpoint(ctx: Context, previous_size: int | None) -> CheckpointInfo:
    """Sign the head for a daily report, after checking it extends the previous report's."""
    consistent = None
    if previous_size is not None:
        stored = [
            c
            for c in await ctx.store.checkpoints(ctx.room_id)
            if c.signed.checkpoint.size == previous_size
        ]
        consistent = bool(stored) and await check_since(ctx, stored[0]) is None
    signed = await new_checkpoint(ctx)
    return checkpoint_info(signed, previous_size, consistent)


@REGISTRY.command(
    name="report",
    section="Ledger",
    summary="the transparency report of a day (today so far by default)",
    params=(Param("day", Kind.DATE, required=False),),
    examples=("!report", "!report 2026-11-25"),
)
async def report(ctx: Context, args: Args) -> Reply:
    tz = ctx.rules.timezone
    today = scoring.local_day(ctx.event_ts, tz)
    chosen: date | None = args.get("day")
    day = chosen.isoformat() if chosen else today
    if day > today:
        raise UserError(f"{day} hasn't begun yet.", help_for="report")
    checkpoints = await ctx.store.checkpoints(ctx.room_id)
    latest = checkpoint_info(checkpoints[-1].signed, None, None) if checkpoints else None
    built = await gather_report(ctx, day, latest)
    messages = report_messages(built, include_flags=ctx.rules.moderators_room is None)
    if len(messages) == 1:
        return messages[0]
    # More than one message: the reply carries the first, and says how to get everything.
    first = messages[0]
    note = f"(The report continues; the full report is in the daily post and {ctx.prefix}export.)"
    return Reply(lines([first.body, seq(note)]))
