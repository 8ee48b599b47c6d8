"""Action calls (assurance contracts). Pure: commitments, times and ledger entries in, values out.

A call goes ahead when its *going set* reaches the number needed: the largest set of committed
people in which everyone's condition holds ("I'm in if at least N others are": N <= size - 1).
Nobody is bound before that. `need` counts everyone, and the caller is committed only after their
own `!in`. Commitments count towards GO until the deadline (by default 2 hours before the action);
if it passes first, the call is called off. A call's status moves only along TRANSITIONS, and an
illegal move raises ActionError with one sentence for the user. Never reads the clock: `now_ms`
is passed in, and `due_event` says which time-driven event a given instant makes due.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from types import MappingProxyType
from typing import ClassVar

from consensus.durations import HOUR_MS
from consensus.ledger import ATTEND, COMMIT, ITEM_CLOSE, ITEM_OPEN, MOD_VOID, REVERSAL, LedgerEntry

DEFAULT_DEADLINE_BEFORE_MS = 2 * HOUR_MS
MAX_NEED = 10_000


class ActionError(ValueError):
    """A request about an action call can't be done; the message is one sentence for the user."""


class Status(StrEnum):
    OPEN = "open"
    GO = "go"
    CALLED_OFF = "called_off"
    WITHDRAWN = "withdrawn"
    DONE = "done"


class Event(StrEnum):
    COMMIT = "commit"
    WITHDRAW = "withdraw"
    THRESHOLD_MET = "threshold_met"
    FELL_BELOW = "fell_below"
    DEADLINE = "deadline"
    WITHDRAW_CALL = "withdraw_call"
    DONE = "done"


@dataclass(frozen=True)
class Commitment:
    """`user` is in, unconditionally (`min_others` 0) or "if at least `min_others` others are"."""

    user: str
    min_others: int = 0

    def __post_init__(self) -> None:
        if self.min_others < 0:
            raise ActionError("The number of others in a condition can't be negative.")


# --- the going set ----------------------------------------------------------------------------
#
# Call a set of committed people *valid* when each member's condition holds in it (N <= |S| - 1).
#
# Unique: valid sets are closed under union. A member of a valid S has N <= |S| - 1, which is at
# most |S union T| - 1; likewise for T. So the union of all valid sets is itself valid and holds
# every other one: there is exactly one largest valid set, and no tie to break. The order in which
# commitments arrive can't change it.
#
# Found by sorting: let m_1 <= ... <= m_n be the conditions. Any k people include one whose
# condition is at least m_k, so some valid set of size k exists iff the k smallest conditions form
# one, i.e. iff m_k <= k - 1 (this is not monotone in k: [1, 1] is valid, [1] alone is not). Let K
# be the largest such k, or 0. The going set is {u : m_u <= K - 1}: all of them hold in a set of
# size K, and there are exactly K of them (at least K since m_K <= K - 1; at most K, or else
# m_{K+1} <= K - 1 and K + 1 would be valid too). O(n log n).
#
# Consequences the tests check: adding someone never shrinks the going set (the old set stays
# valid), and neither does lowering a condition; removing someone or raising a condition can.


def going_set(commitments: Iterable[Commitment]) -> frozenset[str]:
    """The largest set of committed people in which every member's condition holds.

    A user listed more than once counts with their last commitment, as in a call's ledger.
    """
    latest = {c.user: c.min_others for c in commitments}
    size = 0
    for k, condition in enumerate(sorted(latest.values()), start=1):
        if condition <= k - 1:
            size = k
    return frozenset(user for user, condition in latest.items() if condition < size)


def goes(commitments: Iterable[Commitment], need: int) -> bool:
    """Whether the going set reaches `need`: the test for GO while the call is open."""
    return len(going_set(commitments)) >= need


def still_enough(commitments: Iterable[Commitment], need: int) -> bool:
    """After GO: whether enough people remain (if not, the room is told; the call stays go)."""
    return goes(commitments, need)


# --- the lifecycle ----------------------------------------------------------------------------


class ActionTransitions:
    """The lifecycle as data (h11 style): TRANSITIONS[status][event] is the next status.

    A pair missing from the table is an illegal move. After GO a withdrawal may leave too few
    people: `fell_below` keeps the status (the room is told) and `threshold_met` may follow.
    The deadline only acts on an open call; elsewhere it is a harmless no-op, so a late or
    repeated scheduler job needs no special case. `done` means the action's time has come.
    """

    TRANSITIONS: ClassVar[Mapping[Status, Mapping[Event, Status]]] = MappingProxyType(
        {
            Status.OPEN: {
                Event.COMMIT: Status.OPEN,
                Event.WITHDRAW: Status.OPEN,
                Event.THRESHOLD_MET: Status.GO,
                Event.DEADLINE: Status.CALLED_OFF,
                Event.WITHDRAW_CALL: Status.WITHDRAWN,
            },
            Status.GO: {
                Event.COMMIT: Status.GO,
                Event.WITHDRAW: Status.GO,
                Event.THRESHOLD_MET: Status.GO,
                Event.FELL_BELOW: Status.GO,
                Event.DEADLINE: Status.GO,
                Event.WITHDRAW_CALL: Status.WITHDRAWN,
                Event.DONE: Status.DONE,
            },
            Status.CALLED_OFF: {Event.DEADLINE: Status.CALLED_OFF},
            Status.WITHDRAWN: {Event.DEADLINE: Status.WITHDRAWN},
            Status.DONE: {Event.DEADLINE: Status.DONE, Event.DONE: Status.DONE},
        }
    )

    # An illegal move's sentence: "<the call> <why>; <what that rules out>."
    _WHY: ClassVar[Mapping[Status, str]] = {
        Status.OPEN: "hasn't gone ahead",
        Status.CALLED_OFF: "was called off",
        Status.WITHDRAWN: "was withdrawn",
        Status.DONE: "has taken place",
    }
    _RULED_OUT: ClassVar[Mapping[Event, str]] = {
        Event.COMMIT: "commitments are closed",
        Event.WITHDRAW: "commitments are closed",
        Event.THRESHOLD_MET: "it can't go ahead now",
        Event.FELL_BELOW: "it can't fall short now",
        Event.WITHDRAW_CALL: "it can't be withdrawn now",
        Event.DONE: "there is no attendance to confirm",
    }

    @classmethod
    def next_status(cls, status: str, event: str, *, item: int | None = None) -> Status:
        """The status after `event`; ActionError naming action `#item` if the move is illegal.

        Unknown status or event names are programming errors: plain ValueError.
        """
        try:
            current, move = Status(status), Event(event)
        except ValueError as exc:
            raise ValueError(
                f"Unknown action call status or event: {status!r}, {event!r}."
            ) from exc
        moves = cls.TRANSITIONS[current]
        if move in moves:
            return moves[move]
        call = "This action call" if item is None else f"Action #{item}"
        raise ActionError(f"{call} {cls._WHY[current]}; {cls._RULED_OUT[move]}.")


TRANSITIONS = ActionTransitions.TRANSITIONS
next_status = ActionTransitions.next_status


# --- a call's state ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CallState:
    """An action call as its ledger entries leave it (see `fold_call`).

    `commitments` holds each user's latest commitment (an "out" removes it); `attended` everyone
    whose attendance was recorded, self-reports included (they count for follow-through);
    `credited` those confirmed by someone else (they earn attendance kudos).
    """

    need: int
    at_ms: int
    deadline_ms: int
    commitments: Mapping[str, Commitment]
    status: str
    item: int | None = None
    caller: str | None = None
    attended: frozenset[str] = field(default=frozenset())
    credited: frozenset[str] = field(default=frozenset())

    def __post_init__(self) -> None:
        # A private read-only copy: a frozen state must not change under its holder.
        object.__setattr__(self, "commitments", MappingProxyType(dict(self.commitments)))

    @property
    def going(self) -> frozenset[str]:
        return going_set(self.commitments.values())

    @property
    def enough(self) -> bool:
        return goes(self.commitments.values(), self.need)

    def with_commitment(self, commitment: Commitment) -> CallState:
        return replace(self, commitments={**self.commitments, commitment.user: commitment})

    def without(self, user: str) -> CallState:
        return replace(self, commitments={u: c for u, c in self.commitments.items() if u != user})

    def after(self, event: str) -> CallState:
        """The state with its status moved by `event` (ActionError if the move is illegal)."""
        return replace(self, status=next_status(self.status, event, item=self.item))


_OUTCOME_STATUS = {"go": Status.GO, "called_off": Status.CALLED_OFF, "withdrawn": Status.WITHDRAWN}


def fold_call(entries: Iterable[LedgerEntry], item: int) -> CallState:
    """The state of action call `item` from its room's ledger entries, in ledger order.

    The fold trusts the ledger: handlers checked each move with `next_status` before writing
    it. An attendance record marks a call that went ahead as done; an attendance that a reversal
    or mod.void took out doesn't count (for kudos nor for follow-through).
    """
    relevant: list[LedgerEntry] = []
    voided: set[int] = set()
    for entry in entries:
        if entry.kind in (REVERSAL, MOD_VOID):
            voided.add(entry.data["target"])
        elif entry.kind in (ITEM_OPEN, COMMIT, ITEM_CLOSE, ATTEND) and entry.data["item"] == item:
            relevant.append(entry)
    if not relevant or relevant[0].kind != ITEM_OPEN:
        raise ActionError(f"There is no item #{item}.")
    opening = relevant[0].data
    if opening["type"] != "action":
        raise ActionError(f"Item #{item} is not an action call.")
    state = CallState(
        need=opening["need"],
        at_ms=opening["at"],
        deadline_ms=opening["closes"],
        commitments={},
        status=Status.OPEN,
        item=item,
        caller=relevant[0].actor,
    )
    for entry in relevant[1:]:
        data = entry.data
        if entry.kind == COMMIT:
            if data["state"] == "in":
                state = state.with_commitment(Commitment(entry.actor, data["min_others"]))
            else:
                state = state.without(entry.actor)
        elif entry.kind == ITEM_CLOSE:
            state = replace(state, status=_OUTCOME_STATUS[data["outcome"]])
        elif entry.kind == ATTEND and entry.seq not in voided:
            user = data["user"]
            state = replace(
                state,
                status=Status.DONE if state.status == Status.GO else state.status,
                attended=state.attended | {user},
                credited=state.credited | ({user} if entry.actor != user else set()),
            )
    return state


def due_event(state: CallState, now_ms: int) -> Event | None:
    """The time-driven event due at `now_ms`: the deadline of an open call, or the action's
    time for a call that went ahead. Handlers apply it before their own event."""
    if state.status == Status.OPEN and now_ms >= state.deadline_ms:
        return Event.DEADLINE
    if state.status == Status.GO and now_ms >= state.at_ms:
        return Event.DONE
    return None


# --- opening a call, reminders, follow-through --------------------------------------------------


def default_deadline(at_ms: int) -> int:
    """The deadline when none is given: 2 hours before the action."""
    return at_ms - DEFAULT_DEADLINE_BEFORE_MS


def check_call(*, now_ms: int, at_ms: int, deadline_ms: int | None, need: int) -> int:
    """The deadline of a new call, after checking it makes sense; ActionError otherwise."""
    if need < 1:
        raise ActionError("An action call needs at least 1 person.")
    if need > MAX_NEED:
        raise ActionError(f"An action call can need at most {MAX_NEED} people.")
    if at_ms <= now_ms:
        raise ActionError("The time of the action has already passed; give a time to come.")
    if deadline_ms is None:
        deadline_ms = default_deadline(at_ms)
        if deadline_ms <= now_ms:
            raise ActionError(
                "The default deadline, 2 hours before the action, has already passed; "
                "give one with --deadline."
            )
        return deadline_ms
    if deadline_ms <= now_ms:
        raise ActionError("The deadline has already passed; give a time to come.")
    if deadline_ms > at_ms:
        raise ActionError("The deadline can't be after the action.")
    return deadline_ms


def reminder_times(at_ms: int, reminders_ms: Sequence[int], now_ms: int) -> tuple[int, ...]:
    """The reminder instants still to come, earliest first, for offsets before the action.

    An instant at `now_ms` itself is skipped: the GO announcement that schedules reminders has
    just mentioned everyone.
    """
    instants = {at_ms - offset for offset in reminders_ms}
    return tuple(sorted(t for t in instants if now_ms < t < at_ms))


def follow_through(committed: Collection[str], confirmed: Collection[str]) -> tuple[int, int]:
    """(came, committed): of the people committed when the call went, how many attended.

    People who came without committing are welcome but don't raise the rate.
    """
    committed_set = frozenset(committed)
    return len(committed_set & frozenset(confirmed)), len(committed_set)
