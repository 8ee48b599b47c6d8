"""The command parser. Pure: text in, `Args` or a `UserError` out.

Grammar shared by every command (SPEC "Grammar"): `<prefix><name> <params…> [--option value…]
[-- reason]`. An option's value runs to the next declared option or the end of its line; a bare
`--` starts the reason, which is the rest of the message. Users are named by Matrix ID, by a
mention pill (already turned into its Matrix ID by `commands.mentions`), or by a display name
that is unambiguous among the room's members.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from datetime import date
from typing import Any, NamedTuple

from commands.declare import Args, Command, Kind, Option, Param, Reason, Registry
from commands.errors import UserError

MXID_RE = re.compile(r"^@[^\s:]+:[A-Za-z0-9.\-\[\]:]+$")
# Compiled once: they run on every command.
_DASHES = re.compile(r"(?:^|\s)--(?:\s|$)")
_INT10 = re.compile(r"-?[0-9]{1,10}")
_INT = re.compile(r"-?[0-9]+")


@functools.lru_cache(maxsize=64)
def _reason_word(word: str) -> re.Pattern[str]:
    return re.compile(rf"(?:^|\s){re.escape(word)}(?:\s|$)", re.IGNORECASE)


_TOKEN = re.compile(r"\S+")
_OPTION = re.compile(r"^--([a-z][a-z0-9-]*)$")
_ITEM = re.compile(r"^#?([0-9]{1,9})$")
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
# Element puts "Name: " after a pill at the start of a message; people write "@a, @b".
_NAME_TRAILER = ",:;"

MAX_INT = 10**9


class Token(NamedTuple):  # a tuple: several are made for every command
    text: str
    start: int
    end: int


def split_command(body: str, prefix: str) -> tuple[str, str] | None:
    """`("kudos", "@a:x 2")` for `"!kudos @a:x 2"`; None if the text is not a command."""
    if not body.startswith(prefix):
        return None
    head = body[len(prefix) :]
    match = _TOKEN.match(head)
    if not match:
        return None
    return match.group().lower(), head[match.end() :]


def find_command(registry: Registry, name: str, prefix: str) -> Command:
    cmd = registry.get(name)
    if cmd is None:
        raise UserError(
            f"I don't know the command {prefix}{_clip(name)}; send {prefix}help for the list."
        )
    return cmd


def parse_args(
    cmd: Command, rest: str, *, prefix: str, members: Mapping[str, str | None] | None = None
) -> Args:
    """Parse `rest` (the text after the command name) against `cmd`'s declaration."""
    text, reason = _split_reason(cmd, rest, prefix)
    tokens = [Token(m.group(), m.start(), m.end()) for m in _TOKEN.finditer(text)]
    positional, options = _split_options(cmd, text, tokens, prefix)
    values: dict[str, Any] = {}
    for name, (option, value_tokens) in options.items():
        values[name] = _convert_option(cmd, option, value_tokens, prefix)
    values.update(_bind_params(cmd, text, positional, prefix, members or {}))
    return Args(values=values, reason=reason)


def _split_reason(cmd: Command, rest: str, prefix: str) -> tuple[str, str | None]:
    match = _DASHES.search(rest)
    if match is None and cmd.reason_word:
        match = _reason_word(cmd.reason_word).search(rest)
    if match is None:
        if cmd.reason is Reason.REQUIRED:
            raise _usage_error(cmd, prefix, "needs a reason after --")
        return rest, None
    if cmd.reason is Reason.NONE:
        raise _usage_error(cmd, prefix, "takes no reason")
    reason = rest[match.end() :].strip()
    if not reason and cmd.reason is Reason.REQUIRED:
        raise _usage_error(cmd, prefix, "needs a reason after --")
    return rest[: match.start()], reason or None


def _split_options(
    cmd: Command, text: str, tokens: list[Token], prefix: str
) -> tuple[list[Token], dict[str, tuple[Option, list[Token]]]]:
    declared = cmd.options_by_name
    positional: list[Token] = []
    options: dict[str, tuple[Option, list[Token]]] = {}
    current: list[Token] | None = None
    current_line_end = 0
    for tok in tokens:
        match = _OPTION.match(tok.text) if tok.text.startswith("--") else None
        if match:
            option = declared.get(match.group(1))
            if option is None:
                known = ", ".join("--" + o for o in declared) or "no options"
                raise UserError(
                    f"{prefix}{cmd.name} has no option {tok.text} (it takes {known}).",
                    help_for=cmd.name,
                )
            if option.name in options:
                raise UserError(f"--{option.name} is given twice.", help_for=cmd.name)
            current = []
            options[option.name] = (option, current)
            newline = text.find("\n", tok.end)
            current_line_end = len(text) if newline < 0 else newline
            continue
        if current is not None and tok.start < current_line_end:
            current.append(tok)
        else:
            current = None
            positional.append(tok)
    return positional, options


def _convert_option(cmd: Command, option: Option, tokens: list[Token], prefix: str) -> Any:
    if not tokens:
        raise UserError(f"--{option.name} needs a value.", help_for=cmd.name)
    raw = " ".join(t.text for t in tokens)
    if option.choices:
        value = raw.lower()
        if value not in option.choices:
            raise UserError(
                f"--{option.name} must be one of {', '.join(option.choices)}, not '{_clip(raw)}'.",
                help_for=cmd.name,
            )
        return value
    return _convert_scalar(cmd, option.kind, f"--{option.name}", raw, prefix)


def _convert_scalar(cmd: Command, kind: Kind, what: str, raw: str, prefix: str) -> Any:
    if kind is Kind.INT or kind is Kind.SEQ:
        if not _INT10.fullmatch(raw):
            raise UserError(
                f"{what} must be a whole number, not '{_clip(raw)}'.", help_for=cmd.name
            )
        number = int(raw)
        if kind is Kind.SEQ and number < 1:
            raise UserError(f"{what} must be an entry number (1 or more).", help_for=cmd.name)
        if abs(number) > MAX_INT:
            raise UserError(f"{what} is too large.", help_for=cmd.name)
        return number
    if kind is Kind.ITEM:
        match = _ITEM.match(raw)
        if not match or int(match.group(1)) < 1:
            raise UserError(
                f"{what} must be an item number like #3, not '{_clip(raw)}'.", help_for=cmd.name
            )
        return int(match.group(1))
    if kind is Kind.DATE:
        if _DATE.match(raw):
            try:
                return date.fromisoformat(raw)
            except ValueError:
                pass
        raise UserError(
            f"{what} must be a date like 2026-11-26, not '{_clip(raw)}'.", help_for=cmd.name
        )
    if kind is Kind.COMMAND:
        return _clip(raw.removeprefix(prefix).lower())
    return raw


def _bind_params(
    cmd: Command,
    text: str,
    tokens: list[Token],
    prefix: str,
    members: Mapping[str, str | None],
) -> dict[str, Any]:
    values: dict[str, Any] = {}
    pos = 0
    for param in cmd.params:
        if param.kind is Kind.TEXT:
            if pos < len(tokens):
                # The rest of the message as written (newlines kept), minus options already taken.
                values[param.name] = _rest_text(text, tokens[pos:])
                pos = len(tokens)
            elif param.required:
                raise _usage_error(cmd, prefix, f"needs {_article(param)}")
            continue
        if param.kind in (Kind.USER, Kind.USERS):
            users, pos = _take_users(cmd, param, tokens, pos, members)
            if not users:
                if param.required:
                    raise _usage_error(cmd, prefix, f"needs {_article(param)}")
                continue
            values[param.name] = users if param.kind is Kind.USERS else users[0]
            continue
        if pos >= len(tokens):
            if param.required:
                raise _usage_error(cmd, prefix, f"needs {_article(param)}")
            continue
        tok = tokens[pos]
        if not param.required and not _looks_like(param.kind, tok.text):
            # An optional parameter that doesn't fit is skipped, so `!top --days 7` and `!top 5`
            # both work; the token is left for the next parameter.
            continue
        values[param.name] = _convert_scalar(cmd, param.kind, f"<{param.name}>", tok.text, prefix)
        pos += 1
    if pos < len(tokens):
        extra = " ".join(t.text for t in tokens[pos:])
        raise _usage_error(cmd, prefix, f"doesn't understand '{_clip(extra)}'")
    return values


def _looks_like(kind: Kind, text: str) -> bool:
    if kind in (Kind.INT, Kind.SEQ):
        return _INT.fullmatch(text) is not None
    if kind is Kind.ITEM:
        return _ITEM.match(text) is not None
    if kind is Kind.DATE:
        return _DATE.match(text) is not None
    return True


def _take_users(
    cmd: Command,
    param: Param,
    tokens: list[Token],
    pos: int,
    members: Mapping[str, str | None],
) -> tuple[list[str], int]:
    users: list[str] = []
    while pos < len(tokens):
        word = tokens[pos].text.rstrip(_NAME_TRAILER)
        if word.startswith("@"):
            if not MXID_RE.match(word):
                raise UserError(
                    f"'{_clip(word)}' is not a Matrix ID; write it like @alice:example.org.",
                    help_for=cmd.name,
                )
            users.append(word)
            pos += 1
        else:
            found = _match_display_name(tokens, pos, members)
            if found is None:
                break
            user_id, pos = found
            users.append(user_id)
        if param.kind is Kind.USER:
            break
    return users, pos


def _match_display_name(
    tokens: list[Token], pos: int, members: Mapping[str, str | None]
) -> tuple[str, int] | None:
    """Longest run of words from `pos` that is exactly one member's display name (casefolded).

    A name shared by several members raises: the user must say which Matrix ID they mean.
    """
    by_name: dict[str, list[str]] = {}
    for user_id, name in members.items():
        if name:
            by_name.setdefault(name.casefold(), []).append(user_id)
    if not by_name:
        return None
    longest = max(len(n.split()) for n in by_name)
    for length in range(min(longest, len(tokens) - pos), 0, -1):
        words = [t.text for t in tokens[pos : pos + length]]
        words[-1] = words[-1].rstrip(_NAME_TRAILER)
        candidates = by_name.get(" ".join(words).casefold())
        if not candidates:
            continue
        if len(candidates) > 1:
            ids = " or ".join(sorted(candidates))
            raise UserError(f"'{' '.join(words)}' could be {ids}; please use the Matrix ID.")
        return candidates[0], pos + length
    return None


def _rest_text(text: str, tokens: list[Token]) -> str:
    pieces = []
    for i, tok in enumerate(tokens):
        if i:
            gap = text[tokens[i - 1].end : tok.start]
            if gap.strip():  # an option was taken out of the middle
                gap = "\n" if "\n" in gap else " "
            pieces.append(gap)
        pieces.append(tok.text)
    return "".join(pieces)


def _article(param: Param) -> str:
    return f"<{param.name}>"


def _clip(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _usage_error(cmd: Command, prefix: str, what: str) -> UserError:
    return UserError(f"{prefix}{cmd.name} {what}: {cmd.usage(prefix)}", help_for=cmd.name)
