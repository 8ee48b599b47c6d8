"""Proposals, polls and action calls replayed from a room's ledger. Pure: entries in, phrases out.

`ItemBook` is a `verify.Replayer`: it takes a room's entries in order from genesis and names the
first one that contradicts the items' lifecycle or a recorded outcome. Its rules:

- item.open numbers run 1, 2, 3 … per room; a proposal has a proposal method, a poll a poll method
  and options, an action call its need, time and a deadline no later than the action; only a
  proposal proposes a rule change, to a valid value, on at least the governance terms in force
  (method, quorum, duration: the least `RoomRules.rule_proposal_terms` allows).
- A vote is for an open proposal or poll, before its closing time, with a choice that fits it
  (`[]` withdraws the voter's ballot); the latest ballot of each voter counts.
- item.close of a proposal or poll must carry exactly what `tally` recomputes from those ballots
  (outcome, winners, tally), with `proposal.supermajority` as in force at the close; or be
  "withdrawn", with no winners and an empty tally, while the item is open. An item closes once.
- An action call follows `actions.TRANSITIONS`: commitments while it is open (before its deadline)
  or gone ahead (before the action's time, and before anyone attended); "go" only when the going
  set reaches the need, before the deadline; "called_off" only when it doesn't, at or after the
  deadline; "withdrawn" while open or gone ahead; attendance only for a call that went ahead.
  What an action call's close stores as winners and tally is not checked: no outcome depends on it.
- A rule.change cites a passed proposal that proposed that very key and value, once.

`apply` returns a bare phrase (verify prefixes "entry N: ") and leaves the book as it was, or None
once the entry is taken in. Block reasons are free text, kept outside `data`, so the outcomes
recomputed here read "(no reason given)" where the bot's reply quoted a reason; the ledger's
outcome, winners and tally never depend on it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from consensus.actions import Commitment, going_set
from consensus.durations import format_duration
from consensus.ledger import (
    ATTEND,
    COMMIT,
    GENESIS,
    ITEM_CLOSE,
    ITEM_OPEN,
    POLL_METHODS,
    PROPOSAL_ANSWERS,
    PROPOSAL_METHODS,
    RULE_CHANGE,
    RULE_KINDS,
    VOTE,
)
from consensus.rules import RULES, RoomRules, RuleError, at_least_as_strict, parse_rule
from consensus.tally import MAX_SCORE, Ballot, Outcome, tally_poll, tally_proposal

if TYPE_CHECKING:
    from consensus.verify import Replayed

PROPOSAL, POLL, ACTION = "proposal", "poll", "action"
OPEN, CLOSED, WITHDRAWN = "open", "closed", "withdrawn"

_NOUN = {PROPOSAL: "proposal", POLL: "poll", ACTION: "action call"}
_A_NOUN = {PROPOSAL: "a proposal", POLL: "a poll", ACTION: "an action call"}
_OUTCOMES = {
    PROPOSAL: frozenset({"passed", "failed", WITHDRAWN}),
    POLL: frozenset({"decided", "failed", WITHDRAWN}),
    ACTION: frozenset({"go", "called_off", WITHDRAWN}),
}
_METHODS = {PROPOSAL: frozenset(PROPOSAL_METHODS), POLL: frozenset(POLL_METHODS)}
_DEFAULT_METHOD = {PROPOSAL: "consent", POLL: "single"}  # as commands.decisions reads a null
_ENDED = {"called_off": "called off", WITHDRAWN: "withdrawn"}

Choice = str | tuple[int, ...]


@dataclass(frozen=True)
class ItemSummary:
    """An item as the ledger leaves it, for reports and listings.

    `status` is open, closed or withdrawn; `outcome` the latest item.close outcome (None while
    open). `voters` counts the ballots that count (proposals, polls) or the people committed
    (action calls). `closes` is the closing time or, for an action call, the deadline (UTC ms).
    """

    item: int
    type: str
    method: str | None
    author: str
    status: str
    outcome: str | None
    voters: int
    closes: int | None
    opened_ts: int
    closed_ts: int | None
    need: int | None = None  # action calls only, as are the three below
    at: int | None = None
    going: int = 0  # the size of the going set now
    attended: int = 0  # people whose attendance was recorded (self-reports included)


@dataclass(slots=True)
class _Item:
    number: int
    type: str
    method: str | None
    author: str
    options: int
    quorum: int | None
    closes: int | None
    at: int | None
    need: int | None
    rule_key: str | None
    rule_value: Any
    opened_by: int  # seq of the item.open
    opened_ts: int
    ballots: dict[str, Choice] = field(default_factory=dict)
    commitments: dict[str, Commitment] = field(default_factory=dict)
    attended: set[str] = field(default_factory=set)
    outcome: str | None = None
    closed_by: int | None = None  # seq of the latest item.close
    closed_ts: int | None = None
    applied_by: int | None = None  # seq of the rule.change that carried out a passed proposal

    @property
    def noun(self) -> str:
        return _NOUN[self.type]

    @property
    def counted_method(self) -> str:
        return self.method or _DEFAULT_METHOD[self.type]


def _shown(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def _phrase(exc: Exception) -> str:
    text = str(exc).rstrip(".")
    return text[:1].lower() + text[1:]


def _tally_problem(number: int, recorded: Mapping[str, Any], expected: Mapping[str, Any]) -> str:
    for key in sorted(expected.keys() | recorded.keys()):
        if key not in recorded:
            return f"#{number}'s tally lacks {key} (its votes give {_shown(expected[key])})"
        if key not in expected:
            return f"#{number}'s tally has {key}, which its votes don't give"
        mine, theirs = expected[key], recorded[key]
        # `type` too: True == 1 in Python, but not in the ledger.
        if type(mine) is not type(theirs) or mine != theirs:
            return (
                f"#{number}'s tally has {key} = {_shown(theirs)}, "
                f"but its votes give {_shown(mine)}"
            )
    raise AssertionError("no difference between the tallies")  # pragma: no cover


class ItemBook:
    """A replay of one room's proposals, polls and action calls (a Replayer); see the module."""

    def __init__(self) -> None:
        self._rules = RoomRules.defaults()
        self._items: dict[int, _Item] = {}
        self._outcomes: dict[int, Outcome] = {}
        self._handlers: Mapping[str, Callable[[Replayed], str | None]] = {
            GENESIS: self._genesis,
            ITEM_OPEN: self._open,
            VOTE: self._vote,
            COMMIT: self._commit,
            ATTEND: self._attend,
            ITEM_CLOSE: self._close,
            **dict.fromkeys(RULE_KINDS, self._rule),
        }

    # -- queries --

    def items(self) -> Mapping[int, ItemSummary]:
        """Every item opened so far, by number."""
        return MappingProxyType({n: self._summary(item) for n, item in self._items.items()})

    def outcomes(self) -> Mapping[int, Outcome]:
        """The recomputed outcome of each proposal and poll closed by its votes (not withdrawn)."""
        return MappingProxyType(dict(self._outcomes))

    def _summary(self, item: _Item) -> ItemSummary:
        status = (
            OPEN if item.outcome is None else WITHDRAWN if item.outcome == WITHDRAWN else CLOSED
        )
        action = item.type == ACTION
        return ItemSummary(
            item=item.number,
            type=item.type,
            method=item.method,
            author=item.author,
            status=status,
            outcome=item.outcome,
            voters=len(item.commitments) if action else len(item.ballots),
            closes=item.closes,
            opened_ts=item.opened_ts,
            closed_ts=item.closed_ts,
            need=item.need,
            at=item.at,
            going=len(going_set(item.commitments.values())) if action else 0,
            attended=len(item.attended),
        )

    # -- replay --

    def apply(self, entry: Replayed) -> str | None:
        handler = self._handlers.get(entry.kind)
        return handler(entry) if handler else None

    def _genesis(self, entry: Replayed) -> str | None:
        try:
            self._rules = RoomRules(entry.data["rules"])
        except RuleError as exc:
            return f"its starting rules are not valid room rules ({_phrase(exc)})"
        return None

    def _find(self, entry: Replayed, what: str, *types: str) -> _Item | str:
        """The item an entry refers to, or the phrase saying why it can't refer to it."""
        number = entry.data["item"]
        item = self._items.get(number)
        if item is None:
            return f"{what} #{number}, which was never opened"
        if item.type not in types:
            return f"{what} #{number}, which is {_A_NOUN[item.type]}"
        return item

    # item.open

    def _open(self, entry: Replayed) -> str | None:
        data = entry.data
        number, kind = data["item"], data["type"]
        expected = len(self._items) + 1
        if number in self._items:
            return f"it opens #{number} again (entry {self._items[number].opened_by} opened it)"
        if number != expected:
            return f"it opens #{number}, but #{expected} comes next"
        problem = self._open_problem(entry, kind)
        if problem:
            return problem
        self._items[number] = _Item(
            number=number,
            type=kind,
            method=data["method"],
            author=entry.actor,
            options=data["options"],
            quorum=data["quorum"],
            closes=data["closes"],
            at=data["at"],
            need=data["need"],
            rule_key=data["rule_key"],
            rule_value=data["rule_value"],
            opened_by=entry.seq,
            opened_ts=entry.ts,
        )
        return None

    def _open_problem(self, entry: Replayed, kind: str) -> str | None:
        data = entry.data
        name = f"{_NOUN[kind]} #{data['item']}"
        method = data["method"]
        if kind == ACTION:
            if data["need"] is None or data["at"] is None or data["closes"] is None:
                return f"{name} lacks its need, its time or its deadline"
            if data["closes"] > data["at"]:
                return f"{name} has its deadline after the action"
        elif method is not None and method not in _METHODS[kind]:
            return f"{name} is decided by {method}, which is not a {kind} method"
        elif kind == POLL and data["options"] < 1:
            return f"{name} has no options"
        if data["rule_key"] is None:
            if data["rule_value"] is not None:
                return f"{name} has a rule value but no rule key"
            return None
        if kind != PROPOSAL:
            return f"{name} proposes a rule change, which only a proposal can"
        return self._rule_proposal_problem(entry, name)

    def _rule_proposal_problem(self, entry: Replayed, name: str) -> str | None:
        data = entry.data
        key, value = data["rule_key"], data["rule_value"]
        if key not in RULES:
            return f"{name} proposes a change of {key!r}, which is not a room rule"
        try:
            valid = parse_rule(key, value) == value  # the ledger holds canonical values only
        except RuleError:
            valid = False
        if not valid:
            return f"{name} proposes {key} = {_shown(value)}, which is not a valid value"
        # The least the governance rules allow; flags may only make the terms harder.
        terms = self._rules.rule_proposal_terms(key, value)
        method = data["method"] or _DEFAULT_METHOD[PROPOSAL]
        if not at_least_as_strict(method, terms.method):
            return (
                f"{name} is decided by {method}, weaker than {terms.method}"
                " (governance.rule_change_method)"
            )
        quorum = data["quorum"] or 0
        if quorum < terms.quorum:
            return (
                f"{name} has quorum {quorum}, below {terms.quorum} (governance.rule_change_quorum)"
            )
        if data["closes"] is None or data["closes"] - entry.ts < terms.duration_ms:
            return (
                f"{name} closes sooner than governance.rule_change_duration"
                f" ({format_duration(terms.duration_ms)}) allows"
            )
        return None

    # votes

    def _vote(self, entry: Replayed) -> str | None:
        item = self._find(entry, "vote on", PROPOSAL, POLL)
        if isinstance(item, str):
            return item
        number = item.number
        if item.outcome == WITHDRAWN:
            return f"vote on #{number} after it was withdrawn"
        if item.outcome is not None or (item.closes is not None and entry.ts >= item.closes):
            return f"vote after #{number} closed"
        choice = entry.data["choice"]
        if choice == []:
            item.ballots.pop(entry.actor, None)
            return None
        fits = self._choice_fits(item, choice)
        if fits is not None:
            return f"vote on #{number} with {_shown(choice)}, which is not {fits}"
        item.ballots[entry.actor] = choice if isinstance(choice, str) else tuple(choice)
        return None

    @staticmethod
    def _choice_fits(item: _Item, choice: object) -> str | None:
        """None if `choice` (not a withdrawal) fits the item, else what would."""
        if item.type == PROPOSAL:
            if isinstance(choice, str) and choice in PROPOSAL_ANSWERS:
                return None
            return "an answer (" + ", ".join(PROPOSAL_ANSWERS) + ")"
        method, n = item.counted_method, item.options
        numbers = choice if isinstance(choice, list) else []
        if method == "score":
            if len(numbers) == n and all(0 <= s <= MAX_SCORE for s in numbers):
                return None
            return f"{n} scores from 0 to {MAX_SCORE}"
        fits = (
            isinstance(choice, list)
            and all(1 <= o <= n for o in numbers)
            and len(set(numbers)) == len(numbers)
            and (method != "single" or len(numbers) == 1)
        )
        if fits:
            return None
        if method == "single":
            return f"one option from 1 to {n}"
        return f"{'a ranking of ' * (method == 'ranked')}different options from 1 to {n}"

    # action calls

    def _commit(self, entry: Replayed) -> str | None:
        item = self._find(entry, "commitment to", ACTION)
        if isinstance(item, str):
            return item
        problem = self._commit_problem(item, entry.ts)
        if problem:
            return f"commitment to #{item.number} {problem}"
        data = entry.data
        if data["state"] == "in":
            item.commitments[entry.actor] = Commitment(entry.actor, data["min_others"])
        else:
            item.commitments.pop(entry.actor, None)
        return None

    @staticmethod
    def _commit_problem(item: _Item, ts: int) -> str | None:
        if item.outcome in _ENDED:
            return f"after it was {_ENDED[item.outcome]}"
        if item.outcome is None and item.closes is not None and ts >= item.closes:
            return "after its deadline"
        if item.outcome == "go" and (item.attended or (item.at is not None and ts >= item.at)):
            return "after the action took place"
        return None

    def _attend(self, entry: Replayed) -> str | None:
        item = self._find(entry, "attendance at", ACTION)
        if isinstance(item, str):
            return item
        if item.outcome != "go":
            return f"attendance at #{item.number}, which did not go ahead"
        item.attended.add(entry.data["user"])
        return None

    # item.close

    def _close(self, entry: Replayed) -> str | None:
        item = self._find(entry, "it closes", PROPOSAL, POLL, ACTION)
        if isinstance(item, str):
            return item
        data = entry.data
        number, outcome = item.number, data["outcome"]
        if outcome not in _OUTCOMES[item.type]:
            return f"it closes {item.noun} #{number} as {outcome}, which is not how one ends"
        # After "go" the caller may still withdraw the call (actions.TRANSITIONS); nothing else
        # closes an item twice.
        reopens = item.outcome == "go" and outcome == WITHDRAWN
        if item.outcome is not None and not reopens:
            return f"it closes #{number}, which entry {item.closed_by} already closed"
        recount: Outcome | None = None
        if outcome == WITHDRAWN:
            if data["winners"] or data["tally"]:
                return f"withdrawn #{number} must have no winners and an empty tally"
        elif item.type == ACTION:
            problem = self._call_end_problem(item, outcome, entry.ts)
            if problem:
                return problem
        else:
            recount = self._recount(item)
            problem = self._outcome_problem(number, data, recount)
            if problem:
                return problem
            self._outcomes[number] = recount
        item.outcome = outcome
        item.closed_by = entry.seq
        item.closed_ts = entry.ts
        return None

    def _recount(self, item: _Item) -> Outcome:
        ballots = [Ballot(voter, choice) for voter, choice in item.ballots.items()]
        if item.type == PROPOSAL:
            return tally_proposal(
                item.counted_method,
                ballots,
                quorum=item.quorum or 0,
                supermajority=self._rules.supermajority,
            )
        options = [str(number) for number in range(1, item.options + 1)]
        return tally_poll(item.counted_method, options, ballots, quorum=item.quorum)

    @staticmethod
    def _outcome_problem(number: int, data: Mapping[str, Any], recount: Outcome) -> str | None:
        if data["outcome"] != recount.label:
            return (
                f"#{number} is recorded as {data['outcome']}, but its votes give {recount.label}"
            )
        winners = list(recount.winners)
        if data["winners"] != winners:
            return (
                f"#{number} is recorded with winners {_shown(data['winners'])},"
                f" but its votes give {_shown(winners)}"
            )
        if data["tally"] != recount.tally or any(
            type(value) is not type(data["tally"][key]) for key, value in recount.tally.items()
        ):
            return _tally_problem(number, data["tally"], recount.tally)
        return None

    @staticmethod
    def _call_end_problem(item: _Item, outcome: str, ts: int) -> str | None:
        need = item.need or 0
        going = len(going_set(item.commitments.values()))
        deadline = item.closes or 0
        number = item.number
        if outcome == "go":
            if going < need:
                return f"#{number} went ahead with {going} of the {need} needed"
            if ts >= deadline:
                return f"#{number} went ahead after its deadline"
        else:
            if going >= need:
                return f"#{number} was called off with {going} of the {need} needed in"
            if ts < deadline:
                return f"#{number} was called off before its deadline"
        return None

    # rules

    def _rule(self, entry: Replayed) -> str | None:
        key, value = entry.data["key"], entry.data["value"]
        proposal: _Item | None = None
        if entry.kind == RULE_CHANGE:
            found = self._find(entry, "it cites", PROPOSAL)
            if isinstance(found, str):
                return found
            proposal = found
            problem = self._citation_problem(proposal, key, value)
            if problem:
                return problem
        if key not in RULES:
            return f"it sets {key!r}, which is not a room rule"
        try:
            # Canonical values only, as the rules hash of later entries is taken over them.
            rules = RoomRules({**self._rules.values, key: value})
        except RuleError:
            return f"it sets {key} to {_shown(value)}, which is not a valid value of that rule"
        self._rules = rules
        if proposal is not None:
            proposal.applied_by = entry.seq
        return None

    @staticmethod
    def _citation_problem(proposal: _Item, key: str, value: object) -> str | None:
        number = proposal.number
        if proposal.rule_key is None:
            return f"it cites proposal #{number}, which proposes no rule change"
        if proposal.outcome != "passed":
            return f"it cites proposal #{number}, which has not passed"
        if (key, value) != (proposal.rule_key, proposal.rule_value):
            return (
                f"it sets {key} = {_shown(value)}, but proposal #{number} proposed"
                f" {proposal.rule_key} = {_shown(proposal.rule_value)}"
            )
        if proposal.applied_by is not None:
            return f"proposal #{number} was already carried out by entry {proposal.applied_by}"
        return None
