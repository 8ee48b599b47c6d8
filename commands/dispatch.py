"""From a message's text to a Reply: find the command, parse, check permission, run the handler.

`UserError` from any step becomes one sentence plus a pointer to help. Other exceptions are left
to the shell, which logs them with a reference and rolls back the event's effects.
"""

from __future__ import annotations

# Importing a command module registers the commands it declares; the order is !help's order.
from commands import (  # noqa: F401
    actions,
    basics,
    decisions,
    kudos,
    ledger,
    moderation,
    reports,
    rules,
)
from commands.context import Context
from commands.declare import Permission
from commands.errors import UserError
from commands.parse import find_command, parse_args, split_command
from commands.render import Reply, seq


def is_command(text: str, prefix: str) -> bool:
    return split_command(text, prefix) is not None


async def dispatch(ctx: Context, text: str) -> Reply | None:
    """The reply to `text`, or None when it is not a command."""
    split = split_command(text, ctx.prefix)
    if split is None:
        return None
    return await run_command(ctx, *split)


async def run_command(ctx: Context, name: str, rest: str) -> Reply:
    """The reply to the command `name` with the text after it, `rest` (see `split_command`)."""
    try:
        cmd = find_command(ctx.registry, name, ctx.prefix)
        members = await ctx.room.members() if cmd.names_users else None
        args = parse_args(cmd, rest, prefix=ctx.prefix, members=members)
        if cmd.permission is Permission.MODERATOR:
            level = await ctx.room.power_level(ctx.sender)
            if level < ctx.moderator_level:
                raise UserError(
                    f"Only moderators (power level {ctx.moderator_level} or more) can use "
                    f"{ctx.prefix}{cmd.name}; yours is {level}."
                )
        return await cmd.handler(ctx, args)
    except UserError as err:
        return error_reply(err, ctx.prefix)


def error_reply(err: UserError, prefix: str) -> Reply:
    text = err.message
    if err.help_for:
        text += f" See {prefix}help {err.help_for}."
    return Reply(seq(text))
