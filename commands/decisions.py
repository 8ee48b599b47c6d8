"""Proposals and polls: `!propose`, `!poll`, `!vote`, `!proposals`, `!show`, `!close`,
`!withdraw`, answers to their native Matrix polls, and closing them at their deadline.

Every state change is a ledger entry (item.open, vote, item.close, and rule.change when a rule
proposal passes), so `commons verify` can recompute every outcome from an export. Tallies are
always public: `!show` gives the current one at any time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from commands.context import Context, Item, Vote
from commands.declare import REGISTRY, Args, Kind, Option, Param, Reason
from commands.errors import UserError
from commands.kudos import check_reason
from commands.render import Fragment, Outgoing, Reply, bold, bullets, lines, seq, txn_id, user
from commands.times import TimeError, format_time, parse_time
from consensus import tally
from consensus.ledger import (
    ITEM_CLOSE,
    ITEM_OPEN,
    POLL_METHODS,
    PROPOSAL_METHODS,
    REVERSAL,
    RULE_CHANGE,
    VOTE,
)
from consensus.rules import RULES, RuleError, parse_rule

ANSWERS = ("agree", "abstain", "disagree", "block")
ANSWER_LABELS = {"agree": "Agree", "abstain": "Abstain", "disagree": "Disagree", "block": "Block"}
MAX_OPTIONS = 20  # native polls allow 20 answers
MAX_TITLE = 300
MAX_DESCRIPTION = 4000
MAX_OPEN_MS = 366 * 86_400_000
NATIVE_POLL_METHODS = ("single", "approval")
POLL_START = "org.matrix.msc3381.poll.start"
POLL_END = "org.matrix.msc3381.poll.end"
POLL_RESPONSES = ("org.matrix.msc3381.poll.response", "m.poll.response")
TEXT_KEY = "org.matrix.msc1767.text"


# -- native polls ------------------------------------------------------------------------------


def poll_start(
    question: str, answers: Sequence[tuple[str, str]], max_selections: int, fallback: str
) -> dict[str, Any]:
    return {
        POLL_START: {
            "question": {TEXT_KEY: question, "body": question},
            "kind": "org.matrix.msc3381.poll.disclosed",
            "max_selections": max_selections,
            "answers": [{"id": aid, TEXT_KEY: label} for aid, label in answers],
        },
        TEXT_KEY: fallback,
        "body": fallback,
        "m.mentions": {},
    }


def poll_end(start_event: str, text: str) -> dict[str, Any]:
    return {
        "m.relates_to": {"rel_type": "m.reference", "event_id": start_event},
        POLL_END: {},
        TEXT_KEY: text,
        "body": text,
        "m.mentions": {},
    }


def response_answers(content: dict[str, Any]) -> list[str] | None:
    """The answer IDs of a poll response (either namespace), or None if it isn't one."""
    for key in ("org.matrix.msc3381.poll.response", "m.poll.response"):
        body = content.get(key)
        if isinstance(body, dict) and isinstance(body.get("answers"), list):
            return [str(a) for a in body["answers"]]
    selections = content.get("m.selections")
    if isinstance(selections, list):
        return [str(a) for a in selections]
    return None


# -- helpers -------------------------------------------------------------------------------------


def _when(ctx: Context, text: str | None, default_ms: int) -> int:
    if text is None:
        return ctx.event_ts + default_ms
    try:
        closes = parse_time(text, now_ms=ctx.event_ts, timezone=ctx.rules.timezone)
    except TimeError as err:
        raise UserError(str(err)) from None
    if closes <= ctx.event_ts:
        raise UserError(
            f"--closes must be in the future; "
            f"{format_time(closes, ctx.rules.timezone)} has passed."
        )
    if closes - ctx.event_ts > MAX_OPEN_MS:
        raise UserError("--closes may be at most a year away.")
    return closes


def _split_title(text: str) -> tuple[str, str]:
    title, _, description = text.strip().partition("\n")
    title, description = title.strip(), description.strip()
    if len(title) > MAX_TITLE:
        raise UserError(
            f"Please keep the title under {MAX_TITLE} characters (put details on the next lines)."
        )
    if len(description) > MAX_DESCRIPTION:
        raise UserError(f"Please keep the description under {MAX_DESCRIPTION} characters.")
    return title, description


async def find_item(ctx: Context, number: int) -> Item:
    found = await ctx.store.item(ctx.room_id, number)
    if found is None:
        raise UserError(
            f"There is no #{number} in this room; {ctx.prefix}proposals lists the open ones."
        )
    return found


async def _item_text(ctx: Context, item: Item) -> str:
    stored = await ctx.store.entry(ctx.room_id, item.open_seq)
    return stored.text if stored is not None and stored.text else "(text erased)"


def _ballot(item: Item, vote: Vote) -> tally.Ballot:
    choice = vote.choice
    if isinstance(choice, list):
        if item.method == "score":
            return tally.Ballot(vote.voter, tuple(choice), vote.reason, scores=tuple(choice))
        return tally.Ballot(vote.voter, tuple(choice), vote.reason)
    return tally.Ballot(vote.voter, str(choice), vote.reason)


def current_outcome(ctx: Context, item: Item, votes: Sequence[Vote]) -> tally.Outcome:
    ballots = [_ballot(item, v) for v in votes if v.choice != []]
    if item.type == "proposal":
        return tally.tally_proposal(
            item.method or "consent",
            ballots,
            quorum=item.quorum or 0,
            supermajority=ctx.rules.supermajority,
        )
    return tally.tally_poll(item.method or "single", item.options, ballots, quorum=item.quorum)


def _reason_text(vote: Vote) -> str:
    if vote.reason:
        return f" — “{vote.reason}”"
    return " — (no reason given)" if vote.choice == "block" else ""


def _choice_text(item: Item, choice: Any) -> str:
    if isinstance(choice, str):
        return choice
    if not choice:
        return "(withdrawn)"
    if item.method == "score":
        return ", ".join(f"{item.options[i]}: {s}" for i, s in enumerate(choice))
    sep = " > " if item.method == "ranked" else ", "
    return sep.join(item.options[n - 1] for n in choice if 0 < n <= len(item.options))


# -- opening ----------------------------------------------------------------------------------

_FLAGS_PROPOSE = (
    Option("method", Kind.WORD, "how it is decided", choices=PROPOSAL_METHODS),
    Option(
        "closes", Kind.TEXT, "when voting ends (48h, tomorrow 18:00, 2026-12-01)", metavar="TIME"
    ),
    Option("quorum", Kind.INT, "the least number of voters", metavar="N"),
)


@REGISTRY.command(
    name="propose",
    section="Decisions",
    summary="opens a proposal, decided by a consensus poll (Agree/Abstain/Disagree/Block)",
    params=(Param("title", Kind.TEXT),),
    options=_FLAGS_PROPOSE,
    examples=(
        "!propose Paint the shed green --closes 3d",
        "!propose rule kudos.daily_allowance 5",
    ),
    details="More lines after the title are the description. `!propose rule <key> <value>` "
    "proposes a change of a room rule ({p}rules lists them).",
)
async def propose(ctx: Context, args: Args) -> Reply:
    text: str = args.get("title")
    words = text.split()
    if len(words) >= 2 and words[0].lower() == "rule" and words[1] in RULES:
        return await _propose_rule(ctx, args, words[1], text)
    title, description = _split_title(text)
    rules = ctx.rules
    method = args.get("method") or rules.proposal_method
    quorum = args.get("quorum", rules.proposal_quorum)
    if not 0 <= quorum <= 10_000:
        raise UserError("--quorum must be from 0 to 10000.", help_for="propose")
    closes = _when(ctx, args.get("closes"), rules.proposal_duration_ms)
    return await open_item(
        ctx, "proposal", method, title, description, (), quorum, closes, None, None
    )


async def _propose_rule(ctx: Context, args: Args, key: str, text: str) -> Reply:
    first, _, description = text.strip().partition("\n")
    raw_value = first.split(None, 2)[2] if len(first.split(None, 2)) == 3 else ""
    if not raw_value:
        raise UserError(
            f"Say the new value: {ctx.prefix}propose rule {key} <value>.", help_for="propose"
        )
    try:
        value = parse_rule(key, raw_value)
    except RuleError as err:
        raise UserError(str(err), help_for="rules") from None
    if value == ctx.rules.values[key]:
        raise UserError(f"{key} is already {raw_value}.")
    terms = ctx.rules.rule_proposal_terms(
        key, value, method=args.get("method"), quorum=args.get("quorum")
    )
    closes = ctx.event_ts + terms.duration_ms
    if args.get("closes") is not None:
        # A rule proposal may stay open longer than the room's rule says, never shorter.
        closes = max(closes, _when(ctx, args.get("closes"), terms.duration_ms))
    title = f"Change the rule {key} to {value if value is not None else '(none)'}"
    return await open_item(
        ctx,
        "proposal",
        terms.method,
        title,
        description.strip(),
        (),
        terms.quorum,
        closes,
        key,
        value,
    )


async def open_item(
    ctx: Context,
    kind: str,
    method: str,
    title: str,
    description: str,
    options: tuple[str, ...],
    quorum: int | None,
    closes: int,
    rule_key: str | None,
    rule_value: Any,
    *,
    target: int | None = None,
) -> Reply:
    number = await ctx.store.next_item(ctx.room_id)
    text = title + ("\n" + description if description else "")
    if options:
        text += "\n" + "\n".join(f"{i}. {o}" for i, o in enumerate(options, 1))
    native = kind == "proposal" or method in NATIVE_POLL_METHODS
    entry = await ctx.store.append(
        ctx.room_id,
        ts=ctx.event_ts,
        actor=ctx.sender,
        kind=ITEM_OPEN,
        data={
            "item": number, "type": kind, "method": method, "options": len(options) or 4,
            "quorum": quorum, "closes": closes, "at": None, "need": None,
            "rule_key": rule_key, "rule_value": rule_value, "target": target, "text_sha256": None,
        },
        event=ctx.event_id,
        text=text,
        salt=ctx.services.new_salt(),
    )  # fmt: skip
    # The shell queues the native poll under this ID (see `txn_id`).
    poll_txn = txn_id(ctx.event_id, "poll", at=ctx.source_ts) if native else None
    await ctx.store.add_item(
        Item(
            room=ctx.room_id, item=number, type=kind, author=ctx.sender, open_seq=entry.seq,
            open_event=ctx.event_id, status="open", method=method, options=options, quorum=quorum,
            closes=closes, at=None, need=None, rule_key=rule_key, rule_value=rule_value,
            target=target, poll_txn=poll_txn,
        )
    )  # fmt: skip
    tz = ctx.rules.timezone
    when = format_time(closes, tz, now_ms=ctx.event_ts)
    noun = "Proposal" if kind == "proposal" else "Poll"
    how = f"{method}" + (f", quorum {quorum}" if quorum else "")
    if kind == "proposal":
        vote_hint = f"{ctx.prefix}vote #{number} agree|abstain|disagree|block [-- reason]"
        answers = [(a, ANSWER_LABELS[a]) for a in ANSWERS]
        max_sel = 1
    else:
        vote_hint = _poll_hint(ctx, number, method)
        answers = [(str(i), o) for i, o in enumerate(options, 1)]
        max_sel = len(options) if method == "approval" else 1
    reply_lines: list[Fragment] = [
        seq(bold(f"{noun} #{number}: "), title),
        f"Decided by {how}; voting closes {when}.",
        f"Vote with {vote_hint}" + (" or answer the poll below." if native else "."),
    ]
    if not native:
        reply_lines.append(
            f"(A native poll can't express {method} ballots, so please vote by text.)"
        )
    extra: tuple[Outgoing, ...] = ()
    if native:
        fallback = f"#{number} {title}\n" + "\n".join(
            f"{i}. {label}" for i, (_, label) in enumerate(answers, 1)
        )
        fallback += f"\nVote with {vote_hint}"
        extra = (
            Outgoing(
                POLL_START, poll_start(f"#{number} {title}", answers, max_sel, fallback), "poll"
            ),
        )
    return Reply(lines(reply_lines), extra=extra)


def _poll_hint(ctx: Context, number: int, method: str) -> str:
    return {
        "single": f"{ctx.prefix}vote #{number} <option>",
        "approval": f"{ctx.prefix}vote #{number} <option>, <option>…",
        "ranked": f"{ctx.prefix}vote #{number} 2 > 1 > 3",
        "score": f"{ctx.prefix}vote #{number} 1=5 2=3 3=0 (0 to 5 each)",
    }[method]


@REGISTRY.command(
    name="poll",
    section="Decisions",
    summary="opens a poll: question | option | option …",
    params=(Param("question", Kind.TEXT),),
    options=(
        Option("method", Kind.WORD, "how it is counted", choices=POLL_METHODS),
        Option("closes", Kind.TEXT, "when voting ends", metavar="TIME"),
        Option("quorum", Kind.INT, "the least number of voters", metavar="N"),
    ),
    examples=(
        "!poll Lunch? | Pizza | Sushi | Soup",
        "!poll Logo | A | B | C --method ranked --closes 2d",
    ),
)
async def poll(ctx: Context, args: Args) -> Reply:
    parts = [p.strip() for p in str(args.get("question")).split("|")]
    question, options = parts[0], tuple(p for p in parts[1:] if p)
    if len(options) < 2:
        raise UserError(
            "A poll needs a question and at least two options: "
            f"{ctx.prefix}poll Lunch? | Pizza | Soup",
            help_for="poll",
        )
    if len(options) > MAX_OPTIONS:
        raise UserError(
            f"A poll can have at most {MAX_OPTIONS} options (this one has {len(options)}).",
            help_for="poll",
        )
    if len({o.casefold() for o in options}) != len(options):
        raise UserError(
            "Two options are the same; please make each option different.", help_for="poll"
        )
    if any(len(o) > 200 for o in options):
        raise UserError("Please keep each option under 200 characters.", help_for="poll")
    title, description = _split_title(question)
    quorum = args.get("quorum")
    if quorum is not None and not 0 <= quorum <= 10_000:
        raise UserError("--quorum must be from 0 to 10000.", help_for="poll")
    closes = _when(ctx, args.get("closes"), ctx.rules.poll_duration_ms)
    method = args.get("method") or "single"
    return await open_item(
        ctx, "poll", method, title, description, options, quorum, closes, None, None
    )


# -- voting ----------------------------------------------------------------------------------


@REGISTRY.command(
    name="vote",
    section="Decisions",
    summary="votes on a proposal or poll (the latest vote counts)",
    params=(Param("item", Kind.ITEM), Param("choice", Kind.TEXT)),
    reason=Reason.OPTIONAL,
    examples=("!vote #3 agree", "!vote #3 block -- it blocks the fire exit", "!vote #4 2 > 1 > 3"),
)
async def vote(ctx: Context, args: Args) -> Reply:
    item = await find_item(ctx, int(args.get("item")))
    choice = _parse_choice(ctx, item, str(args.get("choice")))
    reason = check_reason(args.reason)
    if choice == "block" and not reason:
        raise UserError(
            f"A block needs a reason: {ctx.prefix}vote #{item.item} block -- <why>.",
            help_for="vote",
        )
    replaced = await cast_vote(ctx, item, choice, reason, via="command")
    verb = "changed" if replaced else "counted"
    return Reply(
        seq(
            f"Your vote on #{item.item} is {verb}: {_choice_text(item, choice)}. "
            "It counts until voting closes; you can change it until then."
        )
    )


def _parse_choice(ctx: Context, item: Item, text: str) -> Any:
    if item.type == "action":
        raise UserError(
            f"#{item.item} is an action call: join it with {ctx.prefix}in #{item.item}."
        )
    method = item.method or ("single" if item.type == "poll" else "consent")
    try:
        parsed = tally.parse_choice(method, item.options, text)
    except tally.ChoiceError as err:
        raise UserError(str(err), help_for="vote") from None
    return list(parsed) if isinstance(parsed, tuple) else parsed


async def check_open(ctx: Context, item: Item) -> None:
    if item.status != "open" or (item.closes is not None and ctx.event_ts >= item.closes):
        when = format_time(item.closes, ctx.rules.timezone) if item.closes else "its close"
        state = "was withdrawn" if item.status == "withdrawn" else f"closed at {when}"
        raise UserError(f"Voting on #{item.item} {state}; votes can't be changed any more.")
    members = await ctx.room.members()
    if ctx.sender not in members:
        raise UserError("Only members of this room can vote here.")


async def cast_vote(
    ctx: Context, item: Item, choice: Any, reason: str | None, *, via: str
) -> bool:
    """Record a vote (a ledger entry and the latest-vote row); True if it replaced one."""
    await check_open(ctx, item)
    before = {v.voter for v in await ctx.store.votes(ctx.room_id, item.item)}
    entry = await ctx.store.append(
        ctx.room_id,
        ts=ctx.event_ts,
        actor=ctx.sender,
        kind=VOTE,
        data={"item": item.item, "choice": choice, "via": via, "text_sha256": None},
        event=ctx.event_id,
        text=reason,
        salt=ctx.services.new_salt() if reason else None,
    )
    vote_row = Vote(ctx.sender, choice, reason, ctx.event_ts, ctx.event_id, entry.seq)
    if choice == []:
        await ctx.store.drop_vote(ctx.room_id, item.item, ctx.sender)
    else:
        await ctx.store.put_vote(ctx.room_id, item.item, vote_row)
    return ctx.sender in before


async def poll_response(ctx: Context, start_event: str, answers: list[str]) -> Reply | None:
    """An answer to one of our native polls counts as a vote (an empty answer withdraws)."""
    item = await ctx.store.item_by_poll_event(ctx.room_id, start_event)
    if item is None:
        return None
    if item.type == "action":
        from commands.actions import poll_answer  # actions builds on this module

        return await poll_answer(ctx, item, answers)
    choice: Any
    if item.type == "proposal":
        if not answers:
            choice = []
        elif answers[0] in ANSWERS:
            choice = answers[0]
        else:
            return None
    else:
        numbers = [int(a) for a in answers if a.isdigit() and 1 <= int(a) <= len(item.options)]
        choice = sorted(set(numbers))[: (len(item.options) if item.method == "approval" else 1)]
    try:
        await cast_vote(ctx, item, choice, None, via="poll")
    except UserError as err:
        return Reply(seq(user(ctx.sender), ": ", err.message))
    if choice == "block":
        return Reply(
            seq(
                user(ctx.sender, quiet=False),
                f": your Block on #{item.item} counts; please give the reason with "
                f"{ctx.prefix}vote #{item.item} block -- <reason> "
                "(until then it shows as “(no reason given)”).",
            ),
            ping=(ctx.sender,),
        )
    return None


async def response_redacted(ctx: Context, redacted_event: str) -> None:
    """Redacting your poll answer takes the vote back while voting is open."""
    found = await ctx.store.vote_by_event(ctx.room_id, redacted_event)
    if found is None:
        return
    number, old = found
    item = await ctx.store.item(ctx.room_id, number)
    if item is None or old.voter != ctx.sender:
        return
    try:
        await cast_vote(ctx, item, [], None, via="poll")
    except UserError:
        return  # after close the result is frozen; the redaction is just history


# -- reading -----------------------------------------------------------------------------------


@REGISTRY.command(
    name="proposals",
    section="Decisions",
    summary="lists the open proposals, polls and action calls",
    examples=("!proposals",),
)
async def proposals(ctx: Context, args: Args) -> Reply:
    open_items = await ctx.store.items(ctx.room_id, status="open")
    if not open_items:
        return Reply(
            seq(f"Nothing is open. {ctx.prefix}propose or {ctx.prefix}poll starts something.")
        )
    rows: list[Fragment] = []
    for item in open_items:
        title = (await _item_text(ctx, item)).split("\n")[0]
        votes = await ctx.store.votes(ctx.room_id, item.item)
        when = format_time(item.closes, ctx.rules.timezone) if item.closes else ""
        rows.append(
            seq(
                bold(f"#{item.item} "), f"{item.type}: {title} — {len(votes)} voted, closes {when}"
            )
        )
    return Reply(lines([bold("Open items"), bullets(rows)]))


@REGISTRY.command(
    name="show",
    section="Decisions",
    summary="shows one item with its current tally",
    params=(Param("item", Kind.ITEM),),
    examples=("!show #3",),
)
async def show(ctx: Context, args: Args) -> Reply:
    item = await find_item(ctx, int(args.get("item")))
    text = await _item_text(ctx, item)
    title, _, rest = text.partition("\n")
    votes = await ctx.store.votes(ctx.room_id, item.item)
    tz = ctx.rules.timezone
    out: list[Fragment] = [seq(bold(f"#{item.item} {item.type}: "), title)]
    if rest and item.type == "proposal":
        out.append(rest)
    if item.options:
        out.append(bullets(f"{i}. {o}" for i, o in enumerate(item.options, 1)))
    state = {"open": "open", "closed": "closed", "withdrawn": "withdrawn"}.get(
        item.status, item.status
    )
    when = format_time(item.closes, tz) if item.closes else "-"
    out.append(
        f"By {item.author}; {item.method}; {state}, "
        f"{'closes' if item.status == 'open' else 'closed'} {when}."
    )
    if item.type == "action":
        from commands.actions import describe_call

        committed = await ctx.store.commitments(ctx.room_id, item.item)
        came = await ctx.store.attendance(ctx.room_id, item.item)
        out.extend(describe_call(ctx, item, committed, came))
    else:
        outcome = current_outcome(ctx, item, votes)
        label = "Result" if item.status != "open" else "If it closed now"
        out.append(seq(bold(f"{label}: "), outcome.reason))
        if votes:
            out.append(
                bullets(
                    seq(
                        user(v.voter),
                        f": {_choice_text(item, v.choice)}" + _reason_text(v),
                    )
                    for v in votes
                )
            )
    return Reply(lines(out))


# -- closing ---------------------------------------------------------------------------------


async def close_item(ctx: Context, item: Item, *, withdrawn: bool = False) -> Reply:
    """Tally and close: the item.close entry, the rule change if a rule proposal passed, the
    poll's end event and the outcome message (in reply to the command that opened it)."""
    votes = await ctx.store.votes(ctx.room_id, item.item)
    if withdrawn:
        record: dict[str, Any] = {"outcome": "withdrawn", "winners": [], "tally": {}}
        reason = "withdrawn by its author"
    else:
        outcome = current_outcome(ctx, item, votes)
        record, reason = outcome.as_ledger(), outcome.reason
    await ctx.store.append(
        ctx.room_id, ts=ctx.event_ts, actor=ctx.sender, kind=ITEM_CLOSE,
        data={"item": item.item, **record},
        event=None if ctx.event_id.startswith("job:") else ctx.event_id,
    )  # fmt: skip
    await ctx.store.set_item_status(ctx.room_id, item.item, "withdrawn" if withdrawn else "closed")
    text: list[Fragment] = [seq(bold(f"#{item.item} "), reason)]
    if record["outcome"] == "passed" and item.rule_key is not None:
        await ctx.store.append(
            ctx.room_id, ts=ctx.event_ts, actor=ctx.bot_user_id, kind=RULE_CHANGE,
            data={"key": item.rule_key, "value": item.rule_value, "item": item.item},
            event=None, rule_source=f"proposal #{item.item}",
        )  # fmt: skip
        text.append(f"The rule {item.rule_key} is now {item.rule_value} (proposal #{item.item}).")
    if record["outcome"] == "passed" and item.target is not None:
        await ctx.store.append(
            ctx.room_id, ts=ctx.event_ts, actor=ctx.bot_user_id, kind=REVERSAL,
            data={"target": item.target, "cause": "appeal", "item": item.item}, event=None,
        )  # fmt: skip
        text.append(f"The appeal passed: the void #{item.target} is reversed.")
    extra: tuple[Outgoing, ...] = ()
    start = await ctx.store.poll_event(item)
    if start is not None:
        extra = (
            Outgoing(POLL_END, poll_end(start, f"#{item.item}: {reason}"), f"end:{item.item}"),
        )
    return Reply(lines(text), extra=extra)


@REGISTRY.command(
    name="close",
    section="Decisions",
    summary="closes a proposal or poll early (its author or a moderator)",
    params=(Param("item", Kind.ITEM),),
    examples=("!close #3",),
)
async def close(ctx: Context, args: Args) -> Reply:
    item = await find_item(ctx, int(args.get("item")))
    if item.status != "open":
        raise UserError(f"#{item.item} is not open.")
    if item.type == "action":
        raise UserError(f"#{item.item} is an action call; it closes at its deadline.")
    if ctx.sender != item.author and await ctx.room.power_level(ctx.sender) < ctx.moderator_level:
        raise UserError(f"Only the author of #{item.item} or a moderator can close it early.")
    return await close_item(ctx, item)


@REGISTRY.command(
    name="withdraw",
    section="Decisions",
    summary="withdraws your own proposal or poll",
    params=(Param("item", Kind.ITEM),),
    examples=("!withdraw #3",),
)
async def withdraw(ctx: Context, args: Args) -> Reply:
    item = await find_item(ctx, int(args.get("item")))
    if item.status != "open":
        raise UserError(f"#{item.item} is not open.")
    if ctx.sender != item.author:
        raise UserError(f"Only the author of #{item.item} can withdraw it.")
    return await close_item(ctx, item, withdrawn=True)
