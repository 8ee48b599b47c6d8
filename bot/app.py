"""The bot: our own sync loop, and what each event does.

Rules:
- A sync batch is handled in one transaction (group commit). Each event runs inside a savepoint,
  records its event ID as handled, and queues its replies in the outbox; the batch's
  `next_batch` token is written last in the same transaction. A crash anywhere therefore leaves
  either nothing or everything of a batch, and the replayed batch skips what is handled.
- Nothing is sent before the commit: the outbox sends afterwards.
- History from before the bot's own join of a room is never acted on.
- An event's time is its `origin_server_ts` clamped to [the bot's join, receipt].
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
from collections.abc import Coroutine, Iterable, Mapping
from typing import Any

from nio import (
    AsyncClient,
    InviteMemberEvent,
    JoinError,
    RoomGetEventResponse,
    RoomMessagesError,
    RoomMessagesResponse,
    SyncError,
    SyncResponse,
)

from bot.clock import now_ms
from bot.config import Config
from bot.deadlines import Deadlines
from bot.outbox import EXPORT_JOB, IMAGE_JOB, Outbox
from bot.reportfiles import write_report_files
from bot.roomstate import RoomState
from bot.session import NETWORK_ERRORS
from bot.storage import SALT_BYTES, Storage, StorageBroken, Tx
from commands import actions as actions_commands
from commands import decisions, reports
from commands import kudos as kudos_commands
from commands.context import Context, Services
from commands.declare import REGISTRY
from commands.dispatch import is_command, run_command
from commands.events import command_text, edited_event, reply_target, thread_root
from commands.parse import split_command
from commands.render import Reply, message_content, seq, txn_id
from commands.report_render import flags_message, report_messages
from consensus import scoring
from consensus.checkpoint import public_key_b64

log = logging.getLogger("commons")

SYNC_TIMEOUT_MS = 30_000
# Timeline events per room in one sync (Synapse caps filters at 100); more are paged back.
TIMELINE_LIMIT = 100
MAX_BACKFILL_PAGES = 50
SYNC_FILTER: dict[str, Any] = {
    "room": {"timeline": {"limit": TIMELINE_LIMIT}, "state": {"lazy_load_members": False}},
    "presence": {"types": []},
    "account_data": {"types": []},
}

WELCOME = (
    "Hello! I'm Commons. I keep this room's public ledger of kudos, proposals, votes and action "
    "calls: its entries are permanent and anyone here can read and verify them. "
    "Send {p}optout to stay out of scoring, or {p}help for the commands."
)
ENCRYPTED_NOTICE = (
    "This room is encrypted and I can't read encrypted messages yet, so I won't see commands "
    "here. Please use Commons in an unencrypted room."
)
EDITED = "I don't run edited commands again; please send the corrected command as a new message."
EXPIRED = (
    "This command arrived {age} after it was sent (I was away), which is more than "
    "{limit}, so I didn't run it; please send it again."
)
CRASHED = "Something went wrong on my side (ref {ref}). Nothing was changed; please try again."


class SaltPool:
    """Fresh random salts, read from the operating system a few hundred at a time: one system
    call per salt was a visible share of a kudos. Each salt is handed out once."""

    def __init__(self, size: int, per_read: int = 256) -> None:
        self._size, self._per_read = size, per_read
        self._bytes, self._at = b"", 0

    def take(self) -> bytes:
        if self._at + self._size > len(self._bytes):
            self._bytes, self._at = os.urandom(self._size * self._per_read), 0
        start = self._at
        self._at = start + self._size
        return self._bytes[start : self._at]


class FatalError(Exception):
    """The bot can't go on (revoked token, bad credentials); the message says why."""


class Incoming:
    """One timeline event, with the time it was received. Its fields are read once, here:
    handling an event asks for them a dozen times."""

    __slots__ = ("content", "event_id", "received_ms", "room_id", "sender", "source", "type")

    def __init__(self, room_id: str, source: Mapping[str, Any], received_ms: int) -> None:
        self.room_id = room_id
        self.source = source
        self.received_ms = received_ms
        self.event_id = str(source.get("event_id", ""))
        self.sender = str(source.get("sender", ""))
        self.type = str(source.get("type", ""))
        content = source.get("content")
        self.content: Mapping[str, Any] = (
            content if type(content) is dict or isinstance(content, Mapping) else {}
        )

    @property
    def origin_ts(self) -> int:
        ts = self.source.get("origin_server_ts")
        return ts if isinstance(ts, int) else self.received_ms


class NioRoomView:
    """`commands.context.RoomView` over the state we keep from sync.

    Event senders come from the events we have seen; only an event older than that is fetched
    from the homeserver.
    """

    def __init__(self, state: RoomState, client: AsyncClient | None) -> None:
        self._state = state
        self._client = client

    async def members(self) -> Mapping[str, str | None]:
        return dict(self._state.members)

    async def power_level(self, user_id: str) -> int:
        return self._state.level_of(user_id)

    async def event_sender(self, event_id: str) -> str | None:
        sender = self._state.senders.get(event_id)
        if sender is None and self._client is not None:
            resp = await self._client.room_get_event(self._state.room_id, event_id)
            if isinstance(resp, RoomGetEventResponse):
                sender = resp.event.sender
        return sender


def event_time(origin_ts: int, joined_ts: int, received_ms: int) -> int:
    """The time model: the sender's clock, trusted only within [our join, our receipt]."""
    return max(joined_ts, min(origin_ts, received_ms))


def _format_age(ms: int) -> str:
    hours = ms // 3_600_000
    if hours >= 48:
        return f"{hours // 24} days"
    if hours >= 1:
        return f"{hours} h"
    return f"{max(ms // 60_000, 1)} min"


class Bot:
    def __init__(
        self, config: Config, storage: Storage, client: AsyncClient, signing_key: bytes
    ) -> None:
        self.config = config
        self.services = Services(
            new_salt=SaltPool(SALT_BYTES).take,
            public_key=public_key_b64(signing_key),
            signing_key=signing_key,
        )
        self.storage = storage
        self.client = client
        self.user_id = config.matrix.user_id
        self.prefix = config.bot.command_prefix
        self.outbox = Outbox(storage, client)
        self.deadlines = Deadlines(self.close_due)
        self.rooms: dict[str, RoomState] = {}
        self.registry = REGISTRY
        self.ready = asyncio.Event()
        self._stop = asyncio.Event()
        self._error_refs = 0

    # -- the loop -------------------------------------------------------------------------

    async def run(self) -> None:
        sender = asyncio.create_task(self.outbox.run(), name="outbox")
        try:
            await self._sync_loop()
        finally:
            self.deadlines.shutdown()
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)

    def stop(self) -> None:
        self._stop.set()

    async def _sync_loop(self) -> None:
        since = await self.storage.get_kv("sync.next_batch")
        first = True
        delay = 1.0
        # The next sync, asked for as soon as a batch is handled: it travels while the batch
        # commits (on the storage's own thread) and the deadlines are looked at.
        ahead: asyncio.Task[Any] | None = None
        try:
            while not self._stop.is_set():
                request = ahead or asyncio.ensure_future(self._sync(since, first))
                ahead = None
                resp: Any = await request
                if isinstance(resp, SyncResponse):
                    try:
                        await self.handle_sync(resp, initial=since is None)
                    except StorageBroken as exc:
                        raise FatalError(str(exc)) from exc
                    except Exception:
                        # Nothing of the batch was committed; it comes again from the same token.
                        log.exception(
                            "handling a sync batch failed; retrying in about %.0fs", delay
                        )
                        await asyncio.sleep(delay * (0.5 + random.random()))  # noqa: S311
                        delay = min(delay * 2, 60.0)
                        continue
                    since = resp.next_batch
                    first = False
                    delay = 1.0
                    ahead = asyncio.ensure_future(self._sync(since, first))
                    self.outbox.wake()
                    await self._watch_deadlines()
                    if not self.ready.is_set():
                        # The backlog is handled: only now may overdue deadlines fire, and a
                        # daily report missed while the bot was down is made.
                        self.deadlines.start()
                        await self.close_due()
                        self.ready.set()
                        log.info("ready")
                    continue
                if isinstance(resp, SyncError) and resp.status_code in ("M_UNKNOWN_TOKEN",):
                    async with self.storage.write() as tx:
                        for key in ("session.access_token", "session.device_id"):
                            await tx.delete_kv(key)
                    raise FatalError(
                        "the homeserver rejected the access token (M_UNKNOWN_TOKEN): it was "
                        "revoked or expired. Set a new matrix.access_token, or restart to log in "
                        "again with the password."
                    )
                if isinstance(resp, SyncError) and resp.status_code == "M_FORBIDDEN":
                    raise FatalError(
                        f"the homeserver refused to sync (M_FORBIDDEN: {resp.message})"
                    )
                # Server down or erroring: back off with jitter, capped, so a dead server sees a
                # bounded request rate instead of a hot loop.
                log.warning("sync failed (%s); retrying in about %.0fs", _describe(resp), delay)
                try:
                    await asyncio.wait_for(
                        self._stop.wait(),
                        delay * (0.5 + random.random()),  # noqa: S311 (jitter)
                    )
                except TimeoutError:
                    pass
                delay = min(delay * 2, 60.0)
        except StorageBroken as exc:  # found by whatever used the storage first
            raise FatalError(str(exc)) from exc
        finally:
            if ahead is not None:
                ahead.cancel()
                await asyncio.gather(ahead, return_exceptions=True)

    async def _sync(self, since: str | None, first: bool) -> Any:
        """One sync request: its response, or the network error it ended with."""
        try:
            # The first sync after start asks for the full state, so our room state is
            # complete without any store; later ones long-poll.
            return await self.client.sync(
                timeout=0 if first else SYNC_TIMEOUT_MS,
                since=since,
                full_state=first or None,
                sync_filter=SYNC_FILTER,
            )
        except NETWORK_ERRORS as exc:
            return exc

    # -- one sync batch -------------------------------------------------------------------

    async def handle_sync(self, resp: SyncResponse, *, initial: bool) -> None:
        received = now_ms()
        for room_id, invite in resp.rooms.invite.items():
            await self._consider_invite(room_id, invite.invite_state)

        batches: list[tuple[str, list[Mapping[str, Any]], list[Mapping[str, Any]]]] = []
        for room_id, info in resp.rooms.join.items():
            state_events = [e.source for e in info.state]
            timeline = [e.source for e in info.timeline.events]
            state = self.rooms.setdefault(room_id, RoomState(room_id))
            for ev in state_events:
                state.apply(ev)
            if info.timeline.limited and info.timeline.prev_batch:
                older = await self._backfill(room_id, info.timeline.prev_batch)
                timeline = older + timeline
            batches.append((room_id, state_events, timeline))

        # Pipelined: the batch's commit runs beside whatever comes next (see Storage.write).
        async with self.storage.write(pipelined=True) as tx:
            for room_id, state_events, timeline in batches:
                await self._handle_room(tx, room_id, state_events, timeline, received, initial)
            for room_id in resp.rooms.leave:
                if await tx.get_room(room_id):
                    await tx.mark_left(room_id, received)
                self.rooms.pop(room_id, None)
            # Written last, in the same transaction as the effects: never ahead of them.
            await tx.set_kv("sync.next_batch", resp.next_batch)

    async def _backfill(self, room_id: str, token: str) -> list[Mapping[str, Any]]:
        """Events before a limited timeline, back to what we already handled or our join."""
        async with self.storage.read() as tx:
            room = await tx.get_room(room_id)
        if room is None:
            return []  # a room we just joined: what came before the join is history
        older: list[Mapping[str, Any]] = []
        for _ in range(MAX_BACKFILL_PAGES):
            resp = await self.client.room_messages(room_id, start=token, limit=100)
            if isinstance(resp, RoomMessagesError) or not isinstance(resp, RoomMessagesResponse):
                log.warning("could not page back in %s: %s", room_id, resp)
                break
            stop = False
            for event in resp.chunk:
                src = event.source
                if src.get("event_id") == room.join_event or _ts(src) < room.joined_ts:
                    stop = True
                    break
                async with self.storage.read() as tx:
                    if await tx.is_handled(str(src.get("event_id"))):
                        stop = True
                        break
                older.append(src)
            if stop or not resp.chunk or not resp.end or resp.end == token:
                break
            token = resp.end
        older.reverse()
        log.info("paged back %d events in %s", len(older), room_id)
        return older

    async def _handle_room(
        self,
        tx: Tx,
        room_id: str,
        state_events: list[Mapping[str, Any]],
        timeline: list[Mapping[str, Any]],
        received: int,
        initial: bool,
    ) -> None:
        state = self.rooms.setdefault(room_id, RoomState(room_id))
        room = await tx.get_room(room_id)
        start = 0
        if room is None or room.left_ts is not None:
            start = await self._joined(tx, state, state_events, timeline, received, initial)
            room = await tx.get_room(room_id)
        assert room is not None  # noqa: S101 (added just above)
        events = [Incoming(room_id, ev, received) for ev in timeline[start:]]
        # One look-up for the whole timeline; events handled in this batch are added as we go.
        handled = await tx.handled_among([ev.event_id for ev in events if ev.event_id])
        for ev in events:
            state.apply(ev.source)
            state.remember(ev.source)
            await self._handle_event(tx, ev, room.joined_ts, state, handled)
        if state.encrypted and not room.encrypted_notice:
            await tx.mark_encrypted_notice(room_id)
            await self._notice(tx, room_id, f"encrypted:{room_id}", ENCRYPTED_NOTICE, received)

    async def _joined(
        self,
        tx: Tx,
        state: RoomState,
        state_events: list[Mapping[str, Any]],
        timeline: list[Mapping[str, Any]],
        received: int,
        initial: bool,
    ) -> int:
        """Record a room we are (newly) in; return where its timeline stops being history."""
        join_at = _own_join(timeline, self.user_id)
        join_event: Mapping[str, Any] | None
        if join_at is not None:
            join_event, start = timeline[join_at], join_at + 1
        else:
            join_event, start = _own_join_event(state_events, self.user_id), 0
            if initial or join_event is None:
                # We were in this room before this database existed: all of it is history.
                start = len(timeline)
        joined_ts = _ts(join_event) if join_event else received
        join_id = str(join_event["event_id"]) if join_event else None
        await tx.add_room(state.room_id, joined_ts, join_id)
        for ev in timeline[:start]:
            state.apply(ev)
        await self._start_ledger(tx, state, joined_ts, join_id)
        # In an encrypted room the welcome would be unreadable noise: the encryption notice
        # says what matters there. A room found on the first sync of a new database is not a
        # new join, so it gets no welcome either.
        if join_id is not None and not (initial and join_at is None) and not state.encrypted:
            await self._welcome(tx, state.room_id, join_id, joined_ts, received)
        return start

    async def _start_ledger(
        self, tx: Tx, state: RoomState, joined_ts: int, join_id: str | None
    ) -> None:
        """A room's ledger starts once, with the config's starting rules; a re-join keeps it."""
        if await tx.ledger_head(state.room_id) is None:
            rules = self.config.starting_rules()
            await tx.start_ledger(
                state.room_id,
                ts=joined_ts,
                actor=self.user_id,
                rules=rules,
                sources={key: self.config.rule_source(key) for key in rules.values},
                public_key=self.services.public_key,
                event=join_id,
            )
        # Members already here count from when the bot first saw them: its join.
        for user_id in state.members:
            await tx.set_member(state.room_id, user_id, joined_ts)

    async def _welcome(self, tx: Tx, room_id: str, source: str, at: int, now: int) -> None:
        await self._notice(tx, room_id, source, WELCOME.format(p=self.prefix), now, at=at)

    async def _notice(
        self, tx: Tx, room_id: str, source: str, text: str, now: int, *, at: int | None = None
    ) -> None:
        content = message_content(Reply(seq(text), as_reply=False))
        at = now if at is None else at
        await tx.enqueue(room_id, txn_id(source, at=at), "m.room.message", content, now)

    # -- one event ------------------------------------------------------------------------

    async def _handle_event(
        self, tx: Tx, ev: Incoming, joined_ts: int, state: RoomState, handled: set[str]
    ) -> None:
        """Handle one event unless it is in `handled` (the timeline's events handled before);
        add it there when done."""
        if ev.sender == self.user_id or not ev.event_id or ev.event_id in handled:
            return
        try:
            async with tx.savepoint():
                kind = await self._event_effects(tx, ev, joined_ts, state)
        except Exception:
            # One bad event must not stop the room (or the bot): it is logged and recorded as
            # handled, so it isn't retried forever.
            log.exception("event %s in %s could not be handled", ev.event_id, ev.room_id)
            kind = "failed"
        # Every other event is recorded, so paging back after downtime stops where we were.
        await tx.mark_handled(ev.event_id, ev.room_id, ev.sender, kind, ev.received_ms)
        handled.add(ev.event_id)

    async def _event_effects(self, tx: Tx, ev: Incoming, joined_ts: int, state: RoomState) -> str:
        """Do what the event asks; return how to record it in handled_events."""
        ts = event_time(ev.origin_ts, joined_ts, ev.received_ms)
        if ev.type == "m.room.member":
            await self._membership(tx, ev, ts)
            return "event"
        if ev.type == "m.reaction":
            return await self._reaction(tx, ev, ts, state)
        if ev.type == "m.room.redaction":
            redacts = ev.source.get("redacts") or ev.content.get("redacts")
            if isinstance(redacts, str):
                ctx = await self._context(tx, ev, ts, state)
                await self._guarded(tx, ev, kudos_commands.redaction(ctx, redacts))
                await self._guarded(tx, ev, decisions.response_redacted(ctx, redacts))
            return "event"
        if ev.type in decisions.POLL_RESPONSES:
            return await self._poll_response(tx, ev, ts, state)
        if ev.type != "m.room.message" or ev.content.get("msgtype") == "m.notice":
            return "event"  # other bots' notices are never commands
        original = edited_event(ev.content)
        if original is not None:
            return await self._handle_edit(tx, ev, original)
        text = command_text(ev.content)
        command = split_command(text, self.prefix)
        if command is None:
            if "++" in text:
                ctx = await self._context(tx, ev, ts, state)
                await self._guarded(tx, ev, kudos_commands.plusplus(ctx, text))
            return "event"
        limit = self.config.bot.max_command_age_ms
        if ev.received_ms - ts > limit:
            await tx.add_expired(ev.event_id, ev.room_id, ev.sender, ts, ev.received_ms)
            message = EXPIRED.format(
                age=_format_age(ev.received_ms - ts), limit=_format_age(limit)
            )
            await self._reply(tx, ev, Reply(seq(message)))
            return "expired"
        ctx = await self._context(tx, ev, ts, state)
        await self._guarded(tx, ev, run_command(ctx, *command))
        return "command"

    async def _context(self, tx: Tx, ev: Incoming, ts: int, state: RoomState) -> Context:
        head = await tx.ledger_head(ev.room_id)
        if head is None:
            raise RuntimeError(f"no ledger for {ev.room_id}")
        return Context(
            room_id=ev.room_id,
            sender=ev.sender,
            event_id=ev.event_id,
            event_ts=ts,
            now_ms=ev.received_ms,
            source_ts=ev.origin_ts,
            prefix=self.prefix,
            bot_user_id=self.user_id,
            room=NioRoomView(state, self.client),
            registry=self.registry,
            store=tx,
            services=self.services,
            rules=head.rules,
            reply_to=reply_target(ev.content),
        )

    async def _guarded(
        self, tx: Tx, ev: Incoming, work: Coroutine[Any, Any, Reply | None]
    ) -> None:
        """Run a handler in a savepoint; queue its reply; turn a crash into a reference."""
        try:
            async with tx.savepoint():
                reply = await work
                if reply is not None:
                    await self._reply(tx, ev, reply)
        except Exception:
            # The savepoint undid the handler's writes; answer with a reference to the log.
            self._error_refs += 1
            ref = f"{ev.received_ms % 100000:05d}-{self._error_refs}"
            log.exception("handler failed on %s in %s (ref %s)", ev.event_id, ev.room_id, ref)
            await self._reply(tx, ev, Reply(seq(CRASHED.format(ref=ref))))

    async def _membership(self, tx: Tx, ev: Incoming, ts: int) -> None:
        user_id = ev.source.get("state_key")
        if isinstance(user_id, str):
            joined = ev.content.get("membership") == "join"
            await tx.set_member(ev.room_id, user_id, ts if joined else None)

    async def _poll_response(self, tx: Tx, ev: Incoming, ts: int, state: RoomState) -> str:
        rel = ev.content.get("m.relates_to")
        answers = decisions.response_answers(dict(ev.content))
        if not isinstance(rel, Mapping) or answers is None:
            return "event"
        start = rel.get("event_id")
        if rel.get("rel_type") != "m.reference" or not isinstance(start, str):
            return "event"
        ctx = await self._context(tx, ev, ts, state)
        reply = await decisions.poll_response(ctx, start, answers)
        await self._answer_under(tx, ev, reply, start, ts)
        return "vote"

    async def _reaction(self, tx: Tx, ev: Incoming, ts: int, state: RoomState) -> str:
        rel = ev.content.get("m.relates_to")
        if not isinstance(rel, Mapping) or rel.get("rel_type") != "m.annotation":
            return "event"
        target, key = rel.get("event_id"), rel.get("key")
        if not isinstance(target, str) or not isinstance(key, str):
            return "event"
        ctx = await self._context(tx, ev, ts, state)
        reply = await kudos_commands.reaction(ctx, target, key)
        await self._answer_under(tx, ev, reply, target, ts)
        return "reaction"

    async def _answer_under(
        self, tx: Tx, ev: Incoming, reply: Reply | None, target: str, now: int
    ) -> None:
        """Answer a reaction or poll answer under the message it relates to: no client shows
        a reply to a reaction or a poll answer. (A failure is caught by the event's savepoint.)"""
        if reply is not None:
            await self._send(
                tx, ev.room_id, ev.event_id, reply, in_reply_to=target, at=ev.origin_ts, now=now
            )

    async def _handle_edit(self, tx: Tx, ev: Incoming, original: str) -> str:
        before = await tx.handled_event(original)
        if before is not None and before.sender != ev.sender:
            return "event"  # someone else's "edit" is not an edit at all
        new_content = ev.content.get("m.new_content")
        new_text = command_text(new_content) if isinstance(new_content, Mapping) else ""
        was_command = before is not None and before.kind in ("command", "expired")
        if not was_command and not is_command(new_text, self.prefix):
            return "event"
        await self._reply(tx, ev, Reply(seq(EDITED)))
        return "edit"

    async def _reply(self, tx: Tx, ev: Incoming, reply: Reply) -> None:
        await self._send(
            tx,
            ev.room_id,
            ev.event_id,
            reply,
            in_reply_to=ev.event_id,
            thread_root=thread_root(ev.content),
            at=ev.origin_ts,
            now=ev.received_ms,
        )

    async def _send(
        self,
        tx: Tx,
        room_id: str,
        source: str,
        reply: Reply,
        *,
        in_reply_to: str | None,
        thread_root: str | None = None,
        at: int,
        now: int,
    ) -> None:
        """Queue a reply (and the events that go with it) in the outbox of this transaction;
        `at` is the source's own time (see `txn_id`), `now` when the reply is queued."""
        content = message_content(reply, in_reply_to=in_reply_to, thread_root=thread_root)
        await tx.enqueue(room_id, txn_id(source, at=at), "m.room.message", content, now)
        if reply.export_size is not None:
            # Built and uploaded by the outbox after the commit: files are not made in a
            # transaction. The job names the size, so a resend exports the same entries.
            job = {
                "size": reply.export_size,
                "in_reply_to": in_reply_to,
                "thread_root": thread_root,
            }
            await tx.enqueue(room_id, txn_id(source, 1, at=at), EXPORT_JOB, job, now)
        for extra in reply.extra:
            await tx.enqueue(
                room_id, txn_id(source, extra.key, at=at), extra.event_type, extra.content, now
            )

    # -- deadlines ------------------------------------------------------------------------

    async def close_due(self) -> None:
        """Close every item whose deadline has passed (run by the deadline jobs)."""
        now = now_ms()
        async with self.storage.write() as tx:
            for room_id, number in await tx.due_items(now):
                item = await tx.item(room_id, number)
                if item is None:
                    continue
                ctx = await self._job_context(tx, room_id, f"job:close:{room_id}:{number}", now)
                if item.type == "action":
                    work = actions_commands.deadline(ctx, item)
                else:
                    work = decisions.close_item(ctx, item)
                await self._job(tx, ctx, work, in_reply_to=item.open_event)
            for room_id, number, due in await tx.due_reminders(now):
                item = await tx.item(room_id, number)
                await tx.reminder_sent(room_id, number, due)
                if item is None:
                    continue
                ctx = await self._job_context(
                    tx, room_id, f"job:remind:{room_id}:{number}:{due}", now
                )
                await self._job(
                    tx, ctx, actions_commands.reminder(ctx, item, due), in_reply_to=item.open_event
                )
        await self.make_due_reports()

    async def _job(
        self,
        tx: Tx,
        ctx: Context,
        work: Coroutine[Any, Any, Reply | None],
        *,
        in_reply_to: str | None,
    ) -> None:
        try:
            async with tx.savepoint():
                reply = await work
                if reply is not None:
                    await self._send(
                        tx,
                        ctx.room_id,
                        ctx.event_id,
                        reply,
                        in_reply_to=in_reply_to,
                        at=ctx.source_ts,
                        now=ctx.now_ms,
                    )
        except Exception:
            log.exception("scheduled work %s failed", ctx.event_id)

    async def _job_context(self, tx: Tx, room_id: str, source: str, now: int) -> Context:
        head = await tx.ledger_head(room_id)
        if head is None:
            raise RuntimeError(f"no ledger for {room_id}")
        return Context(
            room_id=room_id,
            sender=self.user_id,
            event_id=source,
            event_ts=now,
            now_ms=now,
            source_ts=now,
            prefix=self.prefix,
            bot_user_id=self.user_id,
            room=NioRoomView(self.rooms.setdefault(room_id, RoomState(room_id)), None),
            registry=self.registry,
            store=tx,
            services=self.services,
            rules=head.rules,
        )

    async def _watch_deadlines(self) -> None:
        now = now_ms()
        async with self.storage.read() as tx:
            jobs = [(f"close:{r}:{i}", when) for r, i, when in await tx.next_deadlines()]
            jobs += [(f"remind:{r}:{i}:{due}", due) for r, i, due in await tx.pending_reminders()]
            for room_id in await tx.rooms_with_ledgers():
                head = await tx.ledger_head(room_id)
                if head is not None:
                    at, tz = head.rules.report_time, head.rules.timezone
                    jobs.append((f"report:{room_id}", reports.next_report_instant(now, at, tz)))
        self.deadlines.watch(jobs)

    async def make_due_reports(self) -> None:
        """Make each room's latest due daily report, once per room and local day."""
        now = now_ms()
        async with self.storage.read() as tx:
            rooms = await tx.rooms_with_ledgers()
        for room_id in rooms:
            try:
                await self._report(room_id, now)
            except Exception:
                log.exception("the daily report of %s failed", room_id)
        self.outbox.wake()

    async def _due_day(self, tx: Tx, room_id: str, now: int) -> str | None:
        """The day whose report this room should make now, or None."""
        head = await tx.ledger_head(room_id)
        genesis = await tx.entry(room_id, 1)
        if head is None or genesis is None:
            return None
        rules = head.rules
        day = reports.due_report_day(now, rules.report_time, rules.timezone)
        if day in await tx.report_days(room_id):
            return None  # done already
        if day < scoring.local_day(genesis.entry.ts, rules.timezone):
            return None  # a day from before the bot was in the room
        return day

    async def _report(self, room_id: str, now: int) -> None:
        # Every deadline job looks for due reports: a read decides, without the write lock.
        async with self.storage.read() as tx:
            if await self._due_day(tx, room_id, now) is None:
                return
        async with self.storage.write() as tx:
            day = await self._due_day(tx, room_id, now)
            head = await tx.ledger_head(room_id)
            if day is None or head is None:
                return
            rules = head.rules
            source = f"job:report:{room_id}:{day}"
            ctx = await self._job_context(tx, room_id, source, now)
            made = await tx.report_days(room_id)
            previous = made[max(made)] if made else None
            report = await reports.daily_report(ctx, day, previous)
            public_flags = rules.moderators_room is None
            folder = self.config.bot.data_dir / "reports"
            files = await asyncio.to_thread(
                write_report_files, report, folder, include_flags=public_flags
            )
            for i, message in enumerate(report_messages(report, include_flags=public_flags)):
                content = message_content(message)
                await tx.enqueue(
                    room_id, txn_id(source, f"part{i}", at=now), "m.room.message", content, now
                )
            chart = {"path": str(files.png), "name": f"activity-{day}.png"}
            await tx.enqueue(room_id, txn_id(source, "chart", at=now), IMAGE_JOB, chart, now)
            flags = flags_message(report)
            if rules.moderators_room and flags is not None:
                content = message_content(flags)
                await tx.enqueue(
                    rules.moderators_room,
                    txn_id(source, "flags", at=now),
                    "m.room.message",
                    content,
                    now,
                )
            size = report.checkpoint.size if report.checkpoint is not None else None
            await tx.add_report(room_id, day, now, size)
            log.info("made the report of %s for %s", room_id, day)

    # -- invites --------------------------------------------------------------------------

    async def _consider_invite(self, room_id: str, invite_state: Iterable[Any]) -> None:
        # nio strips `content` from the sources of invite-state events, so read its fields.
        inviter = None
        for ev in invite_state:
            if (
                isinstance(ev, InviteMemberEvent)
                and ev.state_key == self.user_id
                and ev.membership == "invite"
            ):
                inviter = ev.sender
        if not inviter:
            return
        reason = await self._invite_refusal(inviter)
        if reason:
            log.info("ignored the invite to %s from %s: %s", room_id, inviter, reason)
            return
        resp = await self.client.join(room_id)
        if isinstance(resp, JoinError):
            log.warning("could not join %s (invited by %s): %s", room_id, inviter, resp.message)
        else:
            log.info("joined %s, invited by %s", room_id, inviter)

    async def _invite_refusal(self, inviter: str) -> str | None:
        invites = self.config.invites
        if not invites.may_invite(inviter):
            if invites.allowed_users:
                return "the inviter is not in invites.allowed_users"
            return f"the server {inviter.partition(':')[2]} is not in invites.allowed_servers"
        rows = await self.storage.query("SELECT count(*) FROM rooms WHERE left_ts IS NULL")
        if rows[0][0] >= invites.max_rooms:
            return f"already in {invites.max_rooms} rooms (invites.max_rooms)"
        return None


def _ts(event: Mapping[str, Any]) -> int:
    ts = event.get("origin_server_ts")
    return ts if isinstance(ts, int) else 0


def _is_own_join(event: Mapping[str, Any], user_id: str) -> bool:
    content = event.get("content")
    return (
        event.get("type") == "m.room.member"
        and event.get("state_key") == user_id
        and isinstance(content, Mapping)
        and content.get("membership") == "join"
    )


def _own_join(timeline: list[Mapping[str, Any]], user_id: str) -> int | None:
    """Index of the last join of ours in the timeline (a re-join counts from the new join)."""
    found = None
    for i, ev in enumerate(timeline):
        if _is_own_join(ev, user_id):
            found = i
    return found


def _own_join_event(state: list[Mapping[str, Any]], user_id: str) -> Mapping[str, Any] | None:
    for ev in state:
        if _is_own_join(ev, user_id):
            return ev
    return None


def _describe(resp: object) -> str:
    if isinstance(resp, SyncError):
        return f"{resp.status_code}: {resp.message}"
    return repr(resp)
