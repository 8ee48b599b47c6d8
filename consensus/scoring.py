"""Kudos rules, scores and their replay. Pure: entries, rules and state in, values out.

`check_kudos` decides a kudos request from what storage knows (`GiverState`) and raises
`KudosRefused` with one sentence for the user. `deltas` says what an entry adds to the aggregates
storage keeps; `ScoreBook` replays a room's ledger into the same aggregates and names the first
entry that breaks the rules in force at its time (a `verify.Replayer`).

Days are local calendar days in the room's time zone as it was when the entry was written. A day
begins at its first instant: local midnight; the end of a daylight-saving gap that swallows
midnight; the first of two midnights where clocks fall back across one. Decay (`kudos.half_life`)
works per day: a day's kudos age from that day's start, so a score depends only on the daily
aggregates and the time it is asked for. `kudos.min_membership` is checked when kudos are given,
never on replay: joins are not in the ledger.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import TYPE_CHECKING, TypeVar
from zoneinfo import ZoneInfo

from consensus.durations import MINUTE_MS, format_duration
from consensus.ledger import (
    ATTEND,
    GENESIS,
    KINDS,
    KUDOS,
    MOD_VOID,
    OPTIN,
    OPTOUT,
    REVERSAL,
    RULE_KINDS,
    LedgerEntry,
)
from consensus.rules import RULES, RoomRules, RuleError

if TYPE_CHECKING:
    from consensus.verify import Replayed

CREDIT_KINDS = frozenset({KUDOS, ATTEND})
"""Kinds that credit kudos, and so the kinds a reversal or a mod.void can take out."""

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_ONE_MS = dt.timedelta(milliseconds=1)

# --- days in the room's time zone ------------------------------------------------------------


def _local(ts_ms: int, zone: ZoneInfo) -> dt.datetime:
    # Integer arithmetic: a float of seconds would round some milliseconds the wrong way.
    return (_EPOCH + dt.timedelta(milliseconds=ts_ms)).astimezone(zone)


def _ms(moment: dt.datetime) -> int:
    return (moment - _EPOCH) // _ONE_MS


DAY_MS = 86_400_000

# Per zone, the last day asked for whose UTC offset stays the same all day long: (its first
# ms, its end, "YYYY-MM-DD"). Every kudos asks for the day of its time, mostly the same day.
_steady_days: dict[str, tuple[int, int, str]] = {}


def local_day(ts_ms: int, timezone: str) -> str:
    """The local calendar day ("YYYY-MM-DD") of `ts_ms` in the IANA zone `timezone`."""
    known = _steady_days.get(timezone)
    if known is not None and known[0] <= ts_ms < known[1]:
        return known[2]
    zone = ZoneInfo(timezone)
    moment = _local(ts_ms, zone)
    day = moment.date().isoformat()
    # The day's span at this offset. If the offset is the same at both of its ends it is the
    # same all day (no zone changes its offset twice within a day and back), and every ms in
    # the span is this day: remember it.
    into_day = ((moment.hour * 60 + moment.minute) * 60 + moment.second) * 1000
    start = ts_ms - into_day - moment.microsecond // 1000
    offset = moment.utcoffset()
    if _local(start, zone).utcoffset() == offset == _local(start + DAY_MS - 1, zone).utcoffset():
        _steady_days[timezone] = (start, start + DAY_MS, day)
    return day


def day_start(day: str, timezone: str) -> int:
    """UTC ms of the first instant of local `day`: midnight, or where a gap over it ends."""
    zone = ZoneInfo(timezone)
    midnight = dt.datetime.combine(dt.date.fromisoformat(day), dt.time(), tzinfo=zone)
    start = _ms(midnight)  # fold=0: the earlier of two midnights when clocks fall back
    if _local(start, zone).replace(tzinfo=None) == midnight.replace(tzinfo=None):
        return start
    # Midnight is in a gap. Read with the offset from after the gap it is still the day before;
    # read with the offset from before, it is past the gap's end: the day begins in between.
    low, high = _ms(midnight.replace(fold=1)), start
    while low < high:
        middle = (low + high) // 2
        if local_day(middle, timezone) >= day:
            high = middle
        else:
            low = middle + 1
    return low


def next_day_start(ts_ms: int, timezone: str) -> int:
    """When the local day of `ts_ms` ends (the next day's start): when allowances reset."""
    zone = ZoneInfo(timezone)
    tomorrow = _local(ts_ms, zone).date() + dt.timedelta(days=1)
    start = day_start(tomorrow.isoformat(), timezone)
    if start <= ts_ms:
        # Clocks fell back across midnight and ts is in the repeated hour of the day before, so
        # that day ends at the second midnight.
        start = _ms(dt.datetime.combine(tomorrow, dt.time(fold=1), tzinfo=zone))
    return start


def _clock(ts_ms: int, now_ms: int, timezone: str) -> str:
    """`ts_ms` for people: "HH:MM <zone>" up to the end of today, with the date after that."""
    zone = ZoneInfo(timezone)
    offset_ms = (_local(ts_ms, zone).utcoffset() or dt.timedelta()) // _ONE_MS
    # Round up to a whole local minute: "from 14:05" must not name a minute still too early.
    ts_ms += -(ts_ms + offset_ms) % MINUTE_MS
    moment = _local(ts_ms, zone)
    shown = f"{moment:%H:%M} {timezone}"
    return shown if ts_ms <= next_day_start(now_ms, timezone) else f"{moment:%Y-%m-%d} {shown}"


# --- deciding a kudos request ----------------------------------------------------------------


class KudosRefused(Exception):
    """A kudos request was refused; `message` is one sentence for the user."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class GiverState:
    """What storage knows about a giver when they ask to give kudos now."""

    given_today: int = 0  # kudos the giver gave on today's local day (after reversals)
    pair_today: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    member_since_ms: int | None = None  # when the bot first saw the giver join; None: unknown
    opted_out: frozenset[str] = frozenset()  # those of the giver and receivers who opted out


def check_kudos(
    *,
    giver: str,
    receivers: Sequence[str],
    amount: int,
    now_ms: int,
    rules: RoomRules,
    state: GiverState,
    bot_user: str,
    members: Collection[str],
    prefix: str = "!",
) -> tuple[str, ...]:
    """The receivers (deduplicated, in order) of an allowed request; KudosRefused otherwise.

    `amount` is per receiver. A giver whose join the bot never saw (`member_since_ms` None) was
    in the room before the bot, so `kudos.min_membership` does not hold them back.
    """
    unique = tuple(receivers) if len(receivers) == 1 else tuple(dict.fromkeys(receivers))
    if giver in state.opted_out:
        raise KudosRefused(f"You opted out of kudos; send {prefix}optin to take part again.")
    if not unique:
        raise KudosRefused(f"Say who the kudos are for, e.g. {prefix}kudos @alice:example.org.")
    if giver in unique:
        raise KudosRefused("You can't give kudos to yourself.")
    if bot_user in unique:
        raise KudosRefused("I keep the score but don't play; give kudos to a member of the room.")
    for receiver in unique:
        if receiver not in members:
            raise KudosRefused(f"{receiver} is not in this room, so they can't receive kudos.")
    for receiver in unique:
        if receiver in state.opted_out:
            raise KudosRefused(f"{receiver} opted out of kudos, so they can't receive any.")
    most = rules.max_per_message
    if not 1 <= amount <= most:
        span = "only 1 kudos" if most == 1 else f"1 to {most} kudos"
        raise KudosRefused(
            f"You can give {span} to each person in one message (kudos.max_per_message is {most})."
        )
    wait = rules.min_membership_ms
    since = state.member_since_ms
    if since is not None and now_ms < since + wait:
        raise KudosRefused(
            f"You joined this room less than {format_duration(wait)} ago"
            f" (kudos.min_membership), so you can give kudos from"
            f" {_clock(since + wait, now_ms, rules.timezone)}."
        )

    def reset() -> str:  # only a refusal says it: working it out costs more than the check
        return _clock(next_day_start(now_ms, rules.timezone), now_ms, rules.timezone)

    allowance = rules.daily_allowance
    left = max(0, allowance - state.given_today)
    wanted = amount * len(unique)
    if wanted > left and left == 0:
        raise KudosRefused(
            f"You have given all {allowance} kudos of your daily allowance"
            f" (kudos.daily_allowance); it resets at {reset()}."
        )
    if wanted > left:
        raise KudosRefused(
            f"That is {wanted} kudos but you have {left} left today"
            f" (kudos.daily_allowance is {allowance}); it resets at {reset()}."
        )
    cap = rules.pair_daily_cap
    for receiver in unique:
        pair_left = max(0, cap - state.pair_today.get(receiver, 0))
        if amount > pair_left and pair_left == 0:
            raise KudosRefused(
                f"You have given {receiver} all {cap} kudos one member may give another in a day"
                f" (kudos.pair_daily_cap); it resets at {reset()}."
            )
        if amount > pair_left:
            raise KudosRefused(
                f"You can give {receiver} only {pair_left} more kudos today"
                f" (kudos.pair_daily_cap is {cap}); it resets at {reset()}."
            )
    return unique


# --- what entries change ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)  # slots: a replay holds one per kudos entry
class Delta:
    """One change to the aggregates that a kudos or attendance entry (or its reversal) makes."""

    receiver: str
    giver: str | None  # None for attendance kudos, credited by the action call itself
    day: str  # local day of the original entry's ts, in the time zone in force then
    amount: int  # negative for a reversal


def deltas(entry: LedgerEntry, rules: RoomRules) -> tuple[Delta, ...]:
    """What `entry` adds to the aggregates, given the rules in force when it was written."""
    if entry.kind == KUDOS:
        day = local_day(entry.ts, rules.timezone)
        return (Delta(entry.data["to"], entry.actor, day, entry.data["amount"]),)
    if entry.kind == ATTEND and entry.data["kudos"] > 0:
        day = local_day(entry.ts, rules.timezone)
        return (Delta(entry.data["user"], None, day, entry.data["kudos"]),)
    return ()


def negate(changes: Sequence[Delta]) -> tuple[Delta, ...]:
    """The deltas that undo `changes` (a reversal of the entry that made them)."""
    return tuple(replace(change, amount=-change.amount) for change in changes)


def decay_factor(age_ms: int, half_life_ms: int | None) -> float:
    """2 ** (-age / half_life): what is left of a kudos of that age; 1.0 when decay is off."""
    if half_life_ms is None:
        return 1.0
    if half_life_ms <= 0:
        raise ValueError(f"A half-life must be positive, not {half_life_ms} ms.")
    # Kudos don't grow: an age below zero (a day not begun yet) counts as new.
    return float(2.0 ** (-max(age_ms, 0) / half_life_ms))


def decayed_score(daily: Mapping[str, int], now_ms: int, rules: RoomRules) -> float:
    """The score from per-day kudos (`received_days`), each day aged from its start, in the
    room's current time zone; the plain sum when `kudos.half_life` is off."""
    half_life = rules.half_life_ms
    if half_life is None:
        return float(sum(daily.values()))
    return math.fsum(
        amount * decay_factor(now_ms - day_start(day, rules.timezone), half_life)
        for day, amount in daily.items()
    )


# --- replay ----------------------------------------------------------------------------------


_Change = tuple[str, str | None, str, int]
"""A Delta as a plain tuple (receiver, giver, day, amount): a replay keeps one per kudos entry,
and a tuple costs a fraction of a frozen dataclass to make."""


@dataclass(slots=True)
class _Void:
    target: int
    appealed_by: int | None = None  # the appeal reversal that put the target back


_KIND_NAMES = tuple(sorted(KINDS))
_KIND_CODES = {kind: code for code, kind in enumerate(_KIND_NAMES)}
_K = TypeVar("_K")


def _bump(totals: dict[_K, int], key: _K, amount: int) -> None:
    # Zeros are dropped so that a fully reversed score leaves no trace in the aggregates.
    value = totals.get(key, 0) + amount
    if value:
        totals[key] = value
    else:
        totals.pop(key, None)


class ScoreBook:
    """A replay of one room's ledger: scores, aggregates, rules and opt-outs (a Replayer).

    Entries must come in order from genesis. `apply` returns a phrase naming the problem with an
    entry (verify prefixes "entry N: ") and then leaves the book as it was, or None once the entry
    is taken in. A kudos or attendance entry is in effect until a reversal or mod.void takes it
    out; an appeal (a reversal of the mod.void) puts it back.
    """

    def __init__(self) -> None:
        self._set_rules(RoomRules.defaults())
        self._room = ""
        self._kinds = bytearray()  # kind code of every entry taken in, by seq - 1
        # Every kudos and attendance entry: what it adds to the aggregates (None: nothing).
        self._credits: dict[int, _Change | None] = {}
        self._out_by: dict[int, int] = {}  # credit -> the reversal or mod.void that took it out
        self._voids: dict[int, _Void] = {}
        self._attended: dict[tuple[int, str], int] = {}  # (item, user) -> attend entry seq
        self._opted_out: set[str] = set()
        self._totals: dict[str, int] = {}
        self._received: dict[str, dict[str, int]] = {}
        # By local day, then giver (and receiver): a replay's lookups, all for the day of the
        # entry at hand, then stay within one small dict instead of roaming a million keys.
        self._given: dict[str, dict[str, int]] = {}
        self._pairs: dict[str, dict[tuple[str, str], int]] = {}
        self._handlers: Mapping[str, Callable[[Replayed], str | None]] = {
            GENESIS: self._genesis,
            KUDOS: self._kudos,
            ATTEND: self._attend,
            REVERSAL: self._reversal,
            MOD_VOID: self._void,
            OPTOUT: self._optout,
            OPTIN: self._optin,
            **dict.fromkeys(RULE_KINDS, self._rule),
        }

    # -- queries --

    def total(self, user: str) -> int:
        """The plain sum of the kudos in effect that `user` received."""
        return self._totals.get(user, 0)

    def totals(self) -> dict[str, int]:
        """Every user with a non-zero plain score."""
        return dict(self._totals)

    def received_days(self, user: str) -> dict[str, int]:
        """Kudos in effect that `user` received, by local day (input of `decayed_score`)."""
        return dict(self._received.get(user, {}))

    def given_on(self, giver: str, day: str) -> int:
        return self._given.get(day, {}).get(giver, 0)

    def pair_on(self, giver: str, receiver: str, day: str) -> int:
        return self._pairs.get(day, {}).get((giver, receiver), 0)

    def opted_out(self) -> frozenset[str]:
        return frozenset(self._opted_out)

    def in_effect(self, seq: int) -> bool:
        """Whether entry `seq` is a kudos or attendance entry that still counts."""
        return seq in self._credits and seq not in self._out_by

    # -- replay --

    def apply(self, entry: Replayed) -> str | None:
        kind, expected = entry.kind, len(self._kinds) + 1
        if entry.seq != expected:
            return f"it is entry {entry.seq}, but entry {expected} comes next"
        if kind != GENESIS and entry.room != self._room:
            return f"it is for room {entry.room}, not {self._room}"
        if kind != GENESIS and entry.rules != self._rules_hash:
            return "its rules field is not the hash of the rules in force"
        handler = self._handlers.get(kind)
        problem = handler(entry) if handler else None
        if problem is None:
            self._kinds.append(_KIND_CODES[kind])
        return problem

    def _add(self, change: _Change | None, sign: int = 1) -> None:
        """Add a credit's change to the aggregates, or with sign -1 take it back out."""
        if change is None:
            return
        receiver, giver, day, amount = change
        amount *= sign
        _bump(self._totals, receiver, amount)
        _bump(self._received.setdefault(receiver, {}), day, amount)
        if giver is not None:
            _bump(self._given.setdefault(day, {}), giver, amount)
            _bump(self._pairs.setdefault(day, {}), (giver, receiver), amount)

    def _set_rules(self, rules: RoomRules) -> None:
        self.rules = rules
        self._rules_hash = rules.hash()
        # Kudos replay is the hot path of verify: read the limits and the zone once per rules.
        self._limits = (rules.max_per_message, rules.daily_allowance, rules.pair_daily_cap)
        self._zone = ZoneInfo(rules.timezone)
        self._day = ""
        self._day_bounds = (0, 0)  # UTC ms [start, end) wholly on local `_day`; empty: none

    def _day_of(self, ts: int) -> str:
        """`local_day(ts, rules.timezone)`, keeping the last day's bounds for the entries after."""
        start, end = self._day_bounds
        if start <= ts < end:
            return self._day
        zone = self._zone
        date = _local(ts, zone).date()
        day = date.isoformat()
        first = dt.datetime.combine(date, dt.time(), tzinfo=zone)
        after = dt.datetime.combine(date + dt.timedelta(days=1), dt.time(), tzinfo=zone)
        start, end = _ms(first), _ms(after)
        # Only between two plain midnights (neither repeated nor skipped) is every instant on one
        # local day; a day that a DST change touches at midnight is worked out entry by entry.
        plain = start == _ms(first.replace(fold=1)) and end == _ms(after.replace(fold=1))
        self._day = day
        self._day_bounds = (start, end) if plain and start <= ts < end else (0, 0)
        return day

    def _genesis(self, entry: Replayed) -> str | None:
        try:
            rules = RoomRules(entry.data["rules"])
        except RuleError as exc:
            return f"its starting rules are not valid room rules ({_phrase(exc)})"
        self._room = entry.room
        self._set_rules(rules)
        return None

    def _rule(self, entry: Replayed) -> str | None:
        key, value = entry.data["key"], entry.data["value"]
        if key not in RULES:
            return f"it sets {key!r}, which is not a room rule"
        try:
            rules = RoomRules({**self.rules.values, key: value})
        except RuleError:
            return f"it sets {key} to {value!r}, which is not a valid value of that rule"
        self._set_rules(rules)
        return None

    def _kudos(self, entry: Replayed) -> str | None:
        data = entry.data
        giver, receiver, amount = entry.actor, data["to"], data["amount"]
        if receiver == giver:
            return "kudos to oneself"
        if giver in self._opted_out:
            return f"kudos from {giver}, who had opted out"
        if receiver in self._opted_out:
            return f"kudos to {receiver}, who had opted out"
        most, allowance, cap = self._limits
        if amount > most:
            return f"kudos over the per-message maximum ({amount} of {most})"
        day = self._day_of(entry.ts)
        givers, pairs = self._given.get(day), self._pairs.get(day)
        given = (givers.get(giver, 0) if givers else 0) + amount
        if given > allowance:
            return f"kudos over the daily allowance ({given} of {allowance} on {day})"
        pair = (pairs.get((giver, receiver), 0) if pairs else 0) + amount
        if pair > cap:
            return (
                f"kudos over the pair daily cap ({pair} of {cap}"
                f" from {giver} to {receiver} on {day})"
            )
        self._credits[entry.seq] = (receiver, giver, day, amount)
        # What `_add` does, written out with the sums already at hand: amount > 0, and the
        # aggregates never go below zero, so none of them becomes zero here.
        if givers is None:
            givers = self._given[day] = {}
        if pairs is None:
            pairs = self._pairs[day] = {}
        givers[giver] = given
        pairs[giver, receiver] = pair
        totals = self._totals
        totals[receiver] = totals.get(receiver, 0) + amount
        days = self._received.get(receiver)
        if days is None:
            days = self._received[receiver] = {}
        days[day] = days.get(day, 0) + amount
        return None

    def _attend(self, entry: Replayed) -> str | None:
        item, user, kudos = entry.data["item"], entry.data["user"], entry.data["kudos"]
        if kudos:
            earns = self.rules.attendance_kudos
            if kudos != earns:
                return f"attendance kudos of {kudos}, but action.attendance_kudos is {earns}"
            if user == entry.actor:
                return "attendance kudos for a self-report, which earns kudos only when confirmed"
            earlier = self._attended.get((item, user))
            if earlier is not None and self.in_effect(earlier):
                return f"attendance kudos for {user} on #{item} again (entry {earlier})"
            self._attended[(item, user)] = entry.seq
        # As `deltas` makes it, with the day worked out the replay's way.
        change = (user, None, self._day_of(entry.ts), kudos) if kudos > 0 else None
        self._credits[entry.seq] = change
        self._add(change)
        return None

    def _kind_of(self, seq: int) -> str:
        # Entries come from genesis without gaps and a target precedes its entry (the ledger
        # format checks that), so every target has been taken in.
        return _KIND_NAMES[self._kinds[seq - 1]]

    def _take_out(self, entry: Replayed, verb: str) -> str | None:
        target = entry.data["target"]
        kind = self._kind_of(target)
        if kind not in CREDIT_KINDS:
            return f"it {verb} entry {target}, which is a {kind} entry, not kudos or attendance"
        out_by = self._out_by.get(target)
        if out_by is not None:
            return f"entry {target} is already out of effect (taken out by entry {out_by})"
        self._out_by[target] = entry.seq
        self._add(self._credits[target], -1)
        return None

    def _void(self, entry: Replayed) -> str | None:
        problem = self._take_out(entry, "voids")
        if problem is None:
            self._voids[entry.seq] = _Void(entry.data["target"])
        return problem

    def _reversal(self, entry: Replayed) -> str | None:
        target = entry.data["target"]
        void = self._voids.get(target)
        if void is None:
            return self._take_out(entry, "reverses")
        if entry.data["cause"] != "appeal":
            return f"it reverses the mod.void entry {target}, which only an appeal can do"
        if void.appealed_by is not None:
            return f"entry {target} was already reversed by entry {void.appealed_by}"
        void.appealed_by = entry.seq
        del self._out_by[void.target]  # the mod.void's doing: nothing takes a credit out twice
        self._add(self._credits[void.target])
        return None

    def _optout(self, entry: Replayed) -> str | None:
        self._opted_out.add(entry.actor)
        return None

    def _optin(self, entry: Replayed) -> str | None:
        self._opted_out.discard(entry.actor)
        return None


def _phrase(exc: Exception) -> str:
    text = str(exc).rstrip(".")
    return text[:1].lower() + text[1:]
