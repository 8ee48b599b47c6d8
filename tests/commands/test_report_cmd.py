"""`!report` in chat and `commons report` offline."""

import asyncio

from bot.cli import main
from bot.storage import Storage
from consensus.scoring import local_day

from .conftest import ROOM, T0, Harness

A = "@alice:example.org"


async def test_report_today_so_far(room):
    await room.say(A, "!kudos @bob:example.org 2 for <b>soup</b>")
    await room.say(A, "!propose Buy a kettle")
    text = await room.say(A, "!report")
    assert text.startswith("Daily report for")
    assert "Buy a kettle" in text
    assert "hasn't begun" in await room.say(A, "!report 2999-01-01")


def test_commons_report_offline(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()

    async def fill() -> None:
        storage = await Storage.open(data / "commons.db")
        try:
            room = Harness(storage)
            await room.start()
            await room.say(A, "!kudos @bob:example.org 3")
        finally:
            await storage.close()

    asyncio.run(fill())
    config = tmp_path / "config.yaml"
    config.write_text(
        'matrix: {homeserver: "http://127.0.0.1:1", user_id: "@commons:example.org", '
        'password: "x"}\nbot: {data_dir: ./data}\n'
    )
    day = local_day(T0, "UTC")
    assert main(["report", "--config", str(config), "--room", ROOM, "--date", day]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# Daily report for") and day in out
    assert main(["report", "--config", str(config), "--room", "!nope:x"]) == 1
    assert "no ledger for room !nope:x" in capsys.readouterr().err
