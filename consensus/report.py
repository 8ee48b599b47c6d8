"""The daily transparency report's content. Pure: the day's entries and a few facts in, a Report.

`build_report` reads the day's ledger entries once, in seq order, and the few earlier entries
they refer to; it never reads the clock, the database or the room. Renderers (Markdown, HTML,
chat, chart) work from the Report; `Report.to_json()` is its JSON form (integers and strings,
no floats).

How the sections count:
- **Hours** are the room's local hours: the hours elapsed since the day's first instant, so a
  day has 23, 24 or 25 buckets when clocks change (the last bucket is short where a change is
  not a whole hour). Every entry of the day counts in its hour.
- **Kudos**: `total`, `receivers` and the top receivers count every kudos credited that day,
  kudos entries and attendance kudos alike (both raise scores). `entries`, `givers` and the top
  givers count kudos entries only: attendance kudos are credited by the action call, not given
  by the member who confirms. A kudos or attendance entry of the day taken out the same day (a
  reversal, a mod.void) counts in none of them, unless an appeal the same day put it back.
  `reversed` is the kudos that day's reversals and voids took out, whatever day they were given,
  less what that day's appeals put back of that day's voids.
- **Decisions**: proposals and polls opened or closed that day (votes alone don't list one).
  **Actions**: action calls opened, closed, committed to or attended that day; a call not closed
  that day reads "went" when its attendance was recorded or a commitment came after its deadline
  (both happen only after a GO), otherwise "open".
- **Moderation**: mod.void, mod.override, review, and erase when a moderator did it.
  **Rule changes**: rule.change (a passed proposal) and mod.override (the operator).

Flags are for human review and never acted on. Each explains itself with its numbers:
- **ring**, a pair: each gave the other at least RING_MIN_KUDOS kudos that day, and that is at
  least RING_SHARE_PERCENT % of what each gave. A triangle A → B → C → A: each gave the next at
  least RING_MIN_KUDOS, and each gave at least RING_SHARE_PERCENT % of their kudos to the other
  two. Triangles are looked for only along each giver's RING_TOP heaviest qualifying edges, so
  the work stays linear in the day's giver-receiver pairs (this is not a clique search).
- **spike**: the day's kudos total is at least SPIKE_FACTOR times the median of the baseline
  days and at least SPIKE_MARGIN more than it. With fewer than SPIKE_MIN_DAYS baseline days the
  check is not made and nothing is flagged. The baseline must count as `total` does and include
  days without kudos (as 0), or the median comes out too high.
- **newcomer**: a member who joined (as the bot saw it) less than NEWCOMER_MS before the day
  began, or during it, and gave kudos that day. Members the bot never saw join were there first.
"""

from __future__ import annotations

import heapq
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, is_dataclass
from types import MappingProxyType
from typing import Any, NamedTuple, Protocol

from consensus.durations import DAY_MS, HOUR_MS
from consensus.ledger import (
    ATTEND,
    COMMIT,
    ERASE,
    ITEM_CLOSE,
    ITEM_OPEN,
    KUDOS,
    MOD_OVERRIDE,
    MOD_VOID,
    REVERSAL,
    REVIEW,
    RULE_CHANGE,
)
from consensus.scoring import CREDIT_KINDS, day_start, next_day_start

TOP = 5
RING_MIN_KUDOS = 3
RING_SHARE_PERCENT = 60
RING_TOP = 5
SPIKE_FACTOR = 3
SPIKE_MARGIN = 10
SPIKE_MIN_DAYS = 7
NEWCOMER_MS = 7 * DAY_MS

_ACTION_STATUS = {"go": "went", "called_off": "called off", "withdrawn": "withdrawn"}

DATA_KINDS = frozenset(
    {KUDOS, ATTEND, REVERSAL, MOD_VOID, ITEM_OPEN, ITEM_CLOSE, COMMIT, RULE_CHANGE}
    | {MOD_OVERRIDE, REVIEW, ERASE}
)
"""The kinds whose `data` a report reads; of the day's other entries (votes, opt-outs) it only
counts the time, so their `data` may be left empty."""


class ReportEntry(Protocol):
    """What a report reads of a ledger entry: a `LedgerEntry` is one, and so is a `DayEntry`."""

    @property
    def seq(self) -> int: ...
    @property
    def ts(self) -> int: ...
    @property
    def actor(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def data(self) -> Mapping[str, Any]: ...


class DayEntry(NamedTuple):
    """A ledger entry's fields as a report reads them, for a day's many stored entries (which
    passed a `LedgerEntry`'s checks when they were appended): a tuple is made far faster."""

    seq: int
    ts: int
    actor: str
    kind: str
    data: Mapping[str, Any]


Texted = tuple[ReportEntry, str | None]  # an entry and its free text (None: none or erased)

# --- the data model --------------------------------------------------------------------------


@dataclass(frozen=True)
class Ranked:
    """A leaderboard line."""

    user: str
    amount: int


@dataclass(frozen=True)
class KudosSection:
    total: int  # kudos credited that day (after same-day reversals), all channels and attendance
    entries: int  # kudos entries that day
    givers: int
    receivers: int
    top_receivers: tuple[Ranked, ...]  # at most TOP
    top_givers: tuple[Ranked, ...]  # at most TOP
    reversed: int  # kudos taken back that day (reversal + mod.void of kudos or attendance)


@dataclass(frozen=True)
class DecisionLine:
    """A proposal or poll opened or decided that day."""

    item: int
    type: str  # "proposal" | "poll"
    title: str | None  # None when its text was erased
    opened: bool  # opened that day
    outcome: str | None  # "passed" | "failed" | "decided" | "withdrawn" | None (still open)
    tally: Mapping[str, int | str] = field(hash=False)  # from the item.close (empty if open)


@dataclass(frozen=True)
class ActionLine:
    item: int
    title: str | None
    status: str  # "open" | "went" | "called off" | "withdrawn"
    need: int
    committed: int
    came: int  # attendance recorded (self-reported or confirmed)


@dataclass(frozen=True)
class ModLine:
    """A moderator action that day: mod.void, mod.override, erase by a moderator, review."""

    seq: int
    kind: str
    actor: str
    target: int | None  # the seq it acts on
    reason: str | None  # its text, None if none or erased


@dataclass(frozen=True)
class RuleLine:
    seq: int
    key: str
    value: int | str | None
    source: str  # "proposal #7" | "operator override"


@dataclass(frozen=True)
class Flag:
    """For human review only; never acted on."""

    kind: str  # "ring" | "spike" | "newcomer"
    users: tuple[str, ...]
    explanation: str  # one sentence with the numbers


@dataclass(frozen=True)
class CheckpointInfo:
    size: int
    root: str  # hex
    ts: int
    signature: str  # unpadded base64
    key: str  # unpadded base64 public key
    text: str  # the one-line text form (SignedCheckpoint.to_text())
    previous_size: int | None  # the previous report's checkpoint size
    consistent: bool | None  # RFC 6962 consistency with the previous one (None: no previous)


@dataclass(frozen=True)
class Report:
    room: str
    day: str  # "YYYY-MM-DD", the room's local day
    timezone: str
    start_ms: int  # the day's first instant (UTC ms)
    end_ms: int  # the next day's first instant
    entries: int  # ledger entries written that day
    hourly: tuple[int, ...]  # entries per local hour: 23, 24 or 25 buckets
    kudos: KudosSection
    decisions: tuple[DecisionLine, ...]
    actions: tuple[ActionLine, ...]
    moderation: tuple[ModLine, ...]
    rule_changes: tuple[RuleLine, ...]
    optouts: int  # members opted out now
    expired_commands: int  # commands answered "expired" that day
    unreviewed: tuple[str, ...]  # earlier report days not yet signed off with !review
    flags: tuple[Flag, ...]
    checkpoint: CheckpointInfo | None

    def to_json(self) -> dict[str, Any]:
        """The report as a fresh JSON object: dicts, lists, strings, integers, booleans, null."""
        result: dict[str, Any] = _plain(self)
        return result


def _plain(value: object) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if value is None or isinstance(value, str | int):  # bool is an int
        return value
    raise TypeError(f"A report holds no {type(value).__name__} values.")


# --- building --------------------------------------------------------------------------------


def _title(text: str | None) -> str | None:
    return None if text is None else text.split("\n", 1)[0]


def _ranked(totals: Mapping[str, int]) -> tuple[Ranked, ...]:
    best = heapq.nsmallest(TOP, totals.items(), key=lambda pair: (-pair[1], pair[0]))
    return tuple(Ranked(user, amount) for user, amount in best)


_Credit = tuple[str | None, str, int]  # giver (None: attendance kudos), receiver, amount


def _credited(entry: ReportEntry) -> int:
    if entry.kind == KUDOS:
        amount: int = entry.data["amount"]
        return amount
    kudos: int = entry.data["kudos"] if entry.kind == ATTEND else 0
    return kudos


class _KudosDay:
    """The day's kudos as its entries leave them: totals net of what was taken out that day."""

    def __init__(self, targets: Mapping[int, Texted]) -> None:
        self.targets = targets
        self.credits: dict[int, _Credit] = {}  # the day's kudos and attendance credits, by seq
        self.voids: dict[int, tuple[int, int]] = {}  # the day's mod.voids: seq -> target, amount
        self.received: dict[str, int] = {}
        self.weights: dict[str, dict[str, int]] = {}  # giver -> receiver -> kudos
        self.entries = 0
        self.reversed = 0

    def give(self, seq: int, giver: str, receiver: str, amount: int) -> None:
        """A kudos entry. Written out, not by `credit`: it runs for most of a day's entries."""
        self.entries += 1
        self.credits[seq] = (giver, receiver, amount)
        received = self.received
        received[receiver] = received.get(receiver, 0) + amount
        to = self.weights.get(giver)
        if to is None:
            self.weights[giver] = {receiver: amount}
        else:
            to[receiver] = to.get(receiver, 0) + amount

    def credit(self, seq: int, giver: str | None, receiver: str, amount: int) -> None:
        self.credits[seq] = (giver, receiver, amount)
        self._count(giver, receiver, amount)

    def _count(self, giver: str | None, receiver: str, amount: int) -> None:
        self.received[receiver] = self.received.get(receiver, 0) + amount
        if giver is not None:
            to = self.weights.get(giver)
            if to is None:
                to = self.weights[giver] = {}
            to[receiver] = to.get(receiver, 0) + amount

    def _earlier(self, seq: int, by: int) -> ReportEntry:
        found = self.targets.get(seq)
        if found is None:
            raise ValueError(f"Entry {by} refers to entry {seq}, which was not given.")
        return found[0]

    def _take_out(self, target: int, by: int) -> int:
        credit = self.credits.get(target)
        if credit is None:  # an earlier day's: only `reversed` counts it
            amount = _credited(self._earlier(target, by))
        else:
            amount = credit[2]
            self._count(credit[0], credit[1], -amount)
        self.reversed += amount
        return amount

    def void(self, seq: int, target: int) -> None:
        self.voids[seq] = (target, self._take_out(target, seq))

    def reverse(self, seq: int, target: int) -> None:
        if target in self.voids:  # an appeal of that day's void: the kudos count again
            voided, amount = self.voids.pop(target)
            self.reversed -= amount
            credit = self.credits.get(voided)
            if credit is not None:
                self._count(*credit)
        elif target in self.credits or self._earlier(target, seq).kind in CREDIT_KINDS:
            self._take_out(target, seq)
        # Otherwise it reverses a vote, or an earlier day's void (an earlier day's kudos).

    def section(self) -> tuple[KudosSection, dict[str, dict[str, int]]]:
        """The section, and the giver -> receiver weights left (kudos entries only)."""
        received = {user: n for user, n in self.received.items() if n}
        weights = {
            giver: kept
            for giver, to in self.weights.items()
            if (kept := {receiver: n for receiver, n in to.items() if n})
        }
        given = {giver: sum(to.values()) for giver, to in weights.items()}
        section = KudosSection(
            total=sum(received.values()),
            entries=self.entries,
            givers=len(given),
            receivers=len(received),
            top_receivers=_ranked(received),
            top_givers=_ranked(given),
            reversed=self.reversed,
        )
        return section, weights


def _share(part: int, whole: int) -> bool:
    return part * 100 >= whole * RING_SHARE_PERCENT


def _percent(part: int, whole: int) -> str:
    return f"{part} of {whole} ({part * 100 // whole}%)"


def _ring_flags(weights: Mapping[str, Mapping[str, int]]) -> list[Flag]:
    given = {giver: sum(to.values()) for giver, to in weights.items()}
    # Only edges heavy enough to be part of a ring; each giver keeps its RING_TOP heaviest.
    heavy: dict[str, list[str]] = {}
    for giver, to in weights.items():
        edges = [(receiver, n) for receiver, n in to.items() if n >= RING_MIN_KUDOS]
        if edges:
            edges.sort(key=lambda edge: (-edge[1], edge[0]))
            heavy[giver] = [receiver for receiver, _ in edges[:RING_TOP]]
    flags: list[Flag] = []
    for a in sorted(heavy):
        for b in heavy[a]:
            ab, ba = weights[a][b], weights.get(b, {}).get(a, 0)
            if a < b and ba >= RING_MIN_KUDOS and _share(ab, given[a]) and _share(ba, given[b]):
                flags.append(
                    Flag(
                        "ring",
                        (a, b),
                        f"{a} and {b} gave each other most of their kudos: {a} gave {b} "
                        f"{_percent(ab, given[a])}, {b} gave {a} {_percent(ba, given[b])} "
                        f"(flagged at {RING_MIN_KUDOS} or more each way and "
                        f"{RING_SHARE_PERCENT}% or more of what each gave).",
                    )
                )
    seen: set[frozenset[str]] = set()
    for a in sorted(heavy):
        for b in heavy[a]:
            for c in heavy.get(b, ()):
                # c is a: a pair. The cheap test first: this runs for every two heavy edges.
                if c == a or weights.get(c, {}).get(a, 0) < RING_MIN_KUDOS:
                    continue
                members = frozenset((a, b, c))
                if len(members) < 3 or members in seen:
                    continue
                cycle = ((a, b, c), (b, c, a), (c, a, b))
                # (gave the next, gave the other two, gave in all) for each member
                rows = [
                    (weights[x][y], weights[x][y] + weights[x].get(z, 0), given[x])
                    for x, y, z in cycle
                ]
                if not all(_share(within, whole) for _, within, whole in rows):
                    continue
                seen.add(members)
                nexts = ", ".join(str(n) for n, _, _ in rows)
                shares = ", ".join(f"{within} of {whole}" for _, within, whole in rows)
                flags.append(
                    Flag(
                        "ring",
                        (a, b, c),
                        f"{a} → {b} → {c} → {a} gave kudos around a circle: each gave the next "
                        f"{nexts} and kept most of their kudos within the three ({shares}; "
                        f"flagged at {RING_MIN_KUDOS} or more to the next and "
                        f"{RING_SHARE_PERCENT}% or more within).",
                    )
                )
    return flags


def _spike_flag(day: str, total: int, baseline: Mapping[str, int]) -> Flag | None:
    days = len(baseline)
    if days < SPIKE_MIN_DAYS:
        return None
    ordered = sorted(baseline.values())
    twice_median = ordered[(days - 1) // 2] + ordered[days // 2]  # integers: no float median
    if 2 * total < SPIKE_FACTOR * twice_median or 2 * total < twice_median + 2 * SPIKE_MARGIN:
        return None
    median = f"{twice_median // 2}" + (".5" if twice_median % 2 else "")
    return Flag(
        "spike",
        (),
        f"{total} kudos on {day} against a median of {median} a day over the {days} days before "
        f"(flagged at {SPIKE_FACTOR} times the median and {SPIKE_MARGIN} or more above it).",
    )


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _newcomer_flags(
    start_ms: int,
    weights: Mapping[str, Mapping[str, int]],
    member_since: Mapping[str, int],
) -> list[Flag]:
    flags = []
    for giver in sorted(weights):
        since = member_since.get(giver)
        if since is None or since <= start_ms - NEWCOMER_MS:
            continue
        to = weights[giver]
        gave = f"gave {sum(to.values())} kudos to {_plural(len(to), 'member')}"
        if since >= start_ms:
            when = "joined during the day"
        else:
            ago = start_ms - since
            when = (
                f"joined {_plural(ago // HOUR_MS, 'hour')} before the day began"
                if ago >= HOUR_MS
                else "joined less than an hour before the day began"
            )
        flags.append(
            Flag(
                "newcomer",
                (giver,),
                f"{giver} {when} and {gave} "
                f"(flagged when a member joined less than {NEWCOMER_MS // DAY_MS} days before).",
            )
        )
    return flags


def build_report(
    *,
    room: str,
    day: str,
    timezone: str,
    entries: Iterable[Texted],
    targets: Mapping[int, Texted],
    item_opens: Mapping[int, Texted],
    action_state: Mapping[int, tuple[int, int]],
    baseline_kudos: Mapping[str, int],
    member_since: Mapping[str, int],
    optouts: int,
    expired_commands: int,
    unreviewed: Sequence[str],
    moderators: Collection[str],
    checkpoint: CheckpointInfo | None,
) -> Report:
    """The report of local `day` in `timezone` (see the module docstring for what counts).

    `entries` are the day's entries in seq order, each with its text (None: none or erased; the
    data of kinds outside DATA_KINDS is not read); `targets` the earlier entries they take out or
    name, by seq; `item_opens` the item.open entry and text of each item touched that day, by
    item number; `action_state` each such action call's (committed now, came); `baseline_kudos`
    the kudos total of each earlier day;
    `member_since` when the bot saw each member join (UTC ms). Raises ValueError when an entry
    lies outside the day or something it refers to was not given.
    """
    start = day_start(day, timezone)
    end = next_day_start(start, timezone)
    hourly = [0] * -(-(end - start) // HOUR_MS)
    kudos = _KudosDay(targets)
    opened: dict[int, Texted] = {}
    closed: dict[int, ReportEntry] = {}
    touched: set[int] = set()  # action calls committed to or attended
    went: set[int] = set()  # action calls that day's entries show to have gone ahead
    commit_ts: dict[int, int] = {}
    moderation: list[ModLine] = []
    rule_changes: list[RuleLine] = []

    give = kudos.give
    for entry, text in entries:
        ts, kind = entry.ts, entry.kind
        if not start <= ts < end:
            raise ValueError(f"Entry {entry.seq} is not of {day} in {timezone}.")
        hourly[(ts - start) // HOUR_MS] += 1
        if kind == KUDOS:  # most entries: first, and nothing else to look at
            data = entry.data
            give(entry.seq, entry.actor, data["to"], data["amount"])
            continue
        if kind not in DATA_KINDS:  # a vote, an opt-out: counted in its hour, nothing more
            continue
        data, seq = entry.data, entry.seq
        if kind == ATTEND:
            touched.add(data["item"])
            went.add(data["item"])
            if data["kudos"] > 0:
                kudos.credit(seq, None, data["user"], data["kudos"])
        elif kind == REVERSAL:
            kudos.reverse(seq, data["target"])
        elif kind == MOD_VOID:
            kudos.void(seq, data["target"])
            moderation.append(ModLine(seq, kind, entry.actor, data["target"], text))
        elif kind == ITEM_OPEN:
            opened[data["item"]] = (entry, text)
        elif kind == ITEM_CLOSE:
            closed[data["item"]] = entry
        elif kind == COMMIT:
            touched.add(data["item"])
            commit_ts[data["item"]] = max(ts, commit_ts.get(data["item"], ts))
        elif kind == RULE_CHANGE:
            rule_changes.append(
                RuleLine(seq, data["key"], data["value"], f"proposal #{data['item']}")
            )
        elif kind == MOD_OVERRIDE:
            rule_changes.append(RuleLine(seq, data["key"], data["value"], "operator override"))
            moderation.append(ModLine(seq, kind, entry.actor, None, text))
        elif kind == REVIEW or (kind == ERASE and entry.actor in moderators):
            moderation.append(ModLine(seq, kind, entry.actor, data.get("target"), text))

    section, weights = kudos.section()

    known_opens = {e.data["item"]: (e, t) for e, t in targets.values() if e.kind == ITEM_OPEN}
    known_opens.update(item_opens)
    known_opens.update(opened)
    decisions: list[DecisionLine] = []
    actions: list[ActionLine] = []
    for item in sorted(opened.keys() | closed.keys() | touched):
        found = known_opens.get(item)
        if found is None:
            raise ValueError(
                f"Item #{item} was touched on {day}, but its item.open was not given."
            )
        open_entry, text = found
        close = closed.get(item)
        if open_entry.data["type"] != "action":
            decisions.append(
                DecisionLine(
                    item=item,
                    type=open_entry.data["type"],
                    title=_title(text),
                    opened=item in opened,
                    outcome=None if close is None else close.data["outcome"],
                    tally=MappingProxyType({} if close is None else dict(close.data["tally"])),
                )
            )
            continue
        if item not in action_state:
            raise ValueError(f"Action call #{item}'s commitments and attendance were not given.")
        deadline = open_entry.data["closes"]
        if close is not None:
            status = _ACTION_STATUS[close.data["outcome"]]
        elif item in went or (deadline is not None and commit_ts.get(item, -1) >= deadline):
            status = "went"
        else:
            status = "open"
        committed, came = action_state[item]
        actions.append(
            ActionLine(item, _title(text), status, open_entry.data["need"], committed, came)
        )

    flags = _ring_flags(weights)
    spike = _spike_flag(day, section.total, baseline_kudos)
    if spike is not None:
        flags.append(spike)
    flags += _newcomer_flags(start, weights, member_since)

    return Report(
        room=room,
        day=day,
        timezone=timezone,
        start_ms=start,
        end_ms=end,
        entries=sum(hourly),  # every entry counts in its hour
        hourly=tuple(hourly),
        kudos=section,
        decisions=tuple(decisions),
        actions=tuple(actions),
        moderation=tuple(moderation),
        rule_changes=tuple(rule_changes),
        optouts=optouts,
        expired_commands=expired_commands,
        unreviewed=tuple(unreviewed),
        flags=tuple(flags),
        checkpoint=checkpoint,
    )
