"""Sending what the outbox holds, after the transaction that wrote it has committed.

Each row carries a transaction ID derived from the event that caused it, so a row sent just
before a crash and sent again at the next start is dropped by the homeserver's own
de-duplication instead of appearing twice. Rows go out in order per room; a 429 is waited out
for as long as the server asks (`retry_after_ms`), a network failure is retried with capped
backoff, and a permanent refusal (the bot was kicked, the room is gone) is recorded and skipped.
"""

from __future__ import annotations

import asyncio
import logging
import random
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import quote

from nio import AsyncClient, RoomSendError, RoomSendResponse, UploadResponse

from bot.clock import now_ms
from bot.session import NETWORK_ERRORS
from bot.storage import OutboxRow, Storage

log = logging.getLogger(__name__)

_PERMANENT = {"M_FORBIDDEN", "M_NOT_FOUND", "M_BAD_JSON", "M_NOT_JSON", "M_TOO_LARGE"}
# Other error answers (a 500, say) are retried this many times before the message is dropped;
# network failures are retried for as long as it takes, because the server is just down.
_MAX_ERROR_ATTEMPTS = 8
POLL_SECONDS = 5.0


# An outbox row of this type is a job, not an event: upload the room's ledger as a file, then
# send the file message (SPEC `!export`).
EXPORT_JOB = "commons.export"
# Upload a file the bot wrote (the daily report's chart) and send it as an image.
IMAGE_JOB = "commons.image"


class Outbox:
    def __init__(self, storage: Storage, client: AsyncClient) -> None:
        self._storage = storage
        self._client = client
        self._wake = asyncio.Event()
        self._workers: dict[str, asyncio.Task[None]] = {}
        self.sent = 0

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        """Hand pending rows to one worker per room; runs until cancelled."""
        try:
            while True:
                self._wake.clear()
                for row in await self._storage.pending_outbox():
                    task = self._workers.get(row.room_id)
                    if task is None or task.done():
                        self._workers[row.room_id] = asyncio.create_task(
                            self._room_worker(row.room_id), name=f"outbox {row.room_id}"
                        )
                # Also look every few seconds: another process (an operator override) may
                # have queued something without a way to wake us.
                try:
                    await asyncio.wait_for(self._wake.wait(), POLL_SECONDS)
                except TimeoutError:
                    pass
        finally:
            for task in self._workers.values():
                task.cancel()

    async def _room_worker(self, room_id: str) -> None:
        while True:
            rows = [r for r in await self._storage.pending_outbox() if r.room_id == room_id]
            if not rows:
                return
            for row in rows:
                await self._send(row)

    async def _send(self, row: OutboxRow) -> None:
        if row.event_type in (EXPORT_JOB, IMAGE_JOB):
            upload = self._upload_export if row.event_type == EXPORT_JOB else self._upload_image
            content = await upload(row)
            if content is None:
                return
            row = OutboxRow(row.id, row.room_id, row.txn_id, "m.room.message", content)
        delay = 1.0
        errors = 0
        while True:
            try:
                resp: Any = await self._client.room_send(
                    row.room_id,
                    row.event_type,
                    row.content,
                    tx_id=row.txn_id,
                    ignore_unverified_devices=True,
                )
            except NETWORK_ERRORS as exc:
                resp = exc
            if isinstance(resp, RoomSendResponse):
                await self._storage.mark_sent(row.id, resp.event_id, now_ms())
                self.sent += 1
                return
            if isinstance(resp, RoomSendError):
                if resp.status_code == "M_LIMIT_EXCEEDED":
                    wait = (resp.retry_after_ms or 1000) / 1000
                    log.info("rate limited in %s; waiting %.1fs", row.room_id, wait)
                    await asyncio.sleep(wait)
                    continue
                errors += 1
                if resp.status_code in _PERMANENT or errors >= _MAX_ERROR_ATTEMPTS:
                    log.warning(
                        "could not send to %s (%s: %s); dropping that message",
                        row.room_id,
                        resp.status_code,
                        resp.message,
                    )
                    await self._storage.mark_failed(row.id, f"{resp.status_code}: {resp.message}")
                    return
            log.warning("sending to %s failed (%s); retrying in %.0fs", row.room_id, resp, delay)
            await asyncio.sleep(delay * (0.5 + random.random()))  # noqa: S311 (jitter)
            delay = min(delay * 2, 60.0)

    async def _upload(self, row: OutboxRow, path: Path, name: str, mimetype: str) -> str | None:
        """Upload a file to the media repository; its mxc:// URI, or None after retries."""
        length = path.stat().st_size
        resp: Any = None
        for attempt in range(5):
            with path.open("rb") as data:
                try:
                    resp, _ = await self._client.upload(
                        data, content_type=mimetype, filename=name, filesize=length
                    )
                except NETWORK_ERRORS as exc:
                    resp = exc
            if isinstance(resp, UploadResponse):
                return str(resp.content_uri)
            log.warning("upload of %s failed (%s); attempt %d", name, resp, attempt + 1)
            await asyncio.sleep(2**attempt)
        await self._storage.mark_failed(row.id, f"upload failed: {resp}")
        return None

    async def _upload_export(self, row: OutboxRow) -> dict[str, Any] | None:
        from bot.export import write_export  # here, so the outbox has no hard tie to exports

        size = int(row.content["size"])
        name = f"ledger-{quote(row.room_id, safe='')}-{size}.jsonl"
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / name
            with path.open("wb") as out:
                await write_export(self._storage, row.room_id, out, size)
            length = path.stat().st_size
            uri = await self._upload(row, path, name, "application/x-ndjson")
        if uri is None:
            return None
        content: dict[str, Any] = {
            "msgtype": "m.file",
            "body": name,
            "filename": name,
            "url": uri,
            "info": {"mimetype": "application/x-ndjson", "size": length},
            "m.mentions": {},
        }
        relates: dict[str, Any] = {"m.in_reply_to": {"event_id": row.content["in_reply_to"]}}
        if row.content.get("thread_root"):
            relates.update(
                {
                    "rel_type": "m.thread",
                    "event_id": row.content["thread_root"],
                    "is_falling_back": False,
                }
            )
        content["m.relates_to"] = relates
        return content

    async def _upload_image(self, row: OutboxRow) -> dict[str, Any] | None:
        path = Path(str(row.content["path"]))
        if not path.exists():
            log.warning("the image %s to send to %s is gone", path, row.room_id)
            await self._storage.mark_failed(row.id, "file missing")
            return None
        name = str(row.content["name"])
        uri = await self._upload(row, path, name, "image/png")
        if uri is None:
            return None
        return {
            "msgtype": "m.image",
            "body": name,
            "filename": name,
            "url": uri,
            "info": {"mimetype": "image/png", "size": path.stat().st_size},
            "m.mentions": {},
        }
