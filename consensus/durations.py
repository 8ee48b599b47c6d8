"""Durations as people type them (`30s`, `15m`, `48h`, `3d`, `2w`, `1h30m`). Pure: text <-> ms.

Units go from largest to smallest, each at most once; case and spaces don't matter. The written
form (`format_duration`) is canonical, because room rules store it in the ledger: it uses hours
below a week ("48h", "72h" read better than "2d", "3d" for deadlines), days from a week on
("90d"), never weeks (14d is clearer than 2w), and smaller units for the rest ("1h30m").
Zero is written "0h", the spec's default for `kudos.min_membership`.
"""

from __future__ import annotations

import re

from consensus.canonical import MAX_SAFE_INT

SECOND_MS = 1000
MINUTE_MS = 60 * SECOND_MS
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS
WEEK_MS = 7 * DAY_MS

UNIT_MS = {"w": WEEK_MS, "d": DAY_MS, "h": HOUR_MS, "m": MINUTE_MS, "s": SECOND_MS}
_UNIT_ORDER = "wdhms"

# The digit limit keeps int() cheap on hostile input; any real duration has far fewer digits.
_PART = re.compile(r"\s*([0-9]{1,16})\s*([a-z])\s*")
_WHOLE = re.compile(r"(?:\s*[0-9]{1,16}\s*[a-z]\s*)+")

EXAMPLES = "30s, 15m, 48h, 3d, 2w or 1h30m"


class DurationError(ValueError):
    """The text is not a duration; the message is one sentence with examples."""


def _refuse(text: str) -> DurationError:
    shown = text if len(text) <= 40 else text[:40] + "…"
    return DurationError(f"{shown!r} is not a duration; write it like {EXAMPLES}.")


def parse_duration(text: str) -> int:
    """Milliseconds in `text`, e.g. "1h30m" -> 5_400_000; DurationError otherwise."""
    lowered = text.lower()
    if not _WHOLE.fullmatch(lowered):
        raise _refuse(text)
    total = 0
    last_rank = -1
    for number, unit in _PART.findall(lowered):
        rank = _UNIT_ORDER.find(unit)
        # Largest unit first, each once: "30m1h" or "1h1h" is more likely a typo than intent.
        if rank <= last_rank:
            raise _refuse(text)
        last_rank = rank
        total += int(number) * UNIT_MS[unit]
    if total > MAX_SAFE_INT:
        raise _refuse(text)
    return total


def format_duration(ms: int) -> str:
    """The canonical text of a whole number of seconds given in ms (see the module docstring)."""
    if ms < 0 or ms % SECOND_MS:
        raise DurationError(f"{ms} ms is not a whole, non-negative number of seconds.")
    if ms == 0:
        return "0h"
    units = "dhms" if ms >= WEEK_MS else "hms"
    parts = []
    rest = ms
    for unit in units:
        count, rest = divmod(rest, UNIT_MS[unit])
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
