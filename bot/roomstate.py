"""What the bot knows of each room's current state, built from the state events sync delivers.

Kept by us rather than read from nio's room model because we need what nio drops: the creators
of a room (room version 12 gives them power without listing them in `users`), and membership as
raw events. `full_state` on the first sync after start fills it completely.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# Room versions in which the creators outrank everyone and are not listed in power levels.
_CREATOR_POWER_VERSIONS = {"12"}
CREATOR_LEVEL = 2**31  # "infinitely high": above any level a room can set
# Senders of this many recent events are remembered per room (for reactions and replies).
SENDER_MEMORY = 20_000


def power_level(
    user_id: str,
    power_levels: Mapping[str, Any] | None,
    create_sender: str | None,
    create_content: Mapping[str, Any] | None,
) -> int:
    """A user's power level by the Matrix rules, including room v12 creators."""
    create_content = create_content or {}
    version = str(create_content.get("room_version", "1"))
    if version in _CREATOR_POWER_VERSIONS:
        extra = create_content.get("additional_creators")
        creators = {create_sender, *(extra if isinstance(extra, list) else [])}
        if user_id in creators:
            return CREATOR_LEVEL
    if power_levels is None:
        # Without a power levels event the creator has 100 and everyone else 0.
        return 100 if user_id == create_sender else 0
    users = power_levels.get("users")
    if isinstance(users, Mapping) and user_id in users:
        return _as_int(users[user_id])
    return _as_int(power_levels.get("users_default", 0))


def _as_int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


@dataclass
class RoomState:
    room_id: str
    members: dict[str, str | None] = field(default_factory=dict)  # joined: id -> display name
    power_levels: dict[str, Any] | None = None
    create_sender: str | None = None
    create_content: dict[str, Any] | None = None
    encrypted: bool = False
    senders: OrderedDict[str, str] = field(default_factory=OrderedDict)

    def remember(self, event: Mapping[str, Any]) -> None:
        """Note who sent an event, so a reaction or reply to it needs no lookup."""
        event_id, sender = event.get("event_id"), event.get("sender")
        if isinstance(event_id, str) and isinstance(sender, str):
            self.senders[event_id] = sender
            if len(self.senders) > SENDER_MEMORY:
                self.senders.popitem(last=False)

    def apply(self, event: Mapping[str, Any]) -> None:
        """Apply one state event (a dict as received); non-state events are ignored."""
        if "state_key" not in event:
            return
        content = event.get("content")
        content = content if isinstance(content, dict) else {}
        kind = event.get("type")
        if kind == "m.room.member":
            user_id = event.get("state_key")
            if not isinstance(user_id, str):
                return
            if content.get("membership") == "join":
                name = content.get("displayname")
                self.members[user_id] = name if isinstance(name, str) and name else None
            else:
                self.members.pop(user_id, None)
        elif kind == "m.room.power_levels":
            self.power_levels = content
        elif kind == "m.room.create":
            sender = event.get("sender")
            self.create_sender = sender if isinstance(sender, str) else None
            self.create_content = content
        elif kind == "m.room.encryption":
            self.encrypted = bool(content.get("algorithm"))

    def level_of(self, user_id: str) -> int:
        return power_level(user_id, self.power_levels, self.create_sender, self.create_content)
