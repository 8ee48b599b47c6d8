from datetime import UTC, datetime

import pytest

from commands.reports import due_report_day, next_report_instant, report_instant


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


@pytest.mark.parametrize(
    ("day", "at", "tz", "expected"),
    [
        ("2026-11-26", (9, 0), "UTC", "2026-11-26T09:00"),
        ("2026-11-26", (9, 0), "Europe/Berlin", "2026-11-26T08:00"),
        ("2026-07-01", (9, 0), "Europe/Berlin", "2026-07-01T07:00"),
        # Spring forward: 02:30 doesn't exist in Berlin on 29 March; it moves forward (03:30).
        ("2026-03-29", (2, 30), "Europe/Berlin", "2026-03-29T01:30"),
        # Fall back: 02:30 happens twice on 25 October; the earlier one counts (CEST).
        ("2026-10-25", (2, 30), "Europe/Berlin", "2026-10-25T00:30"),
    ],
)
def test_report_instant_is_dst_safe(day, at, tz, expected):
    assert report_instant(day, at, tz) == ms(expected)


def test_the_due_day_is_yesterday_after_the_report_time():
    assert due_report_day(ms("2026-11-26T09:00"), (9, 0), "UTC") == "2026-11-25"
    assert due_report_day(ms("2026-11-26T08:59"), (9, 0), "UTC") == "2026-11-24"


def test_stepping_through_a_dst_night_gives_one_report_per_day():
    # Every 10 minutes across the spring-forward weekend: the due day changes exactly once a day.
    t, end = ms("2026-03-27T00:00"), ms("2026-03-31T00:00")
    seen = []
    while t < end:
        day = due_report_day(t, (2, 30), "Europe/Berlin")
        if not seen or seen[-1] != day:
            seen.append(day)
        t += 600_000
    assert seen == ["2026-03-25", "2026-03-26", "2026-03-27", "2026-03-28", "2026-03-29"]


def test_next_report_instant():
    assert next_report_instant(ms("2026-11-26T08:00"), (9, 0), "UTC") == ms("2026-11-26T09:00")
    assert next_report_instant(ms("2026-11-26T09:00"), (9, 0), "UTC") == ms("2026-11-27T09:00")
