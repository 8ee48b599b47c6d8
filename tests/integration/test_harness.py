"""Tests of the integration harness itself: the homeserver, scripted users and the bot runner."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import yaml

from bot.devserver import LocalSynapse, MatrixRequestError, RegisteredUser, request_json

from .conftest import READY_MARKER, BotProcess
from .matrix_user import MatrixCallError, MatrixUser

UserFactory = Callable[[str | RegisteredUser], Awaitable[MatrixUser]]


async def test_two_users_exchange_every_kind_of_event(user_factory: UserFactory) -> None:
    alice = await user_factory("alice")
    bob = await user_factory("bob")
    room = await alice.create_room(invite=[bob.user_id], name="harness")
    await bob.join(room)
    await alice.wait_member(room, bob.user_id)

    hello = await alice.send_text(
        room, "hi <b>", formatted_body="hi &lt;b&gt;", mentions={"user_ids": [bob.user_id]}
    )
    seen = await bob.wait_for(room, lambda e: e["event_id"] == hello)
    assert seen["sender"] == alice.user_id
    assert seen["content"]["formatted_body"] == "hi &lt;b&gt;"
    assert seen["content"]["m.mentions"] == {"user_ids": [bob.user_id]}

    notice = {
        "msgtype": "m.notice",
        "body": "noted",
        "m.relates_to": {"m.in_reply_to": {"event_id": hello}},
    }
    answer_id = await bob.send_event(room, "m.room.message", notice)
    answer = await alice.wait_reply(room, hello)
    assert answer["event_id"] == answer_id
    assert answer["content"]["msgtype"] == "m.notice"
    assert [e["event_id"] for e in alice.replies_to(room, hello)] == [answer_id]

    poll_content = {
        "org.matrix.msc3381.poll.start": {
            "question": {"org.matrix.msc1767.text": "Lunch?"},
            "kind": "org.matrix.msc3381.poll.disclosed",
            "max_selections": 1,
            "answers": [{"id": "y", "org.matrix.msc1767.text": "yes"}],
        },
        "org.matrix.msc1767.text": "Lunch?",
    }
    poll_id = await bob.send_event(room, "org.matrix.msc3381.poll.start", poll_content)
    poll = await alice.wait_for(room, lambda e: e["event_id"] == poll_id)
    assert poll["type"] == "org.matrix.msc3381.poll.start"

    thread_id = await bob.send_text(room, "in a thread", thread_root=hello)
    threaded = await alice.wait_for(room, lambda e: e["event_id"] == thread_id)
    assert threaded["content"]["m.relates_to"]["rel_type"] == "m.thread"
    assert threaded["content"]["m.relates_to"]["m.in_reply_to"] == {"event_id": hello}

    reaction_id = await alice.react(room, hello, "👍")
    reaction = await bob.wait_for(room, lambda e: e["event_id"] == reaction_id)
    assert reaction["content"]["m.relates_to"]["key"] == "👍"
    redaction_id = await alice.redact(room, reaction_id)
    redaction = await bob.wait_for(room, lambda e: e["event_id"] == redaction_id)
    assert reaction_id in (redaction.get("redacts"), redaction["content"].get("redacts"))

    # Both saw the same events in the same (server) order, each exactly once.
    mine = [hello, answer_id, poll_id, thread_id, reaction_id, redaction_id]
    for user in (alice, bob):
        await user.wait_for(room, lambda e: e["event_id"] == redaction_id)
        ids = [e["event_id"] for e in user.events(room)]
        assert [i for i in ids if i in mine] == mine


async def test_wait_for_times_out_with_the_latest_events(user_factory: UserFactory) -> None:
    alice = await user_factory("alice")
    room = await alice.create_room(name="quiet")
    await alice.send_text(room, "only this")
    with pytest.raises(AssertionError, match="only this"):
        await alice.wait_for(room, lambda e: e["content"].get("body") == "never", timeout=0.5)


async def test_errors_raise_with_the_server_message(user_factory: UserFactory) -> None:
    alice = await user_factory("alice")
    with pytest.raises(MatrixCallError, match="M_") as caught:
        await alice.join("!nonexistent:localhost")
    assert caught.value.response.status_code


async def test_a_gappy_sync_is_paged_back(
    synapse: LocalSynapse, register: Callable[..., RegisteredUser], tmp_path: Path
) -> None:
    account = register("carol")
    writer = await MatrixUser.login(synapse.base_url, account, tmp_path / "writer")
    room = await writer.create_room(name="busy")
    sent = [await writer.send_text(room, f"message {n}") for n in range(12)]
    # A second device with a tiny timeline limit: its first sync is "limited".
    device = synapse.register(account.user_id[1:].split(":")[0], account.password)
    reader = await MatrixUser.login(
        synapse.base_url, device, tmp_path / "reader", timeline_limit=3
    )
    try:
        await reader.wait_for(room, lambda e: e["event_id"] == sent[-1])
        ids = [e["event_id"] for e in reader.events(room)]
        assert [i for i in ids if i in sent] == sent
        assert ids[0] == writer.events(room)[0]["event_id"]  # back to m.room.create
    finally:
        await reader.close()
        await writer.close()


def test_register_gives_unique_users_and_reuses_existing_names(
    synapse: LocalSynapse, register: Callable[..., RegisteredUser]
) -> None:
    first, second = register("dave"), register("dave")
    assert first.user_id != second.user_id
    assert first.user_id.startswith("@dave-") and first.user_id.endswith(":localhost")

    again = synapse.register(first.user_id[1:].split(":")[0], first.password)
    assert again.user_id == first.user_id
    assert again.device_id != first.device_id
    for account in (first, again):
        whoami = request_json(
            synapse.base_url, "GET", "/_matrix/client/v3/account/whoami",
            access_token=account.access_token,
        )  # fmt: skip
        assert whoami["user_id"] == first.user_id

    with pytest.raises(MatrixRequestError) as caught:
        synapse.register(first.user_id[1:].split(":")[0], "wrong password")
    assert caught.value.errcode == "M_FORBIDDEN"


def test_a_second_server_with_another_name_runs_alongside(
    synapse: LocalSynapse, tmp_path: Path
) -> None:
    with LocalSynapse(tmp_path / "other", server_name="otherhost") as other:
        assert other.port != synapse.port
        assert other.register("erin").user_id == "@erin:otherhost"
    assert not other.running
    with pytest.raises(MatrixRequestError):
        request_json(other.base_url, "GET", "/_matrix/client/versions", timeout=1)


def test_a_server_that_dies_at_start_reports_its_log(tmp_path: Path) -> None:
    broken = LocalSynapse(tmp_path / "broken", server_name="not a valid name")
    with pytest.raises(RuntimeError, match=r"exited with code 1(.|\n)*invalid format"):
        broken.start()
    assert not broken.running


def test_a_port_in_use_is_refused(synapse: LocalSynapse, tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="already in use"):
        LocalSynapse(tmp_path / "clash", port=synapse.port).start()


FAKE_BOT = """
import signal, sys, time, yaml
config = yaml.safe_load(open(sys.argv[-1]))
print("fake bot for", config["matrix"]["user_id"])
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
print("INFO commons: ready")
while True:
    time.sleep(1)
"""


def test_bot_process_writes_config_and_waits_for_ready(
    synapse: LocalSynapse, bot_factory: Callable[..., BotProcess], tmp_path: Path
) -> None:
    script = tmp_path / "fake_bot.py"
    script.write_text(FAKE_BOT)
    overrides = {"invites": {"allowed_servers": ["otherhost"]}, "rules": {"kudos.cap": 3}}
    bot = bot_factory(overrides, command=[sys.executable, str(script), "--config"])

    config = yaml.safe_load(bot.config_path.read_text())
    assert config["matrix"] == {
        "homeserver": synapse.base_url,
        "user_id": bot.user_id,
        "password": bot.user.password,
    }
    assert config["invites"] == {"allowed_servers": ["otherhost"], "allowed_users": []}
    assert config["rules"] == {"timezone": "UTC", "kudos.cap": 3}
    assert config["bot"]["data_dir"] == "./bot-data"
    assert f"fake bot for {bot.user_id}" in bot.log_text()

    bot.restart()
    assert bot.log_text().count(READY_MARKER) == 2
    assert bot.stop() == 0
    bot.start()
    bot.kill()
    assert bot.returncode == -9


def test_bot_process_fails_with_the_log_tail(
    bot_factory: Callable[..., BotProcess],
) -> None:
    crash = [sys.executable, "-c", "import sys; print('config is bad'); sys.exit(3)"]
    with pytest.raises(pytest.fail.Exception, match=r"code 3(.|\n)*config is bad"):
        bot_factory(command=crash)

    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    silent = bot_factory(start=False, command=sleeper)
    with pytest.raises(pytest.fail.Exception, match=r"not ready after 0\.5 s"):
        silent.start(timeout=0.5)
    assert silent.returncode == -9
