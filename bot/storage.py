"""Storage: SQLite through aiosqlite. All SQL of Commons lives in this module.

Rules: one connection, and every use of it goes through one lock, so concurrent handlers never
interleave their transactions; writes start with `BEGIN IMMEDIATE`; migrations run one per
transaction together with their version bump, and a database newer than the code is refused;
`PRAGMA quick_check` runs at start. WAL with `synchronous=FULL`: a committed ledger entry
survives a power cut.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosqlite

log = logging.getLogger(__name__)


class StorageError(Exception):
    """The database can't be used (corrupt, or written by a newer Commons)."""


# Each migration is a list of statements run in one transaction with its version bump.
# Never edit a released migration: add a new one.
MIGRATIONS: list[list[str]] = [
    [
        """CREATE TABLE kv (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL
        ) STRICT""",
        """CREATE TABLE rooms (
            room_id TEXT PRIMARY KEY,
            joined_ts INTEGER NOT NULL,
            join_event TEXT,
            encrypted_notice INTEGER NOT NULL DEFAULT 0,
            left_ts INTEGER
        ) STRICT""",
        # Every event the bot has processed, in the same transaction as its effects.
        """CREATE TABLE handled_events (
            event_id TEXT PRIMARY KEY,
            room_id TEXT NOT NULL,
            sender TEXT NOT NULL,
            kind TEXT NOT NULL,
            handled_ts INTEGER NOT NULL
        ) STRICT""",
        # Replies and announcements, written with the effects and sent after the commit.
        """CREATE TABLE outbox (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            room_id TEXT NOT NULL,
            txn_id TEXT NOT NULL UNIQUE,
            event_type TEXT NOT NULL,
            content TEXT NOT NULL,
            created_ts INTEGER NOT NULL,
            sent_ts INTEGER,
            sent_event_id TEXT,
            failed TEXT
        ) STRICT""",
        "CREATE INDEX outbox_pending ON outbox (id) WHERE sent_ts IS NULL AND failed IS NULL",
        # Commands that arrived too old to run: answered "expired" and listed in the report.
        """CREATE TABLE expired_commands (
            event_id TEXT PRIMARY KEY,
            room_id TEXT NOT NULL,
            sender TEXT NOT NULL,
            ts INTEGER NOT NULL,
            received_ts INTEGER NOT NULL
        ) STRICT""",
    ],
]


@dataclass(frozen=True)
class Room:
    room_id: str
    joined_ts: int
    join_event: str | None
    encrypted_notice: bool
    left_ts: int | None


@dataclass(frozen=True)
class OutboxRow:
    id: int
    room_id: str
    txn_id: str
    event_type: str
    content: dict[str, Any]


@dataclass(frozen=True)
class HandledEvent:
    event_id: str
    room_id: str
    sender: str
    kind: str


class Tx:
    """The writes of one transaction. Only obtained from `Storage.write()`."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db
        self._savepoints = 0

    @asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        """Undo just this block's writes if it raises (one event's effects in a batch)."""
        self._savepoints += 1
        name = f"sp{self._savepoints}"
        await self._db.execute(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            await self._db.execute(f"ROLLBACK TO {name}")
            await self._db.execute(f"RELEASE {name}")
            raise
        await self._db.execute(f"RELEASE {name}")

    async def set_kv(self, key: str, value: str) -> None:
        await self._db.execute(
            "INSERT INTO kv (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    async def delete_kv(self, key: str) -> None:
        await self._db.execute("DELETE FROM kv WHERE key = ?", (key,))

    async def get_kv(self, key: str) -> str | None:
        return await _get_kv(self._db, key)

    async def get_room(self, room_id: str) -> Room | None:
        return await _get_room(self._db, room_id)

    async def add_room(self, room_id: str, joined_ts: int, join_event: str | None) -> None:
        await self._db.execute(
            "INSERT INTO rooms (room_id, joined_ts, join_event) VALUES (?, ?, ?) "
            "ON CONFLICT (room_id) DO UPDATE SET joined_ts = excluded.joined_ts, "
            "join_event = excluded.join_event, left_ts = NULL",
            (room_id, joined_ts, join_event),
        )

    async def mark_left(self, room_id: str, ts: int) -> None:
        await self._db.execute("UPDATE rooms SET left_ts = ? WHERE room_id = ?", (ts, room_id))

    async def mark_encrypted_notice(self, room_id: str) -> None:
        await self._db.execute(
            "UPDATE rooms SET encrypted_notice = 1 WHERE room_id = ?", (room_id,)
        )

    async def is_handled(self, event_id: str) -> bool:
        cur = await self._db.execute(
            "SELECT 1 FROM handled_events WHERE event_id = ?", (event_id,)
        )
        return await cur.fetchone() is not None

    async def handled_event(self, event_id: str) -> HandledEvent | None:
        cur = await self._db.execute(
            "SELECT event_id, room_id, sender, kind FROM handled_events WHERE event_id = ?",
            (event_id,),
        )
        row = await cur.fetchone()
        return HandledEvent(*row) if row else None

    async def mark_handled(
        self, event_id: str, room_id: str, sender: str, kind: str, now: int
    ) -> None:
        await self._db.execute(
            "INSERT INTO handled_events (event_id, room_id, sender, kind, handled_ts) "
            "VALUES (?, ?, ?, ?, ?)",
            (event_id, room_id, sender, kind, now),
        )

    async def enqueue(
        self, room_id: str, txn_id: str, event_type: str, content: dict[str, Any], now: int
    ) -> None:
        # The txn_id is derived from the source event, so a replayed source can't queue twice.
        await self._db.execute(
            "INSERT INTO outbox (room_id, txn_id, event_type, content, created_ts) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (txn_id) DO NOTHING",
            (room_id, txn_id, event_type, json.dumps(content, ensure_ascii=False), now),
        )

    async def mark_sent(self, row_id: int, event_id: str, now: int) -> None:
        await self._db.execute(
            "UPDATE outbox SET sent_ts = ?, sent_event_id = ? WHERE id = ?",
            (now, event_id, row_id),
        )

    async def mark_failed(self, row_id: int, reason: str) -> None:
        await self._db.execute("UPDATE outbox SET failed = ? WHERE id = ?", (reason, row_id))

    async def add_expired(
        self, event_id: str, room_id: str, sender: str, ts: int, received_ts: int
    ) -> None:
        await self._db.execute(
            "INSERT INTO expired_commands (event_id, room_id, sender, ts, received_ts) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (event_id, room_id, sender, ts, received_ts),
        )


async def _get_kv(db: aiosqlite.Connection, key: str) -> str | None:
    cur = await db.execute("SELECT value FROM kv WHERE key = ?", (key,))
    row = await cur.fetchone()
    return str(row[0]) if row else None


async def _get_room(db: aiosqlite.Connection, room_id: str) -> Room | None:
    cur = await db.execute(
        "SELECT room_id, joined_ts, join_event, encrypted_notice, left_ts FROM rooms "
        "WHERE room_id = ?",
        (room_id,),
    )
    row = await cur.fetchone()
    if row is None:
        return None
    return Room(row[0], row[1], row[2], bool(row[3]), row[4])


class Storage:
    def __init__(self, db: aiosqlite.Connection, path: Path) -> None:
        self._db = db
        self._lock = asyncio.Lock()
        self.path = path

    @classmethod
    async def open(cls, path: Path) -> Storage:
        path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: the sqlite3 module must not open transactions on its own; we
        # issue BEGIN IMMEDIATE ourselves.
        db = await aiosqlite.connect(path, isolation_level=None)
        try:
            await db.execute("PRAGMA journal_mode = WAL")
            await db.execute("PRAGMA synchronous = FULL")
            await db.execute("PRAGMA busy_timeout = 5000")
            await db.execute("PRAGMA foreign_keys = ON")
            cur = await db.execute("PRAGMA quick_check")
            result = [r[0] for r in await cur.fetchall()]
            if result != ["ok"]:
                raise StorageError(f"{path}: database failed its integrity check: {result[0]}")
            await _migrate(db, path, MIGRATIONS)
        except BaseException:
            await db.close()
            raise
        return cls(db, path)

    async def close(self) -> None:
        async with self._lock:
            await self._db.close()

    @asynccontextmanager
    async def write(self) -> AsyncIterator[Tx]:
        """One write transaction: committed if the block ends normally, rolled back if not."""
        async with self._lock:
            await self._db.execute("BEGIN IMMEDIATE")
            try:
                yield Tx(self._db)
            except BaseException:
                await self._db.execute("ROLLBACK")
                raise
            await self._db.execute("COMMIT")

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Tx]:
        """Reads under the lock, so they never see another coroutine's uncommitted writes."""
        async with self._lock:
            yield Tx(self._db)

    async def get_kv(self, key: str) -> str | None:
        async with self._lock:
            return await _get_kv(self._db, key)

    async def pending_outbox(self, limit: int = 500) -> list[OutboxRow]:
        async with self._lock:
            cur = await self._db.execute(
                "SELECT id, room_id, txn_id, event_type, content FROM outbox "
                "WHERE sent_ts IS NULL AND failed IS NULL ORDER BY id LIMIT ?",
                (limit,),
            )
            rows = await cur.fetchall()
        return [OutboxRow(r[0], r[1], r[2], r[3], json.loads(r[4])) for r in rows]

    async def mark_sent(self, row_id: int, event_id: str, now: int) -> None:
        async with self.write() as tx:
            await tx.mark_sent(row_id, event_id, now)

    async def mark_failed(self, row_id: int, reason: str) -> None:
        async with self.write() as tx:
            await tx.mark_failed(row_id, reason)

    async def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Read-only queries for tests and diagnostics."""
        async with self._lock:
            cur = await self._db.execute(sql, params)
            return [tuple(r) for r in await cur.fetchall()]


async def _migrate(db: aiosqlite.Connection, path: Path, migrations: list[list[str]]) -> None:
    cur = await db.execute("PRAGMA user_version")
    row = await cur.fetchone()
    version = int(row[0]) if row else 0
    if version > len(migrations):
        raise StorageError(
            f"{path}: the database is at schema version {version}, but this Commons only knows "
            f"up to {len(migrations)}; upgrade Commons instead of downgrading it."
        )
    for target in range(version + 1, len(migrations) + 1):
        await db.execute("BEGIN IMMEDIATE")
        try:
            for statement in migrations[target - 1]:
                await db.execute(statement)
            # PRAGMA takes no placeholders; `target` is an int we computed.
            await db.execute(f"PRAGMA user_version = {int(target)}")
        except BaseException:
            await db.execute("ROLLBACK")
            raise
        await db.execute("COMMIT")
        log.info("database migrated to schema version %d", target)
