"""Times people type for `--at`, `--deadline` and `--closes`. Pure: text + now + zone -> UTC ms.

Never reads the clock: `now_ms` and the room's IANA zone are passed in. The rules:

- A duration counts elapsed time from now: `30s`, `48h`, `1h30m`, `in 2h`, `in 2 hours`,
  `in an hour` (so `in 3d` is 72 hours even across a daylight-saving change).
- ISO: `2026-11-28` (its start, 00:00), `2026-11-28 10:00`, `2026-11-28T10:00`, read in the room's
  zone; an explicit offset (`…T10:00+01:00`, `…T10:00Z`) is honoured.
- Words, in English, go to dateparser: `tomorrow 10:00`, `today 17:00`, `28 nov 10:00`, `noon`.
- A bare time (`10:00`, `6:30pm`) is its next occurrence: today if still ahead, else tomorrow.
- A weekday (`sat 10:00`, `saturday`) is the next day of that name whose time is still ahead:
  on a Saturday at 11:00 `sat 12:00` is today and `sat 10:00` is in a week; `sat` alone means
  00:00, so on a Saturday it is next week's. `next <weekday>` is never today: on a Friday,
  `next friday 18:30` is a week later, while on a Thursday it is tomorrow.
- Wall-clock times are placed in the zone with zoneinfo, not by dateparser (which uses pytz):
  a time that happens twice (clocks going back) is its earlier instant, or the later one when the
  earlier has passed and the later has not; a time that never happens (clocks going forward)
  takes the offset in force before the jump, the instant it would have been had the clock not
  jumped (02:30 on spring-forward night in Europe/Berlin is 03:30 CEST).
- The result must lie in the future: a time that has passed is refused, never moved.
- Refused as guesses: lone numbers (`5`, `tomorrow at 10`: write `10:00`), numeric dates other
  than ISO (`05/06/2026` reads differently in different countries), vague periods (`nov`,
  `next week`), and zone names in words (`10:00 EST`): times are read in the room's zone.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from typing import Any
from zoneinfo import ZoneInfo

from consensus.durations import (
    DAY_MS,
    MINUTE_MS,
    SECOND_MS,
    DurationError,
    format_duration,
    parse_duration,
)

EXAMPLES = "48h, in 2h, tomorrow 10:00, sat 18:30 or 2026-11-28 10:00"

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_ONE_MS = dt.timedelta(milliseconds=1)
# Times outside these years are refused: near datetime's ends, moving between zones overflows.
_FIRST_YEAR = 2000
_LAST_YEAR = 9999
_LIMIT_MS = (dt.datetime(_LAST_YEAR, 1, 1, tzinfo=dt.UTC) - _EPOCH) // _ONE_MS
# Longer input is not a time anyone types; the cap keeps hostile text away from the parsers.
_MAX_CHARS = 80

_DURATION_WORD = re.compile(r"([0-9]+)\s*(second|sec|minute|min|hour|hr|day|week)s?\b")
_ONE_UNIT = re.compile(r"\ban?\s+(?=(?:second|minute|hour|day|week)\b)")
_ISO = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"(?:[t ][0-9]{2}:[0-9]{2}(?::[0-9]{2})?(?:z|[+-][0-9]{2}:[0-9]{2})?)?"
)
_NUMERIC_DATE = re.compile(r"[0-9]+(?:/[0-9]+)+|[0-9]+\.[0-9]+\.[0-9]+")
# A time of day; a bare number is not one ("28 nov"), and "10 am" is joined into "10am" first.
_TIME_TOKEN = re.compile(
    r"[0-9]{1,2}(?:[:.h][0-9]{2}){1,2}(?:am|pm)?|[0-9]{1,2}(?:am|pm)|noon|midnight|morning"
    r"|afternoon|evening"
)
_SPACED_MERIDIEM = re.compile(r"\b([0-9]{1,2}) (am|pm)\b")
_WEEKDAYS = {
    name: number
    for number, names in enumerate(
        (
            ("mon", "monday"),
            ("tue", "tues", "tuesday"),
            ("wed", "wednesday"),
            ("thu", "thur", "thurs", "thursday"),
            ("fri", "friday"),
            ("sat", "saturday"),
            ("sun", "sunday"),
        )
    )
    for name in names
}
_WEEKDAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_MONTHS = frozenset(
    "jan feb mar apr may jun jul aug sep sept oct nov dec january february march april june july"
    " august september october november december".split()
)
_DAY_ABBR = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTH_ABBR = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class TimeError(ValueError):
    """The text is not a time in the future; the message is one sentence with examples."""


def parse_time(text: str, *, now_ms: int, timezone: str) -> int:
    """The instant (UTC ms) `text` names, read in `timezone` at `now_ms`; TimeError otherwise."""
    zone = ZoneInfo(timezone)
    cleaned = " ".join(text.lower().replace(",", " ").split())
    if not cleaned or len(cleaned) > _MAX_CHARS:
        raise _refuse(text)
    instant = _duration(cleaned, now_ms)
    if instant is None:
        moment = (
            _iso(text, cleaned) if _ISO.fullmatch(cleaned) else _words(text, cleaned, zone, now_ms)
        )
        # Checked before any zone arithmetic, which would leave datetime's range near its ends.
        if moment.year < _FIRST_YEAR:
            raise _passed(text, "")
        if moment.year >= _LAST_YEAR:
            raise _too_far(text)
        instant = _instant(moment, zone, now_ms) if moment.tzinfo is None else _ms(moment)
    if instant >= _LIMIT_MS:
        raise _too_far(text)
    if instant <= now_ms:
        raise _passed(text, f" is {format_time(instant, timezone)}, which")
    return instant


def format_time(ts_ms: int, timezone: str, *, now_ms: int | None = None) -> str:
    """Like "Sat 28 Nov 2026, 10:00 CET", plus " (in 2 days)" when `now_ms` is given."""
    local = (_EPOCH + dt.timedelta(milliseconds=ts_ms)).astimezone(ZoneInfo(timezone))
    clock = f"{local:%H:%M}" if local.second == 0 else f"{local:%H:%M:%S}"
    # Zones without a letter abbreviation (America/Sao_Paulo) are named by their offset, "-03".
    abbreviation = local.tzname() or timezone
    if abbreviation[0] in "+-":
        abbreviation = "UTC" + abbreviation
    text = (
        f"{_DAY_ABBR[local.weekday()]} {local.day} {_MONTH_ABBR[local.month - 1]} {local.year}, "
        f"{clock} {abbreviation}"
    )
    return text if now_ms is None else f"{text} ({_relative(ts_ms - now_ms)})"


# --- the forms ----------------------------------------------------------------------------------


def _duration(cleaned: str, now_ms: int) -> int | None:
    """now + the duration in `cleaned`, or None when it is no duration."""
    spoken = _DURATION_WORD.sub(lambda m: m[1] + m[2][0], _ONE_UNIT.sub("1 ", cleaned))
    try:
        return now_ms + parse_duration(spoken.removeprefix("in "))
    except DurationError:
        return None


def _iso(text: str, cleaned: str) -> dt.datetime:
    """A naive wall-clock time in the room's zone, or an aware one when an offset is given."""
    try:
        moment = dt.datetime.fromisoformat(cleaned.upper())
    except ValueError:
        raise TimeError(
            f"{_shown(text)} is not a real date or time; write it like 2026-11-28 10:00."
        ) from None
    return moment


def _words(text: str, cleaned: str, zone: ZoneInfo, now_ms: int) -> dt.datetime:
    """A naive wall-clock time in the room's zone for words like "sat 10:00" (see the rules)."""
    tokens = _SPACED_MERIDIEM.sub(r"\1\2", cleaned).split()
    if any(_NUMERIC_DATE.fullmatch(token) for token in tokens):
        raise TimeError(
            f"{_shown(text)} could mean different days in different countries; "
            "write the date like 2026-11-28 or 28 nov."
        )
    has_month = any(token in _MONTHS for token in tokens)
    # dateparser reads "10" as October and drops the "10" in "tomorrow at 10".
    if not has_month and any(token.isdigit() for token in tokens):
        raise TimeError(
            f"{_shown(text)} has a number that is not clearly a time; "
            "write times like 10:00 or 10am, as in tomorrow 10:00."
        )
    now_local = _local(now_ms, zone)
    english = " ".join(_WEEKDAY_NAMES[_WEEKDAYS[t]] if t in _WEEKDAYS else t for t in tokens)
    try:
        data = _parser(now_local).get_date_data(english)
    except (ValueError, OverflowError):  # dateparser's own failures on odd input
        data = None
    if data is None or data.date_obj is None:
        raise _refuse(text)
    parsed: dt.datetime = data.date_obj
    if parsed.tzinfo is not None:
        raise TimeError(
            f"{_shown(text)} names a time zone, but times are read in the room's zone "
            f"({zone.key}); leave the zone out, or write 2026-11-28T10:00+01:00."
        )
    parts = data.parts
    if data.period != "day" or "day" not in parts:
        raise TimeError(f"{_shown(text)} is too vague; give a day and a time, like {EXAMPLES}.")
    if any(_TIME_TOKEN.fullmatch(token) for token in tokens) and "time" not in parts:
        # dateparser dropped a time it could not read ("tomorrow 25:00"): don't guess one.
        raise _refuse(text)
    return _next_occurrence(tokens, parsed, now_local, zone, now_ms) or parsed


def _next_occurrence(
    tokens: list[str], parsed: dt.datetime, now_local: dt.datetime, zone: ZoneInfo, now_ms: int
) -> dt.datetime | None:
    """The next occurrence of a bare time or a weekday; None for any other form.

    dateparser never picks today for a weekday, and picks now itself for a bare time that equals
    now, so both are placed here from the time of day it read.
    """
    weekdays = [_WEEKDAYS[token] for token in tokens if token in _WEEKDAYS]
    fillers = ("at", "on", "this", "next") if weekdays else ("at",)
    others = [t for t in tokens if t not in _WEEKDAYS and t not in fillers]
    if len(weekdays) > 1 or not all(_TIME_TOKEN.fullmatch(token) for token in others):
        return None
    today = now_local.date()
    if weekdays:
        ahead, step = (weekdays[0] - today.weekday()) % 7, 7
        if ahead == 0 and "next" in tokens:
            ahead = 7
    else:
        ahead, step = 0, 1
    candidate = dt.datetime.combine(today + dt.timedelta(days=ahead), parsed.time())
    if _instant(candidate, zone, now_ms) <= now_ms:
        candidate += dt.timedelta(days=step)
    return candidate


@functools.lru_cache(maxsize=4)
def _parser(now_local: dt.datetime) -> Any:
    """A dateparser parser for English, relative to `now_local` (naive wall clock in the zone).

    Imported here because importing dateparser takes a noticeable fraction of a second. The
    zone is not given to dateparser: it would place times with pytz, which gets gaps wrong, and
    convert zone names inconsistently; left alone, it returns naive wall-clock times for text
    without a zone, and aware ones (refused above) for text with one. The cache lets the several
    times of one command share a parser.
    """
    from dateparser.date import DateDataParser

    return DateDataParser(
        languages=["en"],
        settings={
            "PREFER_DATES_FROM": "future",
            "RELATIVE_BASE": now_local,
            "IGNORE_SURROUNDING_TEXT": False,
        },
    )


# --- instants -----------------------------------------------------------------------------------


def _instant(wall: dt.datetime, zone: ZoneInfo, now_ms: int) -> int:
    """UTC ms of a naive wall-clock time in `zone`, applying the gap and overlap rules."""
    first = _ms(wall.replace(tzinfo=zone, fold=0))
    # fold=1 is the second instant of a repeated hour; in a gap it is the earlier one (the offset
    # after the jump), and fold=0 already gives the instant as if the clock had not jumped.
    second = _ms(wall.replace(tzinfo=zone, fold=1))
    if first <= now_ms < second:
        return second
    return first


def _local(ts_ms: int, zone: ZoneInfo) -> dt.datetime:
    """The naive wall-clock time in `zone` at `ts_ms`."""
    return (_EPOCH + dt.timedelta(milliseconds=ts_ms)).astimezone(zone).replace(tzinfo=None)


def _ms(moment: dt.datetime) -> int:
    # Integer arithmetic: a float of seconds would round some milliseconds the wrong way.
    return (moment - _EPOCH) // _ONE_MS


# --- messages -----------------------------------------------------------------------------------


def _relative(delta_ms: int) -> str:
    """Like "in 2h30m" (below two days, in the duration syntax), "in 6 days", "5m ago", "now"."""
    size = abs(delta_ms)
    if size < SECOND_MS:
        return "now"
    if size >= 2 * DAY_MS:
        days = (size + DAY_MS // 2) // DAY_MS
        amount = f"{days} days"
    else:
        # Whole minutes from a minute on: "2h30m" rather than "2h29m59s".
        unit = SECOND_MS if size < MINUTE_MS else MINUTE_MS
        amount = format_duration((size + unit // 2) // unit * unit)
    return f"in {amount}" if delta_ms > 0 else f"{amount} ago"


def _shown(text: str) -> str:
    stripped = text.strip()
    return repr(stripped if len(stripped) <= 40 else stripped[:40] + "…")


def _passed(text: str, when: str) -> TimeError:
    return TimeError(
        f"{_shown(text)}{when} has already passed; give a time in the future, like {EXAMPLES}."
    )


def _too_far(text: str) -> TimeError:
    return TimeError(f"{_shown(text)} is too far in the future; write it like {EXAMPLES}.")


def _refuse(text: str) -> TimeError:
    return TimeError(f"{_shown(text)} is not a time I can read; write it like {EXAMPLES}.")
