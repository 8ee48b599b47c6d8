"""`!help`: generated from the same declarations the parser reads."""

from __future__ import annotations

from commands.context import Context
from commands.declare import REGISTRY, Args, Command, Kind, Param, Permission, Registry
from commands.errors import UserError
from commands.render import Fragment, Reply, bold, bullets, code, lines, seq


def command_help(cmd: Command, prefix: str) -> Fragment:
    parts: list[Fragment] = [seq(bold(code(cmd.usage(prefix))), " — ", cmd.summary)]
    if cmd.details:
        parts.append(cmd.details.replace("{p}", prefix))
    if cmd.aliases:
        parts.append("Also: " + ", ".join(prefix + a for a in cmd.aliases))
    if cmd.permission is Permission.MODERATOR:
        parts.append("Moderators only.")
    if cmd.examples:
        parts.append("Examples:")
        parts.append(bullets(code(e.replace("!", prefix, 1)) for e in cmd.examples))
    return lines(parts)


def overview(registry: Registry, prefix: str) -> Fragment:
    sections: dict[str, list[Command]] = {}
    for cmd in registry:
        sections.setdefault(cmd.section, []).append(cmd)
    parts: list[Fragment] = []
    for section, cmds in sections.items():
        parts.append(bold(section))
        parts.append(bullets(seq(code(prefix + c.name), " — ", c.summary) for c in cmds))
    parts.append(f"Send {prefix}help <command> for its usage and examples.")
    return lines(parts)


@REGISTRY.command(
    name="help",
    section="Basics",
    summary="lists the commands, or explains one",
    params=(Param("command", Kind.COMMAND, required=False),),
    examples=("!help", "!help kudos"),
)
async def help_(ctx: Context, args: Args) -> Reply:
    name = args.get("command")
    if name is None:
        return Reply(overview(ctx.registry, ctx.prefix))
    cmd = ctx.registry.get(name)
    if cmd is None:
        raise UserError(
            f"There is no command {ctx.prefix}{name}; send {ctx.prefix}help for the list."
        )
    return Reply(command_help(cmd, ctx.prefix))


def markdown_table(registry: Registry, prefix: str = "!") -> str:
    """The command table for the README, from the declarations."""
    rows = ["| command | what it does |", "|---|---|"]
    for cmd in registry:
        usage = cmd.usage(prefix).replace("|", "\\|")
        rows.append(f"| `{usage}` | {cmd.summary} |")
    return "\n".join(rows)
