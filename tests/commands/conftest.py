"""Handler tests on a real SQLite file: a room with a ledger, members and a fake Matrix view."""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field

import pytest

from bot.storage import Storage
from commands.context import Context, Services
from commands.declare import REGISTRY
from commands.dispatch import dispatch
from commands.render import to_plain
from consensus.checkpoint import public_key_b64
from consensus.rules import RoomRules

ROOM = "!room:example.org"
BOT = "@commons:example.org"
KEY = bytes(range(32))
T0 = 1_764_150_000_000  # 2025-11-26 09:40 UTC


@dataclass
class FakeRoom:
    members_: dict[str, str | None]
    levels: dict[str, int] = field(default_factory=dict)
    senders: dict[str, str] = field(default_factory=dict)

    async def members(self):
        return dict(self.members_)

    async def power_level(self, user_id):
        return self.levels.get(user_id, 0)

    async def event_sender(self, event_id):
        return self.senders.get(event_id)


class Harness:
    def __init__(self, storage: Storage, room_id: str = ROOM) -> None:
        self.storage = storage
        self.room_id = room_id
        self.room = FakeRoom(
            {
                "@alice:example.org": "Alice",
                "@bob:example.org": "Bob",
                "@carol:example.org": "Carol",
                BOT: "Commons",
            }
        )
        self.now = T0
        self._ids = itertools.count(1)

    async def start(self, **rules) -> None:
        values = RoomRules.defaults().as_json() | rules
        async with self.storage.write() as tx:
            await tx.start_ledger(
                self.room_id,
                ts=self.now - 1000,
                actor=BOT,
                rules=RoomRules(values),
                sources={k: "default" for k in values},
                public_key=public_key_b64(KEY),
                event=None,
            )
            for user in self.room.members_:
                await tx.set_member(self.room_id, user, self.now - 1000)

    def context(self, tx, sender, *, reply_to=None, event_id=None, rules=None):
        return Context(
            room_id=self.room_id,
            sender=sender,
            event_id=event_id or f"$e{next(self._ids)}",
            event_ts=self.now,
            now_ms=self.now,
            source_ts=self.now,
            prefix="!",
            bot_user_id=BOT,
            room=self.room,
            registry=REGISTRY,
            store=tx,
            services=Services(new_salt=lambda: os.urandom(16), public_key="", signing_key=KEY),
            rules=rules,
            reply_to=reply_to,
        )

    async def say(self, sender: str, text: str, **kwargs) -> str:
        """Run a command as `sender`; return the reply's plain text ("" if none)."""
        async with self.storage.write() as tx:
            head = await tx.ledger_head(self.room_id)
            ctx = self.context(tx, sender, rules=head.rules, **kwargs)
            reply = await dispatch(ctx, text)
        return to_plain(reply.body).replace("\u2063", "") if reply else ""

    async def run(self, sender: str, fn, *args, **kwargs):
        async with self.storage.write() as tx:
            head = await tx.ledger_head(self.room_id)
            ctx = self.context(tx, sender, rules=head.rules, event_id=kwargs.pop("event_id", None))
            return await fn(ctx, *args)

    async def score(self, user: str) -> int:
        async with self.storage.read() as tx:
            return await tx.score(self.room_id, user)


@pytest.fixture
async def storage(tmp_path):
    store = await Storage.open(tmp_path / "c.db")
    yield store
    await store.close()


@pytest.fixture
async def room(storage):
    harness = Harness(storage)
    await harness.start()
    return harness
