"""Action calls: going-set tables and properties, call checks, lifecycle table, ledger fold."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consensus.actions import (
    MAX_NEED,
    TRANSITIONS,
    ActionError,
    ActionTransitions,
    CallState,
    Commitment,
    Event,
    Status,
    check_call,
    default_deadline,
    due_event,
    fold_call,
    follow_through,
    goes,
    going_set,
    next_status,
    reminder_times,
    still_enough,
)
from consensus.checkpoint import encode_b64
from consensus.ledger import (
    ATTEND,
    COMMIT,
    GENESIS,
    ITEM_CLOSE,
    ITEM_OPEN,
    KUDOS,
    MOD_VOID,
    REVERSAL,
    LedgerEntry,
    genesis_data,
    make_entry,
    rules_hash,
)
from consensus.rules import default_rules

HOUR = 3_600_000
MINUTE = 60_000
ROOM = "!room:example.org"
BOT = "@commons:example.org"
ALICE = "@alice:example.org"
BOB = "@bob:example.org"
CAROL = "@carol:example.org"
DAN = "@dan:example.org"


def user(i: int) -> str:
    return f"@u{i}:example.org"


def people(*conditions: int) -> list[Commitment]:
    """Commitments of @u0, @u1, … with these conditions."""
    return [Commitment(user(i), m) for i, m in enumerate(conditions)]


def valid(group: Sequence[Commitment]) -> bool:
    return all(c.min_others <= len(group) - 1 for c in group)


# --- the going set: tables ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("conditions", "going"),
    [
        ((), set()),
        ((0,), {0}),
        ((1,), set()),
        ((1, 1), {0, 1}),
        ((0, 5), {0}),
        ((0, 1, 1), {0, 1, 2}),
        ((2, 2), set()),
        ((2, 2, 2), {0, 1, 2}),
        ((0, 0, 3), {0, 1}),
        ((0, 0, 3, 3), {0, 1, 2, 3}),
        # Not monotone in size: 2 people are valid, 3 are not, 4 are again.
        ((1, 1, 3, 3), {0, 1, 2, 3}),
        ((1, 1, 3), {0, 1}),
        ((3, 0, 1, 9, 2), {0, 1, 2, 4}),
    ],
)
def test_going_set_table(conditions: tuple[int, ...], going: set[int]) -> None:
    assert going_set(people(*conditions)) == {user(i) for i in going}


def test_a_repeated_user_counts_with_the_last_commitment() -> None:
    assert going_set([Commitment(ALICE), Commitment(ALICE, 3)]) == frozenset()
    assert going_set([Commitment(ALICE, 3), Commitment(ALICE)]) == {ALICE}


def test_a_commitment_is_unconditional_by_default_and_refuses_a_negative_condition() -> None:
    assert Commitment(ALICE).min_others == 0
    with pytest.raises(ActionError, match="can't be negative"):
        Commitment(ALICE, -1)


@pytest.mark.parametrize(
    ("conditions", "need", "expected"),
    [
        ((), 1, False),
        ((0,), 1, True),
        ((0, 0), 3, False),
        ((0, 0, 2), 3, True),
        ((1, 1, 5), 3, False),
        ((1, 1, 5), 2, True),
    ],
)
def test_goes_and_still_enough(conditions: tuple[int, ...], need: int, expected: bool) -> None:
    assert goes(people(*conditions), need) is expected
    assert still_enough(people(*conditions), need) is expected


def test_removing_a_commitment_can_stop_a_call() -> None:
    # @u1 is in only if someone else is; without @u0 the call needing 2 no longer goes.
    together = people(0, 1)
    assert goes(together, 2)
    assert not goes(together[1:], 2)
    assert not goes(together[1:], 1)


# --- the going set: properties -----------------------------------------------------------------

conditions_st = st.lists(st.integers(min_value=0, max_value=7), max_size=9)


@given(conditions_st)
def test_every_member_of_the_going_set_has_their_condition_met(conditions: list[int]) -> None:
    going = going_set(people(*conditions))
    assert all(conditions[i] <= len(going) - 1 for i in range(len(conditions)) if user(i) in going)


@given(conditions_st)
def test_the_going_set_is_the_largest_valid_set_and_holds_every_valid_set(
    conditions: list[int],
) -> None:
    everyone = people(*conditions)
    going = going_set(everyone)
    largest = 0
    for size in range(len(everyone) + 1):
        for group in combinations(everyone, size):
            if valid(group):
                largest = max(largest, size)
                assert {c.user for c in group} <= going
    assert len(going) == largest


@given(st.data(), conditions_st)
def test_the_going_set_does_not_depend_on_order(
    data: st.DataObject, conditions: list[int]
) -> None:
    everyone = people(*conditions)
    shuffled = data.draw(st.permutations(everyone))
    assert going_set(shuffled) == going_set(everyone)


@given(conditions_st, st.integers(min_value=0, max_value=9), st.integers(1, 10))
def test_adding_a_commitment_never_stops_a_going_call(
    conditions: list[int], newcomer: int, need: int
) -> None:
    before = people(*conditions)
    after = [*before, Commitment("@newcomer:example.org", newcomer)]
    assert going_set(before) <= going_set(after)
    if goes(before, need):
        assert goes(after, need)


@given(conditions_st.filter(bool), st.data())
def test_lowering_a_condition_never_shrinks_the_going_set(
    conditions: list[int], data: st.DataObject
) -> None:
    i = data.draw(st.integers(0, len(conditions) - 1))
    lower = data.draw(st.integers(0, conditions[i]))
    eased = people(*conditions)
    eased[i] = Commitment(user(i), lower)
    assert going_set(people(*conditions)) <= going_set(eased)


# --- opening a call ----------------------------------------------------------------------------

NOW = 1_800_000_000_000


def test_default_deadline_is_two_hours_before() -> None:
    assert default_deadline(NOW + 5 * HOUR) == NOW + 3 * HOUR


@pytest.mark.parametrize(
    ("at", "deadline", "need", "expected"),
    [
        (NOW + 5 * HOUR, None, 3, NOW + 3 * HOUR),
        (NOW + 2 * HOUR + 1, None, 1, NOW + 1),
        (NOW + HOUR, NOW + 30 * MINUTE, 3, NOW + 30 * MINUTE),
        (NOW + HOUR, NOW + HOUR, MAX_NEED, NOW + HOUR),
        (NOW + 1, NOW + 1, 1, NOW + 1),
    ],
)
def test_check_call_returns_the_deadline(
    at: int, deadline: int | None, need: int, expected: int
) -> None:
    assert check_call(now_ms=NOW, at_ms=at, deadline_ms=deadline, need=need) == expected


@pytest.mark.parametrize(
    ("at", "deadline", "need", "message"),
    [
        (NOW + 5 * HOUR, None, 0, "An action call needs at least 1 person."),
        (NOW + 5 * HOUR, None, -4, "An action call needs at least 1 person."),
        (NOW + 5 * HOUR, None, MAX_NEED + 1, "An action call can need at most 10000 people."),
        (NOW, None, 3, "The time of the action has already passed; give a time to come."),
        (NOW - HOUR, NOW - 2 * HOUR, 3, "The time of the action has already passed"),
        (NOW + HOUR, NOW, 3, "The deadline has already passed; give a time to come."),
        (NOW + HOUR, NOW - 1, 3, "The deadline has already passed"),
        (NOW + HOUR, NOW + HOUR + 1, 3, "The deadline can't be after the action."),
        (
            NOW + 2 * HOUR,
            None,
            3,
            "The default deadline, 2 hours before the action, has already passed; "
            "give one with --deadline.",
        ),
        (NOW + HOUR, None, 3, "give one with --deadline"),
    ],
)
def test_check_call_refuses(at: int, deadline: int | None, need: int, message: str) -> None:
    with pytest.raises(ActionError) as caught:
        check_call(now_ms=NOW, at_ms=at, deadline_ms=deadline, need=need)
    assert message in str(caught.value)
    assert str(caught.value).count(". ") == 0 and str(caught.value).endswith(".")


# --- reminders and follow-through --------------------------------------------------------------


@pytest.mark.parametrize(
    ("offsets", "now", "expected"),
    [
        ((24 * HOUR, HOUR), NOW, (NOW + 24 * HOUR, NOW + 47 * HOUR)),
        ((HOUR, 24 * HOUR), NOW, (NOW + 24 * HOUR, NOW + 47 * HOUR)),
        ((24 * HOUR, HOUR), NOW + 30 * HOUR, (NOW + 47 * HOUR,)),
        ((24 * HOUR, HOUR), NOW + 24 * HOUR, (NOW + 47 * HOUR,)),  # due right now: skipped
        ((24 * HOUR, HOUR), NOW + 47 * HOUR, ()),
        ((HOUR, HOUR), NOW, (NOW + 47 * HOUR,)),
        ((), NOW, ()),
        ((0, -HOUR), NOW, ()),  # never at or after the action
    ],
)
def test_reminder_times(offsets: tuple[int, ...], now: int, expected: tuple[int, ...]) -> None:
    assert reminder_times(NOW + 48 * HOUR, offsets, now) == expected


@pytest.mark.parametrize(
    ("committed", "confirmed", "expected"),
    [
        ((), (), (0, 0)),
        ((ALICE, BOB, CAROL), (ALICE, CAROL), (2, 3)),
        ((ALICE, BOB), (ALICE, BOB, DAN), (2, 2)),  # Dan came without committing
        ((ALICE, ALICE), (ALICE,), (1, 1)),
        ((ALICE,), (), (0, 1)),
    ],
)
def test_follow_through(
    committed: tuple[str, ...], confirmed: tuple[str, ...], expected: tuple[int, int]
) -> None:
    assert follow_through(committed, confirmed) == expected


# --- the lifecycle -----------------------------------------------------------------------------

LEGAL = {
    (Status.OPEN, Event.COMMIT): Status.OPEN,
    (Status.OPEN, Event.WITHDRAW): Status.OPEN,
    (Status.OPEN, Event.THRESHOLD_MET): Status.GO,
    (Status.OPEN, Event.DEADLINE): Status.CALLED_OFF,
    (Status.OPEN, Event.WITHDRAW_CALL): Status.WITHDRAWN,
    (Status.GO, Event.COMMIT): Status.GO,
    (Status.GO, Event.WITHDRAW): Status.GO,
    (Status.GO, Event.THRESHOLD_MET): Status.GO,
    (Status.GO, Event.FELL_BELOW): Status.GO,
    (Status.GO, Event.DEADLINE): Status.GO,
    (Status.GO, Event.WITHDRAW_CALL): Status.WITHDRAWN,
    (Status.GO, Event.DONE): Status.DONE,
    (Status.CALLED_OFF, Event.DEADLINE): Status.CALLED_OFF,
    (Status.WITHDRAWN, Event.DEADLINE): Status.WITHDRAWN,
    (Status.DONE, Event.DEADLINE): Status.DONE,
    (Status.DONE, Event.DONE): Status.DONE,
}


@pytest.mark.parametrize("status", list(Status))
@pytest.mark.parametrize("event", list(Event))
def test_every_move_is_legal_or_refused_in_one_sentence(status: Status, event: Event) -> None:
    assert ActionTransitions.TRANSITIONS is TRANSITIONS
    if (status, event) in LEGAL:
        assert next_status(status, event) == LEGAL[status, event]
        assert next_status(status.value, event.value, item=3) == LEGAL[status, event]
        return
    with pytest.raises(ActionError) as caught:
        next_status(status.value, event.value, item=3)
    message = str(caught.value)
    assert message.startswith("Action #3 ") and message.endswith(".")
    assert message.count(".") == 1


@pytest.mark.parametrize(
    ("status", "event", "message"),
    [
        ("called_off", "commit", "Action #3 was called off; commitments are closed."),
        ("withdrawn", "withdraw", "Action #3 was withdrawn; commitments are closed."),
        ("done", "commit", "Action #3 has taken place; commitments are closed."),
        ("open", "done", "Action #3 hasn't gone ahead; there is no attendance to confirm."),
        ("called_off", "withdraw_call", "Action #3 was called off; it can't be withdrawn now."),
        ("done", "threshold_met", "Action #3 has taken place; it can't go ahead now."),
        ("open", "fell_below", "Action #3 hasn't gone ahead; it can't fall short now."),
    ],
)
def test_refusal_sentences(status: str, event: str, message: str) -> None:
    with pytest.raises(ActionError) as caught:
        next_status(status, event, item=3)
    assert str(caught.value) == message


def test_a_refusal_without_an_item_number() -> None:
    with pytest.raises(
        ActionError, match=r"^This action call was withdrawn; commitments are closed\.$"
    ):
        next_status("withdrawn", "commit")


@pytest.mark.parametrize(("status", "event"), [("closed", "commit"), ("open", "vote")])
def test_unknown_names_are_programming_errors(status: str, event: str) -> None:
    with pytest.raises(ValueError, match="Unknown action call status or event") as caught:
        next_status(status, event)
    assert not isinstance(caught.value, ActionError)


def test_the_table_only_names_known_statuses_and_events() -> None:
    assert set(TRANSITIONS) == set(Status)
    for moves in TRANSITIONS.values():
        assert set(moves) <= set(Event)
        assert set(moves.values()) <= set(Status)


# --- a call's state ----------------------------------------------------------------------------


def state(**changes: Any) -> CallState:
    values: dict[str, Any] = {
        "need": 2,
        "at_ms": NOW + 10 * HOUR,
        "deadline_ms": NOW + 8 * HOUR,
        "commitments": {},
        "status": Status.OPEN,
        "item": 7,
    }
    return CallState(**(values | changes))


def test_call_state_is_immutable_and_answers_going_and_enough() -> None:
    source = {ALICE: Commitment(ALICE)}
    call = state(commitments=source)
    source[BOB] = Commitment(BOB)
    assert call.commitments == {ALICE: Commitment(ALICE)}
    with pytest.raises(TypeError):
        call.commitments[BOB] = Commitment(BOB)  # type: ignore[index]
    assert call.going == {ALICE} and not call.enough
    both = call.with_commitment(Commitment(BOB, 1))
    assert both.going == {ALICE, BOB} and both.enough
    assert call.commitments.keys() == {ALICE}
    assert both.without(ALICE).going == frozenset()
    assert both.without(DAN) == both


def test_call_state_moves_by_the_table() -> None:
    call = state()
    assert call.after(Event.THRESHOLD_MET).status == Status.GO
    assert call.after("deadline").status == "called_off"
    with pytest.raises(ActionError, match=r"^Action #7 was called off; commitments are closed\.$"):
        call.after(Event.DEADLINE).after(Event.COMMIT)


@pytest.mark.parametrize(
    ("status", "now", "event"),
    [
        (Status.OPEN, NOW + 8 * HOUR - 1, None),
        (Status.OPEN, NOW + 8 * HOUR, Event.DEADLINE),
        (Status.GO, NOW + 9 * HOUR, None),
        (Status.GO, NOW + 10 * HOUR, Event.DONE),
        (Status.CALLED_OFF, NOW + 20 * HOUR, None),
        (Status.WITHDRAWN, NOW + 20 * HOUR, None),
        (Status.DONE, NOW + 20 * HOUR, None),
    ],
)
def test_due_event(status: Status, now: int, event: Event | None) -> None:
    assert due_event(state(status=status), now) == event


# --- folding the ledger ------------------------------------------------------------------------


class Ledger:
    """A room's chain, built entry by entry."""

    def __init__(self) -> None:
        rules = default_rules()
        self.rules = rules_hash(rules)
        genesis = make_entry(
            prev=None,
            room=ROOM,
            ts=NOW,
            actor=BOT,
            kind=GENESIS,
            data=genesis_data(rules, encode_b64(bytes(32))),
            event=None,
            rules=self.rules,
        )
        self.entries: list[LedgerEntry] = [genesis]

    def add(self, actor: str, kind: str, **data: Any) -> int:
        last = self.entries[-1]
        entry = make_entry(
            prev=last,
            room=ROOM,
            ts=last.ts + MINUTE,
            actor=actor,
            kind=kind,
            data=data,
            event=None,
            rules=self.rules,
        )
        self.entries.append(entry)
        return entry.seq

    def open(self, actor: str, item: int, kind: str = "action", need: int = 2) -> None:
        action = kind == "action"
        self.add(
            actor,
            ITEM_OPEN,
            item=item,
            type=kind,
            method=None if action else "consent",
            options=0,
            quorum=None if action else 3,
            closes=NOW + 8 * HOUR,
            at=NOW + 10 * HOUR if action else None,
            need=need if action else None,
            rule_key=None,
            rule_value=None,
            target=None,
            text_sha256=None,
        )

    def commit(self, actor: str, item: int, state: str = "in", min_others: int = 0) -> None:
        self.add(actor, COMMIT, item=item, state=state, min_others=min_others, via="command")

    def close(self, item: int, outcome: str) -> None:
        self.add(BOT, ITEM_CLOSE, item=item, outcome=outcome, winners=[], tally={})

    def attend(self, actor: str, item: int, who: str, kudos: int) -> int:
        return self.add(actor, ATTEND, item=item, user=who, kudos=kudos)


def test_fold_a_call_from_open_to_done() -> None:
    ledger = Ledger()
    ledger.open(ALICE, 1, need=3)
    ledger.open(BOB, 2)  # another call in the same room
    ledger.commit(BOB, 2)
    ledger.commit(ALICE, 1)
    ledger.commit(BOB, 1, min_others=2)
    ledger.commit(CAROL, 1, min_others=1)
    ledger.commit(DAN, 1, min_others=9)
    ledger.commit(DAN, 1, state="out")
    opened = fold_call(ledger.entries, 1)
    assert opened == CallState(
        need=3,
        at_ms=NOW + 10 * HOUR,
        deadline_ms=NOW + 8 * HOUR,
        commitments={
            ALICE: Commitment(ALICE),
            BOB: Commitment(BOB, 2),
            CAROL: Commitment(CAROL, 1),
        },
        status=Status.OPEN,
        item=1,
        caller=ALICE,
    )
    assert opened.enough and opened.going == {ALICE, BOB, CAROL}

    ledger.close(1, "go")
    ledger.commit(CAROL, 1, state="out")  # after GO: status stays go, but too few now
    gone = fold_call(ledger.entries, 1)
    assert gone.status == Status.GO and not gone.enough and gone.going == {ALICE}

    ledger.attend(CAROL, 1, CAROL, 0)  # a self-report: counts, earns nothing yet
    self_reported = fold_call(ledger.entries, 1)
    assert self_reported.status == Status.DONE
    assert self_reported.attended == {CAROL} and self_reported.credited == frozenset()

    ledger.attend(ALICE, 1, CAROL, 1)
    ledger.attend(ALICE, 1, ALICE, 0)
    fooled = ledger.attend(CAROL, 1, BOB, 1)
    ledger.add(BOB, MOD_VOID, target=fooled, text_sha256=None)
    done = fold_call(ledger.entries, 1)
    assert done.attended == {ALICE, CAROL} and done.credited == {CAROL}
    assert fold_call(ledger.entries, 2).commitments.keys() == {BOB}


@pytest.mark.parametrize("outcome", ["called_off", "withdrawn"])
def test_fold_an_ended_call(outcome: str) -> None:
    ledger = Ledger()
    ledger.open(ALICE, 4)
    ledger.commit(ALICE, 4)
    ledger.close(4, outcome)
    ended = fold_call(ledger.entries, 4)
    assert ended.status == outcome and ended.commitments.keys() == {ALICE}


def test_a_reversed_attendance_does_not_count() -> None:
    ledger = Ledger()
    ledger.open(ALICE, 1)
    ledger.close(1, "go")
    credited = ledger.attend(ALICE, 1, BOB, 1)
    ledger.add(BOT, REVERSAL, target=credited, cause="appeal", item=None)
    reversed_call = fold_call(ledger.entries, 1)
    assert reversed_call.attended == frozenset() and reversed_call.status == Status.GO


def test_attendance_on_a_call_that_did_not_go_leaves_its_status() -> None:
    ledger = Ledger()
    ledger.open(ALICE, 1)
    ledger.close(1, "called_off")
    ledger.attend(ALICE, 1, ALICE, 0)
    assert fold_call(ledger.entries, 1).status == Status.CALLED_OFF


def test_fold_refuses_a_missing_item_or_another_kind_of_item() -> None:
    ledger = Ledger()
    ledger.add(ALICE, KUDOS, to=BOB, amount=1, via="command", ref=None, text_sha256=None)
    ledger.open(ALICE, 5, kind="proposal")
    with pytest.raises(ActionError, match=r"^There is no item #6\.$"):
        fold_call(ledger.entries, 6)
    ledger.commit(BOB, 6)  # a commitment to an item that never opened finds nothing either
    with pytest.raises(ActionError, match=r"^There is no item #6\.$"):
        fold_call(ledger.entries, 6)
    with pytest.raises(ActionError, match=r"^Item #5 is not an action call\.$"):
        fold_call(ledger.entries, 5)
