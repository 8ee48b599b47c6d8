"""Decision methods: tables for every method and edge, parsing of vote text, and properties."""

from __future__ import annotations

import random
from collections.abc import Sequence
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consensus.canonical import canonical_json
from consensus.ledger import ITEM_CLOSE, POLL_METHODS, entry_problem
from consensus.rules import METHODS, at_least_as_strict
from consensus.tally import (
    ANSWERS,
    MAX_SCORE,
    Ballot,
    ChoiceError,
    Outcome,
    parse_choice,
    tally_poll,
    tally_proposal,
)

TWO_THIRDS = Fraction(2, 3)
FOOD = ("Pizza", "Sushi", "Tacos")


def voter(i: int) -> str:
    return f"@u{i}:example.org"


def answers(*choices: str) -> list[Ballot]:
    """Ballots answering in order, one voter each."""
    return [Ballot(voter(i), choice) for i, choice in enumerate(choices)]


def picks(*choices: tuple[int, ...]) -> list[Ballot]:
    return [Ballot(voter(i), choice) for i, choice in enumerate(choices)]


def ranked(*rankings: tuple[int, ...]) -> Outcome:
    """A ranked poll over options A, B, C, … up to the highest one ranked."""
    n = max((max(r) for r in rankings if r), default=1)
    return tally_poll("ranked", "ABCDE"[:n], picks(*rankings), quorum=None)


def proposal(method: str, ballots: Sequence[Ballot], quorum: int = 3) -> Outcome:
    return tally_proposal(method, ballots, quorum=quorum, supermajority=TWO_THIRDS)


def ledger_problem(outcome: Outcome) -> str | None:
    """What the ledger would say about an item.close entry carrying this outcome."""
    entry = {
        "room": "!room:example.org",
        "seq": 2,
        "ts": 0,
        "actor": "@commons:example.org",
        "kind": ITEM_CLOSE,
        "data": {"item": 1, **outcome.as_ledger()},
        "event": None,
        "rules": "0" * 64,
        "prev": "0" * 64,
    }
    canonical_json(entry)
    return entry_problem(entry)


# --- proposals ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "choices", "passed", "reason"),
    [
        # quorum: all ballots count, abstentions too; exactly the quorum is enough
        ("majority", ("agree", "agree"), False, "failed: quorum 3 not met (2 voted)"),
        ("consent", (), False, "failed: quorum 3 not met (0 voted)"),
        ("consent", ("agree", "abstain", "abstain"), True,
         "passed: 1 agree and no block, quorum 3 met"),
        # majority: more agree than disagree; a block is a disagree, not a veto
        ("majority", ("agree", "agree", "disagree"), True,
         "passed: 2 agree > 1 disagree, quorum 3 met"),
        ("majority", ("agree", "agree", "disagree", "disagree"), False,
         "failed: 2 agree ≤ 2 disagree, quorum 3 met"),
        ("majority", ("agree", "agree", "disagree", "block"), False,
         "failed: 2 agree ≤ 2 disagree (incl. 1 block), quorum 3 met"),
        ("majority", ("agree", "agree", "agree", "block", "block"), True,
         "passed: 3 agree > 2 disagree (incl. 2 blocks), quorum 3 met"),
        ("majority", ("abstain", "abstain", "abstain"), False,
         "failed: 0 agree ≤ 0 disagree, quorum 3 met"),
        # supermajority: agree / (agree + disagree) ≥ 2/3, abstentions outside the ratio
        ("supermajority", ("agree",) * 7 + ("disagree",) * 2, True,
         "passed: 7 of 9 agree ≥ 2/3, quorum 3 met"),
        ("supermajority", ("agree", "agree", "disagree", "abstain"), True,
         "passed: 2 of 3 agree ≥ 2/3, quorum 3 met"),
        ("supermajority", ("agree", "agree", "block"), True,
         "passed: 2 of 3 agree ≥ 2/3, quorum 3 met"),
        ("supermajority", ("agree",) * 3 + ("disagree",) * 2, False,
         "failed: 3 of 5 agree < 2/3, quorum 3 met"),
        ("supermajority", ("abstain", "abstain", "abstain"), False,
         "failed: nobody agreed or disagreed (3 abstain), quorum 3 met"),
        # consent: one agree and no block; disagreement alone does not stop it
        ("consent", ("agree", "disagree", "disagree", "disagree"), True,
         "passed: 1 agree and no block, quorum 3 met"),
        ("consent", ("abstain", "disagree", "abstain"), False,
         "failed: 0 of 3 voters agree, quorum 3 met"),
        # consensus: the supermajority test and no block
        ("consensus", ("agree", "agree", "agree", "abstain"), True,
         "passed: 3 of 3 agree ≥ 2/3 and no block, quorum 3 met"),
        ("consensus", ("agree", "agree", "disagree", "disagree"), False,
         "failed: 2 of 4 agree < 2/3, quorum 3 met"),
        ("consensus", ("abstain",) * 4, False,
         "failed: nobody agreed or disagreed (4 abstain), quorum 3 met"),
    ],
)  # fmt: skip
def test_proposal_table(method: str, choices: tuple[str, ...], passed: bool, reason: str) -> None:
    outcome = proposal(method, answers(*choices))
    assert (outcome.passed, outcome.reason, outcome.winners) == (passed, reason, ())
    assert outcome.label == ("passed" if passed else "failed")


@pytest.mark.parametrize("method", ["consent", "consensus"])
def test_blocks_name_every_blocker_and_their_reason(method: str) -> None:
    ballots = [
        Ballot(voter(1), "agree"),
        Ballot("@bob:example.org", "block", "too\n  bright"),
        Ballot(voter(2), "agree"),
        Ballot("@eve:example.org", "block"),
        Ballot("@max:example.org", "block", "   "),
    ]
    outcome = proposal(method, ballots)
    assert outcome.passed is False
    assert outcome.reason == (
        "failed: blocked by @bob:example.org — “too bright”, @eve:example.org (no reason given)"
        " and @max:example.org (no reason given)"
    )
    assert outcome.tally["block"] == 3


def test_quorum_failure_comes_before_a_block() -> None:
    outcome = proposal("consent", [Ballot(voter(1), "block", "no")])
    assert outcome.reason == "failed: quorum 3 not met (1 voted)"


def test_unanimity_threshold_and_zero_quorum() -> None:
    unanimous = tally_proposal(
        "supermajority", answers("agree", "agree"), quorum=0, supermajority=Fraction(1)
    )
    assert unanimous.reason == "passed: 2 of 2 agree ≥ 1/1, quorum 0 met"
    one_no = tally_proposal(
        "supermajority", answers("agree", "disagree"), quorum=2, supermajority=Fraction(1)
    )
    assert one_no.reason == "failed: 1 of 2 agree < 1/1, quorum 2 met"


def test_proposal_tally_and_ledger_fields() -> None:
    outcome = proposal("consensus", answers("agree", "agree", "abstain", "disagree", "block"))
    assert outcome.tally == {
        "method": "consensus",
        "voters": 5,
        "quorum": 3,
        "agree": 2,
        "abstain": 1,
        "disagree": 1,
        "block": 1,
        "threshold": "2/3",
    }
    assert outcome.as_ledger() == {"outcome": "failed", "winners": [], "tally": outcome.tally}
    assert ledger_problem(outcome) is None
    # Only the ratio methods carry a threshold.
    assert "threshold" not in proposal("majority", answers("agree")).tally
    # A frozen value: hashable despite its dict.
    assert isinstance(hash(outcome), int)


@pytest.mark.parametrize(
    ("method", "ballots", "quorum", "supermajority", "message"),
    [
        ("unanimity", [], 1, TWO_THIRDS, "unknown proposal method"),
        ("single", [], 1, TWO_THIRDS, "unknown proposal method"),
        ("majority", [], 1, Fraction(0), "supermajority must be"),
        ("majority", [], 1, Fraction(3, 2), "supermajority must be"),
        ("majority", [], -1, TWO_THIRDS, "quorum must not be negative"),
        ("majority", [Ballot("@a:x", "agree"), Ballot("@a:x", "block")], 1, TWO_THIRDS,
         "one ballot per voter"),
        ("majority", [Ballot("@a:x", "yes")], 1, TWO_THIRDS, "not a proposal answer"),
        ("majority", [Ballot("@a:x", (1,))], 1, TWO_THIRDS, "not a proposal answer"),
    ],
)  # fmt: skip
def test_proposal_refuses_bad_input(
    method: str, ballots: list[Ballot], quorum: int, supermajority: Fraction, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        tally_proposal(method, ballots, quorum=quorum, supermajority=supermajority)


# --- polls: single, approval, score -----------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "choices", "quorum", "winners", "reason"),
    [
        ("single", [(1,), (2,), (1,), (3,), (1,), (2,), (1,)], None, (1,),
         "decided: Pizza (4 of 7 votes)"),
        ("single", [(1,), (2,), (2,), (1,)], 2, (1, 2),
         "decided: tie between Pizza and Sushi (2 of 4 votes each), quorum 2 met"),
        ("single", [(1,), (2,)], 3, (), "failed: quorum 3 not met (2 voted)"),
        ("single", [], None, (), "failed: nobody voted"),
        ("single", [], 0, (), "failed: nobody voted"),
        ("approval", [(1, 2), (2,), (2, 3)], None, (2,),
         "decided: Sushi (approved by 3 of 3 voters)"),
        ("approval", [(1, 2, 3), (1, 2, 3)], 2, (1, 2, 3),
         "decided: tie between Pizza, Sushi and Tacos (approved by 2 of 2 voters each),"
         " quorum 2 met"),
        ("approval", [(), ()], None, (), "failed: no option got any votes (2 voted)"),
        ("score", [(5, 3, 0), (2, 5, 1)], None, (2,), "decided: Sushi (total 8 from 2 voters)"),
        ("score", [(5, 3, 0), (3, 5, 0)], None, (1, 2),
         "decided: tie between Pizza and Sushi (total 8 each from 2 voters)"),
        ("score", [(0, 0, 0)], None, (), "failed: every option scored 0 (1 voted)"),
        ("score", [(5, 5, 5)], 1, (1, 2, 3),
         "decided: tie between Pizza, Sushi and Tacos (total 5 each from 1 voters), quorum 1 met"),
    ],
)  # fmt: skip
def test_poll_table(
    method: str,
    choices: list[tuple[int, ...]],
    quorum: int | None,
    winners: tuple[int, ...],
    reason: str,
) -> None:
    ballots = [
        Ballot(voter(i), (), scores=c) if method == "score" else Ballot(voter(i), c)
        for i, c in enumerate(choices)
    ]
    outcome = tally_poll(method, FOOD, ballots, quorum=quorum)
    assert (outcome.winners, outcome.reason) == (winners, reason)
    assert outcome.passed is (None if winners else False)
    assert outcome.label == ("decided" if winners else "failed")
    assert ledger_problem(outcome) is None


def test_poll_tallies() -> None:
    single = tally_poll("single", FOOD, picks((1,), (3,), (1,)), quorum=2)
    assert single.tally == {
        "method": "single", "voters": 3, "quorum": 2, "option.1": 2, "option.2": 0, "option.3": 1
    }  # fmt: skip
    approval = tally_poll("approval", FOOD, picks((1, 3), (3,)), quorum=None)
    assert approval.tally == {
        "method": "approval", "voters": 2, "option.1": 1, "option.2": 0, "option.3": 2
    }  # fmt: skip
    assert approval.as_ledger() == {
        "outcome": "decided", "winners": [3], "tally": approval.tally
    }  # fmt: skip


def test_score_reads_choice_when_scores_are_absent() -> None:
    # The ledger stores scores as the vote's choice, so a replayed ballot has them there.
    outcome = tally_poll(
        "score", FOOD, [Ballot(voter(1), (1, 4, 2)), Ballot(voter(2), (0, 0, 5))], quorum=None
    )
    assert outcome.winners == (3,)
    assert outcome.tally["option.2"] == 4


def test_option_text_is_shown_on_one_line() -> None:
    outcome = tally_poll("single", ["Thai\n  food", "x"], picks((1,)), quorum=None)
    assert outcome.reason == "decided: Thai food (1 of 1 votes)"


# --- polls: ranked (instant runoff) -----------------------------------------------------------


def test_ranked_majority_in_round_one() -> None:
    outcome = ranked((1, 2), (1,), (2, 1))
    assert outcome.winners == (1,)
    assert outcome.reason == "decided: A (2 of 3 continuing ballots in round 1)"
    assert outcome.tally == {
        "method": "ranked", "voters": 3, "option.1": 2, "option.2": 1,
        "rounds": 1, "round.1": "1:2 2:1 exhausted:0",
    }  # fmt: skip


def test_ranked_transfers_over_rounds_and_drops_exhausted_ballots() -> None:
    # No majority of 5 continuing ballots in round 1; C goes and its ballot moves to B.
    outcome = ranked((1,), (1,), (2,), (2,), (3, 2), ())
    assert outcome.winners == (2,)
    # The last ballot ranks nothing: it counts as a voter and is exhausted from the start.
    assert outcome.tally["round.1"] == "1:2 2:2 3:1 exhausted:1 eliminated:3"
    assert outcome.tally["round.2"] == "1:2 2:3 exhausted:1"
    assert outcome.reason == "decided: B (3 of 5 continuing ballots in round 2)"


def test_ranked_majority_of_continuing_ballots_not_of_voters() -> None:
    # B and C tie with 2 each in every round: C, the later option, goes; its ballots exhaust.
    outcome = ranked((1,), (1,), (1,), (2,), (2,), (3,), (3,))
    assert outcome.winners == (1,)
    assert outcome.tally["round.1"] == "1:3 2:2 3:2 exhausted:0 eliminated:3"
    assert outcome.reason == "decided: A (3 of 5 continuing ballots in round 2)"


def test_ranked_tie_when_every_continuing_option_is_equal() -> None:
    outcome = ranked((1,), (1,), (2,), (2,), (3,))
    assert outcome.winners == (1, 2)
    assert outcome.tally["round.2"] == "1:2 2:2 exhausted:1"
    assert (
        outcome.reason
        == "decided: tie between A and B (2 of 4 continuing ballots each in round 2)"
    )


def test_ranked_elimination_tie_goes_by_first_preferences_before_number() -> None:
    # Round 1: A 5, B 3, C 4, D 1. D's ballot moves to B: B and C tie at 4 in round 2. B had
    # fewer first preferences, so B goes although C has the higher number; B's ballots go to C.
    rankings = [(1,)] * 5 + [(2, 3)] * 3 + [(3, 2)] * 4 + [(4, 2, 3)]
    outcome = ranked(*rankings)
    assert outcome.tally["round.1"] == "1:5 2:3 3:4 4:1 exhausted:0 eliminated:4"
    assert outcome.tally["round.2"] == "1:5 2:4 3:4 exhausted:0 eliminated:2"
    assert outcome.tally["round.3"] == "1:5 3:8 exhausted:0"
    assert outcome.winners == (3,)
    assert outcome.reason == "decided: C (8 of 13 continuing ballots in round 3)"


def test_ranked_elimination_tie_then_goes_by_higher_number() -> None:
    outcome = ranked((1,), (1,), (1,), (2,), (2,), (3, 2), (3, 2))
    assert outcome.tally["round.1"] == "1:3 2:2 3:2 exhausted:0 eliminated:3"
    assert outcome.winners == (2,)
    assert outcome.reason == "decided: B (4 of 7 continuing ballots in round 2)"


def test_ranked_options_without_votes_go_together() -> None:
    outcome = tally_poll("ranked", "ABCDE", picks((1,), (1,), (2,), (2,), (3, 1)), quorum=None)
    assert outcome.tally["round.1"] == "1:2 2:2 3:1 4:0 5:0 exhausted:0 eliminated:4,5"
    assert outcome.tally["round.2"] == "1:2 2:2 3:1 exhausted:0 eliminated:3"
    assert outcome.tally["round.3"] == "1:3 2:2 exhausted:0"
    assert outcome.tally["rounds"] == 3
    assert outcome.winners == (1,)


def test_ranked_single_option_and_empty_rankings() -> None:
    lone = tally_poll("ranked", ["Only"], picks((1,), ()), quorum=None)
    assert lone.reason == "decided: Only (1 of 1 continuing ballots in round 1)"
    nothing = tally_poll("ranked", FOOD, picks((), ()), quorum=None)
    assert nothing.winners == ()
    assert nothing.reason == "failed: no ballot ranks any option (2 voted)"
    assert nothing.tally["round.1"] == "1:0 2:0 3:0 exhausted:2"
    assert ledger_problem(nothing) is None


def test_ranked_quorum_not_met_still_shows_first_preferences() -> None:
    outcome = tally_poll("ranked", FOOD, picks((2, 1)), quorum=2)
    assert outcome.reason == "failed: quorum 2 not met (1 voted)"
    assert outcome.tally == {
        "method": "ranked", "voters": 1, "quorum": 2, "option.1": 0, "option.2": 1, "option.3": 0
    }  # fmt: skip


@pytest.mark.parametrize(
    ("method", "options", "ballots", "quorum", "message"),
    [
        ("plurality", FOOD, [], None, "unknown poll method"),
        ("majority", FOOD, [], None, "unknown poll method"),
        ("single", (), [], None, "at least one option"),
        ("single", FOOD, [], -2, "quorum must not be negative"),
        ("single", FOOD, picks((1,), (2,)) + picks((3,)), None, "one ballot per voter"),
        ("single", FOOD, picks((1, 2)), None, "not a valid single choice"),
        ("single", FOOD, picks(()), None, "not a valid single choice"),
        ("single", FOOD, [Ballot("@a:x", "agree")], None, "not a valid single choice"),
        ("approval", FOOD, picks((1, 1)), None, "not a valid approval choice"),
        ("approval", FOOD, picks((0,)), None, "not a valid approval choice"),
        ("ranked", FOOD, picks((4, 1)), None, "not a valid ranked choice"),
        ("ranked", FOOD, [Ballot("@a:x", (True,))], None, "not a valid ranked choice"),
        ("score", FOOD, [Ballot("@a:x", (), scores=(5, 5))], None, "not 3 scores from 0 to 5"),
        ("score", FOOD, [Ballot("@a:x", (), scores=(6, 0, 0))], None, "not 3 scores"),
        ("score", FOOD, [Ballot("@a:x", (), scores=(-1, 0, 0))], None, "not 3 scores"),
        ("score", FOOD, [Ballot("@a:x", "agree")], None, "not 3 scores"),
    ],
)  # fmt: skip
def test_poll_refuses_bad_input(
    method: str, options: Sequence[str], ballots: list[Ballot], quorum: int | None, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        tally_poll(method, options, ballots, quorum=quorum)


# --- parsing the text of a vote -------------------------------------------------------------

MENU = ("Pizza", "Sushi", "Tacos", "Pie", "Thai food", "Fish, chips")


@pytest.mark.parametrize(
    ("method", "text", "choice"),
    [
        ("consent", "agree", "agree"),
        ("majority", "  YES ", "agree"),
        ("consensus", "+1", "agree"),
        ("supermajority", "Abstain", "abstain"),
        ("consent", "disagree", "disagree"),
        ("consent", "no", "disagree"),
        ("consent", "-1", "disagree"),
        ("consensus", "BLOCK", "block"),
        ("single", "2", (2,)),
        ("single", " sushi ", (2,)),
        ("single", "Su", (2,)),
        ("single", "thai   FOOD", (5,)),
        ("single", "Fish, chips", (6,)),
        ("single", "Pie", (4,)),  # exact text beats being a prefix of nothing else
        ("approval", "1, 3", (1, 3)),
        ("approval", "3 1", (1, 3)),
        ("approval", "Pizza, Sushi", (1, 2)),
        ("approval", "tacos,pizza, 3", (1, 3)),
        ("approval", "Thai food, 1", (1, 5)),
        ("approval", "Fish, chips", (6,)),
        ("approval", "Pizza Sushi", (1, 2)),
        ("ranked", "2 > 1 > 3", (2, 1, 3)),
        ("ranked", "Sushi > Pizza", (2, 1)),
        ("ranked", "3>1", (3, 1)),
        ("ranked", "Thai food > 1, 2", (5, 1, 2)),
        ("ranked", "4 2", (4, 2)),
        ("ranked", "tac", (3,)),
        ("score", "5 3 0 1 2 4", (5, 3, 0, 1, 2, 4)),
        ("score", "5, 3, 0, 1, 2, 4", (5, 3, 0, 1, 2, 4)),
        ("score", "1=5 2=3 3=0", (5, 3, 0, 0, 0, 0)),
        ("score", "2 = 4, Thai food=5", (0, 4, 0, 0, 5, 0)),
        ("score", "sushi=1 pizza=2", (2, 1, 0, 0, 0, 0)),
    ],
)
def test_parse_choice_accepts(method: str, text: str, choice: str | tuple[int, ...]) -> None:
    assert parse_choice(method, MENU, text) == choice


@pytest.mark.parametrize(
    ("method", "text", "message"),
    [
        ("consent", "maybe",
         "“maybe” is not an answer; vote agree, abstain, disagree or block."),
        ("consent", "  ", "Vote agree, abstain, disagree or block."),
        ("single", "", "Choose one option by number (1 to 6) or by its text."),
        ("single", "7", "There is no option “7”; choose one option by number (1 to 6) or by its"
         " text."),
        ("single", "P", "“P” could be “Pizza” or “Pie”; choose one option by number (1 to 6) or"
         " by its text."),
        ("single", "1, 2", "There is no option “1, 2”; choose one option by number (1 to 6) or"
         " by its text."),
        ("single", "x" * 60, f"There is no option “{'x' * 39}…”; choose one option by number"
         " (1 to 6) or by its text."),
        ("approval", "1, Burger", "There is no option “Burger”; choose one or more options by"
         " number (1 to 6) or text, separated by commas, such as 1, 3."),
        ("approval", "2 > 1", "There is no option “2 > 1”; choose one or more options by"
         " number (1 to 6) or text, separated by commas, such as 1, 3."),
        ("approval", "1,,2", "There is an empty choice in “1,,2”; choose one or more options by"
         " number (1 to 6) or text, separated by commas, such as 1, 3."),
        ("ranked", "1 > 2 > 1", "Option 1 (“Pizza”) is ranked twice; rank options by number"
         " (1 to 6) or text, best first and each once, such as 2 > 1 > 3."),
        ("ranked", "2 >", "There is an empty choice in “2 >”; rank options by number (1 to 6) or"
         " text, best first and each once, such as 2 > 1 > 3."),
        ("score", "5 3", "Expected 6 scores, got 2; give each option a score from 0 to 5, in"
         " order (such as 5 3 0 0 0 0) or by number (such as 1=5 2=3); unscored options get 0."),
        ("score", "5 3 0 0 0 9", "9 is not a score from 0 to 5; give each option a score from 0"
         " to 5, in order (such as 5 3 0 0 0 0) or by number (such as 1=5 2=3); unscored"
         " options get 0."),
        ("score", "1=5 pizza=3", "Option 1 is scored twice; give each option a score from 0 to"
         " 5, in order (such as 5 3 0 0 0 0) or by number (such as 1=5 2=3); unscored options"
         " get 0."),
        ("score", "five", "“five” is not a list of scores; give each option a score from 0 to"
         " 5, in order (such as 5 3 0 0 0 0) or by number (such as 1=5 2=3); unscored options"
         " get 0."),
        ("score", "1=5 2=x", "“1=5 2=x” is not a list of scores; give each option a score from"
         " 0 to 5, in order (such as 5 3 0 0 0 0) or by number (such as 1=5 2=3); unscored"
         " options get 0."),
        ("score", "1=55x", "“1=55x” is not a list of scores; give each option a score from 0 to"
         " 5, in order (such as 5 3 0 0 0 0) or by number (such as 1=5 2=3); unscored options"
         " get 0."),
        ("score", "9=1", "There is no option “9”; give each option a score from 0 to 5, in order"
         " (such as 5 3 0 0 0 0) or by number (such as 1=5 2=3); unscored options get 0."),
    ],
)  # fmt: skip
def test_parse_choice_refuses_with_one_sentence(method: str, text: str, message: str) -> None:
    with pytest.raises(ChoiceError) as caught:
        parse_choice(method, MENU, text)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("method", "options", "valid"),
    [
        ("single", ("Yes",), "Choose one option by number (1) or by its text."),
        ("approval", ("a", "b"), "Choose one or more options by number (1 to 2) or text,"
         " separated by commas, such as 1, 2."),
        ("approval", ("a",), "Choose one or more options by number (1) or text, separated by"
         " commas, such as 1."),
        ("ranked", ("a", "b"), "Rank options by number (1 to 2) or text, best first and each"
         " once, such as 2 > 1."),
        ("score", ("a",), "Give each option a score from 0 to 5, in order (such as 5) or by"
         " number (such as 1=5); unscored options get 0."),
        ("score", tuple("abcdefg"), "Give each option a score from 0 to 5, in order (such as"
         " 5 3 0 0 0 0 …) or by number (such as 1=5 2=3); unscored options get 0."),
    ],
)  # fmt: skip
def test_what_is_valid_fits_the_poll(method: str, options: tuple[str, ...], valid: str) -> None:
    with pytest.raises(ChoiceError) as caught:
        parse_choice(method, options, "")
    assert str(caught.value) == valid


def test_one_option_score_poll_wants_one_score() -> None:
    assert parse_choice("score", ["Go"], "4") == (4,)
    with pytest.raises(ChoiceError, match=r"^Expected 1 score, got 2; "):
        parse_choice("score", ["Go"], "4 5")


def test_a_number_in_range_names_the_option_by_position() -> None:
    # Options that are themselves numbers: a number in range is the position, else the text.
    assert parse_choice("single", ["3", "2", "1"], "1") == (1,)
    assert parse_choice("single", ["2024", "2025"], "2025") == (2,)


def test_parse_choice_refuses_bad_calls() -> None:
    with pytest.raises(ValueError, match="unknown method"):
        parse_choice("plurality", FOOD, "1")
    with pytest.raises(ValueError, match="at least one option"):
        parse_choice("single", (), "1")
    # Identical option texts can't be told apart by text, only by number.
    with pytest.raises(ChoiceError, match="could be"):
        parse_choice("single", ["Pizza", "pizza"], "PIZZA")


# --- properties -----------------------------------------------------------------------------

answer_lists = st.lists(st.sampled_from(ANSWERS), max_size=12)
thresholds = st.fractions(min_value=Fraction(1, 2), max_value=1, max_denominator=12).filter(
    lambda f: f > Fraction(1, 2)
)


@given(choices=answer_lists, quorum=st.integers(0, 8), threshold=thresholds)
def test_an_extra_agree_never_turns_a_majority_pass_into_a_fail(
    choices: list[str], quorum: int, threshold: Fraction
) -> None:
    before = tally_proposal("majority", answers(*choices), quorum=quorum, supermajority=threshold)
    after = tally_proposal(
        "majority", answers(*choices, "agree"), quorum=quorum, supermajority=threshold
    )
    assert not (before.passed and not after.passed)


@given(choices=answer_lists, quorum=st.integers(0, 8), threshold=thresholds)
def test_any_block_fails_consent_and_consensus(
    choices: list[str], quorum: int, threshold: Fraction
) -> None:
    for method in ("consent", "consensus"):
        outcome = tally_proposal(
            method, answers(*choices, "block"), quorum=quorum, supermajority=threshold
        )
        assert outcome.passed is False


@given(
    choices=answer_lists,
    extra=st.integers(1, 5),
    method=st.sampled_from(METHODS),
    threshold=thresholds,
)
def test_abstentions_never_change_the_outcome_once_quorum_is_met(
    choices: list[str], extra: int, method: str, threshold: Fraction
) -> None:
    quorum = len(choices)
    before = tally_proposal(method, answers(*choices), quorum=quorum, supermajority=threshold)
    after = tally_proposal(
        method, answers(*choices, *["abstain"] * extra), quorum=quorum, supermajority=threshold
    )
    assert before.passed == after.passed


@given(choices=answer_lists, quorum=st.integers(0, 8), threshold=thresholds)
def test_a_stricter_method_passing_means_the_weaker_passes_too(
    choices: list[str], quorum: int, threshold: Fraction
) -> None:
    # The order consensus.rules relies on so that flags can't weaken a rule proposal.
    passed = {
        method: tally_proposal(
            method, answers(*choices), quorum=quorum, supermajority=threshold
        ).passed
        for method in METHODS
    }
    for strict in METHODS:
        for weak in METHODS:
            if at_least_as_strict(strict, weak) and passed[strict]:
                assert passed[weak]


def rankings(n: int) -> st.SearchStrategy[tuple[int, ...]]:
    """Partial rankings of options 1..n, best first (possibly empty)."""
    return st.permutations(range(1, n + 1)).flatmap(
        lambda order: st.integers(0, n).map(lambda k: tuple(order[:k]))
    )


@st.composite
def polls(draw: st.DrawFn) -> tuple[str, list[str], list[Ballot], int | None]:
    method = draw(st.sampled_from(POLL_METHODS))
    n = draw(st.integers(1, 6))
    options = [f"option {k}" for k in range(1, n + 1)]
    numbers = st.integers(1, n)
    choice: st.SearchStrategy[tuple[int, ...]]
    if method == "single":
        choice = st.tuples(numbers)
    elif method == "approval":
        choice = st.sets(numbers).map(lambda s: tuple(sorted(s)))
    elif method == "ranked":
        choice = rankings(n)
    else:
        choice = st.tuples(*[st.integers(0, MAX_SCORE)] * n)
    choices = draw(st.lists(choice, max_size=15))
    quorum = draw(st.none() | st.integers(0, 10))
    return method, options, picks(*choices), quorum


@given(poll=polls(), seed=st.integers(0, 2**32))
def test_poll_winners_are_options_and_the_tally_fits_the_ledger(
    poll: tuple[str, list[str], list[Ballot], int | None], seed: int
) -> None:
    method, options, ballots, quorum = poll
    outcome = tally_poll(method, options, ballots, quorum=quorum)
    assert all(1 <= w <= len(options) for w in outcome.winners)
    assert list(outcome.winners) == sorted(set(outcome.winners))
    assert outcome.passed is (None if outcome.winners else False)
    assert all(type(v) in (int, str) for v in outcome.tally.values())
    assert ledger_problem(outcome) is None
    # The order in which ballots arrive never matters.
    shuffled = list(ballots)
    random.Random(seed).shuffle(shuffled)
    again = tally_poll(method, options, shuffled, quorum=quorum)
    assert (again.winners, again.reason, again.tally) == (
        outcome.winners, outcome.reason, outcome.tally
    )  # fmt: skip


@given(poll=polls())
def test_parse_choice_reads_back_what_a_ballot_says(
    poll: tuple[str, list[str], list[Ballot], int | None],
) -> None:
    method, options, ballots, _ = poll
    separator = {"single": "", "approval": ", ", "ranked": " > ", "score": " "}[method]
    for ballot in ballots:
        assert isinstance(ballot.choice, tuple)
        if not ballot.choice:
            continue
        text = separator.join(map(str, ballot.choice))
        assert parse_choice(method, options, text) == ballot.choice
        if method != "score":
            by_name = separator.join(options[k - 1].upper() for k in ballot.choice)
            assert parse_choice(method, options, by_name) == ballot.choice


@given(
    n=st.integers(2, 5),
    data=st.data(),
)
def test_ranked_first_preference_majority_wins_in_round_one(n: int, data: st.DataObject) -> None:
    favourite = data.draw(st.integers(1, n))
    others = [k for k in range(1, n + 1) if k != favourite]
    backing = data.draw(st.lists(st.permutations(others), max_size=6))
    against = data.draw(
        st.lists(rankings(n).filter(lambda r: not r or r[0] != favourite), max_size=8)
    )
    supporters = [(favourite, *tail) for tail in backing]
    # More than half of all ballots put the favourite first.
    supporters += [(favourite,)] * (len(against) + 1 - len(supporters))
    ballots = picks(*supporters, *against)
    data.draw(st.randoms()).shuffle(ballots)
    outcome = tally_poll("ranked", [f"o{k}" for k in range(1, n + 1)], ballots, quorum=None)
    assert outcome.winners == (favourite,)
    assert outcome.tally["rounds"] == 1
