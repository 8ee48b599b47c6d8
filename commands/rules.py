"""`!rules`: every rule of the room, its value, and where that value came from."""

from __future__ import annotations

from commands.context import Context
from commands.declare import REGISTRY, Args
from commands.render import Fragment, Reply, bold, bullets, code, lines, seq
from consensus.rules import RULES, format_rule_value

SOURCE_NAMES = {"default": "default", "config": "operator's starting value"}


@REGISTRY.command(
    name="rules",
    section="Rules",
    summary="the room's rules, each with where its value came from",
    examples=("!rules",),
    details="A rule changes only by a passed {p}propose rule <key> <value>.",
)
async def rules(ctx: Context, args: Args) -> Reply:
    head = await ctx.store.ledger_head(ctx.room_id)
    sources = head.sources if head else {}
    items: list[Fragment] = []
    for key, spec in RULES.items():
        value = format_rule_value(ctx.rules.values[key])
        source = sources.get(key, "default")
        items.append(
            seq(
                code(key),
                " = ",
                bold(value),
                f" — {spec.description} ({SOURCE_NAMES.get(source, source)})",
            )
        )
    hint = f"Change one with {ctx.prefix}propose rule <key> <value>; it takes a passed proposal."
    return Reply(lines([bold("Rules of this room"), bullets(items), hint]))
