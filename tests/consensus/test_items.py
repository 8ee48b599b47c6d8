"""Replaying proposals, polls and action calls: every problem phrase, a happy path per method, the
rules in force at a close, and properties: a close computed by the tally is accepted, any change
of it is refused; an action call goes exactly when its going set reaches the need."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consensus.actions import Commitment, goes
from consensus.canonical import canonical_json
from consensus.checkpoint import encode_b64
from consensus.items import ItemBook, ItemSummary
from consensus.ledger import (
    ATTEND,
    COMMIT,
    GENESIS,
    ITEM_CLOSE,
    ITEM_OPEN,
    KUDOS,
    MOD_OVERRIDE,
    POLL_METHODS,
    PROPOSAL_ANSWERS,
    PROPOSAL_METHODS,
    RULE_CHANGE,
    RULE_KINDS,
    VOTE,
    LedgerEntry,
    genesis_data,
    make_entry,
    rules_hash,
)
from consensus.rules import RoomRules, RuleValue
from consensus.scoring import ScoreBook
from consensus.tally import Ballot, tally_poll, tally_proposal
from consensus.verify import export_line, verify

ROOM = "!room:example.org"
BOT = "@commons:example.org"
ALICE = "@alice:example.org"
BOB = "@bob:example.org"
CAROL = "@carol:example.org"
DAN = "@dan:example.org"
ERIN = "@erin:example.org"
VOTERS = (ALICE, BOB, CAROL, DAN, ERIN)
KEY = encode_b64(bytes(32))
NOW = 1_780_000_000_000  # 2026-05-28, UTC ms
MINUTE = 60_000
HOUR = 60 * MINUTE
DEFAULT_TS = object()  # "the room's clock", so a test can pass any explicit ts


class Room:
    """A room's ledger under construction, each entry taken in by an ItemBook as it is added.

    It keeps the rules in force (for the entries' rules hashes and the supermajority) and, as an
    oracle independent of the book, each item's latest ballots.
    """

    def __init__(self, rules: RoomRules | None = None) -> None:
        self.rules = rules or RoomRules.defaults()
        self.ts = NOW
        self.book = ItemBook()
        self.entries: list[LedgerEntry] = []
        self.items: dict[int, dict[str, Any]] = {}  # item.open data by number
        self.ballots: dict[int, dict[str, Any]] = {}
        self.add(GENESIS, data=genesis_data(self.rules.as_json(), KEY))

    def build(
        self, kind: str, actor: str = BOT, ts: Any = DEFAULT_TS, **fields: Any
    ) -> LedgerEntry:
        """The next entry (not taken in). `data=` gives the whole data, else the fields do."""
        data = fields.pop("data", fields)
        return make_entry(
            prev=self.entries[-1] if self.entries else None,
            room=ROOM,
            ts=self.next_ts if ts is DEFAULT_TS else ts,
            actor=actor,
            kind=kind,
            data=data,
            event=None,
            rules=rules_hash(data["rules"]) if kind == GENESIS else self.rules.hash(),
        )

    @property
    def next_ts(self) -> int:
        """The time of the next entry unless a test says otherwise: a minute on."""
        return self.ts + MINUTE

    def take(self, entry: LedgerEntry) -> LedgerEntry:
        problem = self.book.apply(entry)
        assert problem is None, f"entry {entry.seq}: {problem}"
        self.entries.append(entry)
        self.ts = max(self.ts, entry.ts)
        data = entry.data
        if entry.kind in RULE_KINDS:
            self.rules = RoomRules({**self.rules.values, data["key"]: data["value"]})
        elif entry.kind == ITEM_OPEN:
            self.items[data["item"]] = dict(data)
            self.ballots[data["item"]] = {}
        elif entry.kind == VOTE and data["choice"] == []:
            self.ballots[data["item"]].pop(entry.actor, None)
        elif entry.kind == VOTE:
            self.ballots[data["item"]][entry.actor] = data["choice"]
        return entry

    def add(self, kind: str, actor: str = BOT, ts: Any = DEFAULT_TS, **fields: Any) -> LedgerEntry:
        return self.take(self.build(kind, actor, ts, **fields))

    def refuse(self, entry: LedgerEntry) -> str:
        """The book's phrase for `entry`, after checking the refusal changed nothing."""
        before = (dict(self.book.items()), dict(self.book.outcomes()))
        problem = self.book.apply(entry)
        assert problem is not None, f"entry {entry.seq} was taken in"
        assert (dict(self.book.items()), dict(self.book.outcomes())) == before
        return problem

    # -- items --

    def open(self, kind: str, actor: str = ALICE, ts: Any = DEFAULT_TS, **fields: Any) -> int:
        number: int = fields.pop("item", len(self.items) + 1)
        when = self.next_ts if ts is DEFAULT_TS else ts
        self.add(ITEM_OPEN, actor, when, data=open_data(number, kind, when, **fields))
        return number

    def propose(self, method: str = "consent", quorum: int | None = 3, **fields: Any) -> int:
        return self.open("proposal", method=method, quorum=quorum, **fields)

    def poll(self, method: str = "single", options: int = 3, **fields: Any) -> int:
        return self.open("poll", method=method, options=options, **fields)

    def call(self, need: int = 2, **fields: Any) -> int:
        fields.setdefault("at", self.ts + 10 * HOUR)
        fields.setdefault("closes", self.ts + 8 * HOUR)
        return self.open("action", method=None, options=0, quorum=None, need=need, **fields)

    def vote_entry(self, voter: str, item: int, choice: Any, ts: Any = DEFAULT_TS) -> LedgerEntry:
        return self.build(
            VOTE, voter, ts, item=item, choice=choice, via="command", text_sha256=None
        )

    def vote(self, voter: str, item: int, choice: Any, ts: Any = DEFAULT_TS) -> LedgerEntry:
        return self.take(self.vote_entry(voter, item, choice, ts))

    def commit_entry(
        self, user: str, item: int, state: str = "in", min_others: int = 0, ts: Any = DEFAULT_TS
    ) -> LedgerEntry:
        return self.build(
            COMMIT, user, ts, item=item, state=state, min_others=min_others, via="command"
        )

    def commit(self, user: str, item: int, *args: Any, **kwargs: Any) -> LedgerEntry:
        return self.take(self.commit_entry(user, item, *args, **kwargs))

    def attend_entry(self, actor: str, item: int, user: str, kudos: int = 0) -> LedgerEntry:
        return self.build(ATTEND, actor, item=item, user=user, kudos=kudos)

    def close_entry(
        self,
        item: int,
        outcome: str,
        winners: list[int] | None = None,
        tally: dict[str, Any] | None = None,
        ts: Any = DEFAULT_TS,
    ) -> LedgerEntry:
        return self.build(
            ITEM_CLOSE,
            BOT,
            ts,
            item=item,
            outcome=outcome,
            winners=winners or [],
            tally=tally or {},
        )

    def close(self, item: int, outcome: str, ts: Any = DEFAULT_TS) -> LedgerEntry:
        return self.take(self.close_entry(item, outcome, ts=ts))

    def expected(self, item: int) -> dict[str, Any]:
        """What the bot writes when `item` closes now: the tally of its latest ballots."""
        opened = self.items[item]
        ballots = [
            Ballot(voter, choice if isinstance(choice, str) else tuple(choice))
            for voter, choice in self.ballots[item].items()
        ]
        if opened["type"] == "proposal":
            outcome = tally_proposal(
                opened["method"],
                ballots,
                quorum=opened["quorum"] or 0,
                supermajority=self.rules.supermajority,
            )
        else:
            options = [f"option {n}" for n in range(1, opened["options"] + 1)]
            outcome = tally_poll(opened["method"], options, ballots, quorum=opened["quorum"])
        return outcome.as_ledger()

    def tallied_close(self, item: int, ts: Any = DEFAULT_TS) -> LedgerEntry:
        return self.take(self.close_entry(item, ts=ts, **self.expected(item)))

    def rule_change(self, item: int, key: str, value: RuleValue) -> LedgerEntry:
        return self.add(RULE_CHANGE, key=key, value=value, item=item)

    def lines(self) -> list[dict[str, Any]]:
        return [export_line(entry, None, None) for entry in self.entries]


def open_data(number: int, kind: str, ts: int, **fields: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "item": number,
        "type": kind,
        "method": None,
        "options": 4,
        "quorum": None,
        "closes": ts + 48 * HOUR,
        "at": None,
        "need": None,
        "rule_key": None,
        "rule_value": None,
        "target": None,
        "text_sha256": None,
    }
    data.update(fields)
    return data


def pass_rule(room: Room, key: str, value: RuleValue) -> int:
    """Open, pass and carry out a rule proposal on the governance terms in force."""
    terms = room.rules.rule_proposal_terms(key, value)
    number = room.propose(
        terms.method,
        terms.quorum,
        closes=room.next_ts + terms.duration_ms,
        rule_key=key,
        rule_value=value,
    )
    for voter in VOTERS[: max(terms.quorum, 1)]:
        room.vote(voter, number, "agree")
    assert room.tallied_close(number).data["outcome"] == "passed"
    room.rule_change(number, key, value)
    return number


# --- happy paths ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "votes", "outcome"),
    [
        ("majority", {ALICE: "agree", BOB: "disagree", CAROL: "agree"}, "passed"),
        ("majority", {ALICE: "agree", BOB: "block", CAROL: "abstain"}, "failed"),
        ("supermajority", {ALICE: "agree", BOB: "agree", CAROL: "disagree"}, "passed"),
        ("supermajority", {ALICE: "agree", BOB: "disagree", CAROL: "block"}, "failed"),
        ("consent", {ALICE: "agree", BOB: "abstain", CAROL: "disagree"}, "passed"),
        ("consent", {ALICE: "agree", BOB: "agree", CAROL: "block"}, "failed"),
        ("consensus", {ALICE: "agree", BOB: "agree", CAROL: "abstain"}, "passed"),
        ("consensus", {ALICE: "agree", BOB: "agree", CAROL: "agree", DAN: "block"}, "failed"),
    ],
)
def test_a_proposal_is_recounted_from_the_latest_ballots(
    method: str, votes: dict[str, str], outcome: str
) -> None:
    room = Room()
    number = room.propose(method)
    # Earlier votes that are changed or withdrawn must not count.
    room.vote(ERIN, number, "block")
    for voter in votes:
        room.vote(voter, number, "disagree" if votes[voter] == "agree" else "agree")
    room.vote(ERIN, number, [])
    for voter, choice in votes.items():
        room.vote(voter, number, choice)
    assert room.book.items()[number].voters == len(votes)
    close = room.tallied_close(number)
    assert close.data["outcome"] == outcome
    assert close.data["tally"]["voters"] == len(votes)
    assert room.book.outcomes()[number].label == outcome
    summary = room.book.items()[number]
    assert summary == ItemSummary(
        item=number,
        type="proposal",
        method=method,
        author=ALICE,
        status="closed",
        outcome=outcome,
        voters=len(votes),
        closes=room.items[number]["closes"],
        opened_ts=room.entries[1].ts,
        closed_ts=close.ts,
    )


@pytest.mark.parametrize(
    ("method", "votes", "winners"),
    [
        ("single", {ALICE: [2], BOB: [2], CAROL: [1]}, [2]),
        ("single", {ALICE: [1], BOB: [3]}, [1, 3]),
        ("approval", {ALICE: [1, 3], BOB: [3], CAROL: [2, 3]}, [3]),
        ("ranked", {ALICE: [1, 2], BOB: [2, 1], CAROL: [3, 2], DAN: [2]}, [2]),
        ("ranked", {ALICE: [3, 1], BOB: [1], CAROL: [2, 1], DAN: [1]}, [1]),
        ("ranked", {ALICE: [3], BOB: [1], CAROL: [2, 1]}, [1, 2, 3]),
        ("score", {ALICE: [5, 0, 3], BOB: [1, 4, 4]}, [3]),
    ],
)
def test_a_poll_is_recounted_from_the_latest_ballots(
    method: str, votes: dict[str, list[int]], winners: list[int]
) -> None:
    room = Room()
    number = room.poll(method)
    room.vote(ERIN, number, [0, 0, 5] if method == "score" else [3])
    room.vote(ERIN, number, [])
    for voter, choice in votes.items():
        room.vote(voter, number, choice)
    close = room.tallied_close(number)
    assert close.data["outcome"] == "decided"
    assert close.data["winners"] == winners
    assert room.book.outcomes()[number].winners == tuple(winners)
    assert room.book.items()[number].voters == len(votes)


def test_a_poll_without_votes_and_one_that_misses_its_quorum_fail() -> None:
    room = Room()
    empty = room.poll("approval")
    short = room.poll("single", quorum=2)
    room.vote(ALICE, short, [1])
    assert room.tallied_close(empty).data["outcome"] == "failed"
    assert room.tallied_close(short).data["outcome"] == "failed"
    assert room.book.outcomes()[short].tally["quorum"] == 2


def test_null_method_and_quorum_are_read_as_the_bot_reads_them() -> None:
    room = Room()
    proposal = room.open("proposal", method=None, quorum=None)
    poll = room.open("poll", method=None, options=2)
    room.vote(ALICE, proposal, "agree")
    room.vote(ALICE, poll, [2])
    tallied = tally_proposal(
        "consent", [Ballot(ALICE, "agree")], quorum=0, supermajority=room.rules.supermajority
    )
    room.take(room.close_entry(proposal, **tallied.as_ledger()))
    single = tally_poll("single", ["a", "b"], [Ballot(ALICE, (2,))], quorum=None)
    room.take(room.close_entry(poll, **single.as_ledger()))
    assert room.book.items()[proposal].outcome == "passed"
    assert room.book.items()[poll].outcome == "decided"


def test_withdrawing_an_item_leaves_it_withdrawn_without_an_outcome() -> None:
    room = Room()
    number = room.poll()
    room.vote(ALICE, number, [1])
    room.close(number, "withdrawn")
    summary = room.book.items()[number]
    assert summary.status == "withdrawn" and summary.outcome == "withdrawn"
    assert number not in room.book.outcomes()


def test_the_supermajority_in_force_at_the_close_decides() -> None:
    room = Room()
    number = room.propose("supermajority", closes=room.ts + 200 * HOUR)
    for voter, choice in zip(VOTERS, ["agree"] * 3 + ["disagree"] * 2, strict=True):
        room.vote(voter, number, choice)
    failed_then = room.expected(number)
    assert failed_then["outcome"] == "failed"  # 3 of 5 < 2/3
    pass_rule(room, "proposal.supermajority", "3/5")
    assert room.refuse(room.close_entry(number, **failed_then)) == (
        f"#{number} is recorded as failed, but its votes give passed"
    )
    close = room.tallied_close(number)
    assert close.data["tally"]["threshold"] == "3/5"
    room.add(MOD_OVERRIDE, key="proposal.supermajority", value="1/1", text_sha256=None)
    other = room.propose("consensus")
    room.vote(ALICE, other, "agree")
    room.vote(BOB, other, "agree")
    room.vote(CAROL, other, "disagree")
    assert room.tallied_close(other).data["tally"]["threshold"] == "1/1"


def test_a_rule_proposal_on_stricter_terms_is_accepted() -> None:
    room = Room()
    number = room.propose(
        "consensus", 5, closes=room.ts + 100 * HOUR, rule_key="poll.duration", rule_value="12h"
    )
    for voter in VOTERS:
        room.vote(voter, number, "agree")
    room.tallied_close(number)
    room.rule_change(number, "poll.duration", "12h")
    assert room.rules["poll.duration"] == "12h"
    # Raising the governance quorum must meet the new quorum too.
    terms = room.rules.rule_proposal_terms("governance.rule_change_quorum", 4)
    assert terms.quorum == 4
    pass_rule(room, "governance.rule_change_quorum", 4)


def test_an_action_call_that_goes_ahead_and_is_attended() -> None:
    room = Room()
    number = room.call(need=3)
    room.commit(ALICE, number)
    room.commit(BOB, number, "in", 2)
    room.commit(DAN, number, "in", 9)
    room.commit(DAN, number, "out")
    room.commit(CAROL, number, "in", 1)
    room.close(number, "go")
    room.commit(ERIN, number)  # commitments stay open until the action
    room.commit(ERIN, number, "out")
    room.add(ATTEND, BOB, ts=room.items[number]["at"] + HOUR, item=number, user=ALICE, kudos=1)
    room.take(room.attend_entry(ALICE, number, ALICE))
    summary = room.book.items()[number]
    assert (summary.status, summary.outcome, summary.voters) == ("closed", "go", 3)
    assert (summary.need, summary.going, summary.attended) == (3, 3, 1)
    assert summary.at == room.items[number]["at"] and summary.method is None
    assert number not in room.book.outcomes()


def test_an_action_call_that_is_called_off_or_withdrawn() -> None:
    room = Room()
    short = room.call(need=2)
    room.commit(ALICE, short)
    room.commit(BOB, short, "in", 2)  # BOB's condition can't hold with two people
    room.close(short, "called_off", ts=room.items[short]["closes"])
    early = room.call()
    room.close(early, "withdrawn")
    late = room.call(need=1)
    room.commit(CAROL, late)
    room.close(late, "go")
    room.close(late, "withdrawn")  # the caller may still call it off after GO
    items = room.book.items()
    assert [items[n].outcome for n in (short, early, late)] == [
        "called_off",
        "withdrawn",
        "withdrawn",
    ]
    assert items[short].going == 1 and items[short].status == "closed"
    assert items[late].status == "withdrawn"


def test_entries_that_are_not_about_items_are_ignored() -> None:
    room = Room()
    room.add(KUDOS, ALICE, to=BOB, amount=1, via="command", ref=None, text_sha256=None)
    assert room.book.items() == {}


# --- every problem, by its phrase ---------------------------------------------------------------

Scenario = Callable[[Room], LedgerEntry]


def rule_open(room: Room, **fields: Any) -> LedgerEntry:
    data = open_data(
        1,
        "proposal",
        room.next_ts,
        method="supermajority",
        quorum=3,
        closes=room.next_ts + 72 * HOUR,
        rule_key="kudos.daily_allowance",
        rule_value=5,
    )
    data.update(fields)
    return room.build(ITEM_OPEN, ALICE, data=data)


def opened(room: Room, kind: str, **fields: Any) -> Room:
    if kind == "action":
        room.call(**fields)
    elif kind == "poll":
        room.poll(**fields)
    else:
        room.propose(**fields)
    return room


def closed_proposal(
    room: Room, votes: dict[str, str] | None = None, **fields: Any
) -> dict[str, Any]:
    number = room.propose(**fields)
    for voter, choice in (votes or {ALICE: "agree", BOB: "agree", CAROL: "abstain"}).items():
        room.vote(voter, number, choice)
    return room.expected(number)


def with_tally(room: Room, **changes: Any) -> LedgerEntry:
    data = closed_proposal(room)
    return room.close_entry(1, data["outcome"], data["winners"], {**data["tally"], **changes})


def without_tally_key(room: Room, key: str) -> LedgerEntry:
    data = closed_proposal(room)
    tally = {k: v for k, v in data["tally"].items() if k != key}
    return room.close_entry(1, data["outcome"], data["winners"], tally)


def rule_proposal_closed(room: Room, votes: list[str]) -> Room:
    room.take(rule_open(room))
    for voter, choice in zip(VOTERS, votes, strict=False):
        room.vote(voter, 1, choice)
    room.tallied_close(1)
    return room


def went(room: Room) -> Room:
    room.call(need=1)
    room.commit(ALICE, 1)
    room.close(1, "go")
    return room


PROBLEMS: list[tuple[str, Scenario, str]] = [
    # item.open
    (
        "repeated number",
        lambda r: r.build(ITEM_OPEN, data=open_data(1, "poll", opened(r, "poll").ts)),
        "it opens #1 again (entry 2 opened it)",
    ),
    (
        "gap",
        lambda r: r.build(ITEM_OPEN, data=open_data(2, "poll", r.ts)),
        "it opens #2, but #1 comes next",
    ),
    (
        "call without need",
        lambda r: r.build(ITEM_OPEN, data=open_data(1, "action", r.ts, at=r.ts + HOUR)),
        "action call #1 lacks its need, its time or its deadline",
    ),
    (
        "deadline after the action",
        lambda r: r.build(
            ITEM_OPEN,
            data=open_data(1, "action", r.ts, need=2, at=r.ts + HOUR, closes=r.ts + 2 * HOUR),
        ),
        "action call #1 has its deadline after the action",
    ),
    (
        "proposal with a poll method",
        lambda r: r.build(ITEM_OPEN, data=open_data(1, "proposal", r.ts, method="single")),
        "proposal #1 is decided by single, which is not a proposal method",
    ),
    (
        "poll with a proposal method",
        lambda r: r.build(ITEM_OPEN, data=open_data(1, "poll", r.ts, method="consent")),
        "poll #1 is decided by consent, which is not a poll method",
    ),
    (
        "poll without options",
        lambda r: r.build(ITEM_OPEN, data=open_data(1, "poll", r.ts, options=0)),
        "poll #1 has no options",
    ),
    (
        "rule value without key",
        lambda r: r.build(ITEM_OPEN, data=open_data(1, "proposal", r.ts, rule_value=5)),
        "proposal #1 has a rule value but no rule key",
    ),
    (
        "poll with a rule",
        lambda r: r.build(
            ITEM_OPEN,
            data=open_data(1, "poll", r.ts, rule_key="kudos.daily_allowance", rule_value=5),
        ),
        "poll #1 proposes a rule change, which only a proposal can",
    ),
    (
        "unknown rule",
        lambda r: rule_open(r, rule_key="kudos.nope"),
        "proposal #1 proposes a change of 'kudos.nope', which is not a room rule",
    ),
    (
        "rule value not canonical",
        lambda r: rule_open(r, rule_value="5"),
        'proposal #1 proposes kudos.daily_allowance = "5", which is not a valid value',
    ),
    (
        "rule value out of range",
        lambda r: rule_open(r, rule_value=-1),
        "proposal #1 proposes kudos.daily_allowance = -1, which is not a valid value",
    ),
    (
        "weaker method",
        lambda r: rule_open(r, method="majority"),
        "proposal #1 is decided by majority, weaker than supermajority"
        " (governance.rule_change_method)",
    ),
    (
        "incomparable method",
        lambda r: rule_open(r, method="consent"),
        "proposal #1 is decided by consent, weaker than supermajority"
        " (governance.rule_change_method)",
    ),
    (
        "lower quorum",
        lambda r: rule_open(r, quorum=2),
        "proposal #1 has quorum 2, below 3 (governance.rule_change_quorum)",
    ),
    (
        "null quorum",
        lambda r: rule_open(r, quorum=None),
        "proposal #1 has quorum 0, below 3 (governance.rule_change_quorum)",
    ),
    (
        "governance change below its own new bar",
        lambda r: rule_open(r, rule_key="governance.rule_change_quorum", rule_value=4),
        "proposal #1 has quorum 3, below 4 (governance.rule_change_quorum)",
    ),
    (
        "shorter duration",
        lambda r: rule_open(r, closes=r.next_ts + 72 * HOUR - 1),
        "proposal #1 closes sooner than governance.rule_change_duration (72h) allows",
    ),
    (
        "no closing time",
        lambda r: rule_open(r, closes=None),
        "proposal #1 closes sooner than governance.rule_change_duration (72h) allows",
    ),
    # votes
    (
        "vote on nothing",
        lambda r: r.vote_entry(ALICE, 9, "agree"),
        "vote on #9, which was never opened",
    ),
    (
        "vote on a call",
        lambda r: opened(r, "action").vote_entry(ALICE, 1, "agree"),
        "vote on #1, which is an action call",
    ),
    (
        "vote on a withdrawn item",
        lambda r: (opened(r, "poll").close(1, "withdrawn"), r.vote_entry(ALICE, 1, [1]))[1],
        "vote on #1 after it was withdrawn",
    ),
    (
        "vote at the closing time",
        lambda r: opened(r, "poll").vote_entry(ALICE, 1, [1], ts=r.items[1]["closes"]),
        "vote after #1 closed",
    ),
    (
        "vote after an early close",
        lambda r: (opened(r, "poll").tallied_close(1), r.vote_entry(ALICE, 1, [1]))[1],
        "vote after #1 closed",
    ),
    (
        "withdrawal after the close",
        lambda r: (opened(r, "proposal").tallied_close(1), r.vote_entry(ALICE, 1, []))[1],
        "vote after #1 closed",
    ),
    (
        "options on a proposal",
        lambda r: opened(r, "proposal").vote_entry(ALICE, 1, [1]),
        "vote on #1 with [1], which is not an answer (agree, abstain, disagree, block)",
    ),
    (
        "answer on a poll",
        lambda r: opened(r, "poll").vote_entry(ALICE, 1, "agree"),
        'vote on #1 with "agree", which is not one option from 1 to 3',
    ),
    (
        "two options in a single poll",
        lambda r: opened(r, "poll").vote_entry(ALICE, 1, [1, 2]),
        "vote on #1 with [1, 2], which is not one option from 1 to 3",
    ),
    (
        "option out of range",
        lambda r: opened(r, "poll").vote_entry(ALICE, 1, [4]),
        "vote on #1 with [4], which is not one option from 1 to 3",
    ),
    (
        "approval repeats",
        lambda r: opened(r, "poll", method="approval").vote_entry(ALICE, 1, [1, 1]),
        "vote on #1 with [1, 1], which is not different options from 1 to 3",
    ),
    (
        "approval option 0",
        lambda r: opened(r, "poll", method="approval").vote_entry(ALICE, 1, [0, 2]),
        "vote on #1 with [0, 2], which is not different options from 1 to 3",
    ),
    (
        "ranked repeats",
        lambda r: opened(r, "poll", method="ranked").vote_entry(ALICE, 1, [2, 1, 2]),
        "vote on #1 with [2, 1, 2], which is not a ranking of different options from 1 to 3",
    ),
    (
        "too few scores",
        lambda r: opened(r, "poll", method="score").vote_entry(ALICE, 1, [1, 2]),
        "vote on #1 with [1, 2], which is not 3 scores from 0 to 5",
    ),
    (
        "score above 5",
        lambda r: opened(r, "poll", method="score").vote_entry(ALICE, 1, [6, 0, 0]),
        "vote on #1 with [6, 0, 0], which is not 3 scores from 0 to 5",
    ),
    (
        "negative score",
        lambda r: opened(r, "poll", method="score").vote_entry(ALICE, 1, [0, -1, 0]),
        "vote on #1 with [0, -1, 0], which is not 3 scores from 0 to 5",
    ),
    (
        "answer on a score poll",
        lambda r: opened(r, "poll", method="score").vote_entry(ALICE, 1, "block"),
        'vote on #1 with "block", which is not 3 scores from 0 to 5',
    ),
    # commitments
    (
        "commitment to nothing",
        lambda r: r.commit_entry(ALICE, 9),
        "commitment to #9, which was never opened",
    ),
    (
        "commitment to a proposal",
        lambda r: opened(r, "proposal").commit_entry(ALICE, 1),
        "commitment to #1, which is a proposal",
    ),
    (
        "commitment after a call-off",
        lambda r: (
            opened(r, "action").close(1, "called_off", ts=r.items[1]["closes"]),
            r.commit_entry(ALICE, 1, ts=r.items[1]["closes"] - 1),
        )[1],
        "commitment to #1 after it was called off",
    ),
    (
        "commitment after a withdrawal",
        lambda r: (opened(r, "action").close(1, "withdrawn"), r.commit_entry(ALICE, 1))[1],
        "commitment to #1 after it was withdrawn",
    ),
    (
        "withdrawal after a go and a withdrawal",
        lambda r: (went(r).close(1, "withdrawn"), r.commit_entry(ALICE, 1, "out"))[1],
        "commitment to #1 after it was withdrawn",
    ),
    (
        "commitment at the deadline",
        lambda r: opened(r, "action").commit_entry(ALICE, 1, ts=r.items[1]["closes"]),
        "commitment to #1 after its deadline",
    ),
    (
        "commitment at the action's time",
        lambda r: went(r).commit_entry(BOB, 1, ts=r.items[1]["at"]),
        "commitment to #1 after the action took place",
    ),
    (
        "withdrawal after attendance",
        lambda r: (
            went(r).take(r.attend_entry(ALICE, 1, ALICE)),
            r.commit_entry(ALICE, 1, "out"),
        )[1],
        "commitment to #1 after the action took place",
    ),
    # attendance
    (
        "attendance at nothing",
        lambda r: r.attend_entry(ALICE, 9, BOB),
        "attendance at #9, which was never opened",
    ),
    (
        "attendance at a poll",
        lambda r: opened(r, "poll").attend_entry(ALICE, 1, BOB),
        "attendance at #1, which is a poll",
    ),
    (
        "attendance at an open call",
        lambda r: opened(r, "action").attend_entry(ALICE, 1, BOB),
        "attendance at #1, which did not go ahead",
    ),
    (
        "attendance at a withdrawn call",
        lambda r: (went(r).close(1, "withdrawn"), r.attend_entry(ALICE, 1, ALICE))[1],
        "attendance at #1, which did not go ahead",
    ),
    # closes
    (
        "close of nothing",
        lambda r: r.close_entry(9, "failed"),
        "it closes #9, which was never opened",
    ),
    (
        "poll outcome for a proposal",
        lambda r: opened(r, "proposal").close_entry(1, "decided"),
        "it closes proposal #1 as decided, which is not how one ends",
    ),
    (
        "proposal outcome for a poll",
        lambda r: opened(r, "poll").close_entry(1, "passed"),
        "it closes poll #1 as passed, which is not how one ends",
    ),
    (
        "proposal outcome for a call",
        lambda r: opened(r, "action").close_entry(1, "failed"),
        "it closes action call #1 as failed, which is not how one ends",
    ),
    (
        "double close",
        lambda r: (opened(r, "poll").tallied_close(1), r.close_entry(1, **r.expected(1)))[1],
        "it closes #1, which entry 3 already closed",
    ),
    (
        "withdrawal after a close",
        lambda r: (opened(r, "proposal").tallied_close(1), r.close_entry(1, "withdrawn"))[1],
        "it closes #1, which entry 3 already closed",
    ),
    (
        "double withdrawal",
        lambda r: (opened(r, "poll").close(1, "withdrawn"), r.close_entry(1, "withdrawn"))[1],
        "it closes #1, which entry 3 already closed",
    ),
    (
        "go twice",
        lambda r: went(r).close_entry(1, "go"),
        "it closes #1, which entry 4 already closed",
    ),
    (
        "called off after go",
        lambda r: went(r).close_entry(1, "called_off", ts=r.items[1]["closes"]),
        "it closes #1, which entry 4 already closed",
    ),
    (
        "withdrawn with a tally",
        lambda r: opened(r, "poll").close_entry(1, "withdrawn", tally={"voters": 0}),
        "withdrawn #1 must have no winners and an empty tally",
    ),
    (
        "withdrawn with winners",
        lambda r: opened(r, "action").close_entry(1, "withdrawn", winners=[1]),
        "withdrawn #1 must have no winners and an empty tally",
    ),
    (
        "wrong outcome",
        lambda r: r.close_entry(1, "failed", [], closed_proposal(r)["tally"]),
        "#1 is recorded as failed, but its votes give passed",
    ),
    (
        "winners on a proposal",
        lambda r: r.close_entry(1, "passed", [1], closed_proposal(r)["tally"]),
        "#1 is recorded with winners [1], but its votes give []",
    ),
    (
        "wrong winner",
        lambda r: (
            opened(r, "poll").vote(ALICE, 1, [3]),
            r.close_entry(1, "decided", [2], r.expected(1)["tally"]),
        )[1],
        "#1 is recorded with winners [2], but its votes give [3]",
    ),
    (
        "wrong count",
        lambda r: with_tally(r, agree=1),
        "#1's tally has agree = 1, but its votes give 2",
    ),
    (
        "wrong method in the tally",
        lambda r: with_tally(r, method="majority"),
        '#1\'s tally has method = "majority", but its votes give "consent"',
    ),
    (
        "a count as text",
        lambda r: with_tally(r, voters="3"),
        '#1\'s tally has voters = "3", but its votes give 3',
    ),
    (
        "a count as a boolean",
        lambda r: with_tally(r, block=False),
        "#1's tally has block = false, but its votes give 0",
    ),
    (
        "extra tally key",
        lambda r: with_tally(r, extra=1),
        "#1's tally has extra, which its votes don't give",
    ),
    (
        "missing tally key",
        lambda r: without_tally_key(r, "abstain"),
        "#1's tally lacks abstain (its votes give 1)",
    ),
    (
        "go without enough",
        lambda r: (opened(r, "action").commit(ALICE, 1), r.close_entry(1, "go"))[1],
        "#1 went ahead with 1 of the 2 needed",
    ),
    (
        "go with unmet conditions",
        lambda r: (
            opened(r, "action").commit(ALICE, 1, "in", 2),
            r.commit(BOB, 1, "in", 2),
            r.close_entry(1, "go"),
        )[2],
        "#1 went ahead with 0 of the 2 needed",
    ),
    (
        "go at the deadline",
        lambda r: (
            opened(r, "action", need=1).commit(ALICE, 1),
            r.close_entry(1, "go", ts=r.items[1]["closes"]),
        )[1],
        "#1 went ahead after its deadline",
    ),
    (
        "called off with enough",
        lambda r: (
            opened(r, "action").commit(ALICE, 1),
            r.commit(BOB, 1, "in", 1),
            r.close_entry(1, "called_off", ts=r.items[1]["closes"]),
        )[2],
        "#1 was called off with 2 of the 2 needed in",
    ),
    (
        "called off early",
        lambda r: opened(r, "action").close_entry(1, "called_off", ts=r.items[1]["closes"] - 1),
        "#1 was called off before its deadline",
    ),
    # rule changes
    (
        "rule change citing nothing",
        lambda r: r.build(RULE_CHANGE, key="kudos.daily_allowance", value=5, item=9),
        "it cites #9, which was never opened",
    ),
    (
        "rule change citing a poll",
        lambda r: opened(r, "poll").build(
            RULE_CHANGE, key="kudos.daily_allowance", value=5, item=1
        ),
        "it cites #1, which is a poll",
    ),
    (
        "rule change citing an ordinary proposal",
        lambda r: (
            closed_proposal(r),
            r.tallied_close(1),
            r.build(RULE_CHANGE, key="kudos.daily_allowance", value=5, item=1),
        )[2],
        "it cites proposal #1, which proposes no rule change",
    ),
    (
        "rule change before the close",
        lambda r: (
            r.take(rule_open(r)),
            r.build(RULE_CHANGE, key="kudos.daily_allowance", value=5, item=1),
        )[1],
        "it cites proposal #1, which has not passed",
    ),
    (
        "rule change of a failed proposal",
        lambda r: rule_proposal_closed(r, ["agree", "disagree", "disagree"]).build(
            RULE_CHANGE, key="kudos.daily_allowance", value=5, item=1
        ),
        "it cites proposal #1, which has not passed",
    ),
    (
        "rule change of another value",
        lambda r: rule_proposal_closed(r, ["agree"] * 3).build(
            RULE_CHANGE, key="kudos.daily_allowance", value=6, item=1
        ),
        "it sets kudos.daily_allowance = 6, but proposal #1 proposed kudos.daily_allowance = 5",
    ),
    (
        "rule change of another key",
        lambda r: rule_proposal_closed(r, ["agree"] * 3).build(
            RULE_CHANGE, key="kudos.pair_daily_cap", value=5, item=1
        ),
        "it sets kudos.pair_daily_cap = 5, but proposal #1 proposed kudos.daily_allowance = 5",
    ),
    (
        "rule change twice",
        lambda r: (
            rule_proposal_closed(r, ["agree"] * 3).rule_change(1, "kudos.daily_allowance", 5),
            r.build(RULE_CHANGE, key="kudos.daily_allowance", value=5, item=1),
        )[1],
        "proposal #1 was already carried out by entry 7",
    ),
    (
        "override of no rule",
        lambda r: r.build(MOD_OVERRIDE, key="kudos.nope", value=5, text_sha256=None),
        "it sets 'kudos.nope', which is not a room rule",
    ),
    (
        "override with a bad value",
        lambda r: r.build(MOD_OVERRIDE, key="kudos.daily_allowance", value="x", text_sha256=None),
        'it sets kudos.daily_allowance to "x", which is not a valid value of that rule',
    ),
]


@pytest.mark.parametrize(
    ("scenario", "problem"), [(s, p) for _, s, p in PROBLEMS], ids=[n for n, _, _ in PROBLEMS]
)
def test_each_problem_is_named_and_leaves_the_book_as_it_was(
    scenario: Scenario, problem: str
) -> None:
    room = Room()
    entry = scenario(room)
    assert room.refuse(entry) == problem
    # A fresh replay of the same chain finds the same problem at the same entry.
    fresh = ItemBook()
    assert all(fresh.apply(earlier) is None for earlier in room.entries)
    assert fresh.apply(entry) == problem


def test_starting_rules_that_are_not_room_rules() -> None:
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
    problem = ItemBook().apply(genesis)
    assert problem is not None
    assert problem.startswith("its starting rules are not valid room rules (room rules lack ")


def test_a_refused_vote_leaves_the_ballots_as_they_were() -> None:
    room = Room()
    number = room.poll()
    room.vote(ALICE, number, [2])
    room.refuse(room.vote_entry(ALICE, number, [7]))
    room.refuse(room.vote_entry(BOB, number, [1, 2]))
    assert room.tallied_close(number).data["winners"] == [2]


# --- properties ----------------------------------------------------------------------------------


def choices(kind: str, method: str, n: int) -> st.SearchStrategy[Any]:
    if kind == "proposal":
        return st.sampled_from(PROPOSAL_ANSWERS)
    options = st.integers(1, n)
    match method:
        case "single":
            return options.map(lambda o: [o])
        case "approval":
            return st.lists(options, min_size=1, unique=True)
        case "ranked":
            return st.permutations(range(1, n + 1)).flatmap(
                lambda order: st.integers(1, n).map(lambda k: list(order[:k]))
            )
        case _:
            return st.lists(st.integers(0, 5), min_size=n, max_size=n)


@st.composite
def decisions(draw: st.DrawFn) -> tuple[str, str, int, int | None, list[tuple[str, Any]]]:
    kind = draw(st.sampled_from(["proposal", "poll"]))
    if kind == "proposal":
        method, n = draw(st.sampled_from(PROPOSAL_METHODS)), 4
        quorum: int | None = draw(st.integers(0, 4))
    else:
        method, n = draw(st.sampled_from(POLL_METHODS)), draw(st.integers(1, 5))
        quorum = draw(st.none() | st.integers(0, 4))
    ballot: st.SearchStrategy[Any] = choices(kind, method, n) | st.just([])
    votes = draw(st.lists(st.tuples(st.sampled_from(VOTERS), ballot), max_size=14))
    return kind, method, n, quorum, votes


def mutations(data: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    """Every small change of a close's recorded outcome, winners or tally."""
    labels = {"proposal": ("passed", "failed"), "poll": ("decided", "failed")}[kind]
    changed = [{**data, "outcome": label} for label in labels if label != data["outcome"]]
    changed.append({**data, "outcome": "withdrawn"})
    winners = data["winners"]
    changed += [{**data, "winners": w} for w in ([*winners, 9], winners[1:] or [1], winners[::-1])]
    tally = data["tally"]
    for key, value in tally.items():
        other = value + 1 if isinstance(value, int) else value + "x"
        changed.append({**data, "tally": {**tally, key: other}})
        changed.append({**data, "tally": {k: v for k, v in tally.items() if k != key}})
        if value in (0, 1) and isinstance(value, int):
            changed.append({**data, "tally": {**tally, key: bool(value)}})
    changed.append({**data, "tally": {**tally, "extra": 0}})
    # canonical_json tells true from 1; a reversed single winner is no change at all.
    return [c for c in changed if canonical_json(c) != canonical_json(data)]


@settings(max_examples=200, deadline=None)
@given(decision=decisions(), supermajority=st.sampled_from(["2/3", "3/5", "1/1", "3/4"]))
def test_a_tallied_close_is_accepted_and_any_change_of_it_refused(
    decision: tuple[str, str, int, int | None, list[tuple[str, Any]]], supermajority: str
) -> None:
    kind, method, n, quorum, votes = decision
    room = Room(RoomRules.defaults().with_change("proposal.supermajority", supermajority))
    number = room.open(kind, method=method, options=n, quorum=quorum)
    for voter, choice in votes:
        room.vote(voter, number, choice)
    data = room.expected(number)
    for changed in mutations(data, kind):
        assert room.refuse(room.close_entry(number, **changed)), changed
    room.tallied_close(number)
    assert room.book.outcomes()[number].as_ledger() == data
    assert room.book.items()[number].voters == len(room.ballots[number])


COMMITS = st.lists(
    st.tuples(st.sampled_from(VOTERS), st.sampled_from(["in", "out"]), st.integers(0, 5)),
    max_size=12,
)


@settings(max_examples=150, deadline=None)
@given(commits=COMMITS, need=st.integers(1, 5))
def test_a_call_goes_exactly_when_its_going_set_reaches_the_need(
    commits: list[tuple[str, str, int]], need: int
) -> None:
    room = Room()
    number = room.call(need=need)
    latest: dict[str, Commitment] = {}
    for user, state, min_others in commits:
        room.commit(user, number, state, min_others)
        if state == "in":
            latest[user] = Commitment(user, min_others)
        else:
            latest.pop(user, None)
    enough = goes(latest.values(), need)
    deadline = room.items[number]["closes"]
    go = room.close_entry(number, "go", ts=deadline - 1)
    off = room.close_entry(number, "called_off", ts=deadline)
    if enough:
        room.refuse(off)
        room.take(go)
    else:
        room.refuse(go)
        room.take(off)
    assert room.book.items()[number].voters == len(latest)


# --- with verify ---------------------------------------------------------------------------------


def busy_room() -> Room:
    room = Room()
    room.add(KUDOS, ALICE, to=BOB, amount=2, via="command", ref=None, text_sha256=None)
    proposal = room.propose("majority")
    poll = room.poll("ranked")
    room.vote(ALICE, proposal, "agree")
    room.vote(BOB, proposal, "disagree")
    room.vote(CAROL, proposal, "agree")
    room.vote(ALICE, poll, [3, 1])
    room.vote(BOB, poll, [1])
    room.tallied_close(proposal)
    room.tallied_close(poll)
    pass_rule(room, "kudos.daily_allowance", 5)
    call = room.call(need=2)
    room.commit(ALICE, call)
    room.commit(BOB, call, "in", 1)
    room.close(call, "go")
    room.add(ATTEND, ALICE, ts=room.items[call]["at"], item=call, user=BOB, kudos=1)
    return room


def test_verify_recomputes_every_outcome_with_both_replayers() -> None:
    room = busy_room()
    result = verify(room.lines(), replayers=[ScoreBook(), ItemBook()])
    assert result.ok, result.problem
    assert result.entries == len(room.entries)


def test_verify_names_the_entry_whose_recorded_outcome_is_wrong() -> None:
    room = busy_room()
    number = room.poll("score", options=2)
    room.vote(ALICE, number, [1, 4])
    data = room.expected(number)
    forged = room.close_entry(number, data["outcome"], [1], data["tally"])
    room.entries.append(forged)  # a well-formed, well-chained entry that only a replay refutes
    lines = room.lines()
    assert verify(lines).ok
    result = verify(lines, replayers=[ScoreBook(), ItemBook()])
    assert not result.ok
    assert result.problem == (
        f"entry {forged.seq}: #{number} is recorded with winners [1], but its votes give [2]"
    )
    assert result.entries == forged.seq - 1
