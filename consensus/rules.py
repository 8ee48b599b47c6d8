"""Room rules: the typed registry, their canonical values and the rules in force in a room.

Pure. Every rule has one canonical JSON scalar (int, str or null) and that is what the ledger
stores and hashes: `RuleSpec.parse` turns what a user types after `!propose rule <key>` or what an
operator writes in YAML into it, or raises RuleError with one sentence saying what is valid.
`RoomRules` is always complete (every key, every value canonical), so `hash()` is well defined.

Proposal methods are ordered by implication: passing under the stricter one means passing under
the weaker one too. `majority < supermajority < consensus` (a supermajority above 1/2 is a
majority; consensus is the supermajority test plus no block) and `consent < consensus` (consensus
adds the no-block test). Consent is incomparable with majority and supermajority: it lets one
person veto but passes with a single agree. So the stricter of two incomparable methods is
`consensus`, the weakest method that implies both; that is how flags can't weaken a rule proposal.
`METHOD_STRENGTH` ranks the four in an order consistent with that (majority, supermajority,
consent, consensus: a veto for every member is the stronger protection of the two middle ones),
for listing and display; decide with `stricter_method` / `at_least_as_strict`, not the ranks.
"""

from __future__ import annotations

import difflib
import enum
import functools
import re
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from types import MappingProxyType
from typing import cast

from consensus.canonical import canonical_json, sha256_hex
from consensus.durations import (
    DAY_MS,
    HOUR_MS,
    MINUTE_MS,
    SECOND_MS,
    DurationError,
    format_duration,
    parse_duration,
)

RuleValue = int | str | None
"""A canonical rule value, exactly as stored in the ledger."""

OFF = "off"
METHODS = ("majority", "supermajority", "consent", "consensus")
METHOD_STRENGTH: Mapping[str, int] = MappingProxyType({m: i for i, m in enumerate(METHODS)})

# Which methods each method implies (reflexive); see the module docstring.
_IMPLIES: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "majority": frozenset({"majority"}),
        "supermajority": frozenset({"supermajority", "majority"}),
        "consent": frozenset({"consent"}),
        "consensus": frozenset(METHODS),
    }
)


class RuleError(ValueError):
    """A rule key or value was refused. The message is one sentence for the user.

    `key` is the rule concerned (None when the key itself is unknown) and `requirement` the
    "must be ..." phrase, so the config loader can name the key its own way.
    """

    def __init__(self, message: str, key: str | None = None, requirement: str = "") -> None:
        super().__init__(message)
        self.key = key
        self.requirement = requirement


class RuleType(enum.Enum):
    INT = "int"
    DURATION = "duration"
    DURATION_OR_OFF = "duration or off"
    FRACTION = "fraction"
    TIMEZONE = "timezone"
    LOCAL_TIME = "local time"
    DURATION_LIST = "list of durations"
    EMOJI_LIST = "list of emoji"
    ROOM_ID_OR_NONE = "optional room ID"
    METHOD = "proposal method"


MAX_REMINDERS = 5
MAX_EMOJI = 10
MAX_EMOJI_LENGTH = 32
MAX_ROOM_ID_LENGTH = 255
_INT_TEXT = re.compile(r"[0-9]{1,9}")
_FRACTION_TEXT = re.compile(r"([0-9]{1,6})\s*/\s*([0-9]{1,6})")
_LOCAL_TIME_TEXT = re.compile(r"([0-9]{1,2}):([0-9]{2})")
# Room IDs are opaque after the sigil (room version 12 dropped the ":server" part).
_ROOM_ID_TEXT = re.compile(r"![\x21-\x7e]+")
_NONE_WORDS = frozenset({"none", "off", "-"})


def _bad_key_char(char: str) -> bool:
    """Spaces, control characters and lone surrogates; joiners and variation selectors are fine
    (emoji need them), so this avoids Unicode categories, which shift between Python versions."""
    code = ord(char)
    return char.isspace() or code < 0x20 or 0x7F <= code < 0xA0 or 0xD800 <= code < 0xE000


@functools.cache
def _timezones() -> Mapping[str, str]:
    """Lower-cased IANA name -> its proper spelling, read once from tzdata."""
    names = zoneinfo.available_timezones() | {"UTC"}
    return MappingProxyType({name.lower(): name for name in names})


def _int_text(value: object) -> int | None:
    """An int from an int (never a bool) or from digits; None when it is neither."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _INT_TEXT.fullmatch(value.strip()):
        return int(value.strip())
    return None


@dataclass(frozen=True)
class RuleSpec:
    """One room rule: its key, type, bounds, canonical default and a one-line meaning.

    `minimum`/`maximum` bound ints, and durations in ms (for lists: each item).
    """

    key: str
    type: RuleType
    default: RuleValue
    description: str
    minimum: int = 0
    maximum: int = 0

    @property
    def requirement(self) -> str:
        """What is valid, as the end of "<key> must be ..."."""
        low, high = self.minimum, self.maximum
        match self.type:
            case RuleType.INT:
                return f"a whole number from {low} to {high}"
            case RuleType.DURATION:
                return (
                    f"a duration from {format_duration(low)} to {format_duration(high)},"
                    " such as 48h or 1h30m"
                )
            case RuleType.DURATION_OR_OFF:
                return (
                    f"off or a duration from {format_duration(low)} to"
                    f" {format_duration(high)}, such as 90d"
                )
            case RuleType.FRACTION:
                return "a fraction a/b greater than 1/2 and at most 1, such as 2/3"
            case RuleType.TIMEZONE:
                return "an IANA time zone name such as UTC or Europe/Berlin"
            case RuleType.LOCAL_TIME:
                return "a time of day from 00:00 to 23:59, such as 09:00"
            case RuleType.DURATION_LIST:
                return (
                    f"off or up to {MAX_REMINDERS} comma-separated durations from"
                    f" {format_duration(low)} to {format_duration(high)}, such as 24h,1h"
                )
            case RuleType.EMOJI_LIST:
                return (
                    f"1 to {MAX_EMOJI} comma-separated reaction keys without spaces, such as 👏,🎉"
                )
            case RuleType.ROOM_ID_OR_NONE:
                return "a room ID such as !abc123:example.org, or none"
            case RuleType.METHOD:
                return "one of " + ", ".join(METHODS[:-1]) + " or " + METHODS[-1]

    def error(self, extra: str = "") -> RuleError:
        return RuleError(
            f"{self.key} must be {self.requirement}{extra}.", self.key, self.requirement
        )

    def parse(self, value: object) -> RuleValue:
        """The canonical value of `value` (chat text, YAML scalar or list); RuleError if not."""
        match self.type:
            case RuleType.INT:
                number = _int_text(value)
                if number is None or not self.minimum <= number <= self.maximum:
                    raise self.error()
                return number
            case RuleType.DURATION:
                return format_duration(self._duration(value))
            case RuleType.DURATION_OR_OFF:
                # YAML 1.1 reads an unquoted `off` as false.
                if value is False or (isinstance(value, str) and value.strip().lower() == OFF):
                    return OFF
                return format_duration(self._duration(value))
            case RuleType.FRACTION:
                return self._fraction(value)
            case RuleType.TIMEZONE:
                return self._timezone(value)
            case RuleType.LOCAL_TIME:
                return self._local_time(value)
            case RuleType.DURATION_LIST:
                return self._duration_list(value)
            case RuleType.EMOJI_LIST:
                return self._emoji_list(value)
            case RuleType.ROOM_ID_OR_NONE:
                return self._room_id(value)
            case RuleType.METHOD:
                if isinstance(value, str) and value.strip().lower() in METHODS:
                    return value.strip().lower()
                raise self.error()

    def _duration(self, value: object) -> int:
        if not isinstance(value, str):
            raise self.error()
        try:
            ms = parse_duration(value)
        except DurationError:
            raise self.error() from None
        if not self.minimum <= ms <= self.maximum:
            raise self.error()
        return ms

    def _fraction(self, value: object) -> str:
        match = _FRACTION_TEXT.fullmatch(value.strip()) if isinstance(value, str) else None
        if match is None or int(match[2]) == 0:
            raise self.error()
        fraction = Fraction(int(match[1]), int(match[2]))
        # Above 1/2 so that a supermajority is always a majority (the method order relies on it).
        if not Fraction(1, 2) < fraction <= 1:
            raise self.error()
        return f"{fraction.numerator}/{fraction.denominator}"

    def _timezone(self, value: object) -> str:
        if not isinstance(value, str):
            raise self.error()
        name = _timezones().get(value.strip().lower())
        if name is not None:
            return name
        close = difflib.get_close_matches(value.strip(), _timezones().values(), n=1)
        raise self.error(f" (did you mean {close[0]}?)" if close else "")

    def _local_time(self, value: object) -> str:
        if isinstance(value, int) and not isinstance(value, bool):
            # YAML 1.1 reads an unquoted 9:30 as the base-60 number 570.
            raise self.error(' (in YAML, put it in quotes: "9:30")')
        match = _LOCAL_TIME_TEXT.fullmatch(value.strip()) if isinstance(value, str) else None
        if match is None or int(match[1]) > 23 or int(match[2]) > 59:
            raise self.error()
        return f"{int(match[1]):02d}:{match[2]}"

    def _items(self, value: object) -> list[str]:
        """Comma-separated text, or a YAML list of strings, as stripped items."""
        if isinstance(value, str):
            return [item.strip() for item in value.split(",")]
        if isinstance(value, list | tuple) and all(isinstance(item, str) for item in value):
            return [item.strip() for item in value]
        raise self.error()

    def _duration_list(self, value: object) -> str:
        if value is False or (isinstance(value, str) and value.strip().lower() == OFF):
            return OFF
        items = self._items(value)
        durations = sorted({self._duration(item) for item in items}, reverse=True)
        if not 1 <= len(durations) <= MAX_REMINDERS:
            raise self.error()
        return ",".join(format_duration(ms) for ms in durations)

    def _emoji_list(self, value: object) -> str:
        items = self._items(value)
        unique = list(dict.fromkeys(items))
        if not 1 <= len(unique) <= MAX_EMOJI:
            raise self.error()
        for item in unique:
            if not 1 <= len(item) <= MAX_EMOJI_LENGTH or any(map(_bad_key_char, item)):
                raise self.error()
        return ",".join(unique)

    def _room_id(self, value: object) -> str | None:
        if value is None or value is False:
            return None
        if not isinstance(value, str):
            raise self.error()
        text = value.strip()
        if text == "" or text.lower() in _NONE_WORDS:
            return None
        if len(text) > MAX_ROOM_ID_LENGTH or not _ROOM_ID_TEXT.fullmatch(text):
            raise self.error()
        return text


_DURATION_MAX = 90 * DAY_MS

RULES: Mapping[str, RuleSpec] = MappingProxyType(
    {
        spec.key: spec
        for spec in (
            RuleSpec(
                "timezone",
                RuleType.TIMEZONE,
                "UTC",
                "the room's time zone (IANA name) for times, days and reports",
            ),
            RuleSpec(
                "kudos.daily_allowance",
                RuleType.INT,
                10,
                "kudos one member may give per local day",
                1,
                1000,
            ),
            RuleSpec(
                "kudos.max_per_message",
                RuleType.INT,
                3,
                "largest N in one `!kudos`",
                1,
                100,
            ),
            RuleSpec(
                "kudos.pair_daily_cap",
                RuleType.INT,
                3,
                "kudos from one giver to one receiver per local day",
                1,
                1000,
            ),
            RuleSpec(
                "kudos.reaction_emoji",
                RuleType.EMOJI_LIST,
                "👏",
                "reaction keys that count as one kudos (comma-separated)",
            ),
            RuleSpec(
                "kudos.min_membership",
                RuleType.DURATION,
                "0h",
                "how long a member must have been in the room (as seen by the bot) before giving",
                0,
                365 * DAY_MS,
            ),
            RuleSpec(
                "kudos.half_life",
                RuleType.DURATION_OR_OFF,
                OFF,
                "decay of kudos in scores, e.g. `90d`; `off` keeps them whole",
                DAY_MS,
                3650 * DAY_MS,
            ),
            RuleSpec(
                "proposal.method",
                RuleType.METHOD,
                "consent",
                "default method for `!propose`",
            ),
            RuleSpec(
                "proposal.duration",
                RuleType.DURATION,
                "48h",
                "default time a proposal stays open",
                30 * SECOND_MS,
                _DURATION_MAX,
            ),
            RuleSpec(
                "proposal.quorum",
                RuleType.INT,
                3,
                "minimum number of voters",
                1,
                1000,
            ),
            RuleSpec(
                "proposal.supermajority",
                RuleType.FRACTION,
                "2/3",
                "threshold of the supermajority and consensus methods",
            ),
            RuleSpec(
                "poll.duration",
                RuleType.DURATION,
                "24h",
                "default time a poll stays open",
                30 * SECOND_MS,
                _DURATION_MAX,
            ),
            RuleSpec(
                "action.reminders",
                RuleType.DURATION_LIST,
                "24h,1h",
                "reminders before a called action; `off` for none",
                MINUTE_MS,
                30 * DAY_MS,
            ),
            RuleSpec(
                "action.attendance_kudos",
                RuleType.INT,
                1,
                "kudos for a confirmed attendance",
                0,
                100,
            ),
            RuleSpec(
                "report.time",
                RuleType.LOCAL_TIME,
                "09:00",
                "local time of the daily report",
            ),
            RuleSpec(
                "report.moderators_room",
                RuleType.ROOM_ID_OR_NONE,
                None,
                "room ID where flags for moderators go",
            ),
            RuleSpec(
                "moderation.power_level",
                RuleType.INT,
                50,
                "power level that makes a member a moderator for the bot",
                1,
                100,
            ),
            RuleSpec(
                "governance.rule_change_method",
                RuleType.METHOD,
                "supermajority",
                "method for rule-change proposals",
            ),
            RuleSpec(
                "governance.rule_change_quorum",
                RuleType.INT,
                3,
                "quorum of rule-change proposals",
                1,
                1000,
            ),
            RuleSpec(
                "governance.rule_change_duration",
                RuleType.DURATION,
                "72h",
                "how long a rule-change proposal stays open unless closed early",
                # An hour at least, so absent members get a chance to see a rule change coming.
                HOUR_MS,
                _DURATION_MAX,
            ),
        )
    }
)


def rule_spec(key: str) -> RuleSpec:
    """The spec of `key`, or RuleError naming the closest key when there is one."""
    spec = RULES.get(key)
    if spec is not None:
        return spec
    shown = key if len(key) <= 64 else key[:64] + "…"
    close = difflib.get_close_matches(key, RULES, n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    raise RuleError(f"There is no rule called {shown!r}{hint}; see !rules for the list.")


def parse_rule(key: str, value: object) -> RuleValue:
    return rule_spec(key).parse(value)


def default_rules() -> dict[str, RuleValue]:
    return {key: spec.default for key, spec in RULES.items()}


def at_least_as_strict(a: str, b: str) -> bool:
    """True when passing under method `a` always means passing under method `b`."""
    return b in _IMPLIES[a]


def stricter_method(a: str, b: str) -> str:
    """The weakest method at least as strict as both (consensus for incomparable ones)."""
    if at_least_as_strict(a, b):
        return a
    if at_least_as_strict(b, a):
        return b
    return "consensus"


@dataclass(frozen=True)
class RuleProposalTerms:
    """How a rule proposal is decided: method, quorum and how long it stays open."""

    method: str
    quorum: int
    duration_ms: int


@dataclass(frozen=True)
class RoomRules:
    """The complete rules in force in a room, as canonical values, with typed accessors."""

    values: Mapping[str, RuleValue]

    def __post_init__(self) -> None:
        missing = RULES.keys() - self.values.keys()
        if missing:
            raise RuleError(f"Room rules lack {', '.join(sorted(missing))}.")
        for key, value in self.values.items():
            if rule_spec(key).parse(value) != value:
                raise RuleError(f"{key} holds {value!r}, which is not a canonical value.", key)
        # A private read-only copy: the hash must not change behind anyone's back.
        object.__setattr__(self, "values", MappingProxyType(dict(self.values)))

    def __hash__(self) -> int:
        return hash(frozenset(self.values.items()))

    @classmethod
    def defaults(cls) -> RoomRules:
        return cls(default_rules())

    def __getitem__(self, key: str) -> RuleValue:
        return self.values[rule_spec(key).key]

    def with_change(self, key: str, value: object) -> RoomRules:
        """These rules with `key` set to `value` (raw or canonical); RuleError if invalid."""
        return RoomRules({**self.values, key: parse_rule(key, value)})

    def as_json(self) -> dict[str, RuleValue]:
        return dict(self.values)

    def hash(self) -> str:
        """Hex SHA-256 of the canonical JSON of all rules: the `rules` field of ledger entries."""
        # Every entry records it, so it is worked out once per RoomRules (they never change).
        cached: str | None = self.__dict__.get("_hash")
        if cached is None:
            cached = sha256_hex(canonical_json(self.as_json()))
            self.__dict__["_hash"] = cached
        return cached

    def rule_proposal_terms(
        self,
        key: str,
        value: RuleValue,
        method: str | None = None,
        quorum: int | None = None,
    ) -> RuleProposalTerms:
        """Terms of a proposal to set `key` to canonical `value`, given the flags passed.

        Flags can only make it harder, and a proposal that changes the governance method or
        quorum must also meet the new one, so a room can't lower the bar by the lowered bar.
        """
        terms_method = self.rule_change_method
        terms_quorum = self.rule_change_quorum
        if method is not None:
            terms_method = stricter_method(terms_method, method)
        if quorum is not None:
            terms_quorum = max(terms_quorum, quorum)
        if key == "governance.rule_change_method" and isinstance(value, str):
            terms_method = stricter_method(terms_method, value)
        if key == "governance.rule_change_quorum" and isinstance(value, int):
            terms_quorum = max(terms_quorum, value)
        return RuleProposalTerms(terms_method, terms_quorum, self.rule_change_duration_ms)

    # __post_init__ checked every value against its spec, so the types are known here.
    def _int(self, key: str) -> int:
        return cast(int, self.values[key])

    def _str(self, key: str) -> str:
        return cast(str, self.values[key])

    def _ms(self, key: str) -> int:
        # Parsed once per RoomRules: kudos checks ask for kudos.min_membership every time.
        parsed: dict[str, int] = self.__dict__.setdefault("_durations", {})
        ms = parsed.get(key)
        if ms is None:
            ms = parsed[key] = parse_duration(self._str(key))
        return ms

    @functools.cached_property  # rules never change: each is worked out once
    def timezone(self) -> str:
        return self._str("timezone")

    @functools.cached_property
    def daily_allowance(self) -> int:
        return self._int("kudos.daily_allowance")

    @functools.cached_property
    def max_per_message(self) -> int:
        return self._int("kudos.max_per_message")

    @functools.cached_property
    def pair_daily_cap(self) -> int:
        return self._int("kudos.pair_daily_cap")

    @functools.cached_property
    def reaction_emoji(self) -> tuple[str, ...]:
        return tuple(self._str("kudos.reaction_emoji").split(","))

    @functools.cached_property
    def min_membership_ms(self) -> int:
        return self._ms("kudos.min_membership")

    @functools.cached_property
    def half_life_ms(self) -> int | None:
        text = self._str("kudos.half_life")
        return None if text == OFF else parse_duration(text)

    @functools.cached_property
    def proposal_method(self) -> str:
        return self._str("proposal.method")

    @functools.cached_property
    def proposal_duration_ms(self) -> int:
        return self._ms("proposal.duration")

    @functools.cached_property
    def proposal_quorum(self) -> int:
        return self._int("proposal.quorum")

    @functools.cached_property
    def supermajority(self) -> Fraction:
        return Fraction(self._str("proposal.supermajority"))

    @functools.cached_property
    def poll_duration_ms(self) -> int:
        return self._ms("poll.duration")

    @functools.cached_property
    def reminders_ms(self) -> tuple[int, ...]:
        """Reminder offsets before the action, largest first; empty when off."""
        text = self._str("action.reminders")
        return () if text == OFF else tuple(parse_duration(t) for t in text.split(","))

    @functools.cached_property
    def attendance_kudos(self) -> int:
        return self._int("action.attendance_kudos")

    @functools.cached_property
    def report_time(self) -> tuple[int, int]:
        hours, minutes = self._str("report.time").split(":")
        return int(hours), int(minutes)

    @functools.cached_property
    def moderators_room(self) -> str | None:
        value = self.values["report.moderators_room"]
        return value if isinstance(value, str) else None

    @functools.cached_property
    def moderation_power_level(self) -> int:
        return self._int("moderation.power_level")

    @functools.cached_property
    def rule_change_method(self) -> str:
        return self._str("governance.rule_change_method")

    @functools.cached_property
    def rule_change_quorum(self) -> int:
        return self._int("governance.rule_change_quorum")

    @functools.cached_property
    def rule_change_duration_ms(self) -> int:
        return self._ms("governance.rule_change_duration")


def format_rule_value(value: RuleValue) -> str:
    """A canonical value as shown to people: null is "(none)"."""
    return "(none)" if value is None else str(value)


def rules_markdown_table() -> str:
    """The Markdown table of every rule (key, default, meaning, valid values)."""
    lines = ["| key | default | meaning | valid values |", "|---|---|---|---|"]
    for spec in RULES.values():
        default = format_rule_value(spec.default)
        if spec.default is not None:
            default = f"`{default}`"
        lines.append(f"| `{spec.key}` | {default} | {spec.description} | {spec.requirement} |")
    return "\n".join(lines) + "\n"
