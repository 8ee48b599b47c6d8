"""Action calls (assurance contracts): `!action`, `!in`, `!out`, `!attended`.

A call goes only when enough people commit — each unconditionally or "if at least N others
are" — before its deadline; until then nobody is bound. Going, falling below the number needed,
being called off and reminders are announced as `m.text` that mentions exactly the people
concerned, because clients never notify for `m.notice`.
"""

from __future__ import annotations

import re

from commands.context import Context, Item
from commands.decisions import POLL_START, find_item, poll_start
from commands.declare import REGISTRY, Args, Kind, Option, Param
from commands.errors import UserError
from commands.render import Fragment, Outgoing, Reply, bold, lines, seq, txn_id, user
from commands.times import TimeError, format_time, parse_time
from consensus import actions
from consensus.ledger import ATTEND, COMMIT, ITEM_CLOSE, ITEM_OPEN

IN, OUT = "in", "out"
POLL_ANSWERS = ((IN, "I'm in"), (OUT, "Can't make it"))
MAX_WHAT = 300
_CONDITION = re.compile(r"^if\s+(?:at\s+least\s+)?([0-9]{1,5})(?:\s+others?)?$", re.IGNORECASE)


def _time(ctx: Context, text: str, flag: str) -> int:
    try:
        return parse_time(text, now_ms=ctx.event_ts, timezone=ctx.rules.timezone)
    except TimeError as err:
        raise UserError(f"{flag}: {err}") from None


@REGISTRY.command(
    name="action",
    section="Action calls",
    summary="calls an action that goes ahead only if N people commit in time",
    params=(Param("what", Kind.TEXT),),
    options=(
        Option("at", Kind.TEXT, "when the action happens", metavar="TIME"),
        Option("need", Kind.INT, "how many people it needs (you included)", metavar="N"),
        Option("where", Kind.TEXT, "where to meet", metavar="PLACE"),
        Option("deadline", Kind.TEXT, "commit by (default: 2 hours before)", metavar="TIME"),
    ),
    examples=("!action Park cleanup --at sat 10:00 --need 5 --where north gate",),
    details="--need counts everyone, and you are not committed until you say {p}in too.",
)
async def action(ctx: Context, args: Args) -> Reply:
    what = str(args.get("what")).strip()
    if len(what) > MAX_WHAT:
        raise UserError(f"Please say what in under {MAX_WHAT} characters.", help_for="action")
    if args.get("at") is None or args.get("need") is None:
        raise UserError(
            f"An action call needs --at and --need: {ctx.prefix}action Park cleanup --at sat "
            "10:00 --need 5.",
            help_for="action",
        )
    at = _time(ctx, str(args.get("at")), "--at")
    deadline = args.get("deadline")
    deadline_ms = _time(ctx, str(deadline), "--deadline") if deadline is not None else None
    need = int(args.get("need"))
    try:
        closes = actions.check_call(
            now_ms=ctx.event_ts, at_ms=at, deadline_ms=deadline_ms, need=need
        )
    except actions.ActionError as err:
        raise UserError(str(err), help_for="action") from None
    where = args.get("where")
    number = await ctx.store.next_item(ctx.room_id)
    text = what + (f"\nWhere: {where}" if where else "")
    entry = await ctx.store.append(
        ctx.room_id,
        ts=ctx.event_ts,
        actor=ctx.sender,
        kind=ITEM_OPEN,
        data={
            "item": number, "type": "action", "method": None, "options": 2, "quorum": None,
            "closes": closes, "at": at, "need": need, "rule_key": None, "rule_value": None,
            "target": None, "text_sha256": None,
        },
        event=ctx.event_id,
        text=text,
        salt=ctx.services.new_salt(),
    )  # fmt: skip
    await ctx.store.add_item(
        Item(
            room=ctx.room_id, item=number, type="action", author=ctx.sender, open_seq=entry.seq,
            open_event=ctx.event_id, status="open", method=None, options=(), quorum=None,
            closes=closes, at=at, need=need, rule_key=None, rule_value=None, target=None,
            poll_txn=txn_id(ctx.event_id, "poll", at=ctx.source_ts),
        )
    )  # fmt: skip
    tz = ctx.rules.timezone
    place = f" at {where}" if where else ""
    fallback = (
        f"Action #{number}: {what}{place}, {format_time(at, tz)}. Answer I'm in / Can't make it, "
        f"or {ctx.prefix}in #{number}."
    )
    poll = poll_start(f"#{number} {what}{place}, {format_time(at, tz)}", POLL_ANSWERS, 1, fallback)
    return Reply(
        lines(
            [
                seq(bold(f"Action call #{number}: "), what + place),
                f"When: {format_time(at, tz, now_ms=ctx.event_ts)}.",
                f"It goes ahead if {need} people commit by {format_time(closes, tz)}; until "
                "then nobody is bound.",
                f"Commit with {ctx.prefix}in #{number} (or {ctx.prefix}in #{number} if 3: "
                f"“I'm in if at least 3 others are”), withdraw with {ctx.prefix}out #{number}, "
                "or answer the poll below.",
            ]
        ),
        extra=(Outgoing(POLL_START, poll, "poll"),),
    )


async def _call(ctx: Context, number: int) -> Item:
    item = await find_item(ctx, number)
    if item.type != "action":
        raise UserError(f"#{number} is a {item.type}; vote on it with {ctx.prefix}vote #{number}.")
    return item


def _closed_reason(item: Item, ctx: Context) -> str | None:
    tz = ctx.rules.timezone
    if item.status == "called_off":
        return f"Action #{item.item} was called off; commitments are closed."
    if item.status == "withdrawn":
        return f"Action #{item.item} was withdrawn by its caller."
    if item.at is not None and ctx.event_ts >= item.at:
        return f"Action #{item.item} started {format_time(item.at, tz)}; commitments are closed."
    if item.status == "open" and item.closes is not None and ctx.event_ts >= item.closes:
        return f"The deadline of #{item.item} passed at {format_time(item.closes, tz)}."
    return None


async def set_commitment(ctx: Context, item: Item, min_others: int | None, via: str) -> Reply:
    """Record `ctx.sender`'s commitment (None: withdraw) and say what it changed."""
    reason = _closed_reason(item, ctx)
    if reason:
        raise UserError(reason)
    members = await ctx.room.members()
    if ctx.sender not in members:
        raise UserError("Only members of this room can commit here.")
    before = dict(await ctx.store.commitments(ctx.room_id, item.item))
    if min_others is None and ctx.sender not in before:
        raise UserError(f"You are not committed to #{item.item}.")
    if min_others is not None and before.get(ctx.sender) == min_others:
        raise UserError(
            f"You are already in #{item.item}"
            + (f" (if {min_others} others are)." if min_others else ".")
        )
    entry = await ctx.store.append(
        ctx.room_id,
        ts=ctx.event_ts,
        actor=ctx.sender,
        kind=COMMIT,
        data={
            "item": item.item,
            "state": IN if min_others is not None else OUT,
            "min_others": min_others or 0,
            "via": via,
        },
        event=ctx.event_id,
    )
    await ctx.store.commit(ctx.room_id, item.item, ctx.sender, min_others, ctx.event_ts, entry.seq)
    now_in = await ctx.store.commitments(ctx.room_id, item.item)
    commitments = [actions.Commitment(u, m) for u, m in now_in]
    going = actions.going_set(commitments)
    need = item.need or 1
    if item.status == "open" and len(going) >= need:
        return await _go(ctx, item, going, len(now_in))
    if item.status == "go" and min_others is None and len(going) < need:
        still = sorted(going)
        return Reply(
            seq(
                bold(f"Action #{item.item} fell below the number needed: "),
                f"{len(going)} of {need} now. Anyone who can, please {ctx.prefix}in #{item.item}.",
            ),
            ping=tuple(still),
        )
    state = f"{len(going)} of {need} needed would go now"
    if min_others is None:
        return Reply(seq(f"You are out of #{item.item}; {state}."))
    cond = f" if at least {min_others} others are" if min_others else ""
    return Reply(seq(f"You are in #{item.item}{cond}; {state}."))


async def _decide(ctx: Context, item: Item, outcome: str, going: int, committed: int) -> None:
    """Record that a call goes ("go") or is called off ("called_off"), with its numbers."""
    await ctx.store.append(
        ctx.room_id,
        ts=ctx.event_ts,
        actor=ctx.bot_user_id,
        kind=ITEM_CLOSE,
        data={
            "item": item.item,
            "outcome": outcome,
            "winners": [],
            "tally": {"going": going, "committed": committed, "need": item.need or 1},
        },
        event=None,
    )
    await ctx.store.set_item_status(ctx.room_id, item.item, outcome)


async def _go(ctx: Context, item: Item, going: frozenset[str], committed: int) -> Reply:
    await _decide(ctx, item, "go", len(going), committed)
    at = item.at or ctx.event_ts
    await ctx.store.add_reminders(
        ctx.room_id, item.item, actions.reminder_times(at, ctx.rules.reminders_ms, ctx.event_ts)
    )
    names: list[Fragment] = []
    for i, u in enumerate(sorted(going)):
        if i:
            names.append(", ")
        names.append(user(u, quiet=False))
    return Reply(
        seq(
            bold(f"GO! Action #{item.item} goes ahead "),
            format_time(at, ctx.rules.timezone, now_ms=ctx.event_ts),
            f" with {len(going)} people: ",
            *names,
            ". See you there!",
        ),
        ping=tuple(sorted(going)),
    )


@REGISTRY.command(
    name="in",
    section="Action calls",
    summary="commits you to an action call, unconditionally or “if N others are”",
    params=(Param("item", Kind.ITEM), Param("condition", Kind.TEXT, required=False)),
    examples=("!in #4", "!in #4 if 3"),
)
async def in_(ctx: Context, args: Args) -> Reply:
    item = await _call(ctx, int(args.get("item")))
    condition = args.get("condition")
    min_others = 0
    if condition is not None:
        match = _CONDITION.match(str(condition).strip())
        if not match:
            raise UserError(
                f"Say a condition as “if N”, e.g. {ctx.prefix}in #{item.item} if 3.", help_for="in"
            )
        min_others = int(match.group(1))
        if min_others >= (item.need or 1) * 10 + 100:
            raise UserError("That condition can never be met.", help_for="in")
    return await set_commitment(ctx, item, min_others, "command")


@REGISTRY.command(
    name="out",
    section="Action calls",
    summary="withdraws your commitment",
    params=(Param("item", Kind.ITEM),),
    examples=("!out #4",),
)
async def out(ctx: Context, args: Args) -> Reply:
    item = await _call(ctx, int(args.get("item")))
    return await set_commitment(ctx, item, None, "command")


async def poll_answer(ctx: Context, item: Item, answers: list[str]) -> Reply | None:
    """An answer to the call's poll: "I'm in" commits unconditionally; anything else withdraws."""
    want_in = bool(answers) and answers[0] == IN
    current = dict(await ctx.store.commitments(ctx.room_id, item.item))
    if want_in == (ctx.sender in current):
        return None  # nothing changes
    try:
        reply = await set_commitment(ctx, item, 0 if want_in else None, "poll")
    except UserError as err:
        return Reply(seq(user(ctx.sender), ": ", err.message))
    return reply if reply.ping else None  # GO or falling below is news; a plain answer is not


async def deadline(ctx: Context, item: Item) -> Reply | None:
    """The deadline passed: an open call is called off and everyone committed is told."""
    if item.status != "open":
        return None
    now_in = await ctx.store.commitments(ctx.room_id, item.item)
    going = actions.going_set(actions.Commitment(u, m) for u, m in now_in)
    await _decide(ctx, item, "called_off", len(going), len(now_in))
    return Reply(
        seq(
            bold(f"Action #{item.item} is called off: "),
            f"{len(going)} of {item.need} needed committed by the deadline. Nobody is bound.",
        ),
        ping=tuple(sorted(u for u, _ in now_in)),
    )


async def reminder(ctx: Context, item: Item, due: int) -> Reply | None:
    if item.status != "go" or item.at is None:
        return None
    now_in = await ctx.store.commitments(ctx.room_id, item.item)
    going = sorted(actions.going_set(actions.Commitment(u, m) for u, m in now_in))
    if not going:
        return None
    late = " (late: I was offline at the planned time)" if ctx.event_ts - due > 10 * 60_000 else ""
    return Reply(
        seq(
            bold(f"Reminder: action #{item.item} "),
            f"is {format_time(item.at, ctx.rules.timezone, now_ms=ctx.event_ts)}{late}.",
        ),
        ping=tuple(going),
    )


@REGISTRY.command(
    name="attended",
    section="Action calls",
    summary="confirms who came to an action (yourself if you name nobody)",
    params=(Param("item", Kind.ITEM), Param("users", Kind.USERS, required=False)),
    examples=("!attended #4 @alice:example.org @bob:example.org", "!attended #4"),
    details="Confirmations by the caller or another participant earn action.attendance_kudos; "
    "a self-report counts for follow-through and earns kudos once someone else confirms it.",
)
async def attended(ctx: Context, args: Args) -> Reply:
    item = await _call(ctx, int(args.get("item")))
    if item.status != "go":
        raise UserError(
            f"Action #{item.item} did not go ahead, so there is no attendance to record."
        )
    if item.at is not None and ctx.event_ts < item.at:
        raise UserError(
            f"Action #{item.item} hasn't started yet ({format_time(item.at, ctx.rules.timezone)})."
        )
    users: list[str] = list(args.get("users") or [ctx.sender])
    committed = dict(await ctx.store.commitments(ctx.room_id, item.item))
    came = await ctx.store.attendance(ctx.room_id, item.item)
    confirmer_ok = ctx.sender == item.author or ctx.sender in committed or ctx.sender in came
    kudos = ctx.rules.attendance_kudos
    done: list[Fragment] = []
    for person in dict.fromkeys(users):
        self_report = person == ctx.sender
        if not self_report and not confirmer_ok:
            raise UserError(
                f"Only the caller or a participant of #{item.item} can confirm others."
            )
        if came.get(person) or (self_report and person in came):
            continue  # already recorded (and credited, if it could be)
        credited = not self_report and kudos > 0
        entry = await ctx.store.append(
            ctx.room_id,
            ts=ctx.event_ts,
            actor=ctx.sender,
            kind=ATTEND,
            data={"item": item.item, "user": person, "kudos": kudos if credited else 0},
            event=ctx.event_id,
        )
        await ctx.store.attend(ctx.room_id, item.item, person, credited, entry.seq)
        done.append(seq(user(person), f" (+{kudos})" if credited else " (self-reported)"))
    if not done:
        return Reply(seq("That attendance was recorded already."))
    came = await ctx.store.attendance(ctx.room_id, item.item)
    rate = actions.follow_through(committed, came)
    parts: list[Fragment] = [f"Attendance at #{item.item}: "]
    for i, d in enumerate(done):
        if i:
            parts.append(", ")
        parts.append(d)
    parts.append(f". Follow-through so far: {rate[0]} of {rate[1]} who committed came.")
    return Reply(seq(*parts))


def describe_call(
    ctx: Context, item: Item, committed: list[tuple[str, int]], came: dict[str, bool]
) -> list[Fragment]:
    """Lines for `!show` of an action call."""
    tz = ctx.rules.timezone
    going = actions.going_set(actions.Commitment(u, m) for u, m in committed)
    status = {
        "open": "open",
        "go": "going ahead",
        "called_off": "called off",
        "withdrawn": "withdrawn",
    }
    out: list[Fragment] = [
        f"When: {format_time(item.at or 0, tz)}; commit by {format_time(item.closes or 0, tz)}.",
        f"Status: {status.get(item.status, item.status)}; {len(going)} of {item.need} needed "
        f"would go now ({len(committed)} committed).",
    ]
    for u, m in committed:
        cond = f" if {m} others" if m else ""
        out.append(seq("• ", user(u), cond))
    if came:
        rate = actions.follow_through([u for u, _ in committed], came)
        out.append(f"Follow-through: {rate[0]} of {rate[1]} who committed came.")
    return out
