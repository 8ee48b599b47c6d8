"""Logging in: reuse the stored access token and device, or log in once with the password.

Reusing the session keeps one device for the bot (no pile of devices on the account) and keeps
transaction IDs meaningful: the homeserver de-duplicates them per access token.
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any

import aiohttp
from nio import AsyncClient, LoginError, LoginResponse, WhoamiError, WhoamiResponse

from bot.config import Config
from bot.storage import Storage

log = logging.getLogger(__name__)

NETWORK_ERRORS = (TimeoutError, OSError, aiohttp.ClientError)


class LoginFailed(Exception):
    """Credentials were refused; the message says what to fix."""


async def _retrying(call: Any, what: str) -> Any:
    delay = 1.0
    while True:
        try:
            return await call()
        except NETWORK_ERRORS as exc:
            log.warning(
                "%s: homeserver unreachable (%s); retrying in about %.0fs", what, exc, delay
            )
            await asyncio.sleep(delay * (0.5 + random.random()))  # noqa: S311 (jitter)
            delay = min(delay * 2, 60.0)


async def login(client: AsyncClient, config: Config, storage: Storage) -> None:
    m = config.matrix
    if m.access_token:
        client.access_token = m.access_token
        client.user_id = m.user_id
        who = await _retrying(client.whoami, "checking the access token")
        if isinstance(who, WhoamiError) or not isinstance(who, WhoamiResponse):
            raise LoginFailed(f"matrix.access_token was refused: {getattr(who, 'message', who)}")
        if who.user_id != m.user_id:
            raise LoginFailed(
                f"matrix.access_token belongs to {who.user_id}, not matrix.user_id {m.user_id}"
            )
        client.restore_login(m.user_id, who.device_id or "", m.access_token)
        return
    stored_user = await storage.get_kv("session.user_id")
    token = await storage.get_kv("session.access_token")
    device = await storage.get_kv("session.device_id")
    if stored_user == m.user_id and token and device:
        client.restore_login(m.user_id, device, token)
        log.info("reusing the stored session (device %s)", device)
        return
    resp = await _retrying(
        lambda: client.login(password=m.password, device_name=m.device_name), "logging in"
    )
    if isinstance(resp, LoginError) or not isinstance(resp, LoginResponse):
        raise LoginFailed(f"login as {m.user_id} failed: {getattr(resp, 'message', resp)}")
    async with storage.write() as tx:
        await tx.set_kv("session.user_id", resp.user_id)
        await tx.set_kv("session.device_id", resp.device_id)
        await tx.set_kv("session.access_token", resp.access_token)
    log.info("logged in as %s (device %s)", resp.user_id, resp.device_id)
