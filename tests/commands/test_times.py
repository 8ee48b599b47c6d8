"""Times people type, read in a room's zone: tables per zone and clock, the DST rules, refusals."""

from __future__ import annotations

import datetime as dt
import time
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from commands.times import TimeError, format_time, parse_time

UTC = dt.UTC
HOUR = 3_600_000


def ms(iso_utc: str) -> int:
    """UTC ms of an ISO time written with a Z."""
    moment = dt.datetime.fromisoformat(iso_utc)
    assert moment.utcoffset() == dt.timedelta(0)
    return int(moment.timestamp()) * 1000


# Each clock: (zone, now); the comment says what the room's wall clock shows.
UTC_SAT = ("UTC", "2026-11-28T14:00:00Z")  # Sat 28 Nov 2026 14:00 UTC
BERLIN_SPRING = ("Europe/Berlin", "2026-03-28T22:00:00Z")  # Sat 23:00 CET; at 02:00 -> 03:00
BERLIN_AUTUMN = ("Europe/Berlin", "2026-10-24T21:00:00Z")  # Sat 23:00 CEST; at 03:00 -> 02:00
BERLIN_FIRST_PASS = ("Europe/Berlin", "2026-10-25T00:45:00Z")  # Sun 02:45 CEST, first pass
BERLIN_SECOND_PASS = ("Europe/Berlin", "2026-10-25T01:15:00Z")  # Sun 02:15 CET, second pass
NEW_YORK = ("America/New_York", "2026-03-06T17:00:00Z")  # Fri 6 Mar 12:00 EST
NEW_YORK_AUTUMN = ("America/New_York", "2026-10-30T16:00:00Z")  # Fri 30 Oct 12:00 EDT
KOLKATA = ("Asia/Kolkata", "2026-11-28T04:30:00Z")  # Sat 28 Nov 10:00 IST


ACCEPTED = [
    # durations: elapsed time from now, whatever the clocks do
    (UTC_SAT, "30s", "2026-11-28T14:00:30Z"),
    (UTC_SAT, "48h", "2026-11-30T14:00:00Z"),
    (UTC_SAT, "3d", "2026-12-01T14:00:00Z"),
    (UTC_SAT, "1h30m", "2026-11-28T15:30:00Z"),
    (UTC_SAT, "in 2h", "2026-11-28T16:00:00Z"),
    (UTC_SAT, "In 2H", "2026-11-28T16:00:00Z"),
    (UTC_SAT, "in 2 hours", "2026-11-28T16:00:00Z"),
    (UTC_SAT, "in 2 hours 30 minutes", "2026-11-28T16:30:00Z"),
    (UTC_SAT, "in an hour", "2026-11-28T15:00:00Z"),
    (UTC_SAT, "in 45 mins", "2026-11-28T14:45:00Z"),
    (BERLIN_SPRING, "in 3d", "2026-03-31T22:00:00Z"),  # 72 h, not "same wall clock"
    (BERLIN_SPRING, "in 3h", "2026-03-29T01:00:00Z"),  # 04:00 CEST, across the jump
    # ISO, in the room's zone unless an offset is given
    (UTC_SAT, "2026-12-05", "2026-12-05T00:00:00Z"),
    (UTC_SAT, "2026-12-05 10:00", "2026-12-05T10:00:00Z"),
    (UTC_SAT, "2026-12-05T10:00", "2026-12-05T10:00:00Z"),
    (UTC_SAT, "2026-12-05T10:00:30", "2026-12-05T10:00:30Z"),
    (KOLKATA, "2026-11-28 10:01", "2026-11-28T04:31:00Z"),
    (NEW_YORK, "2026-11-28T10:00", "2026-11-28T15:00:00Z"),
    (NEW_YORK, "2026-11-28T10:00Z", "2026-11-28T10:00:00Z"),
    (NEW_YORK, "2026-11-28T10:00+01:00", "2026-11-28T09:00:00Z"),
    # words
    (UTC_SAT, "tomorrow 10:00", "2026-11-29T10:00:00Z"),
    (UTC_SAT, "Tomorrow 10:00", "2026-11-29T10:00:00Z"),
    (UTC_SAT, "  tomorrow   10:00 ", "2026-11-29T10:00:00Z"),
    (UTC_SAT, "tomorrow at 10am", "2026-11-29T10:00:00Z"),
    (UTC_SAT, "tomorrow, 6:30 pm", "2026-11-29T18:30:00Z"),
    (UTC_SAT, "today 17:00", "2026-11-28T17:00:00Z"),
    (UTC_SAT, "tomorrow", "2026-11-29T14:00:00Z"),
    (UTC_SAT, "28 dec 10:00", "2026-12-28T10:00:00Z"),
    (UTC_SAT, "dec 28 10:00", "2026-12-28T10:00:00Z"),
    (UTC_SAT, "1 jan", "2027-01-01T00:00:00Z"),
    (UTC_SAT, "27 nov 10:00", "2027-11-27T10:00:00Z"),  # a day-and-month already past: next year
    (UTC_SAT, "day after tomorrow 10:00", "2026-11-30T10:00:00Z"),
    (NEW_YORK, "tomorrow 10:00", "2026-03-07T15:00:00Z"),
    (NEW_YORK, "monday 10:00", "2026-03-09T14:00:00Z"),  # EDT from Sunday on
    # bare times: their next occurrence
    (UTC_SAT, "15:00", "2026-11-28T15:00:00Z"),
    (UTC_SAT, "10:00", "2026-11-29T10:00:00Z"),
    (UTC_SAT, "14:00", "2026-11-29T14:00:00Z"),  # exactly now: tomorrow
    (UTC_SAT, "at 14:01", "2026-11-28T14:01:00Z"),
    (UTC_SAT, "3pm", "2026-11-28T15:00:00Z"),
    (UTC_SAT, "10 am", "2026-11-29T10:00:00Z"),
    (UTC_SAT, "10.30", "2026-11-29T10:30:00Z"),
    (UTC_SAT, "noon", "2026-11-29T12:00:00Z"),
    (UTC_SAT, "midnight", "2026-11-29T00:00:00Z"),
    (KOLKATA, "10:00", "2026-11-29T04:30:00Z"),
    (KOLKATA, "10:30", "2026-11-28T05:00:00Z"),
    # weekdays: the next day of that name whose time is still ahead
    (UTC_SAT, "sat 15:00", "2026-11-28T15:00:00Z"),
    (UTC_SAT, "sat 10:00", "2026-12-05T10:00:00Z"),
    (UTC_SAT, "saturday 10:00", "2026-12-05T10:00:00Z"),
    (UTC_SAT, "sat", "2026-12-05T00:00:00Z"),
    (UTC_SAT, "next sat 15:00", "2026-12-05T15:00:00Z"),  # "next" is never today
    (UTC_SAT, "this sat 15:00", "2026-11-28T15:00:00Z"),
    (UTC_SAT, "on saturday at 15:00", "2026-11-28T15:00:00Z"),
    (UTC_SAT, "sun 10:00", "2026-11-29T10:00:00Z"),
    (UTC_SAT, "fri 18:30", "2026-12-04T18:30:00Z"),
    (UTC_SAT, "friday 18:30", "2026-12-04T18:30:00Z"),
    (UTC_SAT, "next friday 18:30", "2026-12-04T18:30:00Z"),
    (UTC_SAT, "FRI 18:30", "2026-12-04T18:30:00Z"),
    (UTC_SAT, "18:30 fri", "2026-12-04T18:30:00Z"),
    (NEW_YORK, "fri 13:00", "2026-03-06T18:00:00Z"),
    (NEW_YORK, "next friday 13:00", "2026-03-13T17:00:00Z"),  # a week on, now in EDT
    (NEW_YORK, "sat", "2026-03-07T05:00:00Z"),
    (KOLKATA, "sat 12:00", "2026-11-28T06:30:00Z"),
    (KOLKATA, "sat 09:00", "2026-12-05T03:30:00Z"),
    (KOLKATA, "next friday 18:30", "2026-12-04T13:00:00Z"),
    # clocks going forward: a time that never happens reads as if the clock had not jumped
    (BERLIN_SPRING, "02:30", "2026-03-29T01:30:00Z"),  # = 03:30 CEST
    (BERLIN_SPRING, "sun 02:30", "2026-03-29T01:30:00Z"),
    (BERLIN_SPRING, "tomorrow 02:30", "2026-03-29T01:30:00Z"),
    (BERLIN_SPRING, "2026-03-29 02:30", "2026-03-29T01:30:00Z"),
    (BERLIN_SPRING, "02:00", "2026-03-29T01:00:00Z"),  # the jump's first instant, 03:00 CEST
    (BERLIN_SPRING, "03:00", "2026-03-29T01:00:00Z"),
    (BERLIN_SPRING, "01:59", "2026-03-29T00:59:00Z"),
    (BERLIN_SPRING, "tomorrow 10:00", "2026-03-29T08:00:00Z"),  # CEST from 03:00 on
    (BERLIN_SPRING, "sat 23:30", "2026-03-28T22:30:00Z"),  # still CET today
    (NEW_YORK, "2026-03-08 02:30", "2026-03-08T07:30:00Z"),  # = 03:30 EDT
    (NEW_YORK, "sun 02:30", "2026-03-08T07:30:00Z"),
    # clocks going back: a time that happens twice is its earlier instant ...
    (BERLIN_AUTUMN, "02:30", "2026-10-25T00:30:00Z"),  # 02:30 CEST, not 02:30 CET
    (BERLIN_AUTUMN, "sun 02:30", "2026-10-25T00:30:00Z"),
    (BERLIN_AUTUMN, "2026-10-25 02:30", "2026-10-25T00:30:00Z"),
    (BERLIN_AUTUMN, "tomorrow 03:00", "2026-10-25T02:00:00Z"),
    (NEW_YORK_AUTUMN, "2026-11-01 01:30", "2026-11-01T05:30:00Z"),  # EDT, not EST
    (NEW_YORK_AUTUMN, "sun 01:30", "2026-11-01T05:30:00Z"),
    # ... or the later one, when the earlier has passed and the later has not
    (BERLIN_FIRST_PASS, "02:30", "2026-10-25T01:30:00Z"),  # 02:30 CET, in 45 minutes
    (BERLIN_SECOND_PASS, "02:30", "2026-10-25T01:30:00Z"),
    (BERLIN_SECOND_PASS, "2026-10-25 02:30", "2026-10-25T01:30:00Z"),
    (BERLIN_SECOND_PASS, "02:10", "2026-10-26T01:10:00Z"),  # both passed: tomorrow
]


@pytest.mark.parametrize(("clock", "text", "expected"), ACCEPTED)
def test_accepted(clock: tuple[str, str], text: str, expected: str) -> None:
    zone, now = clock
    assert parse_time(text, now_ms=ms(now), timezone=zone) == ms(expected)


REFUSED = [
    # (text, words the one sentence must contain)
    ("", "not a time I can read"),
    ("   ", "not a time I can read"),
    ("soon", "not a time I can read"),
    ("whenever", "not a time I can read"),
    ("banana 10:00", "not a time I can read"),
    ("tomorrow 25:00", "not a time I can read"),
    ("x" * 81, "not a time I can read"),
    ("5", "not clearly a time"),
    ("10", "not clearly a time"),
    ("2027", "not clearly a time"),
    ("10 30", "not clearly a time"),
    ("tomorrow at 10", "not clearly a time"),
    ("sat at 10", "not clearly a time"),
    ("28/11/2026", "different days in different countries"),
    ("11/28", "different days in different countries"),
    ("05.06.2026", "different days in different countries"),
    ("nov", "too vague"),
    ("next week", "too vague"),
    ("next month", "too vague"),
    ("10:00 EST", "names a time zone"),
    ("tomorrow 10:00 UTC", "names a time zone"),
    ("10:00 +0300", "names a time zone"),
    ("2026-02-30", "not a real date"),
    ("2026-11-28 24:30", "not a real date"),
    ("now", "already passed"),
    ("0s", "already passed"),
    ("today 10:00", "already passed"),
    ("yesterday 18:00", "already passed"),
    ("2026-11-28 13:59", "already passed"),
    ("2025-01-01", "already passed"),
    ("0001-01-01", "already passed"),
    ("jan 1 0001", "already passed"),
    ("9999-06-01", "too far in the future"),
    ("500000w", "too far in the future"),
]


@pytest.mark.parametrize(("text", "reason"), REFUSED)
def test_refused_with_one_sentence(text: str, reason: str) -> None:
    zone, now = UTC_SAT
    with pytest.raises(TimeError) as caught:
        parse_time(text, now_ms=ms(now), timezone=zone)
    message = str(caught.value)
    assert reason in message
    assert message.endswith(".")
    assert message.count(". ") == 0  # one sentence
    assert isinstance(caught.value, ValueError)


def test_refusal_names_the_room_zone_and_the_passed_time() -> None:
    now = ms("2026-11-28T14:00:00Z")
    with pytest.raises(TimeError, match=r"\(Europe/Berlin\)"):
        parse_time("10:00 EST", now_ms=now, timezone="Europe/Berlin")
    with pytest.raises(TimeError, match="is Sat 28 Nov 2026, 10:00 CET, which has already passed"):
        parse_time("today 10:00", now_ms=now, timezone="Europe/Berlin")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("0001-01-01", "already passed"),
        ("0001-01-01T00:00+05:00", "already passed"),
        ("9998-12-31T23:59-05:00", "too far in the future"),  # 9999-01-01 in UTC
        ("dec 31 9999", "too far in the future"),
    ],
)
@pytest.mark.parametrize("zone", ["America/New_York", "Europe/Berlin", "Pacific/Kiritimati"])
def test_the_ends_of_the_calendar_are_refused_not_crashed_on(
    text: str, reason: str, zone: str
) -> None:
    with pytest.raises(TimeError, match=reason):
        parse_time(text, now_ms=ms(UTC_SAT[1]), timezone=zone)


def test_long_text_is_clipped_in_the_message() -> None:
    with pytest.raises(TimeError) as caught:
        parse_time("tomorrow " + "y" * 200, now_ms=ms(UTC_SAT[1]), timezone="UTC")
    assert len(str(caught.value)) < 160


FORMATTED = [
    ("2026-11-28T09:00:00Z", "Europe/Berlin", "Sat 28 Nov 2026, 10:00 CET"),
    ("2026-07-04T08:05:00Z", "Europe/Berlin", "Sat 4 Jul 2026, 10:05 CEST"),
    ("2026-03-29T01:30:00Z", "Europe/Berlin", "Sun 29 Mar 2026, 03:30 CEST"),
    ("2026-10-25T00:30:00Z", "Europe/Berlin", "Sun 25 Oct 2026, 02:30 CEST"),
    ("2026-10-25T01:30:00Z", "Europe/Berlin", "Sun 25 Oct 2026, 02:30 CET"),
    ("2026-11-28T15:00:00Z", "America/New_York", "Sat 28 Nov 2026, 10:00 EST"),
    ("2026-11-28T04:30:00Z", "Asia/Kolkata", "Sat 28 Nov 2026, 10:00 IST"),
    ("2026-11-28T10:00:00Z", "UTC", "Sat 28 Nov 2026, 10:00 UTC"),
    ("2026-11-28T10:00:30Z", "UTC", "Sat 28 Nov 2026, 10:00:30 UTC"),
    ("2026-11-28T13:00:00Z", "America/Sao_Paulo", "Sat 28 Nov 2026, 10:00 UTC-03"),
]


@pytest.mark.parametrize(("instant", "zone", "expected"), FORMATTED)
def test_format_time(instant: str, zone: str, expected: str) -> None:
    assert format_time(ms(instant), zone) == expected


RELATIVE = [
    (0, "now"),
    (999, "now"),
    (30_000, "in 30s"),
    (59_400, "in 59s"),
    (89_000, "in 1m"),
    (HOUR + 29 * 60_000 + 40_000, "in 1h30m"),
    (47 * HOUR, "in 47h"),
    (2 * 24 * HOUR, "in 2 days"),
    (6 * 24 * HOUR + 23 * HOUR, "in 7 days"),
    (-5 * 60_000, "5m ago"),
    (-3 * 24 * HOUR, "3 days ago"),
]


@pytest.mark.parametrize(("delta", "relative"), RELATIVE)
def test_format_time_relative(delta: int, relative: str) -> None:
    now = ms("2026-11-28T09:00:00Z")
    expected = f"Sat 28 Nov 2026, 10:00 CET ({relative})"
    base = format_time(now, "Europe/Berlin", now_ms=now - delta)
    assert base == expected


def test_echo_round_trip() -> None:
    """What parse_time returns is what format_time echoes in the room's zone."""
    now = ms(BERLIN_SPRING[1])
    instant = parse_time("tomorrow 10:00", now_ms=now, timezone="Europe/Berlin")
    assert format_time(instant, "Europe/Berlin", now_ms=now) == (
        "Sun 29 Mar 2026, 10:00 CEST (in 10h)"
    )


# --- bare times and weekdays always land in the future, on the named day ---------------------

ZONES = ("UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe")
# Clocks near the 2026 changes of the zones above, so the property meets gaps and overlaps.
CHANGES = tuple(
    ms(t)
    for t in (
        "2026-03-29T01:00:00Z",
        "2026-10-25T01:00:00Z",
        "2026-03-08T07:00:00Z",
        "2026-11-01T06:00:00Z",
        "2026-04-04T15:00:00Z",
        "2026-10-03T15:30:00Z",
    )
)
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _wall(instant: int, zone: str) -> dt.datetime:
    return dt.datetime.fromtimestamp(instant / 1000, UTC).astimezone(ZoneInfo(zone))


def _exists(day: dt.date, clock: dt.time, zone: str) -> bool:
    """Whether the wall-clock time `clock` on `day` happens in `zone` (not in a gap)."""
    moment = dt.datetime.combine(day, clock, tzinfo=ZoneInfo(zone))
    return moment.astimezone(UTC).astimezone(ZoneInfo(zone)).replace(tzinfo=None) == (
        moment.replace(tzinfo=None)
    )


@settings(deadline=None, max_examples=150)
@given(
    zone=st.sampled_from(ZONES),
    base=st.one_of(
        st.integers(ms("2026-01-01T00:00:00Z"), ms("2027-12-31T00:00:00Z")),
        st.sampled_from(CHANGES),
    ),
    shift_minutes=st.integers(-30 * 60, 30 * 60),
    hour=st.integers(0, 23),
    minute=st.sampled_from((0, 1, 15, 30, 45, 59)),
    weekday=st.one_of(st.none(), st.integers(0, 6)),
)
@example(zone="Europe/Berlin", base=CHANGES[0], shift_minutes=-30, hour=2, minute=30, weekday=None)
@example(zone="Europe/Berlin", base=CHANGES[1], shift_minutes=-15, hour=2, minute=30, weekday=6)
@example(zone="Europe/Berlin", base=CHANGES[1], shift_minutes=15, hour=2, minute=30, weekday=None)
def test_bare_times_and_weekdays_are_their_next_occurrence(
    zone: str, base: int, shift_minutes: int, hour: int, minute: int, weekday: int | None
) -> None:
    now = base + shift_minutes * 60_000
    clock = dt.time(hour, minute)
    text = (
        f"{hour:02}:{minute:02}" if weekday is None else f"{WEEKDAYS[weekday]} {hour}:{minute:02}"
    )
    instant = parse_time(text, now_ms=now, timezone=zone)
    assert instant > now
    # The next occurrence: within a day (a week for a weekday), plus a clock change.
    assert instant - now <= (24 if weekday is None else 7 * 24) * HOUR + HOUR
    wall = _wall(instant, zone)
    if weekday is not None:
        assert wall.weekday() == weekday
    if _exists(wall.date(), clock, zone):
        assert wall.time() == clock
    else:  # in a gap: moved forward by the jump, on the same day
        assert wall.time() > clock
    # Nothing earlier would do: the same wall clock a day (a week) before is not ahead.
    step = dt.timedelta(days=1 if weekday is None else 7)
    earlier = dt.datetime.combine(wall.date() - step, clock)
    for fold in (0, 1):
        before = int(earlier.replace(tzinfo=ZoneInfo(zone), fold=fold).timestamp() * 1000)
        assert before <= now


def test_one_parse_is_fast_once_dateparser_is_loaded() -> None:
    now = ms(UTC_SAT[1])
    parse_time("tomorrow 10:00", now_ms=now, timezone="Europe/Berlin")  # loads dateparser
    started = time.perf_counter()
    for minute in range(20):
        parse_time(f"sat 10:{minute:02}", now_ms=now + minute, timezone="Europe/Berlin")
    # About 1 ms each here; the bound is loose so a slow machine passes.
    assert (time.perf_counter() - started) / 20 < 0.05
