"""Kudos: giving (`!kudos`, `<mention>++`, a reply, a reaction), reading scores, opting out.

Every accepted kudos is one ledger entry per receiver; a refusal is one sentence naming the rule
and leaves the ledger untouched. Leaderboards and explanations never ping anyone.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from commands.context import Context
from commands.declare import REGISTRY, Args, Kind, Option, Param, Reason
from commands.errors import UserError
from commands.render import Fragment, Reply, bold, bullets, italic, lines, seq, user
from consensus import scoring
from consensus.ledger import ATTEND, KUDOS, OPTIN, OPTOUT, REVERSAL

MAX_REASON_CHARS = 500
MAX_TOP = 50
PLUSPLUS = re.compile(r"(@[^\s:]+:[A-Za-z0-9.\-\[\]:]+?)\+\+(?=\s|$|[.,!?;:])")


def check_reason(reason: str | None) -> str | None:
    if reason is None:
        return None
    if len(reason) > MAX_REASON_CHARS:
        raise UserError(
            f"That reason is {len(reason)} characters long; please keep it under "
            f"{MAX_REASON_CHARS}."
        )
    return reason


def local_time(ts_ms: int, timezone: str) -> str:
    moment = datetime.fromtimestamp(ts_ms / 1000, tz=UTC).astimezone(ZoneInfo(timezone))
    return moment.strftime("%Y-%m-%d %H:%M ") + (moment.tzname() or timezone)


async def give(
    ctx: Context,
    receivers: list[str],
    amount: int,
    *,
    via: str,
    reason: str | None,
    ref: str | None,
    event: str | None,
) -> tuple[str, ...]:
    """Check the room's rules and append one kudos entry per receiver; refusals raise."""
    rules = ctx.rules
    day = scoring.local_day(ctx.event_ts, rules.timezone)
    members = await ctx.room.members()
    state = await ctx.store.giver_state(ctx.room_id, ctx.sender, receivers, day)
    try:
        accepted = scoring.check_kudos(
            giver=ctx.sender,
            receivers=receivers,
            amount=amount,
            now_ms=ctx.event_ts,
            rules=rules,
            state=state,
            bot_user=ctx.bot_user_id,
            members=members.keys(),
            prefix=ctx.prefix,
        )
    except scoring.KudosRefused as refusal:
        raise UserError(refusal.message, help_for="kudos") from None
    reason = check_reason(reason)
    for receiver in accepted:
        await ctx.store.append(
            ctx.room_id,
            ts=ctx.event_ts,
            actor=ctx.sender,
            kind=KUDOS,
            data={"to": receiver, "amount": amount, "via": via, "ref": ref, "text_sha256": None},
            event=event,
            text=reason,
            salt=ctx.services.new_salt() if reason is not None else None,
        )
    return accepted


async def _given_reply(ctx: Context, accepted: tuple[str, ...], amount: int) -> Reply:
    parts: list[Fragment] = []
    for receiver in accepted:
        total = await ctx.store.score(ctx.room_id, receiver)
        parts.append(seq(user(receiver), f" +{amount} (now {total})"))
    return Reply(seq("👏 Kudos from ", user(ctx.sender), ": ", *_joined(parts)))


def _joined(parts: list[Fragment]) -> list[Fragment]:
    out: list[Fragment] = []
    for i, part in enumerate(parts):
        if i:
            out.append(", ")
        out.append(part)
    return out


@REGISTRY.command(
    name="kudos",
    section="Kudos",
    summary="gives kudos (as a reply: to the message's author)",
    params=(Param("users", Kind.USERS, required=False), Param("n", Kind.INT, required=False)),
    reason=Reason.OPTIONAL,
    reason_word="for",
    examples=(
        "!kudos @alice:example.org",
        "!kudos @alice:example.org @bob:example.org 2 for the soup",
    ),
    details="N (default 1) is per receiver: two receivers of 2 use 4 of your daily allowance.",
)
async def kudos(ctx: Context, args: Args) -> Reply:
    receivers: list[str] = list(args.get("users") or [])
    ref = None
    if not receivers:
        if ctx.reply_to is None:
            raise UserError(
                f"Say whom to thank: {ctx.prefix}kudos @user, or send {ctx.prefix}kudos as a "
                "reply to their message.",
                help_for="kudos",
            )
        author = await ctx.room.event_sender(ctx.reply_to)
        if author is None:
            raise UserError("I can't find who wrote the message you replied to.")
        receivers, ref = [author], ctx.reply_to
    amount = args.get("n", 1)
    accepted = await give(
        ctx,
        receivers,
        amount,
        via="reply" if ref else "command",
        reason=args.reason,
        ref=ref,
        event=ctx.event_id,
    )
    return await _given_reply(ctx, accepted, amount)


async def plusplus(ctx: Context, text: str) -> Reply | None:
    """`@user:server++` anywhere in a message: one kudos to each mentioned user."""
    receivers = list(dict.fromkeys(PLUSPLUS.findall(text)))
    if not receivers:
        return None
    try:
        accepted = await give(
            ctx, receivers, 1, via="plusplus", reason=None, ref=None, event=ctx.event_id
        )
    except UserError as err:
        return Reply(seq(err.message))
    return await _given_reply(ctx, accepted, 1)


async def reaction(ctx: Context, target_event: str, key: str) -> Reply | None:
    """A reaction with a kudos emoji: one kudos to the reacted message's author."""
    if key not in ctx.rules.reaction_emoji:
        return None
    author = await ctx.room.event_sender(target_event)
    if author is None or author == ctx.sender:
        return None  # reacting to your own message is not a kudos; no need to say so
    try:
        await give(
            ctx, [author], 1, via="reaction", reason=None, ref=target_event, event=ctx.event_id
        )
    except UserError as err:
        return Reply(seq(user(ctx.sender), ": ", err.message))
    return None  # the reaction itself is the visible acknowledgement


async def redaction(ctx: Context, redacted_event: str) -> None:
    """A redacted kudos reaction takes its kudos back, as a new reversal entry."""
    found = await ctx.store.reaction_kudos(ctx.room_id, redacted_event)
    if found is None or found.entry.kind != KUDOS or found.entry.data.get("via") != "reaction":
        return
    if found.entry.actor != ctx.sender:
        return  # a moderator removing a reaction is not the giver taking it back
    if await ctx.store.voided_by(ctx.room_id, found.entry.seq) is not None:
        return
    await ctx.store.append(
        ctx.room_id,
        ts=ctx.event_ts,
        actor=ctx.sender,
        kind=REVERSAL,
        data={"target": found.entry.seq, "cause": "redaction", "item": None},
        event=ctx.event_id,
    )


def _target(ctx: Context, args: Args) -> str:
    return str(args.get("user") or ctx.sender)


@REGISTRY.command(
    name="score",
    section="Kudos",
    summary="shows a score (yours by default)",
    params=(Param("user", Kind.USER, required=False),),
    examples=("!score", "!score @alice:example.org"),
)
async def score(ctx: Context, args: Args) -> Reply:
    who = _target(ctx, args)
    total = await ctx.store.score(ctx.room_id, who)
    text: list[Fragment] = [user(who), f" has {total} kudos in this room"]
    if ctx.rules.half_life_ms is not None:
        days = await ctx.store.score_days(ctx.room_id, who)
        decayed = scoring.decayed_score(days, ctx.now_ms, ctx.rules)
        text.append(f" ({decayed:.1f} with kudos.half_life {ctx.rules.values['kudos.half_life']})")
    if await ctx.store.opted_out(ctx.room_id, [who]):
        text.append("; opted out of scoring")
    text.append(f". {ctx.prefix}why shows the entries behind it.")
    return Reply(seq(*text))


@REGISTRY.command(
    name="top",
    section="Kudos",
    summary="the room's leaderboard (never pings)",
    params=(Param("n", Kind.INT, required=False),),
    options=(Option("days", Kind.INT, "only kudos of the last D days", metavar="D"),),
    examples=("!top", "!top 5 --days 7"),
)
async def top(ctx: Context, args: Args) -> Reply:
    n = args.get("n", 10)
    if not 1 <= n <= MAX_TOP:
        raise UserError(f"N must be from 1 to {MAX_TOP}.", help_for="top")
    days = args.get("days")
    since = None
    if days is not None:
        if not 1 <= days <= 3660:
            raise UserError("--days must be from 1 to 3660.", help_for="top")
        today = scoring.local_day(ctx.now_ms, ctx.rules.timezone)
        since = scoring.local_day(
            scoring.day_start(today, ctx.rules.timezone) - (days - 1) * 86_400_000 + 43_200_000,
            ctx.rules.timezone,
        )
    rows = await ctx.store.top(ctx.room_id, n, since)
    title = "Top" if since is None else f"Top of the last {days} days"
    if not rows:
        return Reply(seq(f"{title}: no kudos yet."))
    items = [seq(f"{i}. ", user(u), f" — {total}") for i, (u, total) in enumerate(rows, 1)]
    return Reply(lines([bold(title), bullets(items)]))


@REGISTRY.command(
    name="why",
    section="Kudos",
    summary="explains a score entry by entry",
    params=(Param("user", Kind.USER, required=False),),
    examples=("!why", "!why @alice:example.org"),
)
async def why(ctx: Context, args: Args) -> Reply:
    who = _target(ctx, args)
    shown = await ctx.store.entries_about(ctx.room_id, who, 20)
    total = await ctx.store.score(ctx.room_id, who)
    if not shown:
        return Reply(seq(user(who), " has no kudos in this room yet."))
    half_life = ctx.rules.half_life_ms
    items: list[Fragment] = []
    for stored in shown:
        entry = stored.entry
        amount = int(entry.data.get("amount", entry.data.get("kudos", 0)))
        if entry.kind == ATTEND:
            source: Fragment = f"attendance at #{entry.data['item']}"
        else:
            source = seq("from ", user(entry.actor), f" ({entry.data['via']})")
        parts: list[Fragment] = [f"#{entry.seq} {local_time(entry.ts, ctx.rules.timezone)}: "]
        parts += [f"+{amount} ", source]
        if stored.text:
            parts += [" — ", italic(stored.text)]
        elif entry.data.get("text_sha256"):
            parts.append(" — (reason erased)")
        voided = await ctx.store.voided_by(ctx.room_id, entry.seq)
        if voided is not None:
            parts.append(f" — taken back by #{voided}, not counted")
        elif half_life is not None:
            factor = scoring.decay_factor(ctx.now_ms - entry.ts, half_life)
            parts.append(f" — worth {amount * factor:.2f} after decay")
        items.append(seq(*parts))
    more = "" if len(shown) < 20 else " (the 20 newest entries)"
    head = seq(user(who), f" has {total} kudos{more}:")
    return Reply(lines([head, bullets(items)]))


@REGISTRY.command(
    name="optout",
    section="Kudos",
    summary="stop taking part in scoring (you can neither give nor receive)",
    examples=("!optout",),
)
async def optout(ctx: Context, args: Args) -> Reply:
    if await ctx.store.opted_out(ctx.room_id, [ctx.sender]):
        return Reply(seq(f"You are already opted out; {ctx.prefix}optin takes you back in."))
    await ctx.store.append(
        ctx.room_id, ts=ctx.event_ts, actor=ctx.sender, kind=OPTOUT, data={}, event=ctx.event_id
    )
    return Reply(
        seq(
            "You are out of scoring here: nobody can give you kudos, you can't give any, and "
            f"leaderboards leave you out. {ctx.prefix}optin takes you back in."
        )
    )


@REGISTRY.command(
    name="optin",
    section="Kudos",
    summary="take part in scoring again",
    examples=("!optin",),
)
async def optin(ctx: Context, args: Args) -> Reply:
    if not await ctx.store.opted_out(ctx.room_id, [ctx.sender]):
        return Reply(seq("You are taking part in scoring already."))
    await ctx.store.append(
        ctx.room_id, ts=ctx.event_ts, actor=ctx.sender, kind=OPTIN, data={}, event=ctx.event_id
    )
    return Reply(seq("Welcome back: you can give and receive kudos again."))
