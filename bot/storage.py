"""Storage: SQLite through aiosqlite. All SQL of Commons lives in this module.

Rules: one connection (and a read-only one, see below), and every use of it goes through one
lock, so concurrent handlers never interleave their transactions; writes start with `BEGIN
IMMEDIATE`; migrations run one per transaction together with their version bump, and a database
newer than the code is refused; `PRAGMA quick_check` runs at start. WAL with `synchronous=FULL`:
a committed ledger entry survives a power cut.

Why a transaction's statements don't go through aiosqlite's thread: each hop to that thread
costs 50 to 100 µs of scheduling, while the statements of a command (none for most kudos, plus
their share of the batch's deferred writes, see `Tx`) take a few µs each in SQLite. Inside a
transaction our lock is held, so aiosqlite's thread is idle and the same connection can be used
directly from the event loop's thread without any race; only BEGIN, COMMIT (which waits for the
disk), ROLLBACK and the reads outside transactions go through aiosqlite, so the event loop never
waits for an fsync.

Sync batches use pipelined transactions (`Storage.write(pipelined=True)`): the COMMIT runs on a
thread of its own (SQLite holds no Python lock meanwhile), and the next batch's transaction
works from memory (deferred writes, the cached heads and `Committed` values, a read-only
connection for the handled events) until it needs the database, when it waits for that commit.
Every other use of the storage waits for it first.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from json.encoder import encode_basestring as _quote
from pathlib import Path
from types import TracebackType
from typing import Any

import aiosqlite

from commands.context import Item, LedgerRow, Vote
from consensus import scoring
from consensus.bulk import gc_paused
from consensus.canonical import reusable
from consensus.checkpoint import Checkpoint, SignedCheckpoint
from consensus.ledger import (
    ATTEND,
    GENESIS,
    KUDOS,
    MOD_VOID,
    OPTIN,
    OPTOUT,
    REVERSAL,
    RULE_KINDS,
    LedgerEntry,
    commit_text,
    genesis_data,
    make_entry,
)
from consensus.merkle import MerkleFrontier, frontier_after
from consensus.rules import RoomRules

log = logging.getLogger(__name__)

SALT_BYTES = 16

# An outbox row's content as JSON (compact: it is read back only by the outbox).
_TEXT_JSON = reusable(json.JSONEncoder(ensure_ascii=False, separators=(",", ":")))


class StorageError(Exception):
    """The database can't be used (corrupt, or written by a newer Commons)."""


class StorageBroken(StorageError):
    """A pipelined commit failed (see `Storage.write`): what the storage holds in memory may be
    ahead of the database, so it refuses any further use. Restarting resumes from what was
    committed; nothing of the lost batch was sent."""


# The entries a reaction made (see migration 5 and `Tx.reaction_kudos`).
_REACTION_KUDOS = "kind = 'kudos' AND json_extract(data, '$.via') = 'reaction'"

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
    [
        # The ledger: append-only, enforced by triggers as well as by the code.
        """CREATE TABLE ledger (
            room TEXT NOT NULL,
            seq INTEGER NOT NULL,
            ts INTEGER NOT NULL,
            actor TEXT NOT NULL,
            kind TEXT NOT NULL,
            data TEXT NOT NULL,
            event TEXT,
            rules TEXT NOT NULL,
            prev TEXT NOT NULL,
            hash TEXT NOT NULL,
            PRIMARY KEY (room, seq)
        ) STRICT, WITHOUT ROWID""",
        "CREATE INDEX ledger_by_event ON ledger (room, event) WHERE event IS NOT NULL",
        """CREATE TRIGGER ledger_no_update BEFORE UPDATE ON ledger
           BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END""",
        """CREATE TRIGGER ledger_no_delete BEFORE DELETE ON ledger
           BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END""",
        # Free text beside its entry; `!erase` deletes the row, the commitment stays.
        """CREATE TABLE ledger_text (
            room TEXT NOT NULL,
            seq INTEGER NOT NULL,
            text TEXT NOT NULL,
            salt TEXT NOT NULL,
            PRIMARY KEY (room, seq)
        ) STRICT, WITHOUT ROWID""",
        # Per room: size, last hash, Merkle frontier and the rules in force after the last entry.
        """CREATE TABLE ledger_head (
            room TEXT PRIMARY KEY,
            size INTEGER NOT NULL,
            head TEXT NOT NULL,
            frontier TEXT NOT NULL,
            rules TEXT NOT NULL,
            rule_sources TEXT NOT NULL
        ) STRICT""",
        # Aggregates, maintained in the same transaction as the entries that change them.
        """CREATE TABLE score (
            room TEXT NOT NULL, user TEXT NOT NULL, total INTEGER NOT NULL,
            PRIMARY KEY (room, user)
        ) STRICT, WITHOUT ROWID""",
        "CREATE INDEX score_rank ON score (room, total DESC)",
        """CREATE TABLE score_day (
            room TEXT NOT NULL, user TEXT NOT NULL, day TEXT NOT NULL, received INTEGER NOT NULL,
            PRIMARY KEY (room, user, day)
        ) STRICT, WITHOUT ROWID""",
        "CREATE INDEX score_day_by_day ON score_day (room, day)",
        """CREATE TABLE given_day (
            room TEXT NOT NULL, giver TEXT NOT NULL, day TEXT NOT NULL, given INTEGER NOT NULL,
            PRIMARY KEY (room, giver, day)
        ) STRICT, WITHOUT ROWID""",
        """CREATE TABLE pair_day (
            room TEXT NOT NULL, giver TEXT NOT NULL, receiver TEXT NOT NULL, day TEXT NOT NULL,
            given INTEGER NOT NULL,
            PRIMARY KEY (room, giver, receiver, day)
        ) STRICT, WITHOUT ROWID""",
        # Entries taken out of effect (reversed or voided), and who is opted out now.
        """CREATE TABLE voided (
            room TEXT NOT NULL, seq INTEGER NOT NULL, by_seq INTEGER NOT NULL,
            PRIMARY KEY (room, seq)
        ) STRICT, WITHOUT ROWID""",
        """CREATE TABLE optout (
            room TEXT NOT NULL, user TEXT NOT NULL, PRIMARY KEY (room, user)
        ) STRICT, WITHOUT ROWID""",
        # Membership as the bot saw it (kudos.min_membership counts from here).
        """CREATE TABLE members (
            room TEXT NOT NULL, user TEXT NOT NULL, since INTEGER NOT NULL,
            PRIMARY KEY (room, user)
        ) STRICT, WITHOUT ROWID""",
        # Signed checkpoints, with the Merkle frontier at that size so `!verify` can check
        # the entries since the last one without reading the whole ledger.
        """CREATE TABLE checkpoints (
            room TEXT NOT NULL, size INTEGER NOT NULL, root TEXT NOT NULL, ts INTEGER NOT NULL,
            signature TEXT NOT NULL, key TEXT NOT NULL, frontier TEXT NOT NULL,
            PRIMARY KEY (room, size)
        ) STRICT, WITHOUT ROWID""",
    ],
    [
        # Proposals, polls and action calls: one #N sequence per room. The ledger holds the
        # truth; these rows are its index for the commands and the deadlines.
        """CREATE TABLE items (
            room TEXT NOT NULL,
            item INTEGER NOT NULL,
            type TEXT NOT NULL,
            author TEXT NOT NULL,
            open_seq INTEGER NOT NULL,
            open_event TEXT,
            status TEXT NOT NULL,
            method TEXT,
            options TEXT NOT NULL,
            quorum INTEGER,
            closes INTEGER,
            at INTEGER,
            need INTEGER,
            rule_key TEXT,
            rule_value TEXT,
            target INTEGER,
            poll_txn TEXT,
            PRIMARY KEY (room, item)
        ) STRICT, WITHOUT ROWID""",
        "CREATE INDEX items_open ON items (closes) WHERE status = 'open'",
        "CREATE INDEX items_poll ON items (poll_txn) WHERE poll_txn IS NOT NULL",
        # The latest vote of each voter: one row per (item, voter), replaced by upsert.
        """CREATE TABLE votes (
            room TEXT NOT NULL,
            item INTEGER NOT NULL,
            voter TEXT NOT NULL,
            choice TEXT NOT NULL,
            reason TEXT,
            ts INTEGER NOT NULL,
            event TEXT,
            seq INTEGER NOT NULL,
            PRIMARY KEY (room, item, voter)
        ) STRICT, WITHOUT ROWID""",
        "CREATE INDEX votes_by_event ON votes (room, event)",
        "CREATE INDEX outbox_sent_event ON outbox (sent_event_id)",
        # Action calls: who is in now (latest commitment per person), who came, reminders.
        """CREATE TABLE commitments (
            room TEXT NOT NULL, item INTEGER NOT NULL, user TEXT NOT NULL,
            min_others INTEGER NOT NULL, ts INTEGER NOT NULL, seq INTEGER NOT NULL,
            PRIMARY KEY (room, item, user)
        ) STRICT, WITHOUT ROWID""",
        """CREATE TABLE attendance (
            room TEXT NOT NULL, item INTEGER NOT NULL, user TEXT NOT NULL,
            credited INTEGER NOT NULL, seq INTEGER NOT NULL,
            PRIMARY KEY (room, item, user)
        ) STRICT, WITHOUT ROWID""",
        """CREATE TABLE reminders (
            room TEXT NOT NULL, item INTEGER NOT NULL, due INTEGER NOT NULL,
            sent INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (room, item, due)
        ) STRICT, WITHOUT ROWID""",
    ],
    [
        # Daily reports: at most one per room and local day (the primary key says so).
        "CREATE INDEX ledger_by_ts ON ledger (room, ts)",
        # `!top --days D` sums a range of days per user: read it from the index alone.
        "DROP INDEX score_day_by_day",
        "CREATE INDEX score_day_cover ON score_day (room, day, user, received)",
        # Reports and !modlog look entries up by kind (reviews, moderator actions).
        "CREATE INDEX ledger_by_kind ON ledger (room, kind, seq)",
        """CREATE TABLE reports (
            room TEXT NOT NULL, day TEXT NOT NULL, made_ts INTEGER NOT NULL,
            checkpoint_size INTEGER,
            PRIMARY KEY (room, day)
        ) STRICT, WITHOUT ROWID""",
    ],
    [
        # Entries are looked up by their event only to take back a reaction's kudos when the
        # reaction is redacted: index just those. Indexing every entry's event ID cost each
        # kudos command a write at a random place of the index (event IDs are hashes).
        "DROP INDEX ledger_by_event",
        f"CREATE INDEX ledger_by_reaction ON ledger (room, event) WHERE {_REACTION_KUDOS}",
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
class StoredEntry:
    """A ledger entry with its free text and salt (both None when there is none or erased)."""

    entry: LedgerEntry
    text: str | None
    salt: bytes | None


@dataclass(frozen=True)
class StoredCheckpoint:
    signed: SignedCheckpoint
    frontier: list[str]  # the Merkle frontier at its size (hex), to extend from


@dataclass(frozen=True)
class LedgerHead:
    """A room's ledger head: size, last hash, Merkle state and the rules in force now.

    Kept in memory per room (loaded once, written through in every transaction that changes
    it), so appending an entry costs no read of the head.
    """

    size: int
    head: str
    nodes: tuple[bytes, ...]  # the Merkle frontier (bytes: appending needs no hex round trip)
    rules: RoomRules
    sources: dict[str, str]

    @property
    def frontier(self) -> tuple[str, ...]:
        """The Merkle frontier in hex, as stored and as checkpoints keep it."""
        return tuple(node.hex() for node in self.nodes)

    @property
    def root(self) -> str:
        return MerkleFrontier.from_nodes(self.size, self.nodes).root().hex()


@dataclass(frozen=True)
class HandledEvent:
    event_id: str
    room_id: str
    sender: str
    kind: str


_Row = tuple[Any, ...]

# Aggregate upserts: the amount is the last parameter, added to what the row holds.
_ADD_SCORE = (
    "INSERT INTO score (room, user, total) VALUES (?, ?, ?) "
    "ON CONFLICT (room, user) DO UPDATE SET total = total + excluded.total"
)
_ADD_SCORE_DAY = (
    "INSERT INTO score_day (room, user, day, received) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (room, user, day) DO UPDATE SET received = received + excluded.received"
)
_ADD_GIVEN_DAY = (
    "INSERT INTO given_day (room, giver, day, given) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (room, giver, day) DO UPDATE SET given = given + excluded.given"
)
_ADD_PAIR_DAY = (
    "INSERT INTO pair_day (room, giver, receiver, day, given) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (room, giver, receiver, day) DO UPDATE SET given = given + excluded.given"
)


class _Savepoint:
    """A savepoint of a transaction, what `Tx.savepoint()` returns (a class, not a generator:
    two open and close per event). It notes where the transaction stood when it began: the
    lengths of its logs, no copies."""

    __slots__ = ("adds", "adds_written", "begun", "heads", "inserts", "name", "tx", "written")

    def __init__(self, tx: Tx) -> None:
        self.tx = tx

    async def __aenter__(self) -> None:
        tx = self.tx
        # Named by depth, not by a running count: the same few statements then come from the
        # connection's statement cache instead of being compiled afresh for every event.
        self.name = f"sp{len(tx._marks) + 1}"
        self.inserts, self.written = len(tx._inserts), tx._written
        self.adds, self.adds_written = len(tx._adds), tx._adds_written
        self.heads = len(tx._head_log)
        self.begun = False  # whether its SAVEPOINT statement was issued
        tx._marks.append(self)

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.tx._close(self, failed=kind is not None)


# A room's membership facts: (member since, by user; opted out, by user).
_Facts = tuple[dict[str, int | None], dict[str, bool]]


class Committed:
    """Committed values the kudos path reads for every command, kept in memory beside the ledger
    heads: aggregate totals by the keys of `Tx._add` (score, given per day, given per pair and
    day), and per room who is opted out and since when a member was seen.

    Only committed values live here. A transaction adds its own additions on top as it reads,
    and hands them over after its COMMIT (`after_commit`); a rolled-back one leaves nothing.
    Anything not here is read from the database and remembered. A membership or opt-out change
    drops its room's facts at the commit, and the transaction itself reads that room's facts
    from the database until then; the same goes for the rows of `rooms` (joined, left, told of
    encryption), which every sync batch reads. Another process's write (an operator's `commons
    rules set`) empties everything (`Storage._notice_other_writers`).
    """

    LIMIT = 200_000  # aggregate keys kept; past it the cache starts afresh (new days, new pairs)

    __slots__ = ("facts", "rooms", "sums")

    def __init__(self) -> None:
        self.sums: dict[_Row, int] = {}
        self.facts: dict[str, _Facts] = {}
        self.rooms: dict[str, Room | None] = {}

    def clear(self) -> None:
        self.sums.clear()
        self.facts.clear()
        self.rooms.clear()

    def after_commit(
        self, added: dict[_Row, int], facts_changed: set[str], rooms_changed: set[str]
    ) -> None:
        for room in rooms_changed:
            self.rooms.pop(room, None)
        sums = self.sums
        if len(sums) > self.LIMIT:
            sums.clear()
        for key, amount in added.items():
            value = sums.get(key)
            if value is not None:
                sums[key] = value + amount
        for room in facts_changed:
            self.facts.pop(room, None)


class Tx:
    """The writes of one transaction. Only obtained from `Storage.write()`.

    Write-behind: the hot inserts (ledger entries and their texts, handled events, outbox rows)
    and the aggregate additions are kept in memory and written together with `executemany`
    before anything reads the database and before the commit. Written one at a time between
    the Python work of each event, every statement found SQLite's pages and code cold, at three
    to four times the cost. `_conn` writes them out before it hands over the connection, so
    every statement sees them. The hot reads (`score`, `giver_state`) don't touch the database
    at all once `Committed` holds their values: they add this transaction's own additions
    (`_sums`) to the committed values. A savepoint rolled back drops what its block deferred
    and, if a write-out happened inside it (which the rollback undid), defers again what was
    deferred before it. A savepoint's own SAVEPOINT statement is issued only when a statement
    runs inside it (`_conn` again): a block that only defers is undone in memory alone.
    """

    def __init__(
        self,
        db: aiosqlite.Connection,
        heads: dict[str, LedgerHead],
        committed: Committed,
        pipeline: Storage | None = None,
    ) -> None:
        # Statements run directly on the connection (see the module docstring: inside a
        # transaction our lock is held, so aiosqlite's thread is idle).
        self._db_raw: sqlite3.Connection = db._conn
        # A pipelined transaction (`Storage.write(pipelined=True)`) begins only when it first
        # needs the database (`_raw`): until then it works from memory while the batch before
        # it is still committing. If beginning fails, the transaction is doomed: whatever caught
        # the error, the block fails at its end.
        self._pipeline = pipeline
        self.begun = pipeline is None
        self._doomed: BaseException | None = None
        self.handled_here: set[str] = set()  # events this transaction marked handled
        self._marks: list[_Savepoint] = []
        # Deferred inserts (statement, row) in order, and how many are written out.
        self._inserts: list[tuple[str, _Row]] = []
        self._written = 0
        # Deferred aggregate additions: ((statement, *key), amount) in order, how many are
        # written out, and the sums of the rest by key.
        self._adds: list[tuple[_Row, int]] = []
        self._adds_written = 0
        self._pending_sums: dict[_Row, int] = {}
        self._unwritten = False
        # All of this transaction's additions by key, written out or not; the committed values
        # they add to; the rooms whose membership facts this transaction changed.
        self._sums: dict[_Row, int] = {}
        self._committed = committed
        self.facts_changed: set[str] = set()
        self.rooms_changed: set[str] = set()  # rooms whose `rooms` row this one changed
        # Ledger heads as this transaction sees them; `dirty` ones are written before commit
        # (a head a savepoint's rollback restored may stay dirty: writing it again is harmless).
        # Each change is logged with the head it replaced, for rollbacks.
        self.heads = dict(heads)
        self.dirty: set[str] = set()
        self._head_log: list[tuple[str, LedgerHead | None]] = []

    @property
    def _raw(self) -> sqlite3.Connection:
        """The connection, in this transaction (begun now if it was not yet)."""
        if not self.begun:
            self._begin()
        return self._db_raw

    def _begin(self) -> None:
        if self._doomed is not None:
            raise self._doomed
        assert self._pipeline is not None  # noqa: S101 (only a pipelined one begins late)
        try:
            self._pipeline._begin_now()
        except BaseException as exc:
            self._doomed = exc
            raise
        self.begun = True

    @property
    def _conn(self) -> sqlite3.Connection:
        """The connection, inside every open savepoint, every deferred write written out."""
        if self._marks and not self._marks[-1].begun:
            for mark in self._marks:
                if not mark.begun:
                    self._raw.execute(f"SAVEPOINT {mark.name}")
                    mark.begun = True
        if self._unwritten:
            self._write_out()
        return self._raw

    def _defer(self, sql: str, row: _Row) -> None:
        self._inserts.append((sql, row))
        self._unwritten = True

    def _set_head(self, room: str, head: LedgerHead) -> None:
        self._head_log.append((room, self.heads.get(room)))
        self.heads[room] = head
        self.dirty.add(room)

    def _add(self, key: _Row, amount: int) -> None:
        self._adds.append((key, amount))
        pending, sums = self._pending_sums, self._sums
        pending[key] = pending.get(key, 0) + amount
        sums[key] = sums.get(key, 0) + amount
        self._unwritten = True

    def _remember(self, key: _Row, stored: int) -> int:
        """The committed value of aggregate `key`, from `stored`, what the database holds in
        this transaction (its written-out additions in, its pending ones not), remembered."""
        committed = stored + self._pending_sums.get(key, 0) - self._sums.get(key, 0)
        self._committed.sums[key] = committed
        return committed

    def _write_out(self) -> None:
        self._unwritten = False
        by_sql: dict[str, list[_Row]] = {}
        if self._written < len(self._inserts):
            for sql, row in self._inserts[self._written :]:
                rows = by_sql.get(sql)
                if rows is None:
                    by_sql[sql] = [row]
                else:
                    rows.append(row)
            for sql, rows in by_sql.items():
                self._raw.executemany(sql, rows)
            self._written = len(self._inserts)
        if self._pending_sums:
            by_sql = {}
            for key, amount in self._pending_sums.items():
                by_sql.setdefault(key[0], []).append((*key[1:], amount))
            for sql, params in by_sql.items():
                self._raw.executemany(sql, params)
            self._pending_sums = {}
        self._adds_written = len(self._adds)

    def _one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._conn.execute(sql, params).fetchone()

    def _all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        rows: list[Any] = self._conn.execute(sql, params).fetchall()
        return rows

    def savepoint(self) -> _Savepoint:
        """`async with tx.savepoint():` undoes just the block's writes if it raises (one
        event's effects in a batch)."""
        return _Savepoint(self)

    def _close(self, mark: _Savepoint, *, failed: bool) -> None:
        try:
            if failed:
                if mark.begun:
                    self._raw.execute(f"ROLLBACK TO {mark.name}")
                    self._raw.execute(f"RELEASE {mark.name}")
                self._roll_back_to(mark)
            elif mark.begun:
                self._raw.execute(f"RELEASE {mark.name}")
        finally:
            self._marks.pop()

    def _roll_back_to(self, mark: _Savepoint) -> None:
        # The database is as it was at the SAVEPOINT: what was written out by then stays
        # written; what was deferred by then (written out since or not) is deferred again.
        del self._inserts[mark.inserts :]
        self._written = mark.written
        for key, amount in self._adds[mark.adds :]:
            self._sums[key] -= amount
        del self._adds[mark.adds :]
        self._adds_written = mark.adds_written
        self._pending_sums = {}
        for key, amount in self._adds[mark.adds_written :]:
            self._pending_sums[key] = self._pending_sums.get(key, 0) + amount
        self._unwritten = True
        log = self._head_log
        while len(log) > mark.heads:
            room, before = log.pop()
            if before is None:
                del self.heads[room]
            else:
                self.heads[room] = before

    async def flush_heads(self) -> None:
        """Write out everything deferred and the changed ledger heads: before the commit."""
        if self._doomed is not None:
            raise self._doomed  # whatever a handler made of it, the batch fails with it
        if not self.begun:  # a pipelined transaction that has not needed the database yet
            self._begin()
        self._write_out()
        for room in sorted(self.dirty & self.heads.keys()):
            h = self.heads[room]
            self._conn.execute(
                "INSERT INTO ledger_head (room, size, head, frontier, rules, rule_sources) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (room) DO UPDATE SET size = excluded.size, "
                "head = excluded.head, frontier = excluded.frontier, rules = excluded.rules, "
                "rule_sources = excluded.rule_sources",
                (
                    room,
                    h.size,
                    h.head,
                    json.dumps(list(h.frontier)),
                    json.dumps(h.rules.as_json()),
                    json.dumps(h.sources),
                ),
            )
        self.dirty.clear()

    async def set_kv(self, key: str, value: str) -> None:
        self._conn.execute(
            "INSERT INTO kv (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    async def delete_kv(self, key: str) -> None:
        self._conn.execute("DELETE FROM kv WHERE key = ?", (key,))

    async def get_kv(self, key: str) -> str | None:
        row = self._one("SELECT value FROM kv WHERE key = ?", (key,))
        return str(row[0]) if row else None

    async def get_room(self, room_id: str) -> Room | None:
        # Every sync batch asks for each of its rooms: from `Committed` when it is there.
        known = self._committed.rooms
        if room_id in known and room_id not in self.rooms_changed:
            return known[room_id]
        row = self._one(_ROOM_SELECT, (room_id,))
        room = Room(row[0], row[1], row[2], bool(row[3]), row[4]) if row else None
        if room_id not in self.rooms_changed:
            known[room_id] = room
        return room

    async def add_room(self, room_id: str, joined_ts: int, join_event: str | None) -> None:
        self.rooms_changed.add(room_id)
        self._conn.execute(
            "INSERT INTO rooms (room_id, joined_ts, join_event) VALUES (?, ?, ?) "
            "ON CONFLICT (room_id) DO UPDATE SET joined_ts = excluded.joined_ts, "
            "join_event = excluded.join_event, left_ts = NULL",
            (room_id, joined_ts, join_event),
        )

    async def mark_left(self, room_id: str, ts: int) -> None:
        self.rooms_changed.add(room_id)
        self._conn.execute("UPDATE rooms SET left_ts = ? WHERE room_id = ?", (ts, room_id))

    async def mark_encrypted_notice(self, room_id: str) -> None:
        self.rooms_changed.add(room_id)
        self._conn.execute("UPDATE rooms SET encrypted_notice = 1 WHERE room_id = ?", (room_id,))

    async def is_handled(self, event_id: str) -> bool:
        return (
            self._one("SELECT 1 FROM handled_events WHERE event_id = ?", (event_id,)) is not None
        )

    async def handled_among(self, event_ids: Sequence[str]) -> set[str]:
        """Those of `event_ids` handled already (a sync batch's timeline, in one statement).

        A pipelined transaction not yet begun reads what is committed through the storage's
        reader connection (the batch before may still be committing) and adds the events that
        batch and this one marked handled: the batch need not wait for that commit."""
        query = (
            "SELECT event_id FROM handled_events WHERE event_id IN "
            "(SELECT value FROM json_each(?))"
        )
        params = (json.dumps(list(event_ids)),)
        pipeline = self._pipeline
        if self.begun or pipeline is None:
            return {str(r[0]) for r in self._all(query, params)}
        found = {str(r[0]) for r in pipeline._reader().execute(query, params).fetchall()}
        elsewhere = pipeline.committing_handled | self.handled_here
        return found | elsewhere.intersection(event_ids)

    async def handled_event(self, event_id: str) -> HandledEvent | None:
        row = self._one(
            "SELECT event_id, room_id, sender, kind FROM handled_events WHERE event_id = ?",
            (event_id,),
        )
        return HandledEvent(*row) if row else None

    async def mark_handled(
        self, event_id: str, room_id: str, sender: str, kind: str, now: int
    ) -> None:
        self.handled_here.add(event_id)
        self._defer(
            "INSERT INTO handled_events (event_id, room_id, sender, kind, handled_ts) "
            "VALUES (?, ?, ?, ?, ?)",
            (event_id, room_id, sender, kind, now),
        )

    async def enqueue(
        self, room_id: str, txn_id: str, event_type: str, content: dict[str, Any], now: int
    ) -> None:
        # A row already queued under this txn_id is kept, never doubled (see render.txn_id).
        self._defer(
            "INSERT INTO outbox (room_id, txn_id, event_type, content, created_ts) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (txn_id) DO NOTHING",
            (room_id, txn_id, event_type, _TEXT_JSON(content), now),
        )

    async def mark_sent(self, row_id: int, event_id: str, now: int) -> None:
        self._conn.execute(
            "UPDATE outbox SET sent_ts = ?, sent_event_id = ? WHERE id = ?",
            (now, event_id, row_id),
        )

    async def mark_failed(self, row_id: int, reason: str) -> None:
        self._conn.execute("UPDATE outbox SET failed = ? WHERE id = ?", (reason, row_id))

    async def add_expired(
        self, event_id: str, room_id: str, sender: str, ts: int, received_ts: int
    ) -> None:
        self._conn.execute(
            "INSERT INTO expired_commands (event_id, room_id, sender, ts, received_ts) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (event_id, room_id, sender, ts, received_ts),
        )

    # -- the ledger ------------------------------------------------------------------------

    async def ledger_head(self, room: str) -> LedgerHead | None:
        cached = self.heads.get(room)
        if cached is not None:
            return cached
        rows = self._all(
            "SELECT size, head, frontier, rules, rule_sources FROM ledger_head WHERE room = ?",
            (room,),
        )
        if not rows:
            return None
        size, head, frontier, rules, sources = next(iter(rows))
        loaded = LedgerHead(
            size,
            head,
            MerkleFrontier.from_hex(size, json.loads(frontier)).nodes(),
            RoomRules(json.loads(rules)),
            json.loads(sources),
        )
        self.heads[room] = loaded
        return loaded

    async def start_ledger(
        self,
        room: str,
        *,
        ts: int,
        actor: str,
        rules: RoomRules,
        sources: dict[str, str],
        public_key: str,
        event: str | None,
    ) -> LedgerEntry:
        """The room's genesis entry: its starting rules and the bot's public key."""
        entry = make_entry(
            prev=None,
            room=room,
            ts=ts,
            actor=actor,
            kind=GENESIS,
            data=genesis_data(rules.as_json(), public_key),
            event=event,
            rules=rules.hash(),
        )
        frontier = MerkleFrontier()
        frontier.append(entry.leaf_hash())
        self._insert_entry(entry)
        self._set_head(room, LedgerHead(1, entry.hash(), frontier.nodes(), rules, sources))
        return entry

    async def append(
        self,
        room: str,
        *,
        ts: int,
        actor: str,
        kind: str,
        data: dict[str, Any],
        event: str | None,
        text: str | None = None,
        salt: bytes | None = None,
        rule_source: str | None = None,
    ) -> LedgerEntry:
        """Append one entry and update every aggregate it changes, in this transaction."""
        current = await self.ledger_head(room)
        if current is None:
            raise StorageError(f"{room} has no ledger yet")
        rules = current.rules
        if text is not None:
            if salt is None or len(salt) != SALT_BYTES:
                raise ValueError("free text needs a 16-byte salt")
            data = {**data, "text_sha256": commit_text(text, salt)}
        entry = LedgerEntry(
            room=room,
            seq=current.size + 1,
            ts=ts,
            actor=actor,
            kind=kind,
            data=data,
            event=event,
            rules=rules.hash(),
            prev=current.head,
        )
        self._insert_entry(entry)
        if text is not None and salt is not None:
            self._defer(
                "INSERT INTO ledger_text (room, seq, text, salt) VALUES (?, ?, ?, ?)",
                (room, entry.seq, text, salt.hex()),
            )
        nodes = frontier_after(current.size, current.nodes, entry.leaf_hash())
        await self._apply_effects(entry, rules)
        sources = current.sources
        if kind in RULE_KINDS:
            rules = rules.with_change(str(entry.data["key"]), entry.data["value"])
            sources = {**sources, str(entry.data["key"]): rule_source or f"entry {entry.seq}"}
        self._set_head(room, LedgerHead(entry.seq, entry.hash(), nodes, rules, sources))
        return entry

    def _insert_entry(self, entry: LedgerEntry) -> None:
        self._defer(
            "INSERT INTO ledger (room, seq, ts, actor, kind, data, event, rules, prev, hash) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                entry.room,
                entry.seq,
                entry.ts,
                entry.actor,
                entry.kind,
                entry.data_json(),
                entry.event,
                entry.rules,
                entry.prev,
                entry.hash(),
            ),
        )

    async def _apply_effects(self, entry: LedgerEntry, rules: RoomRules) -> None:
        """Update the aggregates for `entry`, written under `rules`."""
        room = entry.room
        if entry.kind in (KUDOS, ATTEND):
            self._apply_deltas(room, scoring.deltas(entry, rules))
        elif entry.kind in (REVERSAL, MOD_VOID):
            target = await self.entry(room, int(entry.data["target"]))
            if target is None:
                return
            t = target.entry
            if t.kind in (KUDOS, ATTEND) and not await self.is_voided(room, t.seq):
                self._conn.execute(
                    "INSERT INTO voided (room, seq, by_seq) VALUES (?, ?, ?)",
                    (room, t.seq, entry.seq),
                )
                self._apply_deltas(room, scoring.negate(await self._deltas_of(t)))
            elif t.kind == MOD_VOID and entry.kind == REVERSAL:
                # An appeal reverses a void: the voided entry counts again.
                restored = await self.entry(room, int(t.data["target"]))
                cur = self._conn.execute(
                    "DELETE FROM voided WHERE room = ? AND seq = ? AND by_seq = ?",
                    (room, int(t.data["target"]), t.seq),
                )
                if restored is not None and cur.rowcount:
                    self._apply_deltas(room, await self._deltas_of(restored.entry))
        elif entry.kind == OPTOUT:
            self.facts_changed.add(room)
            self._conn.execute(
                "INSERT INTO optout (room, user) VALUES (?, ?) ON CONFLICT DO NOTHING",
                (room, entry.actor),
            )
        elif entry.kind == OPTIN:
            self.facts_changed.add(room)
            self._conn.execute(
                "DELETE FROM optout WHERE room = ? AND user = ?", (room, entry.actor)
            )

    async def _deltas_of(self, entry: LedgerEntry) -> tuple[scoring.Delta, ...]:
        # The day of an entry is counted in the time zone in force when it was written.
        rules = await self.rules_at(entry.room, entry.seq)
        return scoring.deltas(entry, rules)

    async def rules_at(self, room: str, seq: int) -> RoomRules:
        """The rules in force when entry `seq` was written (its `rules` field names them)."""
        head = await self.ledger_head(room)
        if head is None:
            raise StorageError(f"{room} has no ledger yet")
        row = self._one("SELECT rules FROM ledger WHERE room = ? AND seq = ?", (room, seq))
        if row is None or row[0] == head.rules.hash():
            return head.rules
        # Rare: the rules changed since. Replay the rule changes from genesis.
        cur = self._conn.execute(
            "SELECT seq, kind, data FROM ledger WHERE room = ? AND seq <= ? AND "
            "(kind = ? OR kind IN (SELECT value FROM json_each(?))) ORDER BY seq",
            (room, seq, GENESIS, json.dumps(sorted(RULE_KINDS))),
        )
        rules: RoomRules | None = None
        for entry_seq, kind, data in cur.fetchall():
            payload = json.loads(data)
            if kind == GENESIS:
                rules = RoomRules(payload["rules"])
            elif rules is not None and entry_seq < seq:
                rules = rules.with_change(payload["key"], payload["value"])
        return rules if rules is not None else head.rules

    def _apply_deltas(self, room: str, deltas: Sequence[scoring.Delta]) -> None:
        for d in deltas:
            self._add((_ADD_SCORE, room, d.receiver), d.amount)
            self._add((_ADD_SCORE_DAY, room, d.receiver, d.day), d.amount)
            if d.giver is not None:
                self._add((_ADD_GIVEN_DAY, room, d.giver, d.day), d.amount)
                self._add((_ADD_PAIR_DAY, room, d.giver, d.receiver, d.day), d.amount)

    async def entry(self, room: str, seq: int) -> StoredEntry | None:
        row = self._one(_ENTRY_SELECT + "WHERE l.room = ? AND l.seq = ?", (room, seq))
        return _stored(row) if row else None

    async def reaction_kudos(self, room: str, event_id: str) -> StoredEntry | None:
        """The kudos entry that the reaction `event_id` made, if any."""
        row = self._one(
            "SELECT seq FROM ledger INDEXED BY ledger_by_reaction "  # noqa: S608 (a constant)
            f"WHERE room = ? AND event = ? AND {_REACTION_KUDOS} ORDER BY seq LIMIT 1",
            (room, event_id),
        )
        return await self.entry(room, row[0]) if row else None

    async def entries(
        self, room: str, *, after: int = 0, limit: int = -1, newest_first: bool = False
    ) -> list[StoredEntry]:
        query = _ENTRIES_NEWEST if newest_first else _ENTRIES_OLDEST
        return _stored_all(self._conn.execute(query, (room, after, limit)))

    async def entries_about(self, room: str, user: str, limit: int) -> list[StoredEntry]:
        """Newest kudos and attendance credited to `user`, for `!why`."""
        cur = self._conn.execute(
            "SELECT seq FROM ledger WHERE room = ? AND kind IN (?, ?) AND "
            "(json_extract(data, '$.to') = ? OR json_extract(data, '$.user') = ?) "
            "ORDER BY seq DESC LIMIT ?",
            (room, KUDOS, ATTEND, user, user, limit),
        )
        seqs = [r[0] for r in cur.fetchall()]
        found = [await self.entry(room, seq) for seq in seqs]
        return [e for e in found if e is not None]

    async def entries_of_kinds(
        self, room: str, kinds: Sequence[str], limit: int
    ) -> list[StoredEntry]:
        """The newest entries of these kinds, newest first."""
        rows = self._all(
            "SELECT seq FROM ledger WHERE room = ? AND kind IN (SELECT value FROM json_each(?)) "
            "ORDER BY seq DESC LIMIT ?",
            (room, json.dumps(list(kinds)), limit),
        )
        found = [await self.entry(room, int(r[0])) for r in rows]
        return [e for e in found if e is not None]

    async def voided_by(self, room: str, seq: int) -> int | None:
        row = self._one("SELECT by_seq FROM voided WHERE room = ? AND seq = ?", (room, seq))
        return int(row[0]) if row else None

    async def is_voided(self, room: str, seq: int) -> bool:
        return await self.voided_by(room, seq) is not None

    async def erase_text(self, room: str, seq: int) -> bool:
        cur = self._conn.execute("DELETE FROM ledger_text WHERE room = ? AND seq = ?", (room, seq))
        return bool(cur.rowcount)

    async def score(self, room: str, user: str) -> int:
        # A hot read (every kudos reply): nothing is written out for it (see the class).
        key = (_ADD_SCORE, room, user)
        committed = self._committed.sums.get(key)
        if committed is None:
            row = self._raw.execute(
                "SELECT total FROM score WHERE room = ? AND user = ?", (room, user)
            ).fetchone()
            committed = self._remember(key, int(row[0]) if row else 0)
        return committed + self._sums.get(key, 0)

    async def score_days(self, room: str, user: str) -> dict[str, int]:
        cur = self._conn.execute(
            "SELECT day, received FROM score_day WHERE room = ? AND user = ? AND received != 0",
            (room, user),
        )
        return {day: int(n) for day, n in cur.fetchall()}

    async def top(
        self, room: str, limit: int, since_day: str | None = None
    ) -> list[tuple[str, int]]:
        """The leaderboard, opted-out members left out."""
        if since_day is None:
            cur = self._conn.execute(
                "SELECT user, total FROM score WHERE room = ? AND total > 0 AND user NOT IN "
                "(SELECT user FROM optout WHERE room = ?) ORDER BY total DESC, user LIMIT ?",
                (room, room, limit),
            )
        else:
            cur = self._conn.execute(
                # The planner would walk every day of every user by primary key to avoid a
                # sort; reading just the days asked for is far cheaper for the usual ranges.
                "SELECT user, SUM(received) AS n FROM score_day INDEXED BY score_day_cover "
                "WHERE room = ? AND day >= ? "
                "AND user NOT IN (SELECT user FROM optout WHERE room = ?) "
                "GROUP BY user HAVING n > 0 ORDER BY n DESC, user LIMIT ?",
                (room, since_day, room, limit),
            )
        return [(str(u), int(n)) for u, n in cur.fetchall()]

    async def giver_state(
        self, room: str, giver: str, receivers: Sequence[str], day: str
    ) -> scoring.GiverState:
        """What a kudos check needs to know of `giver` on local `day`. A hot read (every kudos):
        from `Committed` when it knows every fact; else one statement for up to
        _PAIRS_PER_STATEMENT receivers (a long list of pills takes a few), nothing written out."""
        unique = list(receivers) if len(receivers) == 1 else list(dict.fromkeys(receivers))
        facts = None if room in self.facts_changed else self._committed.facts.get(room)
        state = None if facts is None else self._known_giver_state(facts, room, giver, unique, day)
        if state is None:
            facts = self._read_giver_facts(room, giver, unique, day)
            state = self._known_giver_state(facts, room, giver, unique, day)
            assert state is not None  # noqa: S101 (the facts just read are all there)
        return state

    def _known_giver_state(
        self, facts: _Facts, room: str, giver: str, unique: list[str], day: str
    ) -> scoring.GiverState | None:
        """`giver_state` from the committed values and this transaction's own additions; None
        if a fact is not known. A plain loop: this runs for every kudos."""
        since, opted = facts
        sums, mine = self._committed.sums, self._sums
        given_key = (_ADD_GIVEN_DAY, room, giver, day)
        given = sums.get(given_key)
        if given is None or giver not in since or giver not in opted:
            return None
        pairs: dict[str, int] = {}
        out = [giver] if opted[giver] else []
        for receiver in unique:
            key = (_ADD_PAIR_DAY, room, giver, receiver, day)
            pair = sums.get(key)
            if pair is None or receiver not in opted:
                return None
            pairs[receiver] = pair + mine.get(key, 0)
            if opted[receiver]:
                out.append(receiver)
        return scoring.GiverState(
            given_today=given + mine.get(given_key, 0),
            pair_today=pairs,
            member_since_ms=since[giver],
            opted_out=frozenset(out),
        )

    def _read_giver_facts(self, room: str, giver: str, unique: list[str], day: str) -> _Facts:
        """Read `giver_state`'s facts from the database into `Committed` (or, for a room whose
        membership facts this transaction changed, into a copy only it uses)."""
        if room in self.facts_changed:
            facts: _Facts = ({}, {})
        else:
            facts = self._committed.facts.setdefault(room, ({}, {}))
        since, opted = facts
        step = _PAIRS_PER_STATEMENT
        for part in [unique[i : i + step] for i in range(0, len(unique), step)] or [[]]:
            sql = _giver_state_sql(len(part))
            given, since[giver], opted_json, *counts = self._raw.execute(
                sql, (room, giver, day, *part)
            ).fetchone()
            out = set(json.loads(opted_json))
            for u in (giver, *part):
                opted[u] = u in out
            self._remember((_ADD_GIVEN_DAY, room, giver, day), given or 0)
            for receiver, n in zip(part, counts, strict=True):
                self._remember((_ADD_PAIR_DAY, room, giver, receiver, day), n or 0)
        return facts

    async def opted_out(self, room: str, users: Sequence[str]) -> frozenset[str]:
        rows = self._all(
            "SELECT user FROM optout WHERE room = ? AND user IN (SELECT value FROM json_each(?))",
            (room, json.dumps(list(users))),
        )
        return frozenset(str(r[0]) for r in rows)

    async def set_member(self, room: str, user: str, since: int | None) -> None:
        """Record a join (first seen `since`) or, with None, a leave."""
        self.facts_changed.add(room)
        if since is None:
            self._conn.execute("DELETE FROM members WHERE room = ? AND user = ?", (room, user))
        else:
            self._conn.execute(
                "INSERT INTO members (room, user, since) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                (room, user, since),
            )

    # -- items and votes -------------------------------------------------------------------

    async def next_item(self, room: str) -> int:
        row = self._one("SELECT COALESCE(MAX(item), 0) + 1 FROM items WHERE room = ?", (room,))
        return int(row[0])

    async def add_item(self, item: Item) -> None:
        self._conn.execute(
            "INSERT INTO items (room, item, type, author, open_seq, open_event, status, method, "
            "options, quorum, closes, at, need, rule_key, rule_value, target, poll_txn) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                item.room, item.item, item.type, item.author, item.open_seq, item.open_event,
                item.status, item.method, json.dumps(list(item.options)), item.quorum,
                item.closes, item.at, item.need, item.rule_key, json.dumps(item.rule_value),
                item.target, item.poll_txn,
            ),
        )  # fmt: skip

    async def item(self, room: str, item: int) -> Item | None:
        row = self._one(_ITEM_SELECT + "WHERE room = ? AND item = ?", (room, item))
        return _item(row) if row else None

    async def items(self, room: str, *, status: str | None = None) -> list[Item]:
        if status is None:
            rows = self._all(_ITEM_SELECT + "WHERE room = ? ORDER BY item", (room,))
        else:
            rows = self._all(
                _ITEM_SELECT + "WHERE room = ? AND status = ? ORDER BY item", (room, status)
            )
        return [_item(r) for r in rows]

    async def item_by_poll_event(self, room: str, event_id: str) -> Item | None:
        row = self._one(
            _ITEM_SELECT + "WHERE room = ? AND poll_txn = "  # noqa: S608 (constants only)
            "(SELECT txn_id FROM outbox WHERE sent_event_id = ? AND room_id = ?)",
            (room, event_id, room),
        )
        return _item(row) if row else None

    async def poll_event(self, item: Item) -> str | None:
        """The event ID of the item's native poll, once it has been sent."""
        if item.poll_txn is None:
            return None
        row = self._one("SELECT sent_event_id FROM outbox WHERE txn_id = ?", (item.poll_txn,))
        return str(row[0]) if row and row[0] else None

    async def set_item_status(self, room: str, item: int, status: str) -> None:
        self._conn.execute(
            "UPDATE items SET status = ? WHERE room = ? AND item = ?", (status, room, item)
        )

    async def due_items(self, now: int) -> list[tuple[str, int]]:
        rows = self._all(
            "SELECT room, item FROM items WHERE status = 'open' AND closes <= ? "
            "ORDER BY closes, room, item",
            (now,),
        )
        return [(str(r[0]), int(r[1])) for r in rows]

    async def next_deadlines(self) -> list[tuple[str, int, int]]:
        rows = self._all(
            "SELECT room, item, closes FROM items WHERE status = 'open' AND closes IS NOT NULL"
        )
        return [(str(r[0]), int(r[1]), int(r[2])) for r in rows]

    async def put_vote(self, room: str, item: int, vote: Vote) -> None:
        self._conn.execute(
            "INSERT INTO votes (room, item, voter, choice, reason, ts, event, seq) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (room, item, voter) DO UPDATE SET "
            "choice = excluded.choice, reason = excluded.reason, ts = excluded.ts, "
            "event = excluded.event, seq = excluded.seq",
            (room, item, vote.voter, json.dumps(vote.choice), vote.reason, vote.ts, vote.event,
             vote.seq),
        )  # fmt: skip

    async def drop_vote(self, room: str, item: int, voter: str) -> None:
        self._conn.execute(
            "DELETE FROM votes WHERE room = ? AND item = ? AND voter = ?", (room, item, voter)
        )

    async def votes(self, room: str, item: int) -> list[Vote]:
        rows = self._all(
            "SELECT voter, choice, reason, ts, event, seq FROM votes WHERE room = ? AND item = ? "
            "ORDER BY seq",
            (room, item),
        )
        return [Vote(r[0], json.loads(r[1]), r[2], r[3], r[4], r[5]) for r in rows]

    async def vote_by_event(self, room: str, event_id: str) -> tuple[int, Vote] | None:
        row = self._one(
            "SELECT item, voter, choice, reason, ts, event, seq FROM votes "
            "WHERE room = ? AND event = ?",
            (room, event_id),
        )
        if row is None:
            return None
        return int(row[0]), Vote(row[1], json.loads(row[2]), row[3], row[4], row[5], row[6])

    # -- action calls ----------------------------------------------------------------------

    async def commitments(self, room: str, item: int) -> list[tuple[str, int]]:
        rows = self._all(
            "SELECT user, min_others FROM commitments WHERE room = ? AND item = ? ORDER BY seq",
            (room, item),
        )
        return [(str(r[0]), int(r[1])) for r in rows]

    async def commit(
        self, room: str, item: int, user: str, min_others: int | None, ts: int, seq: int
    ) -> None:
        """Record someone's latest commitment; None withdraws it."""
        if min_others is None:
            self._conn.execute(
                "DELETE FROM commitments WHERE room = ? AND item = ? AND user = ?",
                (room, item, user),
            )
            return
        self._conn.execute(
            "INSERT INTO commitments (room, item, user, min_others, ts, seq) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (room, item, user) DO UPDATE SET "
            "min_others = excluded.min_others, ts = excluded.ts, seq = excluded.seq",
            (room, item, user, min_others, ts, seq),
        )

    async def attendance(self, room: str, item: int) -> dict[str, bool]:
        """Who came (self-reported or confirmed): user -> whether kudos were credited."""
        rows = self._all(
            "SELECT user, credited FROM attendance WHERE room = ? AND item = ?", (room, item)
        )
        return {str(r[0]): bool(r[1]) for r in rows}

    async def attend(self, room: str, item: int, user: str, credited: bool, seq: int) -> None:
        self._conn.execute(
            "INSERT INTO attendance (room, item, user, credited, seq) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (room, item, user) DO UPDATE SET credited = MAX(credited, "
            "excluded.credited), seq = excluded.seq",
            (room, item, user, int(credited), seq),
        )

    async def add_reminders(self, room: str, item: int, times: Sequence[int]) -> None:
        for due in times:
            self._conn.execute(
                "INSERT INTO reminders (room, item, due) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                (room, item, due),
            )

    async def due_reminders(self, now: int) -> list[tuple[str, int, int]]:
        rows = self._all(
            "SELECT r.room, r.item, r.due FROM reminders r JOIN items i "
            "ON i.room = r.room AND i.item = r.item "
            "WHERE r.sent = 0 AND r.due <= ? AND i.status = 'go' ORDER BY r.due",
            (now,),
        )
        return [(str(r[0]), int(r[1]), int(r[2])) for r in rows]

    async def pending_reminders(self) -> list[tuple[str, int, int]]:
        rows = self._all(
            "SELECT r.room, r.item, r.due FROM reminders r JOIN items i "
            "ON i.room = r.room AND i.item = r.item WHERE r.sent = 0 AND i.status = 'go'"
        )
        return [(str(r[0]), int(r[1]), int(r[2])) for r in rows]

    async def reminder_sent(self, room: str, item: int, due: int) -> None:
        self._conn.execute(
            "UPDATE reminders SET sent = 1 WHERE room = ? AND item = ? AND due = ?",
            (room, item, due),
        )

    # -- reports -----------------------------------------------------------------------------

    async def day_seqs(self, room: str, start: int, end: int) -> tuple[int, int] | None:
        """The first and last seq of the entries with start <= ts < end (None if there are none).

        Every entry of that time lies between them, in seq order; so may a few entries of other
        times (an entry's time is clamped by the time model, not bound to its seq).
        """
        first, last = self._one(
            "SELECT min(seq), max(seq) FROM ledger WHERE room = ? AND ts >= ? AND ts < ?",
            (room, start, end),
        )
        return None if first is None else (int(first), int(last))

    async def ledger_rows(self, room: str, *, after: int, limit: int) -> list[LedgerRow]:
        """Up to `limit` entries after seq `after`, in seq order, as `LedgerRow`s: what checking
        the chain and a report need, without building a `LedgerEntry` each (see `_ledger_rows`)."""
        rows = self._conn.execute(
            "SELECT seq, ts, actor, kind, data, event, rules, prev, hash FROM ledger "
            "WHERE room = ? AND seq > ? ORDER BY seq LIMIT ?",
            (room, after, limit),
        )
        return _ledger_rows(room, rows)

    async def entries_at(self, room: str, seqs: Iterable[int]) -> list[StoredEntry]:
        """The entries with these seqs (those there are), in seq order: one statement."""
        rows = self._conn.execute(
            _ENTRY_SELECT + "WHERE l.room = ? AND l.seq IN "  # noqa: S608 (constants only)
            "(SELECT value FROM json_each(?)) ORDER BY l.seq",
            (room, json.dumps(sorted(seqs))),
        )
        return _stored_all(rows)

    async def texts_between(self, room: str, first: int, last: int) -> dict[int, str]:
        """The free texts (not erased) of entries first..last, by seq."""
        rows = self._all(
            "SELECT seq, text FROM ledger_text WHERE room = ? AND seq BETWEEN ? AND ?",
            (room, first, last),
        )
        return {int(r[0]): str(r[1]) for r in rows}

    async def unreviewed_days(self, room: str, before: str) -> list[str]:
        """Days before `before` whose report was made but not yet signed off with a review."""
        # The review entries through the (room, kind) index: a plain `kind = 'review'` filter
        # next to json_extract makes SQLite 3.40 walk the room's whole ledger instead.
        rows = self._all(
            "SELECT day FROM reports WHERE room = ?1 AND day < ?2 AND day NOT IN ("
            "SELECT coalesce(json_extract(data, '$.date'), '') FROM ledger WHERE room = ?1 "
            "AND seq IN (SELECT seq FROM ledger WHERE room = ?1 AND kind = 'review')) "
            "ORDER BY day",
            (room, before),
        )
        return [str(r[0]) for r in rows]

    async def kudos_per_day(self, room: str, since: str, before: str) -> dict[str, int]:
        rows = self._all(
            "SELECT day, SUM(received) FROM score_day WHERE room = ? AND day >= ? AND day < ? "
            "GROUP BY day",
            (room, since, before),
        )
        return {str(r[0]): int(r[1]) for r in rows}

    async def members_since(self, room: str) -> dict[str, int]:
        rows = self._all("SELECT user, since FROM members WHERE room = ?", (room,))
        return {str(r[0]): int(r[1]) for r in rows}

    async def optout_count(self, room: str) -> int:
        row = self._one("SELECT count(*) FROM optout WHERE room = ?", (room,))
        return int(row[0])

    async def expired_between(self, room: str, start: int, end: int) -> int:
        row = self._one(
            "SELECT count(*) FROM expired_commands WHERE room_id = ? AND received_ts >= ? "
            "AND received_ts < ?",
            (room, start, end),
        )
        return int(row[0])

    async def report_days(self, room: str) -> dict[str, int | None]:
        """Days with a made report -> the size of its checkpoint."""
        rows = self._all(
            "SELECT day, checkpoint_size FROM reports WHERE room = ? ORDER BY day", (room,)
        )
        return {str(r[0]): r[1] for r in rows}

    async def add_report(
        self, room: str, day: str, made: int, checkpoint_size: int | None
    ) -> bool:
        """Record a made report; False if that day's report was made already."""
        cur = self._conn.execute(
            "INSERT INTO reports (room, day, made_ts, checkpoint_size) VALUES (?, ?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            (room, day, made, checkpoint_size),
        )
        return bool(cur.rowcount)

    async def rooms_with_ledgers(self) -> list[str]:
        rows = self._all(
            "SELECT h.room FROM ledger_head h JOIN rooms r ON r.room_id = h.room "
            "WHERE r.left_ts IS NULL"
        )
        return [str(r[0]) for r in rows]

    async def add_checkpoint(self, signed: SignedCheckpoint, frontier: list[str]) -> None:
        cp = signed.checkpoint
        self._conn.execute(
            "INSERT INTO checkpoints (room, size, root, ts, signature, key, frontier) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (cp.room, cp.size, cp.root, cp.ts, signed.signature, signed.key, json.dumps(frontier)),
        )

    async def checkpoints(self, room: str) -> list[StoredCheckpoint]:
        cur = self._conn.execute(
            "SELECT room, size, root, ts, signature, key, frontier FROM checkpoints "
            "WHERE room = ? ORDER BY size",
            (room,),
        )
        return [
            StoredCheckpoint(
                SignedCheckpoint(Checkpoint(r[0], r[1], r[2], r[3]), r[4], r[5]), json.loads(r[6])
            )
            for r in cur.fetchall()
        ]

    async def frontier(self, room: str) -> list[str]:
        head = await self.ledger_head(room)
        return list(head.frontier) if head else []


_ITEM_SELECT = (
    "SELECT room, item, type, author, open_seq, open_event, status, method, options, quorum, "
    "closes, at, need, rule_key, rule_value, target, poll_txn FROM items "
)


_PAIRS_PER_STATEMENT = 32


@functools.lru_cache(maxsize=_PAIRS_PER_STATEMENT + 1)
def _giver_state_sql(receivers: int) -> str:
    # ?1 room, ?2 giver, ?3 day, then the receivers; one statement instead of one per fact.
    others = [f"?{4 + i}" for i in range(receivers)]
    pairs = "".join(
        # Only numbered placeholders are put into the text: the values are bound.
        f", (SELECT given FROM pair_day WHERE room = ?1 AND giver = ?2 AND receiver = {r} "  # noqa: S608
        "AND day = ?3)"
        for r in others
    )
    return (
        "SELECT (SELECT given FROM given_day WHERE room = ?1 AND giver = ?2 AND day = ?3), "  # noqa: S608
        "(SELECT since FROM members WHERE room = ?1 AND user = ?2), "
        "(SELECT json_group_array(user) FROM optout WHERE room = ?1 AND user IN "
        f"({', '.join(['?2', *others])})){pairs}"
    )


def _item(row: Any) -> Item:
    return Item(
        row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7],
        tuple(json.loads(row[8])), row[9], row[10], row[11], row[12], row[13],
        json.loads(row[14]) if row[14] is not None else None, row[15], row[16],
    )  # fmt: skip


_ENTRY_SELECT = (
    "SELECT l.room, l.seq, l.ts, l.actor, l.kind, l.data, l.event, l.rules, l.prev, l.hash, "
    "t.text, t.salt FROM ledger l LEFT JOIN ledger_text t ON t.room = l.room AND t.seq = l.seq "
)
_DECODER = json.JSONDecoder()
_ENTRIES_OLDEST = _ENTRY_SELECT + "WHERE l.room = ? AND l.seq > ? ORDER BY l.seq LIMIT ?"
_ENTRIES_NEWEST = _ENTRY_SELECT + "WHERE l.room = ? AND l.seq > ? ORDER BY l.seq DESC LIMIT ?"


def _stored_all(rows: Iterable[Any]) -> list[StoredEntry]:
    """`_stored` of each row as it is read, with the cyclic garbage collector paused meanwhile
    (a day's 100,000 entries make half a million objects; see `gc_paused`)."""
    with gc_paused():
        return [_stored(row) for row in rows]


def _stored(row: Any) -> StoredEntry:
    salt = bytes.fromhex(row[11]) if row[11] is not None else None
    return StoredEntry(_entry(row), row[10], salt)


def _entry(row: Any) -> LedgerEntry:
    """The entry of a ledger row (an `_ENTRY_SELECT` row).

    A report reads 100,000 entries, and checking and encoding each one again costs far more
    than reading it. So the row is first encoded the cheap way: the `data` column as
    `_insert_entry` wrote it (the canonical JSON of `data`; databases from before 2026-11-26
    hold json.dumps's form, sorted keys and unescaped Unicode with ", " and ": ", which is
    tightened), every other string escaped as the canonical encoder escapes it. When those bytes
    hash to the row's `hash`, written when the entry was appended after `LedgerEntry` had checked
    it, they are that entry's canonical bytes, and the row's fields are that entry's: each
    string is escaped, so it can't stand for another, and `data` is parsed from its own span of
    the bytes, which must hold one JSON value exactly. Otherwise (a string in `data` holding
    ", " or ": ", a damaged row) the entry is checked and encoded in full.
    """
    room, seq, ts, actor, kind, data, event, rules, prev, recorded = row[:10]
    tight = data.replace(", ", ",").replace(": ", ":")
    try:
        encoded = (
            f'{{"actor":{_quote(actor)},"data":{tight},'
            f'"event":{"null" if event is None else _quote(event)},"kind":{_quote(kind)},'
            f'"prev":{_quote(prev)},"room":{_quote(room)},"rules":{_quote(rules)},'
            f'"seq":{seq:d},"ts":{ts:d}}}'
        ).encode()
        if hashlib.sha256(encoded).hexdigest() == recorded:
            parsed, end = _DECODER.raw_decode(tight)
            if end == len(tight):
                fields = {
                    "room": room, "seq": seq, "ts": ts, "actor": actor, "kind": kind,
                    "data": parsed, "event": event, "rules": rules, "prev": prev,
                }  # fmt: skip
                return LedgerEntry._checked(fields, encoded)
    except ValueError:  # a lone surrogate (UnicodeEncodeError), `data` not JSON: as below
        pass
    return LedgerEntry(
        room=room,
        seq=seq,
        ts=ts,
        actor=actor,
        kind=kind,
        data=json.loads(data),
        event=event,
        rules=rules,
        prev=prev,
    )


class _Pieces(dict[str, str]):
    """Strings made from keys by `make`, each the first time it is asked for."""

    def __init__(self, make: Callable[[str], str]) -> None:
        super().__init__()
        self.make = make

    def __missing__(self, key: str) -> str:
        made = self[key] = self.make(key)
        return made


def _ledger_rows(room: str, rows: Iterable[Any]) -> list[LedgerRow]:
    """The `LedgerRow`s of ledger rows (seq, ts, actor, kind, data, event, rules, prev, hash).

    Each row is encoded the cheap way `_entry` describes. When those bytes hash to the recorded
    hash they are the canonical JSON of the entry as it was appended, and the row's fields are
    that entry's: every string is escaped and every number an integer, so the fixed keys between
    them can't be read at other places, and `data` is what lies between "data" and "event".
    Otherwise (a row changed since, or a string in `data` holding ", " or ": ") `_entry` reads
    the row in full: checked and encoded again, or refused.
    """
    # Actors, kinds and rules hashes repeat: the encoded pieces around them are made once each.
    before_data = _Pieces(lambda actor: f'{{"actor":{_quote(actor)},"data":')
    before_prev = _Pieces(lambda kind: f',"kind":{_quote(kind)},"prev":')
    before_seq = _Pieces(lambda rules: f',"room":{_quote(room)},"rules":{_quote(rules)},"seq":')
    sha256 = hashlib.sha256
    result = []
    for row in rows:
        seq, ts, actor, kind, data, event, rules, prev, recorded = row
        tight = data.replace(", ", ",").replace(": ", ":")
        try:
            encoded = (
                f'{before_data[actor]}{tight},"event":{"null" if event is None else _quote(event)}'
                f'{before_prev[kind]}{_quote(prev)}{before_seq[rules]}{seq:d},"ts":{ts:d}}}'
            ).encode()
        except UnicodeEncodeError:  # a lone surrogate: `_entry` names the problem
            encoded = b""
        digest = sha256(encoded).hexdigest()
        if digest != recorded:
            entry = _entry((room, *row))
            encoded, digest = entry.canonical(), entry.hash()
            tight = json.dumps(dict(entry.data), ensure_ascii=False)
        result.append((seq, ts, actor, kind, tight, prev, digest, encoded))
    return result


async def _get_kv(db: aiosqlite.Connection, key: str) -> str | None:
    cur = await db.execute("SELECT value FROM kv WHERE key = ?", (key,))
    row = await cur.fetchone()
    return str(row[0]) if row else None


_ROOM_SELECT = (
    "SELECT room_id, joined_ts, join_event, encrypted_notice, left_ts FROM rooms WHERE room_id = ?"
)


class Storage:
    def __init__(self, db: aiosqlite.Connection, path: Path) -> None:
        self._db = db
        self._lock = asyncio.Lock()
        self.path = path
        self._heads: dict[str, LedgerHead] = {}  # committed ledger heads, by room
        self._committed = Committed()  # committed values of the hot aggregates
        self._seen_version = -1  # PRAGMA data_version when the two were last known good
        # Pipelined commits (see `write`): the thread they run on, the one in flight, the
        # events it marks handled, what broke the storage if one failed, and a read-only
        # connection for what a transaction must know before the commit in flight is done.
        self._committer = ThreadPoolExecutor(1, thread_name_prefix="commons-commit")
        self._committing: Future[None] | None = None
        self.committing_handled: frozenset[str] = frozenset()
        self._broken: BaseException | None = None
        self._reader_db: sqlite3.Connection | None = None

    @classmethod
    async def open(cls, path: Path) -> Storage:
        path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: the sqlite3 module must not open transactions on its own; we
        # issue BEGIN IMMEDIATE ourselves.
        # check_same_thread=False: transactions run their statements directly on this
        # connection from the event loop's thread (see the module docstring).
        db = await aiosqlite.connect(path, isolation_level=None, check_same_thread=False)
        try:
            await db.execute("PRAGMA journal_mode = WAL")
            await db.execute("PRAGMA synchronous = FULL")
            # Copy the log into the database every 4,000 pages (16 MB) rather than SQLite's
            # 1,000: the pages a busy room rewrites batch after batch (the ends of the ledger,
            # the outbox and their indexes, the aggregates) are then copied once, not four times.
            await db.execute("PRAGMA wal_autocheckpoint = 4000")
            await db.execute("PRAGMA busy_timeout = 5000")
            await db.execute("PRAGMA foreign_keys = ON")
            cur = await db.execute("PRAGMA quick_check")
            result = [r[0] for r in await cur.fetchall()]
            if result != ["ok"]:
                raise StorageError(f"{path}: database failed its integrity check: {result[0]}")
            await _migrate(db, path, MIGRATIONS)
            version = await db.execute("PRAGMA data_version")
            seen = await version.fetchone()
        except BaseException:
            await db.close()
            raise
        storage = cls(db, path)
        storage._seen_version = int(seen[0]) if seen else -1
        return storage

    async def close(self) -> None:
        async with self._lock:
            try:
                await self._settle()
            except StorageBroken:
                log.warning("closing a storage whose last commit failed")
            finally:
                self._committer.shutdown()
                if self._reader_db is not None:
                    self._reader_db.close()
                await self._db.close()

    def _reader(self) -> sqlite3.Connection:
        """A read-only connection: it sees what is committed, even while a commit is running."""
        if self._reader_db is None:
            uri = self.path.resolve().as_uri() + "?mode=ro"
            reader = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
            reader.execute("PRAGMA busy_timeout = 5000")
            self._reader_db = reader
        return self._reader_db

    def _settle_now(self) -> None:
        """Wait for the pipelined commit in flight, if any (blocking: a few ms); raise
        StorageBroken if it failed, then and ever after."""
        job = self._committing
        if job is not None:
            try:
                job.result()
            except BaseException as exc:
                self._broken = exc
            finally:
                self._committing = None
                self.committing_handled = frozenset()
        if self._broken is not None:
            raise StorageBroken(
                f"committing a batch failed ({self._broken}); restart Commons to go on from "
                "what was committed"
            ) from self._broken

    async def _settle(self) -> None:
        """`_settle_now` without blocking the event loop."""
        job = self._committing
        if job is not None:
            await asyncio.wait([asyncio.wrap_future(job)])
        self._settle_now()

    def _begin_now(self) -> None:
        """Begin a pipelined transaction (`Tx._raw`): once the commit before it is done, and
        only if no other process wrote since, for the transaction may have used cached values
        (ledger heads, aggregates) already. Blocking, for a few ms at most, as a rule."""
        self._settle_now()
        raw = self._db._conn
        raw.execute("BEGIN IMMEDIATE")
        if self._notice_other_writers():
            raw.execute("ROLLBACK")
            raise StorageError(
                "another process wrote to the database while this batch was handled; "
                "the batch has to be handled again"
            )

    def _notice_other_writers(self) -> bool:
        """Forget the cached heads and aggregates if another process (an operator's `commons
        rules set`) wrote since we last looked, and say whether it did. Under the lock, so run
        directly (a cheap pragma; our own commits don't change data_version, only other
        connections' do)."""
        version = int(self._db._conn.execute("PRAGMA data_version").fetchone()[0])
        if version == self._seen_version:
            return False
        self._heads = {}
        self._committed.clear()
        self._seen_version = version
        return True

    @asynccontextmanager
    async def write(self, *, pipelined: bool = False) -> AsyncIterator[Tx]:
        """One write transaction: committed if the block ends normally, rolled back if not.

        `pipelined` (sync batches): the COMMIT runs on a thread of its own while the caller goes
        on, SQLite holding no Python lock meanwhile; the next pipelined transaction works from
        memory, deferred writes and cached values, until it needs the database (`Tx._raw`),
        and only then waits for that commit. Everything else that uses the storage waits for it
        first, so nothing is read or sent before it is durable. If another process wrote in
        between, the next transaction fails and its batch is handled again; if a pipelined
        commit fails, the storage is broken (`StorageBroken`).
        """
        async with self._lock:
            if pipelined:
                if self._broken is not None:
                    self._settle_now()  # raises
                tx = Tx(self._db, self._heads, self._committed, self)
            else:
                await self._settle()
                await self._db.execute("BEGIN IMMEDIATE")
                self._notice_other_writers()
                tx = Tx(self._db, self._heads, self._committed)
            try:
                yield tx
                await tx.flush_heads()
            except BaseException:
                if tx.begun:
                    await self._db.execute("ROLLBACK")
                raise
            if pipelined:
                self._committing = self._committer.submit(_commit, self._db._conn)
                self.committing_handled = frozenset(tx.handled_here)
            else:
                try:
                    await self._db.execute("COMMIT")
                except BaseException:
                    # Whether the commit took is unknown: read everything afresh next time.
                    self._seen_version = -1
                    raise
            self._heads = tx.heads
            self._committed.after_commit(tx._sums, tx.facts_changed, tx.rooms_changed)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Tx]:
        """Reads under the lock, so they never see another coroutine's uncommitted writes."""
        async with self._lock:
            await self._settle()
            self._notice_other_writers()
            yield Tx(self._db, self._heads, self._committed)

    async def settled(self) -> None:
        """Wait until every transaction is committed (StorageBroken if one failed)."""
        async with self._lock:
            await self._settle()

    async def get_kv(self, key: str) -> str | None:
        async with self._lock:
            await self._settle()
            return await _get_kv(self._db, key)

    async def pending_outbox(self, limit: int = 500) -> list[OutboxRow]:
        async with self._lock:
            await self._settle()
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
            await self._settle()
            cur = await self._db.execute(sql, params)
            return [tuple(r) for r in await cur.fetchall()]


def _commit(db: sqlite3.Connection) -> None:
    """A pipelined transaction's COMMIT, on the committer thread. If it fails, what is left of
    the transaction is rolled back (the storage is broken then anyway)."""
    try:
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
        raise


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
