"""Decision methods for proposals and polls. Pure: ballots + method + quorum -> Outcome.

No clock and no chance: the same ballots (one per voter, the latest, picked by the caller) always
give the same outcome and the same sentence. A ballot that doesn't fit its item raises ValueError
(the chat layer validates votes with `parse_choice` before they reach the ledger).

Proposals are answered agree / abstain / disagree / block. `majority`: more agree than disagree;
`supermajority`: agree ÷ (agree + disagree) ≥ the threshold, and failed when nobody agreed or
disagreed; `consent`: at least one agree and no block; `consensus`: the supermajority test and no
block. A block is a disagree for the ratio tests. Abstentions count toward the quorum (the number
of voters), never toward a ratio.

Polls: `single` and `approval` count votes per option and `score` adds up the 0 to 5 scores; the
highest count wins and equal leaders are all winners (a tie, said so in the reason). An option
needs at least one vote (or point) to win, so a poll where nothing got any fails. `ranked` is an
instant runoff. Each round gives every ballot to its highest-ranked continuing option; ballots
ranking no continuing option are exhausted and drop out. An option with more than half of the
continuing ballots wins. Otherwise, when every continuing option has the same count, they tie and
all win; else options with no votes are eliminated together (that changes no count), or else the
one with the fewest votes. Tie rule for that elimination: fewer first preferences (round 1), then
the option listed later (the higher number) goes.

A poll whose quorum is not met fails; polls have no quorum unless one is given.
`parse_choice` turns the text after `!vote #id` into a choice, or raises ChoiceError with one
sentence saying what is valid for the item.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from consensus.ledger import POLL_METHODS, PROPOSAL_ANSWERS
from consensus.rules import METHODS

ANSWERS = PROPOSAL_ANSWERS
MAX_SCORE = 5
NO_REASON = "(no reason given)"

# Words accepted for each answer; the canonical answer is what the ledger stores.
_ANSWER_WORDS = {
    "agree": "agree",
    "yes": "agree",
    "+1": "agree",
    "abstain": "abstain",
    "disagree": "disagree",
    "no": "disagree",
    "-1": "disagree",
    "block": "block",
}
# Bounded, so a wall of digits is text that names no option rather than a huge int.
_NUMBER = re.compile(r"[0-9]{1,9}")
_SCORE_PAIR = re.compile(r"\s*([^=,]+?)\s*=\s*([0-9]{1,9})\s*(?:,|$|(?<=\s))")
_SCORE_LIST_SEP = re.compile(r"[\s,]+")
_QUOTE_LIMIT = 40


class ChoiceError(ValueError):
    """The text of a vote was refused; the message is one sentence for the user."""


@dataclass(frozen=True)
class Ballot:
    """The latest vote of one voter.

    `choice` is an answer for proposals and option numbers (1-based) for polls: one for
    `single`, any for `approval`, best first for `ranked`. A `score` poll reads `scores` (0 to 5
    per option, in option order), or `choice` when `scores` is None, since the ledger stores
    scores as the choice.
    `reason` is the block's reason, shown in the result.
    """

    voter: str
    choice: str | tuple[int, ...]
    reason: str | None = None
    scores: tuple[int, ...] | None = None


@dataclass(frozen=True)
class Outcome:
    """A decision: passed (proposals), winners (polls), one sentence why, and the counts.

    `passed` is True/False for proposals, None (decided) or False (failed) for polls.
    `tally` holds only strings and integers, so it goes into the ledger as it is.
    """

    passed: bool | None
    winners: tuple[int, ...]
    reason: str
    tally: dict[str, int | str] = field(hash=False)

    @property
    def label(self) -> str:
        """The ledger's `outcome`: passed, failed or decided."""
        if self.passed is None:
            return "decided"
        return "passed" if self.passed else "failed"

    def as_ledger(self) -> dict[str, Any]:
        """The `outcome`, `winners` and `tally` fields of the item.close entry."""
        return {"outcome": self.label, "winners": list(self.winners), "tally": dict(self.tally)}


# --- shared helpers -------------------------------------------------------------------------


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _quote(text: str) -> str:
    shown = _one_line(text)
    if len(shown) > _QUOTE_LIMIT:
        shown = shown[: _QUOTE_LIMIT - 1] + "…"
    return f"“{shown}”"


def _join(items: Sequence[str], word: str = "and") -> str:
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + f" {word} " + items[-1]


def _fraction_text(value: Fraction) -> str:
    # The same spelling as the proposal.supermajority rule ("2/3", "1/1").
    return f"{value.numerator}/{value.denominator}"


def _check_common(ballots: Sequence[Ballot], quorum: int | None) -> None:
    if quorum is not None and quorum < 0:
        raise ValueError(f"quorum must not be negative, got {quorum}")
    voters = [ballot.voter for ballot in ballots]
    if len(set(voters)) != len(voters):
        raise ValueError("one ballot per voter: pass only the latest vote of each")


def _quorum_failure(quorum: int | None, voters: int, tally: dict[str, int | str]) -> Outcome:
    return Outcome(False, (), f"failed: quorum {quorum} not met ({voters} voted)", tally)


# --- proposals ------------------------------------------------------------------------------


def _block_text(ballot: Ballot) -> str:
    reason = _one_line(ballot.reason or "")
    return f"{ballot.voter} — “{reason}”" if reason else f"{ballot.voter} {NO_REASON}"


def tally_proposal(
    method: str, ballots: Sequence[Ballot], *, quorum: int, supermajority: Fraction
) -> Outcome:
    """The outcome of a proposal under `method`, with the room's `quorum` and threshold."""
    if method not in METHODS:
        raise ValueError(f"unknown proposal method {method!r}")
    if not 0 < supermajority <= 1:
        raise ValueError(f"supermajority must be in (0, 1], got {supermajority}")
    _check_common(ballots, quorum)
    for ballot in ballots:
        if not isinstance(ballot.choice, str) or ballot.choice not in ANSWERS:
            raise ValueError(f"{ballot.voter}: {ballot.choice!r} is not a proposal answer")
    counts = {answer: sum(b.choice == answer for b in ballots) for answer in ANSWERS}
    voters = len(ballots)
    threshold = _fraction_text(supermajority)
    tally: dict[str, int | str] = {"method": method, "voters": voters, "quorum": quorum}
    tally.update(counts)
    if method in ("supermajority", "consensus"):
        tally["threshold"] = threshold
    if voters < quorum:
        return _quorum_failure(quorum, voters, tally)
    blocks = [b for b in ballots if b.choice == "block"]
    if method in ("consent", "consensus") and blocks:
        names = _join([_block_text(b) for b in blocks])
        return Outcome(False, (), f"failed: blocked by {names}", tally)

    agree = counts["agree"]
    against = counts["disagree"] + counts["block"]
    if method == "majority":
        passed = agree > against
        against_text = f"{against} disagree"
        if blocks:
            against_text += f" (incl. {len(blocks)} block{'s' if len(blocks) > 1 else ''})"
        why = f"{agree} agree {'>' if passed else '≤'} {against_text}"
    elif method == "consent":
        passed = agree > 0
        why = f"{agree} agree and no block" if passed else f"0 of {voters} voters agree"
    elif agree + against == 0:
        passed = False
        why = f"nobody agreed or disagreed ({counts['abstain']} abstain)"
    else:
        passed = Fraction(agree, agree + against) >= supermajority
        why = f"{agree} of {agree + against} agree {'≥' if passed else '<'} {threshold}"
        if method == "consensus" and passed:
            why += " and no block"
    word = "passed" if passed else "failed"
    return Outcome(passed, (), f"{word}: {why}, quorum {quorum} met", tally)


# --- polls ----------------------------------------------------------------------------------


def _poll_choice(ballot: Ballot, method: str, n: int) -> tuple[int, ...]:
    """The option numbers (or, for `score`, the scores) of a ballot; ValueError if unfit."""
    if method == "score":
        scores = ballot.scores if ballot.scores is not None else ballot.choice
        if (
            isinstance(scores, str)
            or len(scores) != n
            or not all(type(s) is int and 0 <= s <= MAX_SCORE for s in scores)
        ):
            raise ValueError(f"{ballot.voter}: {scores!r} is not {n} scores from 0 to 5")
        return tuple(scores)
    choice = ballot.choice
    if (
        isinstance(choice, str)
        or not all(type(o) is int and 1 <= o <= n for o in choice)
        or len(set(choice)) != len(choice)
        or (method == "single" and len(choice) != 1)
    ):
        raise ValueError(f"{ballot.voter}: {choice!r} is not a valid {method} choice")
    return tuple(choice)


@dataclass(frozen=True)
class _Count:
    """What a poll method found: winners (empty when none) and the words for the result."""

    winners: tuple[int, ...]
    detail: str  # the parenthesis after the winning option(s)
    failure: str = ""


def _each(winners: Sequence[int]) -> str:
    return " each" if len(winners) > 1 else ""


def _most(method: str, totals: Sequence[int], voters: int) -> _Count:
    """The options with the highest total, if that total is above 0."""
    top = max(totals)
    if top == 0:
        failure = "every option scored 0" if method == "score" else "no option got any votes"
        return _Count((), "", f"failed: {failure} ({voters} voted)")
    winners = tuple(number for number, total in enumerate(totals, 1) if total == top)
    each = _each(winners)
    if method == "score":
        return _Count(winners, f"total {top}{each} from {voters} voters")
    if method == "approval":
        return _Count(winners, f"approved by {top} of {voters} voters{each}")
    return _Count(winners, f"{top} of {voters} votes{each}")


def _runoff(n: int, rankings: Sequence[tuple[int, ...]], tally: dict[str, int | str]) -> _Count:
    """Instant runoff (see the module docstring); writes each round into `tally`."""
    continuing = list(range(1, n + 1))
    first: dict[int, int] = {}
    round_no = 0
    # Ends: each round removes at least one option, and a lone one holds every continuing ballot.
    while True:
        round_no += 1
        counts = dict.fromkeys(continuing, 0)
        for ranking in rankings:
            top = next((option for option in ranking if option in counts), None)
            if top is not None:
                counts[top] += 1
        active = sum(counts.values())
        first = first or dict(counts)
        line = " ".join(f"{o}:{c}" for o, c in counts.items())
        line += f" exhausted:{len(rankings) - active}"
        key = f"round.{round_no}"
        tally["rounds"] = round_no
        best = max(counts.values())
        if active == 0:
            tally[key] = line
            return _Count((), "", f"failed: no ballot ranks any option ({len(rankings)} voted)")
        if 2 * best > active or min(counts.values()) == best:
            tally[key] = line
            winners = tuple(o for o, c in counts.items() if c == best)
            detail = f"{best} of {active} continuing ballots{_each(winners)} in round {round_no}"
            return _Count(winners, detail)
        out = [o for o, c in counts.items() if c == 0] or [
            min(continuing, key=lambda o: (counts[o], first[o], -o))
        ]
        tally[key] = line + " eliminated:" + ",".join(map(str, out))
        continuing = [o for o in continuing if o not in out]


def tally_poll(
    method: str, options: Sequence[str], ballots: Sequence[Ballot], *, quorum: int | None
) -> Outcome:
    """The outcome of a poll with `options` (option k is options[k - 1]); no quorum if None."""
    if method not in POLL_METHODS:
        raise ValueError(f"unknown poll method {method!r}")
    if not options:
        raise ValueError("a poll needs at least one option")
    _check_common(ballots, quorum)
    n = len(options)
    choices = [_poll_choice(ballot, method, n) for ballot in ballots]
    voters = len(ballots)
    tally: dict[str, int | str] = {"method": method, "voters": voters}
    if quorum is not None:
        tally["quorum"] = quorum

    totals = [0] * n
    if method == "score":
        for scores in choices:
            totals = [total + score for total, score in zip(totals, scores, strict=True)]
    else:
        # Approval counts every choice; ranked shows first preferences; single has one.
        for choice in choices:
            for option in choice if method == "approval" else choice[:1]:
                totals[option - 1] += 1
    tally.update({f"option.{number}": total for number, total in enumerate(totals, 1)})

    if quorum is not None and voters < quorum:
        return _quorum_failure(quorum, voters, tally)
    if not ballots:
        return Outcome(False, (), "failed: nobody voted", tally)
    if method == "ranked":
        count = _runoff(n, choices, tally)
    else:
        count = _most(method, totals, voters)
    if not count.winners:
        return Outcome(False, (), count.failure, tally)
    names = [_one_line(options[number - 1]) for number in count.winners]
    if len(names) == 1:
        why = f"decided: {names[0]} ({count.detail})"
    else:
        why = f"decided: tie between {_join(names)} ({count.detail})"
    if quorum is not None:
        why += f", quorum {quorum} met"
    return Outcome(None, count.winners, why, tally)


# --- parsing the text of a vote -------------------------------------------------------------


def _span(n: int) -> str:
    return "1" if n == 1 else f"1 to {n}"


def _valid(method: str, n: int) -> str:
    """What is valid for an item, as the end of a sentence."""
    match method:
        case "single":
            return f"choose one option by number ({_span(n)}) or by its text"
        case "approval":
            example = "1" if n == 1 else "1, 2" if n == 2 else "1, 3"
            return (
                f"choose one or more options by number ({_span(n)}) or text,"
                f" separated by commas, such as {example}"
            )
        case "ranked":
            example = " > ".join(str(k) for k in (2, 1, 3)[:n])
            return (
                f"rank options by number ({_span(n)}) or text, best first and each once,"
                f" such as {example}"
            )
        case "score":
            listed = " ".join(str(s) for s in (5, 3, 0, 0, 0, 0)[:n]) + (" …" if n > 6 else "")
            named = " ".join(f"{k}={s}" for k, s in zip((1, 2), (5, 3), strict=True) if k <= n)
            return (
                f"give each option a score from 0 to {MAX_SCORE}, in order (such as {listed})"
                f" or by number (such as {named}); unscored options get 0"
            )
        case _:
            return "vote agree, abstain, disagree or block"


def _refuse(problem: str, valid: str) -> ChoiceError:
    if not problem:
        return ChoiceError(valid[0].upper() + valid[1:] + ".")
    return ChoiceError(f"{problem[0].upper()}{problem[1:]}; {valid}.")


def _find(part: str, options: Sequence[str], valid: str, *, prefix: bool = True) -> int:
    """The option a piece of text names: its number, its exact text or a unique prefix.

    A number in range is always the option number, even when another option's text is that
    number; text matches ignore case and runs of spaces.
    """
    text = part.strip()
    if _NUMBER.fullmatch(text) and 1 <= int(text) <= len(options):
        return int(text)
    key = _one_line(text).casefold()
    texts = [_one_line(option).casefold() for option in options]
    matches = [number for number, option in enumerate(texts, 1) if option == key]
    if not matches and prefix:
        matches = [number for number, option in enumerate(texts, 1) if option.startswith(key)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise _refuse(f"there is no option {_quote(text)}", valid)
    names = [_quote(options[number - 1]) for number in matches[:3]]
    raise _refuse(f"{_quote(text)} could be {_join(names, 'or')}", valid)


def _find_list(text: str, separators: str, options: Sequence[str], valid: str) -> list[int]:
    """Options named in `text`, in order, split at `separators` (or at spaces inside a piece
    that names no option, so "1 3" works). Text that is exactly one option's text wins first,
    so an option with a comma in it can still be named whole."""
    try:
        return [_find(text, options, valid, prefix=False)]
    except ChoiceError:
        pass
    found: list[int] = []
    for part in re.split(separators, text):
        if not part.strip():
            raise _refuse(f"there is an empty choice in {_quote(text)}", valid)
        try:
            found.append(_find(part, options, valid))
        except ChoiceError as error:
            words = part.split()
            if len(words) < 2:
                raise
            try:
                found.extend(_find(word, options, valid) for word in words)
            except ChoiceError:
                # The whole piece is what the user meant as one name; a word of it would mislead.
                raise error from None
    return found


def _parse_scores(text: str, options: Sequence[str], valid: str) -> tuple[int, ...]:
    n = len(options)
    if "=" not in text:
        tokens = _SCORE_LIST_SEP.split(text.strip())
        if not all(_NUMBER.fullmatch(token) for token in tokens):
            raise _refuse(f"{_quote(text)} is not a list of scores", valid)
        if len(tokens) != n:
            raise _refuse(f"expected {n} score{'s' if n > 1 else ''}, got {len(tokens)}", valid)
        pairs = list(enumerate(tokens, 1))
    else:
        pairs = []
        position, text = 0, text.strip()
        while position < len(text):
            match = _SCORE_PAIR.match(text, position)
            if match is None:
                raise _refuse(f"{_quote(text)} is not a list of scores", valid)
            pairs.append((_find(match[1], options, valid), match[2]))
            position = match.end()
    scores = [0] * n
    seen: set[int] = set()
    for number, value in pairs:
        if number in seen:
            raise _refuse(f"option {number} is scored twice", valid)
        seen.add(number)
        if int(value) > MAX_SCORE:
            raise _refuse(f"{int(value)} is not a score from 0 to {MAX_SCORE}", valid)
        scores[number - 1] = int(value)
    return tuple(scores)


def parse_choice(method: str, options: Sequence[str], text: str) -> tuple[int, ...] | str:
    """The choice `text` makes on an item decided by `method`; ChoiceError if it makes none.

    Proposals: an answer (agree/yes/+1, abstain, disagree/no/-1, block; any case). Polls: the
    option numbers (`single`: one; `approval`: sorted, repeats ignored; `ranked`: best first,
    partial allowed), or for `score` the scores of every option in option order.
    """
    if method in METHODS:
        answer = _ANSWER_WORDS.get(text.strip().casefold())
        if answer is None:
            problem = f"{_quote(text)} is not an answer" if text.strip() else ""
            raise _refuse(problem, _valid(method, 0))
        return answer
    if method not in POLL_METHODS:
        raise ValueError(f"unknown method {method!r}")
    if not options:
        raise ValueError("a poll needs at least one option")
    valid = _valid(method, len(options))
    if not text.strip():
        raise _refuse("", valid)
    match method:
        case "single":
            return (_find(text, options, valid),)
        case "approval":
            return tuple(sorted(set(_find_list(text, ",", options, valid))))
        case "ranked":
            ranking = _find_list(text, "[>,]", options, valid)
            for number in ranking:
                if ranking.count(number) > 1:
                    name = _quote(options[number - 1])
                    raise _refuse(f"option {number} ({name}) is ranked twice", valid)
            return tuple(ranking)
        case _:
            return _parse_scores(text, options, valid)
