"""Commands declared once, as data: the parser, `!help`, `!help <command>` and the command table
in the docs all read these declarations, so they cannot disagree.

Names are matched exactly through a dict (aliases included), never by prefix.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from commands.context import Context
    from commands.render import Reply


class Kind(enum.Enum):
    """What a parameter accepts; each kind has one converter in `commands.parse`."""

    WORD = "word"  # one token
    TEXT = "text"  # the rest of the line (may span lines)
    INT = "int"  # a whole number
    ITEM = "item"  # #N: a proposal, poll or action call
    SEQ = "seq"  # a ledger entry's sequence number
    USER = "user"  # a Matrix ID, a mention pill or an unambiguous display name
    USERS = "users"  # one or more of those
    COMMAND = "command"  # the name of a command
    DATE = "date"  # YYYY-MM-DD


class Permission(enum.Enum):
    ANYONE = "anyone"
    MODERATOR = "moderator"


class Reason(enum.Enum):
    """Whether the command takes a reason after `--`."""

    NONE = "none"
    OPTIONAL = "optional"
    REQUIRED = "required"


@dataclass(frozen=True)
class Param:
    name: str
    kind: Kind
    required: bool = True
    help: str = ""


@dataclass(frozen=True)
class Option:
    """A `--name value` flag; `choices` limits the value when given."""

    name: str
    kind: Kind
    help: str
    choices: tuple[str, ...] = ()
    metavar: str = ""


Handler = Callable[["Context", "Args"], Awaitable["Reply"]]


@dataclass(frozen=True)
class Args:
    """Parsed arguments: parameter and option values by name, and the reason if any."""

    values: Mapping[str, Any] = field(default_factory=dict)
    reason: str | None = None

    def get(self, name: str, default: Any = None) -> Any:
        return self.values.get(name, default)


@dataclass(frozen=True)
class Command:
    name: str
    section: str
    summary: str
    handler: Handler
    params: tuple[Param, ...] = ()
    options: tuple[Option, ...] = ()
    reason: Reason = Reason.NONE
    examples: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    permission: Permission = Permission.ANYONE
    details: str = ""
    # A word that also starts the reason (kudos: "for"), besides `--`.
    reason_word: str | None = None

    # Worked out once per command, not for every message that runs it.
    @functools.cached_property
    def names_users(self) -> bool:
        """Whether a parameter names users (then the parser needs the room's members)."""
        return any(p.kind in (Kind.USER, Kind.USERS) for p in self.params)

    @functools.cached_property
    def options_by_name(self) -> Mapping[str, Option]:
        return {o.name: o for o in self.options}

    def usage(self, prefix: str) -> str:
        parts = [prefix + self.name]
        for p in self.params:
            shown = f"<{p.name}>" if p.kind is not Kind.USERS else f"<{p.name}…>"
            parts.append(shown if p.required else f"[{shown}]")
        for o in self.options:
            value = "|".join(o.choices) if o.choices else (o.metavar or o.name)
            parts.append(f"[--{o.name} {value}]")
        marker = self.reason_word or "--"
        if self.reason is Reason.REQUIRED:
            parts.append(f"{marker} <reason>")
        elif self.reason is Reason.OPTIONAL:
            parts.append(f"[{marker} <reason>]")
        return " ".join(parts)


# The order of sections in `!help` and the docs (a section not listed comes last).
SECTIONS = ("Basics", "Kudos", "Ledger", "Decisions", "Action calls", "Rules", "Moderation")


class Registry:
    """All commands by name and alias; `!help` lists them by section, in declaration order.

    Iteration never depends on which module happened to be imported first.
    """

    def __init__(self) -> None:
        self._by_name: dict[str, Command] = {}
        self._ordered: list[Command] = []

    def add(self, cmd: Command) -> Command:
        for name in (cmd.name, *cmd.aliases):
            if name in self._by_name:
                raise ValueError(f"command name {name!r} declared twice")
            self._by_name[name] = cmd
        self._ordered.append(cmd)
        return cmd

    def command(self, **declaration: Any) -> Callable[[Handler], Handler]:
        """Decorator form: `@REGISTRY.command(name=..., section=..., summary=...)`."""

        def register(handler: Handler) -> Handler:
            self.add(Command(handler=handler, **declaration))
            return handler

        return register

    def get(self, name: str) -> Command | None:
        return self._by_name.get(name)

    def __iter__(self) -> Iterator[Command]:
        def rank(cmd: Command) -> int:
            return SECTIONS.index(cmd.section) if cmd.section in SECTIONS else len(SECTIONS)

        return iter(sorted(self._ordered, key=rank))

    def names(self) -> list[str]:
        return sorted(self._by_name)


REGISTRY = Registry()
