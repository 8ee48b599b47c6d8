"""Kudos rules, days and scores: refusal tables, DST days, decay, ledger replay, properties."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from consensus.checkpoint import encode_b64
from consensus.ledger import (
    ATTEND,
    GENESIS,
    KUDOS,
    MOD_OVERRIDE,
    MOD_VOID,
    OPTIN,
    OPTOUT,
    REVERSAL,
    RULE_CHANGE,
    RULE_KINDS,
    VOTE,
    LedgerEntry,
    genesis_data,
    make_entry,
    rules_hash,
)
from consensus.rules import RoomRules, RuleValue
from consensus.scoring import (
    Delta,
    GiverState,
    KudosRefused,
    ScoreBook,
    check_kudos,
    day_start,
    decay_factor,
    decayed_score,
    deltas,
    local_day,
    negate,
    next_day_start,
)
from consensus.verify import export_line, verify

ROOM = "!room:example.org"
BOT = "@commons:example.org"
ALICE = "@alice:example.org"
BOB = "@bob:example.org"
CAROL = "@carol:example.org"
DAN = "@dan:example.org"
ERIN = "@erin:example.org"
KEY = encode_b64(bytes(32))
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
HOUR = 3_600_000
DAY = 24 * HOUR


def utc(text: str) -> int:
    """UTC ms of an ISO time written with its offset."""
    return (dt.datetime.fromisoformat(text) - EPOCH) // dt.timedelta(milliseconds=1)


def room_rules(changes: Mapping[str, object] | None = None) -> RoomRules:
    rules = RoomRules.defaults()
    for key, value in (changes or {}).items():
        rules = rules.with_change(key, value)
    return rules


# --- days ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ts", "zone", "day"),
    [
        ("2026-11-26T23:59:59.999+00:00", "UTC", "2026-11-26"),
        ("2026-11-27T00:00:00+00:00", "UTC", "2026-11-27"),
        ("2026-11-26T22:59:59.999+00:00", "Europe/Berlin", "2026-11-26"),
        ("2026-11-26T23:00:00+00:00", "Europe/Berlin", "2026-11-27"),
        ("2026-06-26T21:59:59.999+00:00", "Europe/Berlin", "2026-06-26"),
        ("2026-06-26T22:00:00+00:00", "Europe/Berlin", "2026-06-27"),
        ("2026-11-27T04:59:59.999+00:00", "America/New_York", "2026-11-26"),
        ("2026-11-26T10:00:00+00:00", "Pacific/Kiritimati", "2026-11-27"),
    ],
)
def test_local_day(ts: str, zone: str, day: str) -> None:
    assert local_day(utc(ts), zone) == day


# Zones with the odd transitions of the cases above, and times within a few days of them.
ODD_TIMES = [
    ("Europe/Berlin", "2026-03-29T02:00+01:00"),
    ("Europe/Berlin", "2026-10-25T03:00+02:00"),
    ("America/Santiago", "2024-09-08T00:00-04:00"),
    ("America/Santiago", "2024-04-07T00:00-03:00"),
    ("America/Goose_Bay", "2010-11-07T00:01-03:00"),
    ("Pacific/Apia", "2011-12-30T00:00-10:00"),
    ("America/Toronto", "1919-03-30T23:30-05:00"),
    ("Asia/Kolkata", "2026-11-26T00:00+05:30"),
]


@settings(max_examples=400)
@given(
    st.lists(st.tuples(st.sampled_from(ODD_TIMES), st.integers(-3 * DAY, 3 * DAY)), max_size=40)
)
def test_local_day_remembered_spans_agree_with_the_zone(
    asks: list[tuple[tuple[str, str], int]],
) -> None:
    # local_day remembers the last steady day per zone: in any order of questions, its
    # answers are the zone's own date of each moment.
    for (zone, near), offset in asks:
        ts = utc(near) + offset
        plain = (EPOCH + dt.timedelta(milliseconds=ts)).astimezone(ZoneInfo(zone)).date()
        assert local_day(ts, zone) == plain.isoformat()


@pytest.mark.parametrize(
    ("day", "zone", "start", "hours"),
    [
        ("2026-11-26", "UTC", "2026-11-26T00:00+00:00", 24),
        ("2026-11-26", "Europe/Berlin", "2026-11-26T00:00+01:00", 24),
        # Berlin springs forward at 02:00 and falls back at 03:00: 23 and 25 hour days.
        ("2026-03-29", "Europe/Berlin", "2026-03-29T00:00+01:00", 23),
        ("2026-10-25", "Europe/Berlin", "2026-10-25T00:00+02:00", 25),
        # Midnight doesn't exist: the day begins at 01:00 and is 23 hours long.
        ("2024-09-08", "America/Santiago", "2024-09-08T01:00-03:00", 23),
        ("2024-03-31", "Asia/Beirut", "2024-03-31T01:00+03:00", 23),
        # Falling back at 24:00: the day before has 25 hours, this one starts once.
        ("2024-04-06", "America/Santiago", "2024-04-06T00:00-03:00", 25),
        ("2024-04-07", "America/Santiago", "2024-04-07T00:00-04:00", 24),
        ("2024-10-26", "Asia/Beirut", "2024-10-26T00:00+03:00", 25),
        # Falling back at 00:01 to 23:01: the first of the two midnights, and the day lasts
        # until the next one begins (its repeated hour reads as the day before).
        ("2010-11-07", "America/Goose_Bay", "2010-11-07T00:00-03:00", 25),
        # Samoa skipped 30 December 2011: it "starts" where 31 December does.
        ("2011-12-30", "Pacific/Apia", "2011-12-31T00:00+14:00", 0),
        ("2011-12-31", "Pacific/Apia", "2011-12-31T00:00+14:00", 24),
    ],
)
def test_day_start_and_length(day: str, zone: str, start: str, hours: int) -> None:
    begins = day_start(day, zone)
    assert begins == utc(start)
    assert next_day_start(begins, zone) - begins == (hours or 24) * HOUR
    assert local_day(begins - 1, zone) < day
    if hours:
        assert local_day(begins, zone) == day
        assert local_day(begins + hours * HOUR - 1, zone) == day


def test_day_start_when_a_gap_begins_before_midnight() -> None:
    # Toronto, 30 March 1919: clocks went from 23:30 straight to 00:30.
    begins = day_start("1919-03-31", "America/Toronto")
    assert begins == utc("1919-03-31T00:30-04:00")
    assert local_day(begins - 1, "America/Toronto") == "1919-03-30"
    assert next_day_start(begins - 1, "America/Toronto") == begins


def test_next_day_start_from_the_repeated_hour_before_a_midnight() -> None:
    # Goose Bay, 7 Nov 2010: 00:00 (first) ... 00:00:59, back to 23:01 on the 6th, then 00:00.
    first_midnight = utc("2010-11-07T00:00-03:00")
    repeated = utc("2010-11-06T23:30-04:00")
    assert repeated > first_midnight
    assert local_day(repeated, "America/Goose_Bay") == "2010-11-06"
    assert next_day_start(repeated, "America/Goose_Bay") == utc("2010-11-07T00:00-04:00")


@pytest.mark.parametrize(
    ("ts", "zone", "end"),
    [
        ("2026-11-26T12:00+00:00", "UTC", "2026-11-27T00:00+00:00"),
        ("2026-11-26T00:00+00:00", "UTC", "2026-11-27T00:00+00:00"),
        ("2026-03-29T01:30+01:00", "Europe/Berlin", "2026-03-30T00:00+02:00"),
        ("2026-10-25T02:30+01:00", "Europe/Berlin", "2026-10-26T00:00+01:00"),
        ("2024-09-07T12:00-04:00", "America/Santiago", "2024-09-08T01:00-03:00"),
    ],
)
def test_next_day_start(ts: str, zone: str, end: str) -> None:
    assert next_day_start(utc(ts), zone) == utc(end)


# --- check_kudos -----------------------------------------------------------------------------

NOW = utc("2026-11-26T15:00+01:00")
BERLIN = room_rules({"timezone": "Europe/Berlin"})
MEMBERS = frozenset({ALICE, BOB, CAROL, BOT})


def ask(**overrides: Any) -> tuple[str, ...]:
    """check_kudos from Alice to Bob, 1 kudos, in Berlin at 15:00, with `overrides`."""
    kwargs: dict[str, Any] = {
        "giver": ALICE,
        "receivers": [BOB],
        "amount": 1,
        "now_ms": NOW,
        "rules": BERLIN,
        "state": GiverState(),
        "bot_user": BOT,
        "members": MEMBERS,
    }
    kwargs.update(overrides)
    return check_kudos(**kwargs)


RESET = "it resets at 00:00 Europe/Berlin."


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"state": GiverState(opted_out=frozenset({ALICE}))},
            "You opted out of kudos; send !optin to take part again.",
        ),
        (
            {"state": GiverState(opted_out=frozenset({ALICE})), "prefix": "?", "receivers": []},
            "You opted out of kudos; send ?optin to take part again.",
        ),
        ({"receivers": []}, "Say who the kudos are for, e.g. !kudos @alice:example.org."),
        ({"receivers": [BOB, ALICE]}, "You can't give kudos to yourself."),
        (
            {"receivers": [BOT, DAN]},
            "I keep the score but don't play; give kudos to a member of the room.",
        ),
        (
            {"receivers": [BOB, DAN]},
            "@dan:example.org is not in this room, so they can't receive kudos.",
        ),
        (
            # Not being in the room is named before having opted out, whatever the order.
            {"receivers": [BOB, DAN], "state": GiverState(opted_out=frozenset({BOB}))},
            "@dan:example.org is not in this room, so they can't receive kudos.",
        ),
        (
            {"receivers": [CAROL, BOB], "state": GiverState(opted_out=frozenset({BOB}))},
            "@bob:example.org opted out of kudos, so they can't receive any.",
        ),
        (
            {"amount": 0},
            "You can give 1 to 3 kudos to each person in one message"
            " (kudos.max_per_message is 3).",
        ),
        (
            {"amount": 4},
            "You can give 1 to 3 kudos to each person in one message"
            " (kudos.max_per_message is 3).",
        ),
        (
            {"amount": 2, "rules": BERLIN.with_change("kudos.max_per_message", 1)},
            "You can give only 1 kudos to each person in one message"
            " (kudos.max_per_message is 1).",
        ),
        (
            {
                "rules": BERLIN.with_change("kudos.min_membership", "2h"),
                "state": GiverState(member_since_ms=NOW - 30 * 60_000),
            },
            "You joined this room less than 2h ago (kudos.min_membership),"
            " so you can give kudos from 16:30 Europe/Berlin.",
        ),
        (
            # Rounded up to the minute: at 16:30 the answer would still be no.
            {
                "rules": BERLIN.with_change("kudos.min_membership", "2h"),
                "state": GiverState(member_since_ms=NOW - 30 * 60_000 + 1),
            },
            "You joined this room less than 2h ago (kudos.min_membership),"
            " so you can give kudos from 16:31 Europe/Berlin.",
        ),
        (
            {
                "rules": BERLIN.with_change("kudos.min_membership", "7d"),
                "state": GiverState(member_since_ms=NOW - HOUR),
            },
            "You joined this room less than 7d ago (kudos.min_membership),"
            " so you can give kudos from 2026-12-03 14:00 Europe/Berlin.",
        ),
        (
            {"state": GiverState(given_today=10)},
            "You have given all 10 kudos of your daily allowance (kudos.daily_allowance); "
            + RESET,
        ),
        (
            # The allowance was lowered below what was already given today.
            {
                "state": GiverState(given_today=8),
                "rules": BERLIN.with_change("kudos.daily_allowance", 5),
            },
            "You have given all 5 kudos of your daily allowance (kudos.daily_allowance); " + RESET,
        ),
        (
            {"state": GiverState(given_today=8), "receivers": [BOB, CAROL], "amount": 2},
            "That is 4 kudos but you have 2 left today (kudos.daily_allowance is 10); " + RESET,
        ),
        (
            {"state": GiverState(pair_today={BOB: 3}), "receivers": [CAROL, BOB]},
            "You have given @bob:example.org all 3 kudos one member may give another in a day"
            " (kudos.pair_daily_cap); " + RESET,
        ),
        (
            {"state": GiverState(pair_today={CAROL: 2}), "receivers": [BOB, CAROL], "amount": 2},
            "You can give @carol:example.org only 1 more kudos today"
            " (kudos.pair_daily_cap is 3); " + RESET,
        ),
        (
            # On the day before Santiago's midnight gap, the allowance resets at 01:00.
            {
                "now_ms": utc("2024-09-07T15:00-04:00"),
                "rules": BERLIN.with_change("timezone", "America/Santiago"),
                "state": GiverState(given_today=10),
            },
            "You have given all 10 kudos of your daily allowance (kudos.daily_allowance);"
            " it resets at 01:00 America/Santiago.",
        ),
    ],
)
def test_check_kudos_refusals(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(KudosRefused) as caught:
        ask(**overrides)
    assert caught.value.message == message
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("overrides", "receivers"),
    [
        ({}, (BOB,)),
        ({"receivers": [BOB, CAROL, BOB]}, (BOB, CAROL)),
        ({"receivers": [CAROL, BOB], "amount": 3}, (CAROL, BOB)),
        # Exactly what is left, of the allowance and of each pair.
        (
            {"receivers": [BOB, CAROL], "amount": 2, "state": GiverState(given_today=6)},
            (BOB, CAROL),
        ),
        ({"amount": 2, "state": GiverState(pair_today={BOB: 1, CAROL: 3})}, (BOB,)),
        # Opted-out people who are not part of this request don't matter.
        ({"state": GiverState(opted_out=frozenset({CAROL}))}, (BOB,)),
        # A giver the bot never saw join was there before it: min_membership doesn't apply.
        ({"rules": BERLIN.with_change("kudos.min_membership", "7d")}, (BOB,)),
        (
            {
                "rules": BERLIN.with_change("kudos.min_membership", "2h"),
                "state": GiverState(member_since_ms=NOW - 2 * HOUR),
            },
            (BOB,),
        ),
        ({"state": GiverState(member_since_ms=NOW)}, (BOB,)),
    ],
)
def test_check_kudos_accepts(overrides: dict[str, Any], receivers: tuple[str, ...]) -> None:
    assert ask(**overrides) == receivers


@settings(max_examples=200, deadline=None)
@given(
    allowance=st.integers(1, 20),
    cap=st.integers(1, 8),
    most=st.integers(1, 5),
    requests=st.lists(
        st.tuples(
            st.lists(st.sampled_from([BOB, CAROL, DAN, ALICE]), min_size=1, max_size=4),
            st.integers(-1, 7),
        ),
        max_size=30,
    ),
)
def test_accepted_requests_never_exceed_the_allowance_or_caps(
    allowance: int, cap: int, most: int, requests: list[tuple[list[str], int]]
) -> None:
    rules = BERLIN.with_change("kudos.daily_allowance", allowance)
    rules = rules.with_change("kudos.pair_daily_cap", cap).with_change(
        "kudos.max_per_message", most
    )
    given_today = 0
    pairs: Counter[str] = Counter()
    for receivers, amount in requests:
        state = GiverState(given_today=given_today, pair_today=dict(pairs))
        try:
            accepted = ask(
                receivers=receivers,
                amount=amount,
                rules=rules,
                members=MEMBERS | {DAN},
                state=state,
            )
        except KudosRefused:
            unique = set(receivers)
            assert (
                ALICE in unique
                or not 1 <= amount <= most
                or given_today + amount * len(unique) > allowance
                or any(pairs[r] + amount > cap for r in unique)
            )
            continue
        given_today += amount * len(accepted)
        for receiver in accepted:
            pairs[receiver] += amount
        assert given_today <= allowance
        assert all(count <= cap for count in pairs.values())


# --- deltas and decay ------------------------------------------------------------------------


class Chain:
    """A room's ledger under construction, keeping the rules in force the way storage does."""

    def __init__(self, rules: RoomRules | None = None, ts: int = NOW) -> None:
        self.rules = rules or RoomRules.defaults()
        self.ts = ts
        first = make_entry(
            prev=None,
            room=ROOM,
            ts=ts,
            actor=BOT,
            kind=GENESIS,
            data=genesis_data(self.rules.as_json(), KEY),
            event=None,
            rules=self.rules.hash(),
        )
        self.entries = [first]

    def build(
        self, kind: str, actor: str = BOT, ts: int | None = None, **data: Any
    ) -> LedgerEntry:
        """The next entry, not appended (for entries that are meant to be refused)."""
        return make_entry(
            prev=self.entries[-1],
            room=ROOM,
            ts=self.ts if ts is None else ts,
            actor=actor,
            kind=kind,
            data=data,
            event=None,
            rules=self.rules.hash(),
        )

    def add(self, kind: str, actor: str = BOT, ts: int | None = None, **data: Any) -> LedgerEntry:
        entry = self.build(kind, actor, ts, **data)
        self.entries.append(entry)
        self.ts = entry.ts
        if kind in RULE_KINDS:
            self.rules = self.rules.with_change(data["key"], data["value"])
        return entry

    def kudos(self, giver: str, to: str, amount: int = 1, ts: int | None = None) -> LedgerEntry:
        return self.add(
            KUDOS, giver, ts, to=to, amount=amount, via="command", ref=None, text_sha256=None
        )

    def attend(self, actor: str, user: str, kudos: int = 1, item: int = 7) -> LedgerEntry:
        return self.add(ATTEND, actor, item=item, user=user, kudos=kudos)

    def reverse(self, target: int, cause: str = "redaction", actor: str = BOT) -> LedgerEntry:
        return self.add(REVERSAL, actor, target=target, cause=cause, item=None)

    def void(self, target: int) -> LedgerEntry:
        return self.add(MOD_VOID, CAROL, target=target, text_sha256=None)

    def rule(self, key: str, value: RuleValue) -> LedgerEntry:
        return self.add(RULE_CHANGE, BOT, key=key, value=value, item=3)

    def replay(self) -> ScoreBook:
        book = ScoreBook()
        for entry in self.entries:
            assert book.apply(entry) is None, entry.seq
        return book


def test_deltas_of_each_kind() -> None:
    chain = Chain(BERLIN, ts=utc("2026-11-26T23:30+01:00"))
    kudos = chain.kudos(ALICE, BOB, 2)
    attend = chain.attend(ALICE, BOB, 1)
    unpaid = chain.attend(BOB, BOB, 0)
    vote = chain.add(VOTE, ALICE, item=4, choice="agree", via="command", text_sha256=None)
    assert deltas(kudos, BERLIN) == (Delta(BOB, ALICE, "2026-11-26", 2),)
    # The day is the one in force when the entry was written.
    assert deltas(kudos, RoomRules.defaults()) == (Delta(BOB, ALICE, "2026-11-26", 2),)
    assert deltas(kudos, BERLIN.with_change("timezone", "Asia/Tokyo")) == (
        Delta(BOB, ALICE, "2026-11-27", 2),
    )
    assert deltas(attend, BERLIN) == (Delta(BOB, None, "2026-11-26", 1),)
    assert deltas(unpaid, BERLIN) == ()
    assert deltas(vote, BERLIN) == ()
    assert deltas(chain.entries[0], BERLIN) == ()
    assert negate(deltas(kudos, BERLIN)) == (Delta(BOB, ALICE, "2026-11-26", -2),)
    assert negate(()) == ()


@pytest.mark.parametrize(
    ("age", "half_life", "factor"),
    [
        (0, DAY, 1.0),
        (DAY, DAY, 0.5),
        (3 * DAY, DAY, 0.125),
        (90 * DAY, 90 * DAY, 0.5),
        (45 * DAY, 90 * DAY, 2**-0.5),
        (-DAY, DAY, 1.0),
        (10**12, None, 1.0),
        (-5, None, 1.0),
    ],
)
def test_decay_factor(age: int, half_life: int | None, factor: float) -> None:
    assert decay_factor(age, half_life) == pytest.approx(factor, rel=1e-12)


@pytest.mark.parametrize("half_life", [0, -DAY])
def test_decay_factor_refuses_a_non_positive_half_life(half_life: int) -> None:
    with pytest.raises(ValueError, match="half-life must be positive"):
        decay_factor(DAY, half_life)


def test_decayed_score_ages_each_day_from_its_start() -> None:
    rules = BERLIN.with_change("kudos.half_life", "1d")
    daily = {"2026-11-24": 8, "2026-11-25": 4, "2026-11-26": 2}
    now = day_start("2026-11-26", "Europe/Berlin")
    assert decayed_score(daily, now, rules) == pytest.approx(8 / 4 + 4 / 2 + 2)
    assert decayed_score(daily, now + 12 * HOUR, rules) == pytest.approx(
        (8 / 4 + 4 / 2 + 2) * 2**-0.5
    )
    # Off: the plain sum, whatever the time.
    assert decayed_score(daily, now + 1000 * DAY, BERLIN) == 14.0
    assert decayed_score({}, now, rules) == 0.0


def test_decayed_score_across_a_23_hour_day() -> None:
    rules = BERLIN.with_change("kudos.half_life", "1d")
    # 29 March 2026 lasts 23 hours in Berlin: at the next day's start it is not a day old yet.
    now = day_start("2026-03-30", "Europe/Berlin")
    assert decayed_score({"2026-03-29": 4}, now, rules) == pytest.approx(4 * 2 ** (-23 / 24))


# --- ScoreBook -------------------------------------------------------------------------------


def test_scorebook_totals_days_and_aggregates() -> None:
    chain = Chain(BERLIN, ts=utc("2026-11-26T10:00+01:00"))
    chain.kudos(ALICE, BOB, 2)
    chain.kudos(ALICE, CAROL, 3)
    chain.kudos(CAROL, BOB, 1, ts=utc("2026-11-27T00:30+01:00"))
    chain.attend(CAROL, BOB)
    chain.add(VOTE, ALICE, item=4, choice="agree", via="command", text_sha256=None)
    book = chain.replay()
    assert book.total(BOB) == 4
    assert book.total(CAROL) == 3
    assert book.total(ALICE) == 0
    assert book.totals() == {BOB: 4, CAROL: 3}
    assert book.received_days(BOB) == {"2026-11-26": 2, "2026-11-27": 2}
    assert book.received_days(DAN) == {}
    assert book.given_on(ALICE, "2026-11-26") == 5
    assert book.given_on(CAROL, "2026-11-27") == 1
    assert book.given_on(CAROL, "2026-11-26") == 0
    assert book.pair_on(ALICE, CAROL, "2026-11-26") == 3
    assert book.pair_on(CAROL, BOB, "2026-11-26") == 0
    assert [book.in_effect(seq) for seq in range(1, 8)] == [
        False,
        True,
        True,
        True,
        True,
        False,
        False,
    ]
    assert book.rules == BERLIN
    # The results are copies.
    book.totals()[BOB] = 100
    book.received_days(BOB).clear()
    assert book.total(BOB) == 4
    assert book.received_days(BOB) != {}


def test_reversal_void_and_appeal_chain() -> None:
    chain = Chain()
    first = chain.kudos(ALICE, BOB, 2)
    second = chain.kudos(ALICE, BOB, 1)
    attend = chain.attend(CAROL, BOB)
    chain.reverse(first.seq)
    void = chain.void(second.seq)
    book = chain.replay()
    day = local_day(first.ts, "UTC")
    assert book.total(BOB) == 1
    assert book.given_on(ALICE, day) == 0
    assert book.pair_on(ALICE, BOB, day) == 0
    assert not book.in_effect(first.seq)
    assert not book.in_effect(second.seq)
    assert book.in_effect(attend.seq)

    chain.reverse(void.seq, cause="appeal")
    attend_void = chain.void(attend.seq)
    book = chain.replay()
    assert book.total(BOB) == 1
    assert book.given_on(ALICE, day) == 1
    assert book.in_effect(second.seq)
    assert not book.in_effect(attend.seq)
    assert not book.in_effect(void.seq)  # not a kudos entry itself

    # After the appeal, the restored kudos can be taken out again, and voided again.
    chain.void(second.seq)
    chain.reverse(attend_void.seq, cause="appeal")
    book = chain.replay()
    assert book.totals() == {BOB: 1}
    assert book.in_effect(attend.seq)
    assert book.given_on(ALICE, day) == 0
    assert book.pair_on(ALICE, BOB, day) == 0


def test_attendance_self_reports_and_confirmations() -> None:
    chain = Chain()
    report = chain.attend(BOB, BOB, kudos=0)  # a self-report: counted, no kudos
    confirmed = chain.attend(ALICE, BOB)
    chain.attend(ALICE, CAROL)
    book = chain.replay()
    assert book.in_effect(report.seq)
    assert book.totals() == {BOB: 1, CAROL: 1}
    # A voided confirmation may be made again; the new one counts instead.
    chain.void(confirmed.seq)
    again = chain.attend(CAROL, BOB)
    book = chain.replay()
    assert book.totals() == {BOB: 1, CAROL: 1}
    assert book.in_effect(again.seq)
    assert not book.in_effect(confirmed.seq)
    # With action.attendance_kudos at 0, a confirmation earns nothing.
    chain.rule("action.attendance_kudos", 0)
    chain.attend(BOB, DAN, kudos=0)
    assert chain.replay().total(DAN) == 0


def test_kudos_and_voids_all_gone_leave_no_aggregates() -> None:
    chain = Chain()
    kudos = chain.kudos(ALICE, BOB, 3)
    chain.reverse(kudos.seq, cause="appeal")
    book = chain.replay()
    assert book.totals() == {}
    assert book.received_days(BOB) == {}
    assert book.given_on(ALICE, local_day(kudos.ts, "UTC")) == 0


def test_rules_in_force_follow_rule_changes_and_overrides() -> None:
    chain = Chain(ts=utc("2026-11-26T23:30+00:00"))
    chain.kudos(ALICE, BOB, 3)
    chain.kudos(ALICE, CAROL, 3)
    chain.rule("kudos.daily_allowance", 8)
    # The rule.change entry carries the old hash; this one the new rules (8 a day).
    chain.kudos(ALICE, DAN, 2)
    chain.add(MOD_OVERRIDE, BOT, key="timezone", value="Europe/Berlin", text_sha256=None)
    # 23:30 UTC is the next day in Berlin: a fresh allowance.
    chain.kudos(ALICE, DAN, 3)
    book = chain.replay()
    assert book.rules == room_rules({"kudos.daily_allowance": 8, "timezone": "Europe/Berlin"})
    assert book.given_on(ALICE, "2026-11-26") == 8
    assert book.given_on(ALICE, "2026-11-27") == 3
    assert book.received_days(DAN) == {"2026-11-26": 2, "2026-11-27": 3}


def test_optout_and_optin() -> None:
    chain = Chain()
    chain.add(OPTOUT, BOB)
    chain.add(OPTOUT, CAROL)
    chain.add(OPTIN, BOB)
    chain.add(OPTIN, DAN)  # opting in when never out changes nothing
    book = chain.replay()
    assert book.opted_out() == frozenset({CAROL})
    chain.kudos(ALICE, BOB)
    assert chain.replay().total(BOB) == 1


def bad_room_entry(chain: Chain) -> LedgerEntry:
    last = chain.entries[-1]
    return LedgerEntry(
        room="!other:example.org",
        seq=last.seq + 1,
        ts=last.ts,
        actor=BOT,
        kind=OPTOUT,
        data={},
        event=None,
        rules=chain.rules.hash(),
        prev=last.hash(),
    )


def bad_rules_entry(chain: Chain) -> LedgerEntry:
    entry = chain.build(OPTOUT, ALICE)
    return LedgerEntry(**{**entry.to_json(), "rules": RoomRules.defaults().hash()})


def skipping_entry(chain: Chain) -> LedgerEntry:
    skipped = chain.build(OPTOUT, ALICE)
    return make_entry(
        prev=skipped,
        room=ROOM,
        ts=skipped.ts,
        actor=ALICE,
        kind=OPTIN,
        data={},
        event=None,
        rules=chain.rules.hash(),
    )


def setup_kudos(chain: Chain) -> None:
    chain.kudos(ALICE, BOB, 3)  # 2
    chain.add(VOTE, ALICE, item=4, choice="agree", via="command", text_sha256=None)  # 3
    chain.kudos(ALICE, CAROL, 3)  # 4
    chain.void(4)  # 5
    chain.reverse(2)  # 6
    chain.add(OPTOUT, DAN)  # 7


KUDOS_DATA: dict[str, Any] = {"amount": 1, "via": "reaction", "ref": "$event", "text_sha256": None}

# (name, last entry, problem); the chain is BERLIN genesis plus setup_kudos.
PROBLEMS: list[tuple[str, Any, str]] = [
    ("skipped", skipping_entry, "it is entry 10, but entry 9 comes next"),
    ("room", bad_room_entry, "it is for room !other:example.org, not !room:example.org"),
    ("rules hash", bad_rules_entry, "its rules field is not the hash of the rules in force"),
    (
        "unknown rule",
        lambda c: c.build(RULE_CHANGE, key="kudos.colour", value="blue", item=3),
        "it sets 'kudos.colour', which is not a room rule",
    ),
    (
        "invalid rule value",
        lambda c: c.build(RULE_CHANGE, key="kudos.daily_allowance", value=0, item=3),
        "it sets kudos.daily_allowance to 0, which is not a valid value of that rule",
    ),
    (
        "non-canonical rule value",
        lambda c: c.build(MOD_OVERRIDE, key="proposal.duration", value="2d", text_sha256=None),
        "it sets proposal.duration to '2d', which is not a valid value of that rule",
    ),
    ("self", lambda c: c.build(KUDOS, BOB, to=BOB, **KUDOS_DATA), "kudos to oneself"),
    (
        "opted-out giver",
        lambda c: c.build(KUDOS, DAN, to=BOB, **KUDOS_DATA),
        "kudos from @dan:example.org, who had opted out",
    ),
    (
        "opted-out receiver",
        lambda c: c.build(KUDOS, BOB, to=DAN, **KUDOS_DATA),
        "kudos to @dan:example.org, who had opted out",
    ),
    (
        "per message",
        lambda c: c.build(KUDOS, BOB, to=ALICE, **{**KUDOS_DATA, "amount": 4}),
        "kudos over the per-message maximum (4 of 3)",
    ),
    (
        "pair cap",
        lambda c: c.build(KUDOS, CAROL, to=BOB, **{**KUDOS_DATA, "amount": 3}),
        "kudos over the pair daily cap (4 of 3 from @carol:example.org to @bob:example.org"
        " on 2026-11-26)",
    ),
    (
        "attendance amount",
        lambda c: c.build(ATTEND, CAROL, item=7, user=BOB, kudos=2),
        "attendance kudos of 2, but action.attendance_kudos is 1",
    ),
    (
        "self-reported attendance",
        lambda c: c.build(ATTEND, BOB, item=7, user=BOB, kudos=1),
        "attendance kudos for a self-report, which earns kudos only when confirmed",
    ),
    (
        "attendance twice",
        lambda c: c.build(ATTEND, ALICE, item=9, user=BOB, kudos=1),
        "attendance kudos for @bob:example.org on #9 again (entry 8)",
    ),
    (
        "reversal of a vote",
        lambda c: c.build(REVERSAL, target=3, cause="redaction", item=None),
        "it reverses entry 3, which is a vote entry, not kudos or attendance",
    ),
    (
        "void of genesis",
        lambda c: c.build(MOD_VOID, CAROL, target=1, text_sha256=None),
        "it voids entry 1, which is a genesis entry, not kudos or attendance",
    ),
    (
        "reversal of a reversal",
        lambda c: c.build(REVERSAL, target=6, cause="appeal", item=4),
        "it reverses entry 6, which is a reversal entry, not kudos or attendance",
    ),
    (
        "second reversal",
        lambda c: c.build(REVERSAL, target=2, cause="redaction", item=None),
        "entry 2 is already out of effect (taken out by entry 6)",
    ),
    (
        "reversal of voided kudos",
        lambda c: c.build(REVERSAL, target=4, cause="redaction", item=None),
        "entry 4 is already out of effect (taken out by entry 5)",
    ),
    (
        "void of reversed kudos",
        lambda c: c.build(MOD_VOID, CAROL, target=2, text_sha256=None),
        "entry 2 is already out of effect (taken out by entry 6)",
    ),
    (
        "void reversed by a redaction",
        lambda c: c.build(REVERSAL, target=5, cause="redaction", item=None),
        "it reverses the mod.void entry 5, which only an appeal can do",
    ),
]


def with_attendance(chain: Chain) -> None:
    chain.attend(CAROL, BOB, item=9)  # 8
    chain.add(OPTIN, DAN)  # 9


@pytest.mark.parametrize(
    ("build", "problem"),
    [pytest.param(build, problem, id=name) for name, build, problem in PROBLEMS],
)
def test_scorebook_problems(build: Any, problem: str) -> None:
    chain = Chain(BERLIN, ts=utc("2026-11-26T12:00+01:00"))
    setup_kudos(chain)
    if "#9" in problem:
        with_attendance(chain)
    chain.kudos(CAROL, BOB, 1)
    book = chain.replay()
    before = (book.totals(), book.rules, book.opted_out())
    bad = build(chain)
    assert book.apply(bad) == problem
    # A refused entry leaves the book as it was: the right entry at that seq goes in.
    assert (book.totals(), book.rules, book.opted_out()) == before
    assert book.apply(chain.build(OPTIN, ALICE)) is None


def test_daily_allowance_problem_names_the_total_and_day() -> None:
    chain = Chain(BERLIN, ts=utc("2026-11-26T12:00+01:00"))
    for receiver in (BOB, CAROL, DAN):
        chain.kudos(ALICE, receiver, 3)
    chain.kudos(ALICE, ERIN, 1, ts=utc("2026-11-26T23:59+01:00"))
    book = chain.replay()
    assert book.given_on(ALICE, "2026-11-26") == 10
    bad = chain.build(KUDOS, ALICE, to=ERIN, **KUDOS_DATA)
    assert book.apply(bad) == "kudos over the daily allowance (11 of 10 on 2026-11-26)"
    # A minute later it is the next day in Berlin, with a fresh allowance.
    next_day = chain.build(KUDOS, ALICE, ts=utc("2026-11-27T00:00+01:00"), to=ERIN, **KUDOS_DATA)
    assert book.apply(next_day) is None
    assert book.given_on(ALICE, "2026-11-27") == 1


def test_invalid_genesis_rules() -> None:
    rules = {"timezone": "UTC"}
    genesis = make_entry(
        prev=None,
        room=ROOM,
        ts=NOW,
        actor=BOT,
        kind=GENESIS,
        data=genesis_data(rules, KEY),
        event=None,
        rules=rules_hash(rules),
    )
    problem = ScoreBook().apply(genesis)
    assert problem is not None
    assert problem.startswith("its starting rules are not valid room rules (room rules lack ")


def test_scorebook_as_a_verify_replayer() -> None:
    chain = Chain(BERLIN, ts=utc("2026-11-26T12:00+01:00"))
    for receiver in (BOB, CAROL, DAN):
        chain.kudos(ALICE, receiver, 3)
    chain.kudos(ALICE, ERIN, 1)
    good = verify([export_line(e, None, None) for e in chain.entries], replayers=[ScoreBook()])
    assert good.ok, good.problem
    chain.kudos(ALICE, ERIN, 1)
    bad = verify([export_line(e, None, None) for e in chain.entries], replayers=[ScoreBook()])
    assert bad.problem == "entry 6: kudos over the daily allowance (11 of 10 on 2026-11-26)"


OPS = st.one_of(
    st.tuples(
        st.just("kudos"),
        st.sampled_from([ALICE, BOB, CAROL]),
        st.sampled_from([ALICE, BOB, CAROL, DAN]),
        st.integers(1, 4),
        st.integers(0, 9),
    ),
    st.tuples(st.sampled_from(["reverse", "void", "appeal"]), st.integers(0, 50)),
)


@settings(max_examples=150, deadline=None)
@given(ops=st.lists(OPS, max_size=40))
def test_replayed_totals_are_the_deltas_of_entries_in_effect(ops: list[tuple[Any, ...]]) -> None:
    chain = Chain(BERLIN)
    book = ScoreBook()
    assert book.apply(chain.entries[0]) is None
    credits: list[int] = []
    voids: list[int] = []
    live: set[int] = set()
    void_target: dict[int, int] = {}
    appealed: set[int] = set()

    def offer(entry: LedgerEntry, expect_ok: bool | None) -> bool:
        problem = book.apply(entry)
        if expect_ok is not None:
            assert (problem is None) == expect_ok, problem
        if problem is None:
            chain.entries.append(entry)
            chain.ts = entry.ts
        return problem is None

    for op in ops:
        if op[0] == "kudos":
            _, giver, to, amount, hours = op
            entry = chain.build(
                KUDOS,
                giver,
                chain.ts + hours * HOUR,
                to=to,
                amount=amount,
                via="command",
                ref=None,
                text_sha256=None,
            )
            if offer(entry, False if giver == to else None):
                credits.append(entry.seq)
                live.add(entry.seq)
        elif op[0] == "appeal" and voids:
            void = voids[op[1] % len(voids)]
            entry = chain.build(REVERSAL, target=void, cause="appeal", item=5)
            if offer(entry, void not in appealed):
                appealed.add(void)
                live.add(void_target[void])
        elif op[0] in ("reverse", "void") and credits:
            target = credits[op[1] % len(credits)]
            if op[0] == "reverse":
                entry = chain.build(REVERSAL, target=target, cause="redaction", item=None)
            else:
                entry = chain.build(MOD_VOID, CAROL, target=target, text_sha256=None)
            if offer(entry, target in live):
                live.discard(target)
                if op[0] == "void":
                    voids.append(entry.seq)
                    void_target[entry.seq] = target

    expected: Counter[str] = Counter()
    by_seq = {entry.seq: entry for entry in chain.entries}
    for seq in live:
        for change in deltas(by_seq[seq], BERLIN):
            expected[change.receiver] += change.amount
    assert book.totals() == {user: total for user, total in expected.items() if total}
    assert all(book.in_effect(seq) == (seq in live) for seq in credits)
    # Replaying the accepted chain afresh gives the same book.
    again = chain.replay()
    assert again.totals() == book.totals()
    for user in (ALICE, BOB, CAROL, DAN):
        assert again.received_days(user) == book.received_days(user)
        assert sum(book.received_days(user).values()) == book.total(user)


# --- the replay's day and limit caches against a plain replay -------------------------------


class PlainKudosReplay:
    """Kudos checks done the straightforward way: every entry's day and limits read afresh."""

    def __init__(self, rules: RoomRules) -> None:
        self.rules = rules
        self.given: Counter[tuple[str, str]] = Counter()
        self.pairs: Counter[tuple[str, str, str]] = Counter()
        self.received: dict[str, Counter[str]] = {}

    def offer(self, entry: LedgerEntry) -> str | None:
        if entry.kind in RULE_KINDS:
            self.rules = self.rules.with_change(entry.data["key"], entry.data["value"])
            return None
        giver, to, amount = entry.actor, entry.data["to"], entry.data["amount"]
        rules = self.rules
        if to == giver:
            return "kudos to oneself"
        if amount > rules.max_per_message:
            return f"kudos over the per-message maximum ({amount} of {rules.max_per_message})"
        day = local_day(entry.ts, rules.timezone)
        given = self.given[giver, day] + amount
        if given > rules.daily_allowance:
            return f"kudos over the daily allowance ({given} of {rules.daily_allowance} on {day})"
        pair = self.pairs[giver, to, day] + amount
        if pair > rules.pair_daily_cap:
            return (
                f"kudos over the pair daily cap ({pair} of {rules.pair_daily_cap}"
                f" from {giver} to {to} on {day})"
            )
        self.given[giver, day] = given
        self.pairs[giver, to, day] = pair
        self.received.setdefault(to, Counter())[day] += amount
        return None


# Days that DST (or a skipped date) makes odd, each with a zone; runs start at or before them.
ODD_DAYS = [
    ("2026-03-29T00:00+01:00", "Europe/Berlin"),  # 23 hours
    ("2026-10-25T00:00+02:00", "Europe/Berlin"),  # 25 hours
    ("2024-09-08T01:00-03:00", "America/Santiago"),  # midnight skipped
    ("2024-04-06T00:00-03:00", "America/Santiago"),  # falls back at 24:00
    ("2024-10-26T00:00+03:00", "Asia/Beirut"),
    ("2010-11-07T00:00-03:00", "America/Goose_Bay"),  # falls back over midnight, 00:01 to 23:01
    ("2011-12-29T00:00-10:00", "Pacific/Apia"),  # 30 December skipped
]
ZONES = sorted({zone for _, zone in ODD_DAYS} | {"UTC", "Pacific/Kiritimati"})
STEP_MINUTES = [0, 1, 29, 59, 60, 61, 119, 179, 600, 1379, 1439, 1440, 1500, 2 * 1440]
CACHE_OPS = st.one_of(
    st.tuples(
        st.just("kudos"),
        st.sampled_from([ALICE, BOB, CAROL]),
        st.sampled_from([ALICE, BOB, CAROL]),
        st.integers(1, 4),
        st.sampled_from(STEP_MINUTES),
    ),
    st.tuples(st.just("rule"), st.just("timezone"), st.sampled_from(ZONES)),
    st.tuples(st.just("rule"), st.just("kudos.daily_allowance"), st.integers(1, 12)),
    st.tuples(st.just("rule"), st.just("kudos.pair_daily_cap"), st.integers(1, 6)),
    st.tuples(st.just("rule"), st.just("kudos.max_per_message"), st.integers(1, 4)),
)


@settings(max_examples=300, deadline=None)
@given(
    odd=st.sampled_from(ODD_DAYS),
    lead=st.sampled_from([0, 1, 60, 1440]),
    ops=st.lists(CACHE_OPS, max_size=60),
)
# Goose Bay: a kudos in the one minute of 7 Nov before clocks fell back, then one in the
# repeated hour, which is 6 Nov again: a day's bounds must not be trusted across that.
@example(
    odd=ODD_DAYS[5],
    lead=0,
    ops=[("kudos", ALICE, BOB, 1, 0), ("kudos", ALICE, BOB, 1, 29), ("kudos", ALICE, BOB, 1, 1)],
)
def test_replay_matches_a_plain_replay_across_odd_days_and_rule_changes(
    odd: tuple[str, str], lead: int, ops: list[tuple[Any, ...]]
) -> None:
    start, zone = odd
    chain = Chain(room_rules({"timezone": zone}), ts=utc(start) - lead * 60_000)
    book, plain = ScoreBook(), PlainKudosReplay(chain.rules)
    assert book.apply(chain.entries[0]) is None
    for op in ops:
        if op[0] == "rule":
            entry = chain.rule(op[1], op[2])
            assert book.apply(entry) is None
            assert plain.offer(entry) is None
            continue
        _, giver, to, amount, minutes = op
        entry = chain.build(
            KUDOS,
            giver,
            chain.ts + minutes * 60_000,
            to=to,
            amount=amount,
            via="command",
            ref=None,
            text_sha256=None,
        )
        problem = book.apply(entry)
        assert problem == plain.offer(entry)
        if problem is None:
            chain.entries.append(entry)
        # A refused entry still moves the clock on, so the next one may fall on another day.
        chain.ts = entry.ts
    assert book.rules == plain.rules
    assert book.totals() == {user: sum(days.values()) for user, days in plain.received.items()}
    for user in (ALICE, BOB, CAROL):
        assert book.received_days(user) == dict(plain.received.get(user, {}))
        for day in {day for (giver, day) in plain.given if giver == user}:
            assert book.given_on(user, day) == plain.given[user, day]
            for to in (ALICE, BOB, CAROL):
                assert book.pair_on(user, to, day) == plain.pairs[user, to, day]
