"""The daily report through a real Synapse: made at its time, exactly once, posted with its
chart, written to the data folder."""

from __future__ import annotations

import json
import time
from urllib.parse import quote

from consensus.scoring import local_day

from .test_decisions import plain, room_of
from .test_foundation import ask

DAY_MS = 86_400_000


async def test_the_daily_report_is_posted_once_with_its_files(bot_factory, user_factory):
    # Move the bot's clock to just after the next UTC midnight, so today's report is due.
    now = int(time.time() * 1000)
    offset = DAY_MS - now % DAY_MS + 60_000
    bot, (alice, bob), room_id = await room_of(
        bot_factory,
        user_factory,
        n=2,
        overrides={"rules": {"report.time": "00:00"}, "bot": {"max_command_age": "48h"}},
    )
    today = local_day(now, "UTC")
    await ask(alice, room_id, f"!kudos {bob.user_id} 2 for the <b>soup</b>")
    await ask(alice, room_id, "!propose Buy a <i>kettle</i>")
    bot.extra_env["COMMONS_TEST_CLOCK_OFFSET_MS"] = str(offset)
    bot.restart()

    def report_part(event):
        body = event.get("content", {}).get("body", "")
        return event.get("sender") == bot.user_id and body.startswith("Daily report")

    report = await alice.wait_for(room_id, report_part, timeout=60)
    text = plain(report)
    assert today in text
    assert "commons-checkpoint v1" in text
    assert report["content"]["m.mentions"] == {}
    assert "&lt;i&gt;kettle&lt;/i&gt;" in report["content"]["formatted_body"]
    chart = await alice.wait_for(
        room_id, lambda e: e.get("content", {}).get("msgtype") == "m.image", timeout=60
    )
    assert chart["content"]["info"]["mimetype"] == "image/png"

    folder = bot.data_dir / "reports" / quote(room_id, safe="")
    data = json.loads((folder / f"{today}.json").read_text())
    assert data["kudos"]["total"] == 2
    assert (folder / f"{today}.png").read_bytes().startswith(b"\x89PNG")
    assert "&lt;i&gt;kettle&lt;/i&gt;" in (folder / f"{today}.html").read_text()

    # A restart doesn't make or post it again.
    bot.restart()
    await ask(alice, room_id, "!help")
    parts = [e for e in alice.events(room_id) if report_part(e)]
    assert len(parts) == 1
