"""The report as Matrix messages, Markdown and JSON: escaping, no pings, splitting, content."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from commands.render import NO_PING, Reply, message_content, to_plain
from commands.report_render import (
    MESSAGE_BUDGET,
    flags_message,
    hour_labels,
    report_json,
    report_markdown,
    report_messages,
    report_sections,
)
from consensus.report import (
    ActionLine,
    CheckpointInfo,
    DecisionLine,
    Flag,
    KudosSection,
    ModLine,
    Ranked,
    Report,
    RuleLine,
)

ROOM = "!room:example.org"
EVIL = '<script>alert("x")</script><img src=x onerror=alert(1)> [click](javascript:alert(1))'


def day_bounds(day: str, tz: str = "Europe/Berlin") -> tuple[int, int, int]:
    """UTC ms of the local midnight starting `day`, of the next one, and the hours between."""
    zone = ZoneInfo(tz)
    start = datetime.fromisoformat(day).replace(tzinfo=zone)
    end = datetime.fromordinal(start.toordinal() + 1).replace(tzinfo=zone)
    start_ms, end_ms = int(start.timestamp() * 1000), int(end.timestamp() * 1000)
    return start_ms, end_ms, (end_ms - start_ms) // 3_600_000


def make_report(day: str = "2025-11-26", **changes: object) -> Report:
    """A full report with one of everything; `changes` replace fields."""
    start_ms, end_ms, hours = day_bounds(day)
    base = Report(
        room=ROOM,
        day=day,
        timezone="Europe/Berlin",
        start_ms=start_ms,
        end_ms=end_ms,
        entries=42,
        hourly=tuple((i * 7) % 5 for i in range(hours)),
        kudos=KudosSection(
            total=12,
            entries=9,
            givers=4,
            receivers=5,
            top_receivers=(Ranked("@alice:example.org", 5), Ranked("@bob:example.org", 3)),
            top_givers=(Ranked("@carol:example.org", 6),),
            reversed=2,
        ),
        decisions=(
            DecisionLine(7, "proposal", "Buy a kettle", True, None, {}),
            DecisionLine(
                5,
                "proposal",
                "Meet on Sundays",
                False,
                "passed",
                {"agree": 5, "abstain": 1, "disagree": 1, "block": 0, "threshold": "2/3"},
            ),
            DecisionLine(6, "poll", None, True, "decided", {"option 1": 3, "option 2": 1}),
        ),
        actions=(
            ActionLine(8, "Clean the park", "went", need=5, committed=6, came=4),
            ActionLine(9, "Picnic", "called off", need=8, committed=3, came=0),
        ),
        moderation=(
            ModLine(57, "mod.void", "@mod:example.org", 42, "spam kudos"),
            ModLine(58, "review", "@mod:example.org", None, None),
        ),
        rule_changes=(RuleLine(60, "kudos.daily_allowance", 5, "proposal #5"),),
        optouts=3,
        expired_commands=2,
        unreviewed=("2025-11-24", "2025-11-25"),
        flags=(
            Flag(
                "ring",
                ("@alice:example.org", "@bob:example.org"),
                "@alice:example.org and @bob:example.org gave each other 80% of their kudos.",
            ),
        ),
        checkpoint=CheckpointInfo(
            size=120,
            root="ab" * 32,
            ts=end_ms,
            signature="c2lnbmF0dXJl",
            key="a2V5",
            text="commons-checkpoint v1 room=%21room%3Aexample.org size=120",
            previous_size=100,
            consistent=True,
        ),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def contents(report: Report, include_flags: bool = True) -> list[dict[str, object]]:
    return [message_content(r) for r in report_messages(report, include_flags=include_flags)]


def test_one_message_in_order_for_a_normal_day():
    (content,) = contents(make_report())
    body = str(content["body"])
    assert body.startswith("Daily report for 2025-11-26 (Europe/Berlin)\n42 ledger entries")
    headings = [
        "Checkpoint",
        "Kudos",
        "Proposals and polls",
        "Action calls",
        "Moderator actions",
        "Rule changes",
        "Opted out: 3 members",
        "Expired commands: 2",
        "Reports not yet reviewed: 2025-11-24, 2025-11-25",
        "Flags for moderators",
    ]
    positions = [body.index(h) for h in headings]
    assert positions == sorted(positions)


def test_messages_are_notices_that_ping_nobody():
    for content in contents(make_report()):
        assert content["msgtype"] == "m.notice"
        assert content["m.mentions"] == {}
        # Names are there, but broken so no client matches them against anyone's name or ID.
        assert "@alice:example.org" not in str(content["body"])
        assert f"@a{NO_PING}lice:example.org 5" in str(content["body"])


@pytest.mark.parametrize(
    "change",
    [
        {"decisions": (DecisionLine(1, "proposal", EVIL, True, None, {}),)},
        {"decisions": (DecisionLine(1, "poll", "q", False, "decided", {EVIL: 2}),)},
        {"actions": (ActionLine(2, EVIL, "open", 3, 1, 0),)},
        {"moderation": (ModLine(3, "mod.void", "@m:x", 1, EVIL),)},
        {"rule_changes": (RuleLine(4, "kudos.reaction_emoji", EVIL, "proposal #1"),)},
        {"flags": (Flag("spike", ("@a:x",), EVIL),)},
        {"kudos": replace(make_report().kudos, top_givers=(Ranked(EVIL, 3),))},
    ],
)
def test_user_text_comes_out_escaped(change):
    (content,) = contents(make_report(**change))
    html = str(content["formatted_body"])
    assert "<script" not in html and "<img" not in html
    assert "&lt;s" in html and "&gt;" in html
    assert 'href="javascript' not in html
    # The plain body shows the text as it was written.
    assert "<script>" in str(content["body"]).replace(NO_PING, "")


@pytest.mark.parametrize(
    ("checkpoint", "expected"),
    [
        (None, "Checkpoint: no signed checkpoint with this report"),
        ({"previous_size": None, "consistent": None}, "First checkpoint of this room."),
        ({}, "Consistent with the previous report's checkpoint (size 100)"),
        ({"consistent": False}, "NOT consistent with the previous report's checkpoint (size 100)"),
    ],
)
def test_checkpoint_and_its_consistency(checkpoint, expected):
    base = make_report().checkpoint
    cp = None if checkpoint is None else replace(base, **checkpoint)
    (content,) = contents(make_report(checkpoint=cp))
    assert expected in str(content["body"])
    if cp is not None:
        body = str(content["body"])
        assert f"Size 120, root {'ab' * 32}" in body
        assert "Signature c2lnbmF0dXJl by key a2V5" in body
        assert "To check it: commons-checkpoint v1" in body


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (DecisionLine(7, "proposal", "T", True, None, {}), "#7 proposal “T”: opened"),
        (DecisionLine(7, "proposal", "T", False, None, {}), "#7 proposal “T”: still open"),
        (
            DecisionLine(7, "proposal", "T", True, "failed", {"agree": 1, "quorum": 3}),
            "#7 proposal “T”: opened and failed (agree 1, quorum 3)",
        ),
        (
            DecisionLine(7, "poll", "T", False, "withdrawn", {}),
            "#7 poll “T”: withdrawn",
        ),
        (DecisionLine(7, "poll", None, False, "decided", {}), "#7 poll text erased: decided"),
    ],
)
def test_decision_lines(line, expected):
    (content,) = contents(make_report(decisions=(line,)))
    assert f"• {expected}\n" in str(content["body"])


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (ActionLine(8, "A", "went", 5, 6, 4), "#8 “A”: went: 6 committed (needed 5), 4 came"),
        (ActionLine(8, "A", "called off", 5, 2, 0), "#8 “A”: called off: 2 of 5 needed committed"),
        (ActionLine(8, "A", "open", 5, 2, 0), "#8 “A”: open: 2 of 5 committed so far"),
        (ActionLine(8, None, "withdrawn", 5, 0, 0), "#8 text erased: withdrawn"),
    ],
)
def test_action_lines(line, expected):
    (content,) = contents(make_report(actions=(line,)))
    assert f"• {expected}\n" in str(content["body"])


def test_moderation_rules_and_kudos_lines():
    body = str(contents(make_report())[0]["body"])
    assert f"Entry 57: void of entry 42 by @m{NO_PING}od:example.org — “spam kudos”" in body
    assert f"Entry 58: review by @m{NO_PING}od:example.org — no reason given" in body
    assert "Entry 60: kudos.daily_allowance = 5 (proposal #5)" in body
    assert "12 kudos in 9 entries, from 4 givers to 5 receivers; 2 taken back" in body


def test_empty_sections_say_none():
    empty = make_report(
        entries=0,
        hourly=(0,) * 24,
        kudos=KudosSection(0, 0, 0, 0, (), (), 0),
        decisions=(),
        actions=(),
        moderation=(),
        rule_changes=(),
        optouts=1,
        expired_commands=0,
        unreviewed=(),
        flags=(),
    )
    body = str(contents(empty)[0]["body"])
    for line in [
        "0 ledger entries written this day.",
        "Kudos: none",
        "Proposals and polls: none",
        "Action calls: none",
        "Moderator actions: none",
        "Rule changes: none",
        "Opted out: 1 member",
        "Expired commands: 0",
        "Reports not yet reviewed: none",
    ]:
        assert line + "\n" in body + "\n"
    assert "Flags" not in body


def test_flags_go_to_the_moderators_room_when_asked():
    report = make_report()
    assert "Flags" not in str(contents(report, include_flags=False)[0]["body"])
    reply = flags_message(report)
    assert reply is not None
    content = message_content(reply)
    assert content["m.mentions"] == {} and content["msgtype"] == "m.notice"
    body = str(content["body"])
    assert body.startswith("Flags for 2025-11-26 (Europe/Berlin)\nRoom !room:example.org.")
    assert f"ring: @a{NO_PING}lice:example.org and @b{NO_PING}ob:example.org gave each" in body
    assert "@alice:example.org" not in body
    assert flags_message(replace(report, flags=())) is None


def test_many_flags_are_cut_to_one_message_saying_how_many_more():
    flags = tuple(Flag("newcomer", (f"@user{i}:example.org",), "x" * 400) for i in range(500))
    reply = flags_message(make_report(flags=flags))
    assert reply is not None
    body = to_plain(reply.body)
    content_size = len(json.dumps(message_content(reply), ensure_ascii=False).encode())
    assert content_size <= MESSAGE_BUDGET
    shown = body.count("newcomer: ")
    assert 0 < shown < 500
    assert body.endswith(f"… and {500 - shown} more, in the report's files.")


def size_of(reply: Reply) -> int:
    return len(json.dumps(message_content(reply), ensure_ascii=False).encode())


def test_a_huge_report_splits_under_the_event_size_limit():
    decisions = tuple(
        DecisionLine(
            i, "poll", f"<b>Question {i}</b> " + "ä" * 150, True, "decided", {"option 1": i}
        )
        for i in range(1, 2001)
    )
    replies = report_messages(make_report(decisions=decisions), include_flags=True)
    assert len(replies) > 1
    bodies = [str(message_content(r)["body"]) for r in replies]
    for i, (reply, body) in enumerate(zip(replies, bodies, strict=True), start=1):
        assert size_of(reply) <= MESSAGE_BUDGET
        assert "(cut: too long" not in body
        assert body.startswith(f"Daily report for 2025-11-26 (Europe/Berlin) (part {i} of ")
        assert message_content(reply)["m.mentions"] == {}
    # Every line is there once, in order, and the section names its continuation.
    found = [
        int(line.split()[1][1:]) for b in bodies for line in b.splitlines() if " poll " in line
    ]
    assert found == list(range(1, 2001))
    assert sum(b.count("Proposals and polls (continued)") for b in bodies) == len(replies) - 1
    # The sections after the long one are still there, after it.
    assert "Reports not yet reviewed" in bodies[-1]


def test_a_section_that_fits_a_message_is_not_split():
    # Each section weighs about 38 KB: both don't fit in one message, each fits in one.
    many = tuple(ActionLine(i, "x" * 180, "open", 3, 1, 0) for i in range(1, 81))
    decisions = tuple(DecisionLine(i, "poll", "y" * 180, True, None, {}) for i in range(1, 81))
    replies = report_messages(make_report(actions=many, decisions=decisions), include_flags=True)
    bodies = [to_plain(r.body) for r in replies]
    assert len(bodies) == 2
    assert "Action calls" not in bodies[0] and "(continued)" not in "".join(bodies)
    assert all(size_of(r) <= MESSAGE_BUDGET for r in replies)


def test_user_text_is_one_line_clipped_and_isolated():
    long = "first line\nsecond " + "z" * 400
    (content,) = contents(make_report(actions=(ActionLine(1, long, "open", 2, 0, 0),)))
    body = str(content["body"])
    assert "“first line second zzz" in body
    assert "z" * 300 not in body and "…”" in body
    (content,) = contents(make_report(actions=(ActionLine(1, "abc\u202edef", "open", 2, 0, 0),)))
    assert "“\u2068abc\u202edef\u2069”" in str(content["body"])


def test_hour_labels_follow_the_clock_on_dst_days():
    spring = make_report(day="2025-03-30")
    autumn = make_report(day="2025-10-26")
    assert len(spring.hourly) == 23 and len(autumn.hourly) == 25
    assert hour_labels(spring)[:3] == ("00:00", "01:00", "03:00")
    assert hour_labels(autumn)[:5] == ("00:00", "01:00", "02:00", "02:00\u2032", "03:00")
    assert hour_labels(make_report())[-1] == "23:00"


def test_markdown_has_sections_escaped_text_and_links():
    report = make_report(decisions=(DecisionLine(1, "proposal", EVIL, True, None, {}),))
    md = report_markdown(report)
    assert md.startswith(
        "# Daily report for 2025-11-26 (Europe/Berlin)\n\nRoom `!room:example.org`."
    )
    assert "## Kudos\n\n- 12 kudos in 9 entries" in md
    assert "[@alice:example.org](https://matrix.to/#/@alice:example.org) 5" in md
    assert "**Opted out:** 3 members" in md
    # No raw tag or link survives: each special character is escaped with a backslash.
    assert "<script>" not in md and re.search(r"(?<!\\)\]\(javascript", md) is None
    assert r"\<script\>alert" in md and r"\[click\](javascript:alert(1))" in md
    assert "## Flags for moderators" in md
    assert "Flags" not in report_markdown(report, include_flags=False)
    rows = [line for line in md.splitlines() if line.startswith("| ") and ":00 |" in line]
    assert len(rows) == 24 and rows[14] == f"| 14:00 | {report.hourly[14]} |"


def test_markdown_code_spans_survive_backticks():
    cp = replace(make_report().checkpoint, text="a`b``c")
    assert "```a`b``c```" in report_markdown(make_report(checkpoint=cp))


def test_json_is_the_reports_data_with_sorted_keys():
    report = make_report()
    text = report_json(report)
    data = json.loads(text)
    assert data == json.loads(json.dumps(report.to_json()))
    assert text == json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    assert "flags" not in json.loads(report_json(report, include_flags=False))


def test_files_show_whole_ids_but_chat_does_not():
    report = make_report()
    quiet = report_sections(report, include_flags=True)
    loud = report_sections(report, include_flags=True, quiet=False)
    assert "@alice:example.org" not in to_plain(quiet[1].items[1])
    assert "@alice:example.org 5" in to_plain(loud[1].items[1])
