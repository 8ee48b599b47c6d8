"""Deadlines: the database holds them, APScheduler only wakes us up.

Rules (RELIABILITY "time"): every closing time lives in SQLite; the in-memory jobs are rebuilt
from it at start with fixed IDs (a job per item, replaced if it moves), run however late they
are (`misfire_grace_time=None`), and start only after the backlog of a restart is handled, so a
vote sent before a deadline while the bot was down is counted before the item closes. A job
does nothing but ask the bot to close what is due; doing it twice is harmless.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger

log = logging.getLogger(__name__)

# A deadline job fires this long after the deadline, so a vote sent just before it has time
# to arrive through sync before the item closes.
GRACE_MS = 1_500


class Deadlines:
    def __init__(self, close_due: Callable[[], Awaitable[None]]) -> None:
        self._close_due = close_due
        self._scheduler = AsyncIOScheduler(timezone=UTC)
        self._known: dict[str, int] = {}

    def start(self) -> None:
        self._scheduler.start()

    def shutdown(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)

    def watch(self, jobs: list[tuple[str, int]]) -> None:
        """Make sure a job exists for every (job id, UTC ms) given."""
        for job_id, due in jobs:
            if self._known.get(job_id) == due:
                continue
            self._known[job_id] = due
            when = datetime.fromtimestamp((due + GRACE_MS) / 1000, tz=UTC)
            self._scheduler.add_job(
                self._close_due,
                trigger=DateTrigger(run_date=when, timezone=UTC),
                id=job_id,
                replace_existing=True,
                misfire_grace_time=None,
                coalesce=True,
            )
