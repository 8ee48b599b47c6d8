"""Public moderation: `!void`, `!modlog`, `!appeal`, `!review`.

Every moderator action is a ledger entry with its reason, shown in `!modlog` and in the next
daily report, and any member can appeal a void: the appeal is an ordinary proposal of the room,
and if it passes the void is reversed by a new entry (nothing is ever deleted).
"""

from __future__ import annotations

from datetime import date

from commands.context import Context
from commands.decisions import open_item
from commands.declare import REGISTRY, Args, Kind, Param, Permission, Reason
from commands.errors import UserError
from commands.kudos import check_reason, local_time
from commands.render import Fragment, Reply, bold, bullets, italic, lines, seq, user
from consensus import scoring
from consensus.ledger import ATTEND, ERASE, KUDOS, MOD_OVERRIDE, MOD_VOID, REVIEW

MOD_KINDS = (MOD_VOID, MOD_OVERRIDE, REVIEW, ERASE)


@REGISTRY.command(
    name="void",
    section="Moderation",
    summary="voids a kudos or attendance entry by appending a reversal (public, appealable)",
    params=(Param("seq", Kind.SEQ), Param("reason", Kind.TEXT, required=False)),
    reason=Reason.OPTIONAL,
    permission=Permission.MODERATOR,
    examples=("!void 42 kudos ring with a second account",),
)
async def void(ctx: Context, args: Args) -> Reply:
    number = int(args.get("seq"))
    reason = check_reason(args.get("reason") or args.reason)
    if not reason:
        raise UserError(
            f"A void needs a reason: {ctx.prefix}void {number} <reason>.", help_for="void"
        )
    found = await ctx.store.entry(ctx.room_id, number)
    if found is None:
        raise UserError(f"There is no entry #{number} in this room's ledger.")
    target = found.entry
    if target.kind not in (KUDOS, ATTEND):
        raise UserError(
            f"Only kudos and attendance entries can be voided; #{number} is {target.kind}."
        )
    by = await ctx.store.voided_by(ctx.room_id, number)
    if by is not None:
        raise UserError(f"Entry #{number} is already out of effect (by #{by}).")
    entry = await ctx.store.append(
        ctx.room_id,
        ts=ctx.event_ts,
        actor=ctx.sender,
        kind=MOD_VOID,
        data={"target": number, "text_sha256": None},
        event=ctx.event_id,
        text=reason,
        salt=ctx.services.new_salt(),
    )
    return Reply(
        seq(
            f"Voided entry #{number} as entry #{entry.seq}: ",
            italic(reason or ""),
            f". This is in the public moderation log ({ctx.prefix}modlog); anyone can "
            f"{ctx.prefix}appeal {entry.seq}.",
        )
    )


@REGISTRY.command(
    name="modlog",
    section="Moderation",
    summary="the moderation log: every moderator action with its reason",
    params=(Param("n", Kind.INT, required=False),),
    examples=("!modlog", "!modlog 50"),
)
async def modlog(ctx: Context, args: Args) -> Reply:
    n = args.get("n", 20)
    if not 1 <= n <= 100:
        raise UserError("N must be from 1 to 100.", help_for="modlog")
    found = await ctx.store.entries_of_kinds(ctx.room_id, MOD_KINDS, n)
    if not found:
        return Reply(seq("The moderation log is empty."))
    tz = ctx.rules.timezone
    rows: list[Fragment] = []
    for stored in found:
        e = stored.entry
        what = {
            MOD_VOID: f"voided #{e.data.get('target')}",
            MOD_OVERRIDE: f"operator override: {e.data.get('key')} = {e.data.get('value')}",
            REVIEW: f"signed off the report of {e.data.get('date')}",
            ERASE: f"erased the text of #{e.data.get('target')}",
        }[e.kind]
        parts: list[Fragment] = [f"#{e.seq} {local_time(e.ts, tz)} ", user(e.actor), f" {what}"]
        if stored.text:
            parts += [" — ", italic(stored.text)]
        rows.append(seq(*parts))
    return Reply(lines([bold("Moderation log, newest first"), bullets(rows)]))


@REGISTRY.command(
    name="appeal",
    section="Moderation",
    summary="opens a proposal to reverse a moderator's void",
    params=(Param("seq", Kind.SEQ),),
    examples=("!appeal 57",),
)
async def appeal(ctx: Context, args: Args) -> Reply:
    number = int(args.get("seq"))
    found = await ctx.store.entry(ctx.room_id, number)
    if found is None or found.entry.kind != MOD_VOID:
        raise UserError(
            f"Entry #{number} is not a void; {ctx.prefix}modlog lists the moderator actions."
        )
    target = int(found.entry.data["target"])
    if await ctx.store.voided_by(ctx.room_id, target) != number:
        raise UserError(f"The void #{number} is no longer in effect.")
    rules = ctx.rules
    title = f"Appeal: reverse the void #{number} of entry #{target}"
    reason = f"Moderator's reason: {found.text}" if found.text else ""
    return await open_item(
        ctx,
        "proposal",
        rules.proposal_method,
        title,
        reason,
        (),
        rules.proposal_quorum,
        ctx.event_ts + rules.proposal_duration_ms,
        None,
        None,
        target=number,
    )


@REGISTRY.command(
    name="review",
    section="Moderation",
    summary="signs off a day's report as reviewed (yesterday by default)",
    params=(Param("day", Kind.DATE, required=False),),
    reason=Reason.OPTIONAL,
    permission=Permission.MODERATOR,
    examples=("!review", "!review 2026-11-25 -- rings checked, nothing wrong"),
)
async def review(ctx: Context, args: Args) -> Reply:
    tz = ctx.rules.timezone
    today = scoring.local_day(ctx.event_ts, tz)
    chosen: date | None = args.get("day")
    day = chosen.isoformat() if chosen else scoring.local_day(scoring.day_start(today, tz) - 1, tz)
    if day >= today:
        raise UserError(f"{day} isn't over yet; reports cover finished days.", help_for="review")
    note = check_reason(args.reason)
    entry = await ctx.store.append(
        ctx.room_id,
        ts=ctx.event_ts,
        actor=ctx.sender,
        kind=REVIEW,
        data={"date": day, "text_sha256": None},
        event=ctx.event_id,
        text=note,
        salt=ctx.services.new_salt() if note else None,
    )
    return Reply(seq(f"The report of {day} is signed off as reviewed (entry #{entry.seq})."))
