"""The daily report's content: each section and flag, DST hours, erased texts, the JSON form."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

import pytest

from consensus.ledger import (
    ATTEND,
    COMMIT,
    ERASE,
    ITEM_CLOSE,
    ITEM_OPEN,
    KUDOS,
    MOD_OVERRIDE,
    MOD_VOID,
    OPTOUT,
    REVERSAL,
    REVIEW,
    RULE_CHANGE,
    VOTE,
    LedgerEntry,
)
from consensus.report import (
    DATA_KINDS,
    ActionLine,
    CheckpointInfo,
    DayEntry,
    DecisionLine,
    Flag,
    ModLine,
    Ranked,
    Report,
    RuleLine,
    build_report,
)
from consensus.scoring import day_start

ROOM = "!room:example.org"
BOT = "@commons:example.org"
A, B, C, D, E, F = (f"@{name}:example.org" for name in ("a", "b", "c", "d", "e", "f"))
MOD = "@mod:example.org"
HEX = "ab" * 32
HOUR = 3_600_000
DAY = 24 * HOUR
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
TODAY = "2026-11-26"
START = day_start(TODAY, "UTC")

Texted = tuple[LedgerEntry, str | None]


def utc(text: str) -> int:
    return (dt.datetime.fromisoformat(text) - EPOCH) // dt.timedelta(milliseconds=1)


def entry(seq: int, ts: int, actor: str, kind: str, data: Mapping[str, Any]) -> LedgerEntry:
    return LedgerEntry(
        room=ROOM, seq=seq, ts=ts, actor=actor, kind=kind, data=data, event=None, rules=HEX,
        prev=HEX,
    )  # fmt: skip


def kudos(to: str, amount: int = 1, via: str = "command") -> dict[str, Any]:
    return {"to": to, "amount": amount, "via": via, "ref": None, "text_sha256": None}


def attend(item: int, user: str, kudos: int = 1) -> dict[str, Any]:
    return {"item": item, "user": user, "kudos": kudos}


def item_open(item: int, type_: str, **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "item": item, "type": type_, "method": None, "options": 0, "quorum": None,
        "closes": None, "at": None, "need": None, "rule_key": None, "rule_value": None,
        "target": None, "text_sha256": HEX,
    }  # fmt: skip
    data.update(extra)
    return data


def item_close(item: int, outcome: str, tally: Mapping[str, Any] | None = None) -> dict[str, Any]:
    return {"item": item, "outcome": outcome, "winners": [], "tally": dict(tally or {})}


def commit(item: int) -> dict[str, Any]:
    return {"item": item, "state": "in", "min_others": 0, "via": "command"}


class Day:
    """The day's entries, numbered from 100 on (earlier seqs are free for targets)."""

    def __init__(self, day: str = TODAY, timezone: str = "UTC") -> None:
        self.day, self.timezone = day, timezone
        self.start = day_start(day, timezone)
        self.entries: list[Texted] = []

    def add(
        self,
        actor: str,
        kind: str,
        data: Mapping[str, Any],
        *,
        at: int = 0,
        text: str | None = None,
    ) -> LedgerEntry:
        made = entry(100 + len(self.entries), self.start + at, actor, kind, data)
        self.entries.append((made, text))
        return made

    def give(self, giver: str, receiver: str, amount: int = 1, *, at: int = 0) -> LedgerEntry:
        return self.add(giver, KUDOS, kudos(receiver, amount), at=at)

    def build(self, **overrides: Any) -> Report:
        args: dict[str, Any] = {
            "room": ROOM, "day": self.day, "timezone": self.timezone, "entries": self.entries,
            "targets": {}, "item_opens": {}, "action_state": {}, "baseline_kudos": {},
            "member_since": {}, "optouts": 0, "expired_commands": 0, "unreviewed": (),
            "moderators": {MOD}, "checkpoint": None,
        }  # fmt: skip
        args.update(overrides)
        return build_report(**args)


def flags_of(report: Report, kind: str) -> list[Flag]:
    return [flag for flag in report.flags if flag.kind == kind]


# --- the day and its hours -------------------------------------------------------------------


def test_an_empty_day() -> None:
    report = Day().build(optouts=4, expired_commands=2, unreviewed=["2026-11-24"])
    assert (report.start_ms, report.end_ms) == (START, START + DAY)
    assert report.entries == 0
    assert report.hourly == (0,) * 24
    assert report.kudos.total == report.kudos.entries == report.kudos.reversed == 0
    assert report.kudos.top_receivers == report.kudos.top_givers == ()
    assert (report.optouts, report.expired_commands) == (4, 2)
    assert report.unreviewed == ("2026-11-24",)
    assert (report.flags, report.decisions, report.actions, report.moderation) == ((),) * 4


@pytest.mark.parametrize(
    ("day", "zone", "times", "hours", "counts"),
    [
        # UTC: every hour alike.
        ("2026-11-26", "UTC", ["2026-11-26T00:00+00:00", "2026-11-26T23:59:59.999+00:00"],
         24, {0: 1, 23: 1}),
        # Spring forward at 02:00: 23 buckets, 03:30 CEST is in the day's third hour.
        ("2026-03-29", "Europe/Berlin", ["2026-03-29T01:59+01:00", "2026-03-29T03:30+02:00",
                                         "2026-03-29T23:59+02:00"], 23, {1: 1, 2: 1, 22: 1}),
        # Fall back at 03:00: 25 buckets; 02:30 comes twice, in two different hours.
        ("2026-10-25", "Europe/Berlin", ["2026-10-25T02:30+02:00", "2026-10-25T02:30+01:00",
                                         "2026-10-25T02:45+01:00", "2026-10-25T23:00+01:00"],
         25, {2: 1, 3: 2, 24: 1}),
    ],
)  # fmt: skip
def test_hourly_buckets_are_local_hours(
    day: str, zone: str, times: list[str], hours: int, counts: dict[int, int]
) -> None:
    local = Day(day, zone)
    for time in times:
        local.add(A, OPTOUT, {}, at=utc(time) - local.start)
    report = local.build()
    assert len(report.hourly) == hours
    assert report.end_ms - report.start_ms == hours * HOUR
    assert {hour: n for hour, n in enumerate(report.hourly) if n} == counts
    assert report.entries == sum(report.hourly) == len(times)


@pytest.mark.parametrize("at", [-1, DAY])
def test_an_entry_outside_the_day_is_refused(at: int) -> None:
    day = Day()
    day.give(A, B, at=at)
    with pytest.raises(ValueError, match="is not of 2026-11-26 in UTC"):
        day.build()


# --- kudos -----------------------------------------------------------------------------------


def test_kudos_totals_givers_and_receivers() -> None:
    day = Day()
    day.give(A, B, 2)
    day.give(A, C, 1)
    day.add(B, KUDOS, kudos(C, 3, via="reaction"))
    day.add(C, ATTEND, attend(7, D, kudos=1))  # attendance: D receives, C gives nothing
    day.add(D, ATTEND, attend(7, D, kudos=0))  # a self-report credits nothing
    day.add(B, VOTE, {"item": 3, "choice": "agree", "via": "command", "text_sha256": None})
    report = day.build(
        item_opens={7: (entry(5, START - DAY, E, ITEM_OPEN, item_open(7, "action", need=2)), "x")},
        action_state={7: (2, 1)},
    )
    k = report.kudos
    assert (k.total, k.entries, k.givers, k.receivers, k.reversed) == (7, 3, 2, 3, 0)
    assert k.top_receivers == (Ranked(C, 4), Ranked(B, 2), Ranked(D, 1))
    assert k.top_givers == (Ranked(A, 3), Ranked(B, 3))  # ties by user ID


def test_top_lists_keep_five() -> None:
    day = Day()
    for n, receiver in enumerate((B, C, D, E, F, MOD, BOT)):
        day.give(A, receiver, n + 1)
    k = day.build().kudos
    assert [r.amount for r in k.top_receivers] == [7, 6, 5, 4, 3]
    assert k.receivers == 7


def test_reversals_and_voids_reduce_the_day() -> None:
    earlier = entry(50, START - DAY, C, KUDOS, kudos(A, 2))
    day = Day()
    day.give(A, B, 1)
    redacted = day.give(A, B, 3)
    voided = day.give(B, C, 2)
    appealed = day.give(C, A, 1)
    day.add(A, REVERSAL, {"target": redacted.seq, "cause": "redaction", "item": None})
    day.add(MOD, MOD_VOID, {"target": voided.seq, "text_sha256": HEX}, text="ring")
    void = day.add(MOD, MOD_VOID, {"target": appealed.seq, "text_sha256": HEX}, text="oops")
    day.add(BOT, REVERSAL, {"target": void.seq, "cause": "appeal", "item": 9})
    day.add(C, REVERSAL, {"target": earlier.seq, "cause": "redaction", "item": None})
    report = day.build(targets={earlier.seq: (earlier, None)})
    k = report.kudos
    assert k.entries == 4
    # 3 (redacted) + 2 (voided) + 2 (an earlier day's kudos) taken out; the appeal put 1 back.
    assert k.reversed == 7
    assert (k.total, k.givers, k.receivers) == (2, 2, 2)
    assert k.top_givers == (Ranked(A, 1), Ranked(C, 1))
    assert k.top_receivers == (Ranked(A, 1), Ranked(B, 1))


def test_an_appeal_of_an_earlier_void_changes_nothing_that_day() -> None:
    old_kudos = entry(40, START - 2 * DAY, A, KUDOS, kudos(B, 2))
    old_void = entry(41, START - DAY, MOD, MOD_VOID, {"target": 40, "text_sha256": None})
    attended = entry(42, START - DAY, C, ATTEND, attend(3, D))
    day = Day()
    day.add(BOT, REVERSAL, {"target": 41, "cause": "appeal", "item": 8})
    day.add(MOD, MOD_VOID, {"target": 42, "text_sha256": None})
    report = day.build(targets={40: (old_kudos, None), 41: (old_void, None), 42: (attended, None)})
    assert (report.kudos.total, report.kudos.reversed) == (0, 1)


def test_a_target_not_given_is_an_error() -> None:
    day = Day()
    day.add(A, REVERSAL, {"target": 12, "cause": "redaction", "item": None})
    with pytest.raises(ValueError, match="refers to entry 12, which was not given"):
        day.build()
    day = Day()
    day.add(MOD, MOD_VOID, {"target": 13, "text_sha256": None})
    with pytest.raises(ValueError, match="refers to entry 13"):
        day.build()


def test_a_reversal_of_a_vote_leaves_kudos_alone() -> None:
    vote = entry(20, START - HOUR, A, VOTE, {"item": 1, "choice": [1], "via": "poll",
                                             "text_sha256": None})  # fmt: skip
    day = Day()
    day.give(A, B)
    day.add(A, REVERSAL, {"target": 20, "cause": "redaction", "item": None})
    k = day.build(targets={20: (vote, None)}).kudos
    assert (k.total, k.reversed) == (1, 0)


# --- decisions and action calls --------------------------------------------------------------


def test_decisions_opened_and_decided() -> None:
    earlier_poll = entry(30, START - DAY, B, ITEM_OPEN, item_open(4, "poll", options=2))
    tally: dict[str, int | str] = {"method": "single", "voters": 3, "option 1": 2, "option 2": 1}
    day = Day()
    day.add(A, ITEM_OPEN, item_open(6, "proposal", method="consent"), text="Picnic\nOn Sunday")
    day.add(C, ITEM_OPEN, item_open(5, "proposal"), text=None)  # erased title
    day.add(BOT, ITEM_CLOSE, item_close(4, "decided", tally))
    day.add(C, ITEM_CLOSE, item_close(5, "withdrawn"))
    report = day.build(item_opens={4: (earlier_poll, "Which park?\nNorth\nSouth")})
    assert report.decisions == (
        DecisionLine(4, "poll", "Which park?", False, "decided", tally),
        DecisionLine(5, "proposal", None, True, "withdrawn", {}),
        DecisionLine(6, "proposal", "Picnic", True, None, {}),
    )


def test_an_item_open_may_come_among_the_targets() -> None:
    opened = entry(30, START - DAY, B, ITEM_OPEN, item_open(4, "proposal"))
    day = Day()
    day.add(BOT, ITEM_CLOSE, item_close(4, "failed", {"voters": 1}))
    report = day.build(targets={30: (opened, "Old title")})
    assert report.decisions[0].title == "Old title"
    assert report.decisions[0].outcome == "failed"


def test_an_item_without_its_open_is_an_error() -> None:
    day = Day()
    day.add(BOT, ITEM_CLOSE, item_close(4, "passed"))
    with pytest.raises(ValueError, match="#4 was touched on 2026-11-26"):
        day.build()


ACTION_AT = START + 20 * HOUR
DEADLINE = START + 18 * HOUR


@pytest.mark.parametrize(
    ("kind", "data", "at", "status"),
    [
        (ITEM_CLOSE, item_close(9, "go"), HOUR, "went"),
        (ITEM_CLOSE, item_close(9, "called_off"), 18 * HOUR, "called off"),
        (ITEM_CLOSE, item_close(9, "withdrawn"), HOUR, "withdrawn"),
        (COMMIT, commit(9), HOUR, "open"),
        (COMMIT, commit(9), 18 * HOUR - 1, "open"),
        # A commitment at or after the deadline is taken only once the call has gone ahead.
        (COMMIT, commit(9), 18 * HOUR, "went"),
        (ATTEND, attend(9, B, kudos=0), 21 * HOUR, "went"),
    ],
)
def test_action_call_status(kind: str, data: dict[str, Any], at: int, status: str) -> None:
    opened = entry(
        30, START - DAY, A, ITEM_OPEN,
        item_open(9, "action", need=3, at=ACTION_AT, closes=DEADLINE),
    )  # fmt: skip
    day = Day()
    day.add(B, kind, data, at=at)
    report = day.build(
        item_opens={9: (opened, "Clean the beach\nNorth end")}, action_state={9: (4, 2)}
    )
    assert report.actions == (ActionLine(9, "Clean the beach", status, 3, 4, 2),)
    assert report.decisions == ()


def test_an_action_call_opened_today_is_listed_even_untouched() -> None:
    day = Day()
    day.add(A, ITEM_OPEN, item_open(2, "action", need=5, at=ACTION_AT, closes=DEADLINE))
    report = day.build(action_state={2: (0, 0)})
    assert report.actions == (ActionLine(2, None, "open", 5, 0, 0),)


def test_an_action_call_without_its_state_is_an_error() -> None:
    day = Day()
    day.add(A, ITEM_OPEN, item_open(2, "action", need=5, at=ACTION_AT, closes=DEADLINE))
    with pytest.raises(ValueError, match="#2's commitments and attendance were not given"):
        day.build()


# --- moderation and rules --------------------------------------------------------------------


def test_moderation_and_rule_changes() -> None:
    target = entry(10, START - DAY, A, KUDOS, kudos(B))
    day = Day()
    day.add(MOD, MOD_VOID, {"target": 10, "text_sha256": HEX}, text="second account")
    day.add(BOT, MOD_OVERRIDE, {"key": "kudos.daily_allowance", "value": 5, "text_sha256": None})
    day.add(BOT, RULE_CHANGE, {"key": "timezone", "value": "Europe/Berlin", "item": 7})
    day.add(MOD, ERASE, {"target": 11, "text_sha256": HEX}, text=None)  # its reason erased too
    day.add(A, ERASE, {"target": 12, "text_sha256": None})  # an author erasing: not moderation
    day.add(MOD, REVIEW, {"date": "2026-11-25", "text_sha256": HEX}, text="all fine")
    report = day.build(targets={10: (target, "for nothing")})
    assert report.moderation == (
        ModLine(100, MOD_VOID, MOD, 10, "second account"),
        ModLine(101, MOD_OVERRIDE, BOT, None, None),
        ModLine(103, ERASE, MOD, 11, None),
        ModLine(105, REVIEW, MOD, None, "all fine"),
    )
    assert report.rule_changes == (
        RuleLine(101, "kudos.daily_allowance", 5, "operator override"),
        RuleLine(102, "timezone", "Europe/Berlin", "proposal #7"),
    )
    assert report.kudos.reversed == 1


# --- flags -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("gifts", "ring"),
    [
        # Each gives the other 3 of 5 (60%): a ring.
        ([(A, B, 3), (A, C, 2), (B, A, 3), (B, D, 2)], True),
        ([(A, B, 3), (B, A, 3)], True),
        # Just under: 2 one way; 3 of 6 (50%) for one of them.
        ([(A, B, 2), (B, A, 3)], False),
        ([(A, B, 3), (A, C, 3), (B, A, 3)], False),
        # Many kudos to one person, none back.
        ([(A, B, 3), (C, B, 3)], False),
    ],
)
def test_pair_rings(gifts: list[tuple[str, str, int]], ring: bool) -> None:
    day = Day()
    for giver, receiver, amount in gifts:
        day.give(giver, receiver, amount)
    flags = flags_of(day.build(), "ring")
    assert [flag.users for flag in flags] == ([(A, B)] if ring else [])
    if ring:
        assert f"{A} gave {B} 3 of" in flags[0].explanation


def test_a_pair_ring_counts_after_same_day_reversals() -> None:
    day = Day()
    day.give(A, B, 3)
    taken = day.give(B, A, 3)
    day.add(B, REVERSAL, {"target": taken.seq, "cause": "redaction", "item": None})
    assert flags_of(day.build(), "ring") == []


@pytest.mark.parametrize(
    ("gifts", "ring"),
    [
        ([(A, B, 3), (B, C, 3), (C, A, 3)], True),
        # Within the three counts both others: A gives B 3 and C 1 of 6 = 66%.
        ([(A, B, 3), (A, C, 1), (A, D, 2), (B, C, 3), (C, A, 4)], True),
        # Just under: one edge of 2; A keeps only 3 of 6 (50%) within.
        ([(A, B, 3), (B, C, 2), (C, A, 3)], False),
        ([(A, B, 3), (B, C, 3), (C, A, 2)], False),
        ([(A, B, 3), (A, D, 3), (B, C, 3), (C, A, 3)], False),
    ],
)
def test_triangle_rings(gifts: list[tuple[str, str, int]], ring: bool) -> None:
    day = Day()
    for giver, receiver, amount in gifts:
        day.give(giver, receiver, amount)
    flags = flags_of(day.build(), "ring")
    assert [set(flag.users) for flag in flags] == ([{A, B, C}] if ring else [])
    if ring:
        assert "around a circle" in flags[0].explanation


def test_rings_of_many_groups_are_each_flagged_once() -> None:
    day = Day()
    users = [f"@u{n}:example.org" for n in range(30)]
    for n in range(0, 30, 3):
        x, y, z = users[n : n + 3]
        for giver, receiver in ((x, y), (y, z), (z, x), (x, z), (y, x), (z, y)):
            day.give(giver, receiver, 3)
    rings = flags_of(day.build(), "ring")
    # Each group of three is three mutual pairs of 50% each (no pair flag) and one triangle.
    assert len(rings) == 10
    assert all(len(flag.users) == 3 for flag in rings)


def baseline(*values: int) -> dict[str, int]:
    return {f"2026-10-{n + 1:02d}": value for n, value in enumerate(values)}


@pytest.mark.parametrize(
    ("days", "total", "median"),
    [
        # Median 5: the flag needs 15 (3 times, and 10 more).
        (baseline(5, 5, 5, 5, 5, 5, 5), 15, "5"),
        (baseline(5, 5, 5, 5, 5, 5, 5), 14, None),
        # Median 10: 3 times (30) is the higher bar.
        (baseline(1, 10, 10, 10, 10, 10, 99), 30, "10"),
        (baseline(1, 10, 10, 10, 10, 10, 99), 29, None),
        # Median 0: 10 more is the bar.
        (baseline(0, 0, 0, 0, 0, 0, 0), 10, "0"),
        (baseline(0, 0, 0, 0, 0, 0, 0), 9, None),
        # An even number of days: median 4.5, so 14.5 and 13.5: 15 flags, 14 doesn't.
        (baseline(4, 4, 4, 4, 5, 5, 5, 5), 15, "4.5"),
        (baseline(4, 4, 4, 4, 5, 5, 5, 5), 14, None),
        # Fewer than 7 earlier days: no check at all.
        (baseline(0, 0, 0, 0, 0, 0), 500, None),
    ],
)
def test_spikes(days: dict[str, int], total: int, median: str | None) -> None:
    day = Day()
    givers = [f"@g{n}:example.org" for n in range(total)]
    for giver in givers:
        day.give(giver, A)
    flags = flags_of(day.build(baseline_kudos=days), "spike")
    if median is None:
        assert flags == []
    else:
        assert len(flags) == 1
        assert f"{total} kudos on {TODAY} against a median of {median} a day" in (
            flags[0].explanation
        )
        assert f"over the {len(days)} days before" in flags[0].explanation


@pytest.mark.parametrize(
    ("since", "phrase"),
    [
        (START - 7 * DAY + 1, "joined 167 hours before the day began"),
        (START - 2 * HOUR, "joined 2 hours before the day began"),
        (START - HOUR, "joined 1 hour before the day began"),
        (START - 1, "joined less than an hour before the day began"),
        (START + 5 * HOUR, "joined during the day"),
        (START - 7 * DAY, None),  # just not recent enough
        (None, None),  # there before the bot
    ],
)
def test_newcomers(since: int | None, phrase: str | None) -> None:
    day = Day()
    day.give(E, A, 2, at=6 * HOUR)
    day.give(E, B, 1, at=6 * HOUR)
    day.give(A, B, 1)
    joined = {A: START - 30 * DAY} | ({} if since is None else {E: since})
    flags = flags_of(day.build(member_since=joined), "newcomer")
    if phrase is None:
        assert flags == []
    else:
        assert flags == [
            Flag(
                "newcomer",
                (E,),
                f"{E} {phrase} and gave 3 kudos to 2 members "
                "(flagged when a member joined less than 7 days before).",
            )
        ]


def test_a_newcomer_who_only_received_is_not_flagged() -> None:
    day = Day()
    day.give(A, E, 3)
    assert flags_of(day.build(member_since={E: START}), "newcomer") == []


# --- JSON ------------------------------------------------------------------------------------


def walk(value: object) -> list[object]:
    if isinstance(value, dict):
        return [value, *(x for item in value.values() for x in walk(item))]
    if isinstance(value, list):
        return [value, *(x for item in value for x in walk(item))]
    return [value]


def test_to_json_is_json_safe_and_round_trips() -> None:
    opened = entry(30, START - DAY, B, ITEM_OPEN, item_open(4, "poll", options=2))
    checkpoint = CheckpointInfo(
        size=120, root=HEX, ts=START + DAY, signature="c2ln", key="a2V5",
        text="commons-checkpoint", previous_size=90, consistent=True,
    )  # fmt: skip
    day = Day()
    day.give(A, B, 3)
    day.give(B, A, 3)
    day.add(BOT, ITEM_CLOSE, item_close(4, "decided", {"method": "single", "voters": 2}))
    day.add(MOD, REVIEW, {"date": "2026-11-25", "text_sha256": None}, text="ok — ✓")
    report = day.build(
        item_opens={4: (opened, "Park?")}, checkpoint=checkpoint, baseline_kudos=baseline(*[0] * 7)
    )
    plain = report.to_json()
    assert all(not isinstance(value, float) for value in walk(plain))
    text = json.dumps(plain, allow_nan=False, ensure_ascii=False)
    assert json.loads(text) == plain
    assert plain["checkpoint"]["consistent"] is True
    assert plain["decisions"][0]["tally"] == {"method": "single", "voters": 2}
    assert plain["kudos"]["top_givers"] == [{"user": A, "amount": 3}, {"user": B, "amount": 3}]
    assert plain["hourly"] == [4] + [0] * 23
    assert [flag["kind"] for flag in plain["flags"]] == ["ring"]
    assert plain["moderation"][0]["reason"] == "ok — ✓"
    assert set(plain) == {
        "room", "day", "timezone", "start_ms", "end_ms", "entries", "hourly", "kudos",
        "decisions", "actions", "moderation", "rule_changes", "optouts", "expired_commands",
        "unreviewed", "flags", "checkpoint",
    }  # fmt: skip
    plain["kudos"]["total"] = -1  # a fresh copy: the report is untouched
    assert report.kudos.total == 6


def test_to_json_refuses_a_float() -> None:
    report = dataclasses.replace(Day().build(), hourly=(0.5,))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="no float values"):
        report.to_json()


def test_a_report_is_a_frozen_value() -> None:
    report = Day().build()
    assert report == Day().build()
    with pytest.raises(AttributeError):
        report.entries = 3  # type: ignore[misc]


def test_flags_come_rings_first_then_the_spike_then_newcomers() -> None:
    day = Day()
    day.give(E, A, 3)
    day.give(A, E, 3)
    for n in range(10):
        day.give(f"@g{n}:example.org", B)
    report = day.build(baseline_kudos=baseline(*[0] * 7), member_since={E: START - DAY})
    assert [(flag.kind, flag.users) for flag in report.flags] == [
        ("ring", (A, E)),
        ("spike", ()),
        ("newcomer", (E,)),
    ]


# --- the light entries a daily report is built from ------------------------------------------


def test_day_entries_build_the_same_report_as_ledger_entries() -> None:
    """`DayEntry` tuples, with the data of kinds outside DATA_KINDS left empty, are read as the
    LedgerEntry values they come from."""
    earlier = entry(10, START - DAY, A, KUDOS, kudos(B, 2))
    opened = entry(11, START - DAY, A, ITEM_OPEN, item_open(1, "action", need=2, closes=START))
    day = Day()
    day.give(A, B, 3)
    day.give(B, A, 3)
    day.add(C, REVERSAL, {"target": 100, "cause": "redaction", "item": None})
    day.add(A, VOTE, {"item": 2, "choice": "agree", "via": "command", "text_sha256": None})
    day.add(B, COMMIT, commit(1), at=HOUR)
    day.add(B, ATTEND, attend(1, C), at=2 * HOUR)
    day.add(MOD, MOD_VOID, {"target": 10, "text_sha256": HEX}, text="a second account")
    day.add(A, ITEM_OPEN, item_open(2, "proposal", method="consent"), text="Paint it\ngreen")
    day.add(BOT, ITEM_CLOSE, item_close(2, "passed", {"agree": 1}), at=3 * HOUR)
    day.add(D, OPTOUT, {})
    day.add(MOD, REVIEW, {"date": "2026-11-25", "text_sha256": None})
    facts = {
        "targets": {10: (earlier, None)},
        "item_opens": {1: (opened, "Park cleanup")},
        "action_state": {1: (1, 1)},
    }
    full = day.build(**facts)
    light = [
        (DayEntry(e.seq, e.ts, e.actor, e.kind, e.data if e.kind in DATA_KINDS else {}), text)
        for e, text in day.entries
    ]
    assert day.build(entries=light, **facts) == full
    assert full.entries == 11 and full.kudos.total == 4 and full.kudos.reversed == 5
    assert [d.item for d in full.decisions] == [2] and full.actions[0].status == "went"
    assert VOTE not in DATA_KINDS and OPTOUT not in DATA_KINDS
