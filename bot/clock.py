"""The one place the shell reads the wall clock. The pure core never does: time is passed in.

For tests only, `COMMONS_TEST_CLOCK_OFFSET_MS` moves the bot's clock forward (e.g. into the
next day, to see a daily report without waiting for one). Scheduled jobs still run on the real
clock, so deadlines are not meaningful with an offset; never set it in production.
"""

from __future__ import annotations

import os
import time

_OFFSET_MS = int(os.environ.get("COMMONS_TEST_CLOCK_OFFSET_MS", "0") or 0)


def now_ms() -> int:
    return time.time_ns() // 1_000_000 + _OFFSET_MS
