"""The daily transparency report: gathering a day's facts for `consensus.report`, `!report`.

The same gathering serves the scheduled report (`daily_report`, which also checks the entries
since the previous report's checkpoint and signs a new one; the shell posts it exactly once per
room and local day) and `!report` on demand (`gather_report`: today so far by default, with the
latest checkpoint but no new signature). A busy day has 100,000 entries: they are read as plain
rows, once for both the check and the report, and become light `DayEntry` values.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Mapping
from datetime import date, datetime
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

from commands.context import Context, StoredCheckpoint
from commands.declare import REGISTRY, Args, Kind, Param
from commands.errors import UserError
from commands.ledger import (
    ROWS_PER_READ,
    ChainCheck,
    chain_check,
    check_since,
    new_checkpoint,
    require_head,
)
from commands.render import Reply, lines, seq
from commands.report_render import report_messages
from consensus import scoring
from consensus.bulk import gc_paused
from consensus.checkpoint import SignedCheckpoint
from consensus.ledger import ATTEND, COMMIT, ERASE, ITEM_CLOSE, ITEM_OPEN, MOD_VOID, REVERSAL
from consensus.report import (
    DATA_KINDS,
    CheckpointInfo,
    DayEntry,
    Report,
    Texted,
    build_report,
)

BASELINE_DAYS = 28
_TARGETING = (REVERSAL, MOD_VOID, ERASE)
# Items the report lists: opened, closed, committed to or attended (votes alone list none).
_ITEM_KINDS = (ITEM_OPEN, ITEM_CLOSE, COMMIT, ATTEND)
_REFERRING = frozenset(_TARGETING + _ITEM_KINDS)
_NO_DATA: Mapping[str, Any] = MappingProxyType({})  # for the kinds whose data a report skips
_DECODER = json.JSONDecoder()


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
    """The report of `day` as the ledger has it now (`!report`), with `checkpoint` if any."""
    with gc_paused():  # until the day's entries are gone again (see `gc_paused`)
        return await _build(ctx, day, await _read_day(ctx, day, None), checkpoint)


async def daily_report(ctx: Context, day: str, previous_size: int | None) -> Report:
    """The scheduled report of `day` with a newly signed checkpoint of the head: what
    `daily_checkpoint` and then `gather_report` make, but reading the ledger once for both, since
    the entries since the previous report's checkpoint are mostly the day's."""
    last = await _previous_checkpoint(ctx, previous_size)
    check = await chain_check(ctx, last) if last is not None else None
    with gc_paused():
        entries = await _read_day(ctx, day, check)
        consistent = None
        if previous_size is not None:
            head = await require_head(ctx)
            consistent = check is not None and check.result(head) is None
        signed = await new_checkpoint(ctx)
        checkpoint = checkpoint_info(signed, previous_size, consistent)
        report = await _build(ctx, day, entries, checkpoint)
        del entries  # before the collector runs again: it would walk them all
    return report


async def _read_day(ctx: Context, day: str, check: ChainCheck | None) -> list[Texted]:
    """The day's entries with their texts, in seq order; on the way, the rows after `check`'s
    checkpoint are fed to it (read once where the two overlap, each part once otherwise)."""
    start = scoring.day_start(day, ctx.rules.timezone)
    end = scoring.next_day_start(start, ctx.rules.timezone)
    span = await ctx.store.day_seqs(ctx.room_id, start, end)
    first, last = span if span is not None else (0, -1)
    texts = await ctx.store.texts_between(ctx.room_id, first, last) if span else {}
    entries: list[Texted] = []
    check_after = check.start if check is not None else None  # the check reads the rows after
    starts = ([first - 1] if span else []) + ([] if check_after is None else [check_after])
    after = min(starts, default=0)
    day_left, check_left = span is not None, check is not None
    parse = _DECODER.raw_decode  # json.loads's checks cost as much as the parsing itself
    while day_left or check_left:
        limit = ROWS_PER_READ
        if not day_left:  # on to where the check starts
            after = max(after, check_after or 0)
        elif not check_left or check_after is None or check_after > last:
            limit = min(limit, last - after)  # the day's rows, and none after them
        rows = await ctx.store.ledger_rows(ctx.room_id, after=after, limit=limit)
        if not rows:
            break
        if check is not None and check_left:
            check.add(rows)
            check_left = check.problem is None
        if day_left:
            for number, ts, actor, kind, data, _prev, _hash, _canonical in rows:
                if start <= ts < end and first <= number <= last:
                    parsed = parse(data)[0] if kind in DATA_KINDS else _NO_DATA
                    entries.append((DayEntry(number, ts, actor, kind, parsed), texts.get(number)))
            day_left = rows[-1][0] < last
        after = rows[-1][0]
    return entries


def _day_entry(entries: list[Texted], seqs: list[int], seq: int) -> Texted | None:
    """Entry `seq` with its text, if it is one of the day's `entries` (whose `seqs` these are,
    in order)."""
    i = bisect.bisect_left(seqs, seq)
    return entries[i] if i < len(seqs) and seqs[i] == seq else None


async def _build(
    ctx: Context, day: str, entries: list[Texted], checkpoint: CheckpointInfo | None
) -> Report:
    """The report from the day's entries and what else it needs from the store and the room."""
    tz = ctx.rules.timezone
    start = scoring.day_start(day, tz)
    end = scoring.next_day_start(start, tz)
    seqs = [pair[0].seq for pair in entries]
    wanted: set[int] = set()  # earlier entries the day's take out or erase
    items: set[int] = set()
    for entry in [pair[0] for pair in entries if pair[0].kind in _REFERRING]:
        if entry.kind in _TARGETING and _day_entry(entries, seqs, entry.data["target"]) is None:
            wanted.add(int(entry.data["target"]))
        if entry.kind in _ITEM_KINDS:
            items.add(int(entry.data["item"]))
    targets: dict[int, Texted] = {
        found.entry.seq: (found.entry, found.text)
        for found in await ctx.store.entries_at(ctx.room_id, wanted)
    }
    item_opens: dict[int, Texted] = {}
    action_state = {}
    listed = [await ctx.store.item(ctx.room_id, number) for number in sorted(items)]
    known = [item for item in listed if item is not None]
    for item in known:  # opened that day: no need to read it again
        if (opened := _day_entry(entries, seqs, item.open_seq)) is not None:
            item_opens[item.item] = opened
    earlier = {i.open_seq: i.item for i in known if i.item not in item_opens}
    for found in await ctx.store.entries_at(ctx.room_id, earlier):  # in one go
        item_opens[earlier[found.entry.seq]] = (found.entry, found.text)
    for item in known:
        if item.type == "action":
            committed = await ctx.store.commitments(ctx.room_id, item.item)
            came = await ctx.store.attendance(ctx.room_id, item.item)
            action_state[item.item] = (len(committed), len(came))
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
        unreviewed=await ctx.store.unreviewed_days(ctx.room_id, day),
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
    """Sign the head for a daily report, after checking it extends the previous report's (the
    check and signature of `daily_report` alone)."""
    consistent = None
    if previous_size is not None:
        last = await _previous_checkpoint(ctx, previous_size)
        consistent = last is not None and await check_since(ctx, last) is None
    signed = await new_checkpoint(ctx)
    return checkpoint_info(signed, previous_size, consistent)


async def _previous_checkpoint(ctx: Context, size: int | None) -> StoredCheckpoint | None:
    """The stored checkpoint of the previous report (of `size` entries), if there is one."""
    if size is None:
        return None
    for stored in await ctx.store.checkpoints(ctx.room_id):
        if stored.signed.checkpoint.size == size:
            return stored
    return None


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
