"""An export of a room that used every feature verifies with nothing but the file; one changed
outcome or score does not."""

import json

import pytest

from bot.cli import main
from bot.export import write_export
from bot.storage import Storage
from commands import decisions
from tests.commands.conftest import ROOM, Harness

A, B, C = "@alice:example.org", "@bob:example.org", "@carol:example.org"
HOUR = 3_600_000


@pytest.fixture
async def storage(tmp_path):
    store = await Storage.open(tmp_path / "c.db")
    yield store
    await store.close()


async def busy_room(storage) -> Harness:
    room = Harness(storage)
    await room.start()
    room.room.levels[C] = 50
    await room.say(A, "!kudos @bob:example.org 2 for the soup")
    await room.say(B, "!kudos @alice:example.org")
    await room.say(C, "!void 2 testing")
    await room.say(A, "!appeal 4")
    await room.say(A, "!propose rule kudos.daily_allowance 5")
    await room.say(A, "!poll Lunch? | Pizza | Soup --method ranked")
    for voter in (A, B, C):
        await room.say(voter, "!vote #1 agree")
        await room.say(voter, "!vote #2 agree")
    await room.say(A, "!vote #3 2 > 1")
    await room.say(B, "!vote #3 1")
    await room.say(A, "!action Cleanup --at 3h --need 2")
    await room.say(A, "!in #4")
    await room.say(B, "!in #4")
    room.now += 4 * HOUR
    await room.say(A, "!attended #4 @bob:example.org")
    room.now += 70 * HOUR
    async with storage.write() as tx:
        head = await tx.ledger_head(ROOM)
        ctx = room.context(tx, "@commons:example.org", rules=head.rules, event_id="job:x")
        for number in (1, 2, 3):
            await decisions.close_item(ctx, await tx.item(ROOM, number))
    await room.say(A, "!kudos @carol:example.org 5")  # over the new allowance: refused
    await room.say(A, "!kudos @carol:example.org 3 for the bread")
    await room.say(A, "!erase 27")
    await room.say(A, "!verify")
    return room


async def test_a_busy_room_verifies_and_a_changed_outcome_is_caught(storage, tmp_path, capsys):
    await busy_room(storage)
    path = tmp_path / "export.jsonl"
    with path.open("wb") as out:
        count = await write_export(storage, ROOM, out)
    assert count > 25
    assert main(["verify", str(path)]) == 0
    assert f"ok — {count} entries, 1 checkpoints" in capsys.readouterr().out

    lines = path.read_bytes().splitlines()
    for i, raw in enumerate(lines):
        line = json.loads(raw)
        entry = line.get("entry")
        if entry and entry["kind"] == "item.close" and entry["data"]["outcome"] == "passed":
            entry["data"]["outcome"] = "failed"
            lines[i] = json.dumps(line).encode()
            break
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b"\n".join(lines) + b"\n")
    assert main(["verify", str(bad)]) == 1
    assert f"entry {i + 1}: hash does not match its contents" in capsys.readouterr().err


async def test_the_parallel_path_gives_the_same_answers(storage, tmp_path, capsys, monkeypatch):
    import consensus.verify

    await busy_room(storage)
    path = tmp_path / "export.jsonl"
    with path.open("wb") as out:
        count = await write_export(storage, ROOM, out)
    # Small chunks, so this small export goes through the worker processes.
    monkeypatch.setattr(consensus.verify, "CHUNK_BYTES", 1024)
    assert path.stat().st_size > 4 * 1024
    assert main(["verify", str(path)]) == 0
    assert f"ok — {count} entries" in capsys.readouterr().out
    data = bytearray(path.read_bytes())
    data[data.index(b'"amount":2') + 9] = ord("7")
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(bytes(data))
    assert main(["verify", str(bad)]) == 1
    assert "hash does not match its contents" in capsys.readouterr().err
