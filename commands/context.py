"""What a handler gets: who sent what where and when, and narrow views of the room and storage.

The views are Protocols implemented by the shell, so handlers never see Matrix or SQL and their
tests need neither. Everything a handler writes through `store` is part of the transaction of the
event being handled: it commits with the event, or not at all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from commands.declare import Registry
from consensus.checkpoint import SignedCheckpoint
from consensus.ledger import LedgerEntry
from consensus.rules import RoomRules
from consensus.scoring import GiverState


@dataclass(frozen=True)
class Item:
    """A proposal, poll or action call as the commands see it."""

    room: str
    item: int
    type: str
    author: str
    open_seq: int
    open_event: str | None
    status: str
    method: str | None
    options: tuple[str, ...]
    quorum: int | None
    closes: int | None
    at: int | None
    need: int | None
    rule_key: str | None
    rule_value: Any
    target: int | None
    poll_txn: str | None


@dataclass(frozen=True)
class Vote:
    voter: str
    choice: Any  # an answer (str) or option numbers / scores (list of ints)
    reason: str | None
    ts: int
    event: str | None
    seq: int


LedgerRow = tuple[int, int, str, str, str, str, str, bytes]
"""A stored entry as checking the chain and a daily report read it, by the ten thousand:
(seq, ts, actor, kind, data, prev, hash, canonical). `canonical` is its canonical JSON as stored
now and `hash` that JSON's SHA-256 (hex), both made from the row as it is; `data` is the JSON text
of its data. A plain tuple, neither a dataclass nor a NamedTuple: a report reads 100,000 of them,
and a plain tuple is made in a fraction of the time."""


class RoomView(Protocol):
    async def members(self) -> Mapping[str, str | None]:
        """Joined members: Matrix ID -> display name (None when unset)."""
        ...

    async def power_level(self, user_id: str) -> int:
        """The user's power level in the room's live state (room v12 creators: above 100)."""
        ...

    async def event_sender(self, event_id: str) -> str | None:
        """Who sent an event of this room (None if unknown)."""
        ...


class Entry(Protocol):
    """A stored ledger entry with its free text (None when it has none or it was erased)."""

    @property
    def entry(self) -> LedgerEntry: ...
    @property
    def text(self) -> str | None: ...


class StoredCheckpoint(Protocol):
    @property
    def signed(self) -> SignedCheckpoint: ...
    @property
    def frontier(self) -> list[str]: ...


class Head(Protocol):
    @property
    def size(self) -> int: ...
    @property
    def head(self) -> str: ...
    @property
    def root(self) -> str: ...
    @property
    def frontier(self) -> tuple[str, ...]: ...
    @property
    def rules(self) -> RoomRules: ...
    @property
    def sources(self) -> dict[str, str]: ...


class Store(Protocol):
    """The ledger and its aggregates, as the handlers see them (implemented by bot.storage.Tx)."""

    async def ledger_head(self, room: str) -> Head | None: ...
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
    ) -> LedgerEntry: ...
    async def entry(self, room: str, seq: int) -> Entry | None: ...
    async def reaction_kudos(self, room: str, event_id: str) -> Entry | None: ...
    async def entries(
        self, room: str, *, after: int = 0, limit: int = -1, newest_first: bool = False
    ) -> Sequence[Entry]: ...
    async def entries_about(self, room: str, user: str, limit: int) -> Sequence[Entry]: ...
    async def voided_by(self, room: str, seq: int) -> int | None: ...
    async def entries_of_kinds(
        self, room: str, kinds: Sequence[str], limit: int
    ) -> Sequence[Entry]: ...
    async def erase_text(self, room: str, seq: int) -> bool: ...
    async def score(self, room: str, user: str) -> int: ...
    async def score_days(self, room: str, user: str) -> dict[str, int]: ...
    async def top(
        self, room: str, limit: int, since_day: str | None = None
    ) -> list[tuple[str, int]]: ...
    async def giver_state(
        self, room: str, giver: str, receivers: Sequence[str], day: str
    ) -> GiverState: ...
    async def opted_out(self, room: str, users: Sequence[str]) -> frozenset[str]: ...
    async def checkpoints(self, room: str) -> Sequence[StoredCheckpoint]: ...
    async def next_item(self, room: str) -> int: ...
    async def add_item(self, item: Item) -> None: ...
    async def item(self, room: str, item: int) -> Item | None: ...
    async def items(self, room: str, *, status: str | None = None) -> list[Item]: ...
    async def item_by_poll_event(self, room: str, event_id: str) -> Item | None: ...
    async def poll_event(self, item: Item) -> str | None: ...
    async def set_item_status(self, room: str, item: int, status: str) -> None: ...
    async def put_vote(self, room: str, item: int, vote: Vote) -> None: ...
    async def drop_vote(self, room: str, item: int, voter: str) -> None: ...
    async def votes(self, room: str, item: int) -> list[Vote]: ...
    async def vote_by_event(self, room: str, event_id: str) -> tuple[int, Vote] | None: ...
    async def commitments(self, room: str, item: int) -> list[tuple[str, int]]: ...
    async def commit(
        self, room: str, item: int, user: str, min_others: int | None, ts: int, seq: int
    ) -> None: ...
    async def attendance(self, room: str, item: int) -> dict[str, bool]: ...
    async def attend(self, room: str, item: int, user: str, credited: bool, seq: int) -> None: ...
    async def add_reminders(self, room: str, item: int, times: Sequence[int]) -> None: ...
    async def day_seqs(self, room: str, start: int, end: int) -> tuple[int, int] | None: ...
    async def ledger_rows(self, room: str, *, after: int, limit: int) -> Sequence[LedgerRow]: ...
    async def entries_at(self, room: str, seqs: Iterable[int]) -> Sequence[Entry]: ...
    async def texts_between(self, room: str, first: int, last: int) -> dict[int, str]: ...
    async def unreviewed_days(self, room: str, before: str) -> list[str]: ...
    async def kudos_per_day(self, room: str, since: str, before: str) -> dict[str, int]: ...
    async def members_since(self, room: str) -> dict[str, int]: ...
    async def optout_count(self, room: str) -> int: ...
    async def expired_between(self, room: str, start: int, end: int) -> int: ...
    async def report_days(self, room: str) -> dict[str, int | None]: ...
    async def add_checkpoint(self, signed: SignedCheckpoint, frontier: list[str]) -> None: ...
    async def frontier(self, room: str) -> list[str]: ...


@dataclass(frozen=True)
class Services:
    """What the shell lends handlers beyond storage: randomness and the signing key's use."""

    new_salt: Callable[[], bytes]
    public_key: str
    signing_key: bytes = field(repr=False)


@dataclass(frozen=True, init=False)
class Context:
    room_id: str
    sender: str
    event_id: str
    event_ts: int  # the event's time by the time model (ms)
    now_ms: int  # when the bot received it (ms)
    # The source's own time: an event's origin_server_ts as sent, a scheduled job's run time.
    # It names the transaction IDs of the events it causes (see render.txn_id).
    source_ts: int
    prefix: str
    bot_user_id: str
    room: RoomView
    registry: Registry
    store: Store
    services: Services
    rules: RoomRules
    reply_to: str | None = None  # the event the command replies to, if any

    def __init__(
        self,
        *,
        room_id: str,
        sender: str,
        event_id: str,
        event_ts: int,
        now_ms: int,
        source_ts: int,
        prefix: str,
        bot_user_id: str,
        room: RoomView,
        registry: Registry,
        store: Store,
        services: Services,
        rules: RoomRules,
        reply_to: str | None = None,
    ) -> None:
        # Made for every event: one update of __dict__, not thirteen guarded assignments.
        self.__dict__.update(
            room_id=room_id,
            sender=sender,
            event_id=event_id,
            event_ts=event_ts,
            now_ms=now_ms,
            source_ts=source_ts,
            prefix=prefix,
            bot_user_id=bot_user_id,
            room=room,
            registry=registry,
            store=store,
            services=services,
            rules=rules,
            reply_to=reply_to,
        )

    @property
    def moderator_level(self) -> int:
        return self.rules.moderation_power_level
