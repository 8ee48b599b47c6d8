"""What a handler gets: who sent what where and when, and narrow views of the room and storage.

The views are Protocols implemented by the shell, so handlers never see Matrix or SQL and their
tests need neither.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from commands.declare import Registry


class RoomView(Protocol):
    async def members(self) -> Mapping[str, str | None]:
        """Joined members: Matrix ID -> display name (None when unset)."""
        ...

    async def power_level(self, user_id: str) -> int:
        """The user's power level in the room's live state (room v12 creators: above 100)."""
        ...


@dataclass(frozen=True)
class Context:
    room_id: str
    sender: str
    event_id: str
    event_ts: int  # the event's time by the time model (ms)
    now_ms: int  # when the bot received it (ms)
    prefix: str
    bot_user_id: str
    room: RoomView
    registry: Registry
    moderator_level: int = 50
