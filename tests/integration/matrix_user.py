"""A scripted Matrix user for the integration tests: a matrix-nio client plus everything it saw.

Rule: every timeline event the user's syncs deliver is kept, in order, as the raw event dict
(`event.source`), whatever class nio gave it (`RoomMessageNotice`, `ReactionEvent`, polls as
`UnknownEvent`...). Tests wait on that record instead of sleeping. Every failed call raises
`MatrixCallError` carrying the nio error response, so a test can check `status_code`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nio

from bot.devserver import RegisteredUser

Event = dict[str, Any]
Predicate = Callable[[Event], bool]


class MatrixCallError(RuntimeError):
    """A client-server call answered with an error; `response` is nio's error object."""

    def __init__(self, what: str, response: nio.ErrorResponse) -> None:
        super().__init__(f"{what} failed: {response.status_code} {response.message}")
        self.response = response


def _check(what: str, response: Any) -> Any:
    if isinstance(response, nio.ErrorResponse):
        raise MatrixCallError(what, response)
    return response


def _reply_target(event: Event) -> str | None:
    relates = event.get("content", {}).get("m.relates_to")
    if not isinstance(relates, dict):
        return None
    in_reply_to = relates.get("m.in_reply_to")
    return in_reply_to.get("event_id") if isinstance(in_reply_to, dict) else None


class MatrixUser:
    """One logged-in user with a background sync task; create with `await MatrixUser.login()`."""

    def __init__(self, client: nio.AsyncClient, timeline_limit: int = 100) -> None:
        self.client = client
        # A burst of replies should come in one sync; Synapse caps timeline filters at 100.
        # Older events of a gappy sync are paged back anyway (see _missed_events).
        self._sync_filter = {"room": {"timeline": {"limit": timeline_limit}}}
        self.user_id: str = client.user_id
        self._events: dict[str, list[Event]] = {}
        self._seen: set[str] = set()
        self._changed = asyncio.Condition()
        self._sync_task: asyncio.Task[None] | None = None
        self.last_sync_error: object | None = None

    @classmethod
    async def login(
        cls, base_url: str, user: RegisteredUser, store_dir: Path, *, timeline_limit: int = 100
    ) -> MatrixUser:
        """Restore the registered session (no password login) and start syncing."""
        store_dir.mkdir(parents=True, exist_ok=True)
        # Without max_limit_exceeded nio sleeps and retries 429s forever; tests must see them.
        config = nio.AsyncClientConfig(max_limit_exceeded=0, max_timeouts=2)
        client = nio.AsyncClient(base_url, user.user_id, store_path=str(store_dir), config=config)
        client.restore_login(user.user_id, user.device_id, user.access_token)
        self = cls(client, timeline_limit)
        self._sync_task = asyncio.create_task(self._sync_loop(), name=f"sync {user.user_id}")
        return self

    async def close(self) -> None:
        if self._sync_task is not None:
            self._sync_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sync_task
            self._sync_task = None
        await self.client.close()

    # -- what the user saw -----------------------------------------------------------------------

    def events(self, room_id: str) -> list[Event]:
        """A copy of every timeline event seen in the room so far, oldest first."""
        return list(self._events.get(room_id, []))

    async def wait_for(self, room_id: str, predicate: Predicate, timeout: float = 15) -> Event:
        """The first event in the room matching `predicate`, including ones already seen."""

        async def first_match() -> Event:
            async with self._changed:
                while True:
                    for event in self._events.get(room_id, []):
                        if predicate(event):
                            return event
                    await self._changed.wait()

        try:
            return await asyncio.wait_for(first_match(), timeout)
        except TimeoutError:
            recent = "\n".join(
                f"  {e.get('sender')} {e.get('type')} {str(e.get('content'))[:300]}"
                for e in self._events.get(room_id, [])[-8:]
            )
            raise AssertionError(
                f"{self.user_id}: no matching event in {room_id} within {timeout} s "
                f"(last sync error: {self.last_sync_error}); latest events:\n{recent}"
            ) from None

    async def wait_reply(self, room_id: str, event_id: str, timeout: float = 15) -> Event:
        """The first event that replies (m.in_reply_to) to `event_id`."""
        return await self.wait_for(room_id, lambda e: _reply_target(e) == event_id, timeout)

    def replies_to(self, room_id: str, event_id: str) -> list[Event]:
        """Every reply to `event_id` seen so far (to assert there is exactly one)."""
        return [e for e in self._events.get(room_id, []) if _reply_target(e) == event_id]

    async def wait_member(
        self, room_id: str, user_id: str, membership: str = "join", timeout: float = 15
    ) -> Event:
        """The membership event that puts `user_id` in state `membership` (e.g. the bot joined)."""

        def matches(event: Event) -> bool:
            return (
                event.get("type") == "m.room.member"
                and event.get("state_key") == user_id
                and event.get("content", {}).get("membership") == membership
            )

        return await self.wait_for(room_id, matches, timeout)

    # -- actions ---------------------------------------------------------------------------------

    async def create_room(
        self, invite: list[str] | None = None, name: str | None = None, encrypted: bool = False
    ) -> str:
        initial_state = []
        if encrypted:
            encryption = {"algorithm": "m.megolm.v1.aes-sha2"}
            initial_state.append(
                {"type": "m.room.encryption", "state_key": "", "content": encryption}
            )
        response = _check(
            "create_room",
            await self.client.room_create(
                name=name, invite=invite or [], initial_state=initial_state
            ),
        )
        room_id: str = response.room_id
        await self._wait_joined(room_id)
        return room_id

    async def join(self, room_id: str) -> None:
        _check(f"join {room_id}", await self.client.join(room_id))
        await self._wait_joined(room_id)

    async def invite(self, room_id: str, user_id: str) -> None:
        _check(f"invite {user_id}", await self.client.room_invite(room_id, user_id))

    async def send_event(self, room_id: str, type: str, content: dict[str, Any]) -> str:
        response = _check(
            f"send {type}",
            await self.client.room_send(room_id, type, content, ignore_unverified_devices=True),
        )
        event_id: str = response.event_id
        return event_id

    async def send_text(
        self,
        room_id: str,
        body: str,
        *,
        formatted_body: str | None = None,
        mentions: dict[str, Any] | None = None,
        reply_to: str | None = None,
        thread_root: str | None = None,
        extra_content: dict[str, Any] | None = None,
    ) -> str:
        """An m.text message; `mentions` becomes `m.mentions` (e.g. {"user_ids": [...]})."""
        content: dict[str, Any] = {"msgtype": "m.text", "body": body}
        if formatted_body is not None:
            content["format"] = "org.matrix.custom.html"
            content["formatted_body"] = formatted_body
        if mentions is not None:
            content["m.mentions"] = mentions
        if thread_root is not None:
            # Threaded messages carry a reply fallback for clients without threads.
            content["m.relates_to"] = {
                "rel_type": "m.thread",
                "event_id": thread_root,
                "is_falling_back": reply_to is None,
                "m.in_reply_to": {"event_id": reply_to or thread_root},
            }
        elif reply_to is not None:
            content["m.relates_to"] = {"m.in_reply_to": {"event_id": reply_to}}
        content.update(extra_content or {})
        return await self.send_event(room_id, "m.room.message", content)

    async def react(self, room_id: str, event_id: str, key: str) -> str:
        relates = {"rel_type": "m.annotation", "event_id": event_id, "key": key}
        return await self.send_event(room_id, "m.reaction", {"m.relates_to": relates})

    async def redact(self, room_id: str, event_id: str, reason: str | None = None) -> str:
        response = _check(
            f"redact {event_id}", await self.client.room_redact(room_id, event_id, reason)
        )
        redaction_id: str = response.event_id
        return redaction_id

    # -- sync ------------------------------------------------------------------------------------

    async def _wait_joined(self, room_id: str, timeout: float = 15) -> None:
        # nio with encryption support refuses to send into a room it hasn't synced yet.
        async def joined() -> None:
            async with self._changed:
                while room_id not in self.client.rooms:
                    await self._changed.wait()

        try:
            await asyncio.wait_for(joined(), timeout)
        except TimeoutError:
            raise AssertionError(
                f"{self.user_id}: {room_id} never showed up in sync "
                f"(last sync error: {self.last_sync_error})"
            ) from None

    async def _sync_loop(self) -> None:
        delay = 0.1
        while True:
            try:
                await self._sync_once()
                delay = 0.1
            except Exception as error:
                # The server may be restarting on purpose (a test); keep trying, gently, and
                # keep the error for the message of a wait that times out.
                self.last_sync_error = error
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)

    async def _sync_once(self) -> None:
        response = await self.client.sync(timeout=30_000, sync_filter=self._sync_filter)
        if not isinstance(response, nio.SyncResponse):
            raise MatrixCallError("sync", response)
        for room_id, info in response.rooms.join.items():
            events = [e.source for e in info.timeline.events]
            if info.timeline.limited and info.timeline.prev_batch:
                events = await self._missed_events(room_id, info.timeline.prev_batch) + events
            self._collect(room_id, events)
        async with self._changed:
            self._changed.notify_all()
        await self._share_keys()

    def _collect(self, room_id: str, events: list[Event]) -> None:
        record = self._events.setdefault(room_id, [])
        for event in events:
            event_id = event.get("event_id")
            if event_id in self._seen:
                continue
            if event_id:
                self._seen.add(event_id)
            record.append(event)

    async def _missed_events(self, room_id: str, token: str) -> list[Event]:
        """Page back from a gappy (limited) timeline to the last event already recorded."""
        missed: list[Event] = []
        while True:
            response = await self.client.room_messages(room_id, start=token, limit=100)
            if not isinstance(response, nio.RoomMessagesResponse):
                self.last_sync_error = response
                break
            for event in response.chunk:  # newest first
                if event.event_id in self._seen:
                    return missed[::-1]
                missed.append(event.source)
            if not response.chunk or not response.end:
                break
            token = response.end
        return missed[::-1]

    async def _share_keys(self) -> None:
        # What sync_forever would do; only matters for encrypted rooms.
        if self.client.olm is None:
            return
        if self.client.should_upload_keys:
            await self.client.keys_upload()
        if self.client.should_query_keys:
            await self.client.keys_query()
        await self.client.send_to_device_messages()
