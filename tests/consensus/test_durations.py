"""Durations: parsing tables, the canonical written form, and a round-trip property."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consensus.canonical import MAX_SAFE_INT
from consensus.durations import DurationError, format_duration, parse_duration

S, M, H, D, W = 1000, 60_000, 3_600_000, 86_400_000, 604_800_000


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("30s", 30 * S),
        ("15m", 15 * M),
        ("48h", 48 * H),
        ("3d", 3 * D),
        ("2w", 2 * W),
        ("1h30m", H + 30 * M),
        ("0h", 0),
        ("0s", 0),
        ("1w2d3h4m5s", W + 2 * D + 3 * H + 4 * M + 5 * S),
        ("  48H ", 48 * H),
        ("1H 30M", H + 30 * M),
        ("1 h 30 m", H + 30 * M),
        ("007m", 7 * M),
        ("90d", 90 * D),
    ],
)
def test_parse_duration(text: str, ms: int) -> None:
    assert parse_duration(text) == ms


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "30",
        "h",
        "1.5h",
        "-1h",
        "+1h",
        "1y",
        "1ms",
        "30m1h",  # smaller unit first
        "1h1h",  # a unit twice
        "1h,30m",
        "one hour",
        "\uff14\uff18h",  # full-width digits are not ASCII digits
        "1" * 17 + "s",  # more digits than any duration needs
        "9999999999999999w",  # beyond what canonical JSON can hold
    ],
)
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(DurationError) as info:
        parse_duration(text)
    message = str(info.value)
    assert "48h" in message and "1h30m" in message
    assert message.endswith(".") and message.count(". ") == 0


def test_error_message_shortens_long_input() -> None:
    with pytest.raises(DurationError) as info:
        parse_duration("x" * 10_000)
    assert len(str(info.value)) < 120


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (0, "0h"),
        (30 * S, "30s"),
        (90 * S, "1m30s"),
        (15 * M, "15m"),
        (H + 30 * M, "1h30m"),
        (24 * H, "24h"),
        (48 * H, "48h"),
        (72 * H, "72h"),
        (W - S, "167h59m59s"),
        (W, "7d"),
        (14 * D, "14d"),
        (7 * D + 12 * H, "7d12h"),
        (90 * D, "90d"),
        (365 * D + 1 * S, "365d1s"),
    ],
)
def test_format_duration(ms: int, text: str) -> None:
    assert format_duration(ms) == text


@pytest.mark.parametrize("ms", [-1000, 1, 1500])
def test_format_duration_refuses_non_whole_seconds(ms: int) -> None:
    with pytest.raises(DurationError):
        format_duration(ms)


@given(st.integers(min_value=0, max_value=MAX_SAFE_INT // 1000))
def test_round_trip(seconds: int) -> None:
    text = format_duration(seconds * 1000)
    assert parse_duration(text) == seconds * 1000
    assert parse_duration(text.upper()) == seconds * 1000


@given(
    st.lists(st.integers(min_value=0, max_value=999), min_size=5, max_size=5),
    st.lists(st.booleans(), min_size=5, max_size=5),
)
def test_any_written_form_parses_to_its_sum_and_formats_canonically(
    counts: list[int], present: list[bool]
) -> None:
    units = list(zip("wdhms", (W, D, H, M, S), strict=True))
    chosen = [(n, u, ms) for n, (u, ms), keep in zip(counts, units, present, strict=True) if keep]
    if not chosen:
        return
    text = " ".join(f"{n}{u}" for n, u, _ in chosen)
    total = sum(n * ms for n, _, ms in chosen)
    assert parse_duration(text) == total
    canonical = format_duration(total)
    assert format_duration(parse_duration(canonical)) == canonical
