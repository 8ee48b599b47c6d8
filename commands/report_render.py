"""The daily transparency report as Matrix messages, Markdown and JSON. Pure: Report -> text.

Every renderer works from the same sections (`report_sections`), built from `commands.render`
fragments, so user text (titles, reasons) is escaped once, by the fragment renderer, on its way
to HTML or Markdown; nothing here writes HTML by hand. Nobody is pinged: names are quiet user
links and every message is an `m.notice` with empty `m.mentions`. A report too big for one event
is split between sections, and inside a long section between its lines.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from commands.render import (
    Bold,
    Bullets,
    Code,
    Fragment,
    Italic,
    Lines,
    Reply,
    Seq,
    UserLink,
    bold,
    bullets,
    code,
    italic,
    join_fragments,
    lines,
    render,
    seq,
    user,
)
from consensus.report import (
    ActionLine,
    CheckpointInfo,
    DecisionLine,
    Flag,
    KudosSection,
    ModLine,
    Ranked,
    Report,
    RuleLine,
)

# What one message's content may weigh (plain body + HTML body, as JSON). Synapse refuses events
# over 65,536 bytes and `message_content` cuts at 60,000; splitting here keeps room to spare.
MESSAGE_BUDGET = 50_000
# Longest user text shown in a line; the JSON file keeps the whole text.
TEXT_LIMIT = 200
# Longest tally shown in a line (a ranked poll with many rounds can be long).
TALLY_LIMIT = 1_000
# Bidi controls that could reorder the text after a title; such a title is isolated.
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>&|~!])")

_MOD_KINDS = {
    "mod.void": "void",
    "mod.override": "operator override",
    "erase": "erasure",
    "review": "review",
}


@dataclass(frozen=True)
class Section:
    """One part of the report. `inline` sections are one line: "Heading: a, b"."""

    heading: str
    items: tuple[Fragment, ...]
    inline: bool = False


# --- pieces ------------------------------------------------------------------------------------


def user_text(text: str | None, *, limit: int = TEXT_LIMIT) -> Fragment:
    """A user's title or reason on one line, clipped; an erased text says so."""
    if text is None:
        return italic("text erased")
    shown = " ".join(text.split())
    if len(shown) > limit:
        shown = shown[: limit - 1] + "…"
    if _BIDI.search(shown):
        # First-strong isolate .. pop isolate: a stray override can't flip the rest of the line.
        shown = "\u2068" + shown + "\u2069"
    return "“" + shown + "”"


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def _people(ranked: Sequence[Ranked], quiet: bool) -> Fragment:
    return join_fragments([seq(user(r.user, quiet=quiet), f" {r.amount}") for r in ranked], " · ")


def _tally(tally: Mapping[str, int | str]) -> str:
    text = ", ".join(f"{key} {value}" for key, value in tally.items())
    if len(text) > TALLY_LIMIT:
        text = text[: TALLY_LIMIT - 1] + "…"
    return f" ({text})" if text else ""


def hour_labels(report: Report) -> tuple[str, ...]:
    """The local clock time at which each of `report.hourly`'s buckets starts.

    On the day clocks go back an hour repeats; its second occurrence is marked with a prime.
    """
    try:
        zone = ZoneInfo(report.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return tuple(f"{i:02d}:00" for i in range(len(report.hourly)))
    labels: list[str] = []
    for i in range(len(report.hourly)):
        at = datetime.fromtimestamp((report.start_ms + i * 3_600_000) / 1000, tz=zone)
        labels.append(f"{at:%H:%M}" + ("\u2032" if at.fold else ""))  # PRIME
    return tuple(labels)


def title(report: Report) -> str:
    return f"Daily report for {report.day} ({report.timezone})"


def summary(report: Report) -> str:
    """One line on the day's activity."""
    text = f"{_plural(report.entries, 'ledger entry', 'ledger entries')} written this day"
    if report.hourly and max(report.hourly) > 0:
        busiest = max(range(len(report.hourly)), key=lambda i: report.hourly[i])
        text += (
            f"; busiest hour {hour_labels(report)[busiest]} "
            f"({_plural(report.hourly[busiest], 'entry', 'entries')})"
        )
    return text + "."


# --- sections ----------------------------------------------------------------------------------


def _checkpoint(cp: CheckpointInfo | None) -> Section:
    if cp is None:
        return Section("Checkpoint", ("no signed checkpoint with this report",), inline=True)
    if cp.previous_size is None or cp.consistent is None:
        history: Fragment = "First checkpoint of this room."
    elif cp.consistent:
        history = (
            f"Consistent with the previous report's checkpoint (size {cp.previous_size}): "
            "the ledger only grew."
        )
    else:
        history = bold(
            f"NOT consistent with the previous report's checkpoint (size {cp.previous_size}): "
            "the ledger's history was changed."
        )
    return Section(
        "Checkpoint",
        (
            seq(f"Size {cp.size}, root ", code(cp.root)),
            seq("Signature ", code(cp.signature), " by key ", code(cp.key)),
            history,
            seq("To check it: ", code(cp.text)),
        ),
    )


def _kudos(k: KudosSection, quiet: bool) -> Section:
    if k.entries == 0 and k.reversed == 0:
        return Section("Kudos", (), inline=True)
    totals = (
        f"{_plural(k.total, 'kudos', 'kudos')} in {_plural(k.entries, 'entry', 'entries')}, "
        f"from {_plural(k.givers, 'giver')} to {_plural(k.receivers, 'receiver')}"
    )
    if k.reversed:
        totals += f"; {k.reversed} taken back"
    items: list[Fragment] = [totals]
    if k.top_receivers:
        items.append(seq("Top receivers: ", _people(k.top_receivers, quiet)))
    if k.top_givers:
        items.append(seq("Top givers: ", _people(k.top_givers, quiet)))
    return Section("Kudos", tuple(items))


def _decision(d: DecisionLine) -> Fragment:
    if d.outcome is None:
        state = "opened" if d.opened else "still open"
    else:
        state = ("opened and " if d.opened else "") + d.outcome
    return seq(f"#{d.item} {d.type} ", user_text(d.title), f": {state}", _tally(d.tally))


def _action(a: ActionLine) -> Fragment:
    if a.status == "went":
        state = f"went: {a.committed} committed (needed {a.need}), {a.came} came"
    elif a.status == "called off":
        state = f"called off: {a.committed} of {a.need} needed committed"
    elif a.status == "open":
        state = f"open: {a.committed} of {a.need} committed so far"
    else:
        state = a.status
    return seq(f"#{a.item} ", user_text(a.title), f": {state}")


def _mod(m: ModLine, quiet: bool) -> Fragment:
    target = f" of entry {m.target}" if m.target is not None else ""
    reason = italic("no reason given") if m.reason is None else user_text(m.reason)
    kind = _MOD_KINDS.get(m.kind, m.kind)
    return seq(f"Entry {m.seq}: {kind}{target} by ", user(m.actor, quiet=quiet), " — ", reason)


def _rule(r: RuleLine) -> Fragment:
    value: Fragment = italic("unset") if r.value is None else code(str(r.value))
    return seq(f"Entry {r.seq}: ", code(r.key), " = ", value, f" ({r.source})")


def _flag(f: Flag, quiet: bool) -> Fragment:
    """The flag's kind and explanation, with the IDs in it as user links (quiet in chat)."""
    names = sorted({u for u in f.users if u}, key=len, reverse=True)
    parts: list[Fragment] = [bold(f.kind), ": "]
    unnamed = [u for u in f.users if u not in f.explanation]
    if unnamed:
        parts += [join_fragments([user(u, quiet=quiet) for u in unnamed]), " — "]
    if not names:
        return seq(*parts, f.explanation)
    pieces = re.split("(" + "|".join(map(re.escape, names)) + ")", f.explanation)
    # re.split with one group: the IDs are at the odd places.
    parts += [user(p, quiet=quiet) if i % 2 else p for i, p in enumerate(pieces) if p]
    return seq(*parts)


def report_sections(
    report: Report, *, include_flags: bool, quiet: bool = True
) -> tuple[Section, ...]:
    """The report's sections in order. `quiet` breaks names so no chat client highlights them."""
    sections = [
        _checkpoint(report.checkpoint),
        _kudos(report.kudos, quiet),
        Section("Proposals and polls", tuple(map(_decision, report.decisions))),
        Section("Action calls", tuple(map(_action, report.actions))),
        Section("Moderator actions", tuple(_mod(m, quiet) for m in report.moderation)),
        Section("Rule changes", tuple(map(_rule, report.rule_changes))),
        Section("Opted out", (_plural(report.optouts, "member"),), inline=True),
        Section("Expired commands", (str(report.expired_commands),), inline=True),
        Section("Reports not yet reviewed", report.unreviewed, inline=True),
    ]
    if include_flags and report.flags:
        sections.append(
            Section(
                "Flags for moderators (for review only; nothing is done about them)",
                tuple(_flag(f, quiet) for f in report.flags),
            )
        )
    return tuple(sections)


# --- Matrix messages ---------------------------------------------------------------------------


def _inline(heading: str, items: Sequence[Fragment]) -> Fragment:
    return seq(bold(heading + ":"), " ", join_fragments(items) if items else "none")


def _block(section: Section) -> Fragment:
    if section.inline or not section.items:
        return _inline(section.heading, section.items)
    return lines([bold(section.heading), bullets(section.items)])


def _cost(fragment: Fragment) -> int:
    """Bytes a fragment adds to an event's content, in both bodies, with room for joints."""
    plain, html = (json.dumps(text, ensure_ascii=False) for text in render(fragment))
    return len(plain.encode()) + len(html.encode()) + 32


def _head(report: Report, part: int, parts: int) -> Fragment:
    shown = title(report) + (f" (part {part} of {parts})" if parts > 1 else "")
    return bold(shown)


def report_messages(report: Report, *, include_flags: bool) -> list[Reply]:
    """The report as `m.notice` messages that ping nobody, each well under the event size limit."""
    sections = report_sections(report, include_flags=include_flags)
    # Set aside the heading as "(part 99 of 99)" would weigh, and the first part's summary.
    budget = MESSAGE_BUDGET - _cost(_head(report, 99, 99)) - _cost(summary(report))
    parts = _pack(sections, budget)
    return [
        Reply(lines([_head(report, i, len(parts)), *([summary(report)] if i == 1 else []), *p]))
        for i, p in enumerate(parts, start=1)
    ]


def _pack(sections: Iterable[Section], budget: int) -> list[list[Fragment]]:
    """Sections into messages of at most `budget`: a section moves whole to the next message
    when it fits there, and only one too big for any message is split between its lines."""
    parts: list[list[Fragment]] = [[]]
    room = budget

    def new_message() -> None:
        nonlocal room
        if parts[-1]:
            parts.append([])
        room = budget

    for section in sections:
        block = _block(section)
        cost = _cost(block)
        if room < cost <= budget:
            new_message()
        if cost <= room:
            parts[-1].append(block)
            room -= cost
            continue
        heading = section.heading
        batch: list[Fragment] = []
        used = _cost(bold(heading))
        for item in section.items:
            cost = _cost(item)
            if used + cost > room:
                if batch:
                    parts[-1].append(lines([bold(heading), bullets(batch)]))
                    heading = section.heading + " (continued)"
                new_message()
                batch, used = [], _cost(bold(heading))
            batch.append(item)
            used += cost
        parts[-1].append(lines([bold(heading), bullets(batch)]))
        room -= used
    return parts


def flags_message(report: Report) -> Reply | None:
    """The flags for the moderators' room, naming the room; None when there are none."""
    if not report.flags:
        return None
    head = lines(
        [
            bold(f"Flags for {report.day} ({report.timezone})"),
            seq("Room ", code(report.room), ". For review only: the bot does nothing about them."),
        ]
    )
    room = MESSAGE_BUDGET - _cost(head) - 200
    shown: list[Fragment] = []
    for flag in report.flags:
        item = _flag(flag, quiet=True)
        room -= _cost(item)
        if room < 0:
            break
        shown.append(item)
    tail: list[Fragment] = []
    if len(shown) < len(report.flags):
        tail.append(f"… and {len(report.flags) - len(shown)} more, in the report's files.")
    return Reply(lines([head, bullets(shown), *tail]))


# --- Markdown and JSON -------------------------------------------------------------------------


def _md_text(text: str) -> str:
    # One line, and every character Markdown could read as markup escaped.
    one_line = text.replace("\r", " ").replace("\n", " ")
    return _MARKDOWN_SPECIAL.sub(r"\\\1", one_line)


def _md_code(text: str) -> str:
    runs = [len(run) for run in re.findall(r"`+", text)]
    fence = "`" * (max(runs, default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def to_markdown(fragment: Fragment) -> str:
    """A fragment as CommonMark; user text can't open links, HTML or emphasis."""
    match fragment:
        case str():
            return _md_text(fragment)
        case Seq(parts):
            return "".join(to_markdown(p) for p in parts)
        case Bold(parts):
            return "**" + "".join(to_markdown(p) for p in parts) + "**"
        case Italic(parts):
            return "*" + "".join(to_markdown(p) for p in parts) + "*"
        case Code(text):
            return _md_code(text)
        case UserLink(user_id, _):
            # A file pings nobody: the ID is shown whole so it can be copied.
            href = "https://matrix.to/#/" + quote(user_id, safe="@:")
            return f"[{_md_text(user_id)}]({href})"
        case Lines(items):
            return "  \n".join(to_markdown(i) for i in items)
        case Bullets(items):
            return "\n".join("- " + to_markdown(i) for i in items)
    raise TypeError(f"not a fragment: {fragment!r}")


def report_markdown(report: Report, *, include_flags: bool = True) -> str:
    """The report as a Markdown document, with a table of the activity per hour."""
    out = [
        f"# {_md_text(title(report))}",
        "",
        f"Room {_md_code(report.room)}. {_md_text(summary(report))}",
    ]
    for section in report_sections(report, include_flags=include_flags, quiet=False):
        out.append("")
        if section.inline or not section.items:
            out.append(to_markdown(_inline(section.heading, section.items)))
        else:
            out += [f"## {_md_text(section.heading)}", "", to_markdown(bullets(section.items))]
    out += ["", "## Activity per hour", "", "| hour | entries |", "|---|---:|"]
    out += [f"| {h} | {n} |" for h, n in zip(hour_labels(report), report.hourly, strict=True)]
    return "\n".join(out) + "\n"


def report_json(report: Report, *, include_flags: bool = True) -> str:
    """The report's data as JSON: sorted keys, two-space indent, UTF-8 text kept readable."""
    data: dict[str, Any] = dict(report.to_json())
    if not include_flags:
        data.pop("flags", None)
    return json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
