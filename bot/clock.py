"""The one place the shell reads the wall clock. The pure core never does: time is passed in."""

from __future__ import annotations

import time


def now_ms() -> int:
    return time.time_ns() // 1_000_000
