"""Room rules registry: parsing tables, RoomRules accessors and hash, method order, docs."""

from __future__ import annotations

import hashlib
import json
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consensus.rules import (
    METHOD_STRENGTH,
    METHODS,
    RULES,
    RoomRules,
    RuleError,
    RuleValue,
    at_least_as_strict,
    default_rules,
    parse_rule,
    rule_spec,
    rules_markdown_table,
    stricter_method,
)

DOCS = Path(__file__).resolve().parents[2] / "docs" / "rules.md"

# The SPEC's "Room rules" table, in its order.
SPEC_DEFAULTS: dict[str, RuleValue] = {
    "timezone": "UTC",
    "kudos.daily_allowance": 10,
    "kudos.max_per_message": 3,
    "kudos.pair_daily_cap": 3,
    "kudos.reaction_emoji": "👏",
    "kudos.min_membership": "0h",
    "kudos.half_life": "off",
    "proposal.method": "consent",
    "proposal.duration": "48h",
    "proposal.quorum": 3,
    "proposal.supermajority": "2/3",
    "poll.duration": "24h",
    "action.reminders": "24h,1h",
    "action.attendance_kudos": 1,
    "report.time": "09:00",
    "report.moderators_room": None,
    "moderation.power_level": 50,
    "governance.rule_change_method": "supermajority",
    "governance.rule_change_quorum": 3,
    "governance.rule_change_duration": "72h",
}


def test_keys_order_and_defaults_match_the_spec() -> None:
    assert list(RULES) == list(SPEC_DEFAULTS)
    assert default_rules() == SPEC_DEFAULTS
    for key, spec in RULES.items():
        assert spec.key == key
        assert spec.description and "\n" not in spec.description
        # Every default is already canonical.
        assert spec.parse(spec.default) == spec.default


@pytest.mark.parametrize(
    ("key", "value", "canonical"),
    [
        ("timezone", "UTC", "UTC"),
        ("timezone", " europe/berlin ", "Europe/Berlin"),
        ("timezone", "America/Argentina/Buenos_Aires", "America/Argentina/Buenos_Aires"),
        ("kudos.daily_allowance", 10, 10),
        ("kudos.daily_allowance", "10", 10),
        ("kudos.daily_allowance", " 1000 ", 1000),
        ("kudos.daily_allowance", "1", 1),
        ("kudos.max_per_message", "100", 100),
        ("kudos.pair_daily_cap", 5, 5),
        ("kudos.reaction_emoji", "👏", "👏"),
        ("kudos.reaction_emoji", "👏, 🎉,👏", "👏,🎉"),
        ("kudos.reaction_emoji", ["🎉", "👏"], "🎉,👏"),
        ("kudos.reaction_emoji", "👨‍👩‍👧,👍️,🏴󠁧󠁢󠁳󠁣󠁴󠁿", "👨‍👩‍👧,👍️,🏴󠁧󠁢󠁳󠁣󠁴󠁿"),
        ("kudos.reaction_emoji", "+1", "+1"),
        ("kudos.min_membership", "0h", "0h"),
        ("kudos.min_membership", "2d", "48h"),
        ("kudos.min_membership", "365d", "365d"),
        ("kudos.half_life", "off", "off"),
        ("kudos.half_life", "OFF", "off"),
        ("kudos.half_life", False, "off"),  # YAML 1.1 reads a bare `off` as false
        ("kudos.half_life", "90d", "90d"),
        ("kudos.half_life", "12w6d", "90d"),
        ("kudos.half_life", "1d", "24h"),
        ("proposal.method", "Consensus", "consensus"),
        ("proposal.method", "majority", "majority"),
        ("proposal.duration", "30s", "30s"),
        ("proposal.duration", "2d", "48h"),
        ("proposal.duration", "90d", "90d"),
        ("proposal.quorum", 1, 1),
        ("proposal.supermajority", "4/6", "2/3"),
        ("proposal.supermajority", " 3 / 4 ", "3/4"),
        ("proposal.supermajority", "1/1", "1/1"),
        ("proposal.supermajority", "5/5", "1/1"),
        ("proposal.supermajority", "51/100", "51/100"),
        ("poll.duration", "1h30m", "1h30m"),
        ("action.reminders", "24h,1h", "24h,1h"),
        ("action.reminders", "1h, 24h, 1h", "24h,1h"),
        ("action.reminders", "60m,1d", "24h,1h"),
        ("action.reminders", ["15m", "2h"], "2h,15m"),
        ("action.reminders", "off", "off"),
        ("action.reminders", False, "off"),
        ("action.attendance_kudos", 0, 0),
        ("report.time", "09:00", "09:00"),
        ("report.time", "9:30", "09:30"),
        ("report.time", "23:59", "23:59"),
        ("report.time", "00:00", "00:00"),
        ("report.moderators_room", "!abc123:example.org", "!abc123:example.org"),
        ("report.moderators_room", "!Zm9vYmFyYmF6", "!Zm9vYmFyYmF6"),  # room v12 form
        ("report.moderators_room", None, None),
        ("report.moderators_room", "none", None),
        ("report.moderators_room", "", None),
        ("moderation.power_level", "1", 1),
        ("moderation.power_level", 100, 100),
        ("governance.rule_change_method", "consent", "consent"),
        ("governance.rule_change_quorum", "7", 7),
        ("governance.rule_change_duration", "1h", "1h"),
    ],
)
def test_parse_valid(key: str, value: object, canonical: object) -> None:
    assert parse_rule(key, value) == canonical
    # Canonical values are fixed points, so storing and re-reading them changes nothing.
    assert parse_rule(key, canonical) == canonical


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        (
            "kudos.daily_allowance",
            0,
            "kudos.daily_allowance must be a whole number from 1 to 1000.",
        ),
        ("kudos.daily_allowance", "1001", "from 1 to 1000"),
        ("kudos.daily_allowance", True, "whole number"),
        ("kudos.daily_allowance", "ten", "whole number"),
        ("kudos.daily_allowance", "1.5", "whole number"),
        ("kudos.daily_allowance", 1.0, "whole number"),
        ("kudos.daily_allowance", "-3", "whole number"),
        ("kudos.daily_allowance", None, "whole number"),
        ("kudos.max_per_message", 101, "from 1 to 100"),
        ("action.attendance_kudos", -1, "from 0 to 100"),
        ("moderation.power_level", 0, "from 1 to 100"),
        ("moderation.power_level", "101", "from 1 to 100"),
        ("timezone", "Mars/Olympus", "IANA time zone"),
        ("timezone", "Europe/Berln", "did you mean Europe/Berlin?"),
        ("timezone", 5, "IANA time zone"),
        ("kudos.reaction_emoji", "", "reaction keys"),
        ("kudos.reaction_emoji", "👏,,🎉", "reaction keys"),
        ("kudos.reaction_emoji", "a b", "without spaces"),
        ("kudos.reaction_emoji", "a\x00", "reaction keys"),
        ("kudos.reaction_emoji", "x" * 33, "reaction keys"),
        ("kudos.reaction_emoji", ",".join(str(n) for n in range(11)), "1 to 10"),
        ("kudos.reaction_emoji", 5, "reaction keys"),
        ("kudos.min_membership", "366d", "from 0h to 365d"),
        ("kudos.min_membership", 3, "duration"),
        ("kudos.half_life", "12h", "off or a duration from 24h"),
        ("kudos.half_life", "forever", "off or a duration"),
        ("proposal.method", "unanimity", "one of majority, supermajority, consent or consensus"),
        ("proposal.method", None, "one of"),
        ("proposal.duration", "10s", "from 30s to 90d"),
        ("proposal.duration", "91d", "from 30s to 90d"),
        ("proposal.duration", "off", "duration"),
        ("proposal.supermajority", "1/2", "greater than 1/2 and at most 1"),
        ("proposal.supermajority", "0/3", "fraction"),
        ("proposal.supermajority", "4/3", "fraction"),
        ("proposal.supermajority", "2/0", "fraction"),
        ("proposal.supermajority", "0.66", "fraction"),
        ("proposal.supermajority", 1, "fraction"),
        ("action.reminders", "30s", "from 1m to 30d"),
        ("action.reminders", "1h,,2h", "durations"),
        ("action.reminders", "1m,2m,3m,4m,5m,6m", "up to 5"),
        ("action.reminders", [1, 2], "durations"),
        ("action.reminders", "", "durations"),
        ("report.time", "24:00", "from 00:00 to 23:59"),
        ("report.time", "12:60", "from 00:00 to 23:59"),
        ("report.time", "9", "time of day"),
        ("report.time", 570, 'in YAML, put it in quotes: "9:30"'),
        ("report.moderators_room", "#mods:example.org", "room ID"),
        ("report.moderators_room", "!has space:example.org", "room ID"),
        ("report.moderators_room", "!" + "a" * 255, "room ID"),
        ("report.moderators_room", 3, "room ID"),
        ("governance.rule_change_duration", "30m", "from 1h to 90d"),
    ],
)
def test_parse_invalid(key: str, value: object, message: str) -> None:
    with pytest.raises(RuleError) as info:
        parse_rule(key, value)
    text = str(info.value)
    assert message in text
    assert text.startswith(f"{key} must be {info.value.requirement}") and text.endswith(".")
    assert "\n" not in text
    assert info.value.key == key


def test_unknown_key_with_and_without_suggestion() -> None:
    with pytest.raises(RuleError) as info:
        rule_spec("kudos.dayly_allowance")
    assert str(info.value) == (
        "There is no rule called 'kudos.dayly_allowance' (did you mean kudos.daily_allowance?);"
        " see !rules for the list."
    )
    assert info.value.key is None
    with pytest.raises(RuleError) as info:
        parse_rule("zzzz", "1")
    assert str(info.value) == "There is no rule called 'zzzz'; see !rules for the list."


def test_unknown_key_message_stays_short() -> None:
    with pytest.raises(RuleError) as info:
        rule_spec("q" * 70_000)
    assert len(str(info.value)) < 150


def test_room_rules_defaults_and_accessors() -> None:
    rules = RoomRules.defaults()
    assert rules.timezone == "UTC"
    assert rules.daily_allowance == 10
    assert rules.max_per_message == 3
    assert rules.pair_daily_cap == 3
    assert rules.reaction_emoji == ("👏",)
    assert rules.min_membership_ms == 0
    assert rules.half_life_ms is None
    assert rules.proposal_method == "consent"
    assert rules.proposal_duration_ms == 48 * 3_600_000
    assert rules.proposal_quorum == 3
    assert rules.supermajority == Fraction(2, 3)
    assert rules.poll_duration_ms == 24 * 3_600_000
    assert rules.reminders_ms == (24 * 3_600_000, 3_600_000)
    assert rules.attendance_kudos == 1
    assert rules.report_time == (9, 0)
    assert rules.moderators_room is None
    assert rules.moderation_power_level == 50
    assert rules.rule_change_method == "supermajority"
    assert rules.rule_change_quorum == 3
    assert rules.rule_change_duration_ms == 72 * 3_600_000
    assert rules["proposal.quorum"] == 3


def test_room_rules_changed_accessors() -> None:
    rules = (
        RoomRules.defaults()
        .with_change("timezone", "europe/berlin")
        .with_change("kudos.reaction_emoji", "👏,🎉")
        .with_change("kudos.min_membership", "1d")
        .with_change("kudos.half_life", "90d")
        .with_change("proposal.supermajority", "6/8")
        .with_change("action.reminders", "off")
        .with_change("report.time", "18:45")
        .with_change("report.moderators_room", "!mods:example.org")
    )
    assert rules.timezone == "Europe/Berlin"
    assert rules.reaction_emoji == ("👏", "🎉")
    assert rules.min_membership_ms == 86_400_000
    assert rules.half_life_ms == 90 * 86_400_000
    assert rules.supermajority == Fraction(3, 4)
    assert rules.reminders_ms == ()
    assert rules.report_time == (18, 45)
    assert rules.moderators_room == "!mods:example.org"
    assert rules["report.moderators_room"] == "!mods:example.org"


def test_with_change_is_a_new_value_and_validates() -> None:
    base = RoomRules.defaults()
    changed = base.with_change("kudos.daily_allowance", "20")
    assert changed.daily_allowance == 20
    assert base.daily_allowance == 10
    assert changed != base
    with pytest.raises(RuleError, match="from 1 to 1000"):
        base.with_change("kudos.daily_allowance", "0")
    with pytest.raises(RuleError, match="There is no rule called"):
        base.with_change("kudos.foo", "1")


def test_hash_is_sha256_of_canonical_json() -> None:
    rules = RoomRules.defaults()
    expected_bytes = json.dumps(
        SPEC_DEFAULTS, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode()
    assert rules.hash() == hashlib.sha256(expected_bytes).hexdigest()
    assert rules.as_json() == SPEC_DEFAULTS
    # Equal rules reached in different ways hash alike; any change changes the hash.
    assert rules.with_change("proposal.supermajority", "4/6").hash() == rules.hash()
    assert rules.with_change("proposal.supermajority", "3/4").hash() != rules.hash()
    assert hash(rules) == hash(RoomRules(dict(reversed(list(SPEC_DEFAULTS.items())))))


def test_room_rules_is_immutable_and_copies_its_input() -> None:
    values = default_rules()
    rules = RoomRules(values)
    values["kudos.daily_allowance"] = 99
    assert rules.daily_allowance == 10
    exported = rules.as_json()
    exported["kudos.daily_allowance"] = 99
    assert rules.daily_allowance == 10
    with pytest.raises(TypeError):
        rules.values["kudos.daily_allowance"] = 99  # type: ignore[index]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"kudos.daily_allowance": "10"}, "not a canonical value"),
        ({"timezone": "utc"}, "not a canonical value"),
        ({"proposal.supermajority": "4/6"}, "not a canonical value"),
        ({"kudos.daily_allowance": 0}, "from 1 to 1000"),
        ({"kudos.foo": 1}, "There is no rule called"),
    ],
)
def test_room_rules_refuses_non_canonical_or_unknown(
    change: dict[str, object], message: str
) -> None:
    with pytest.raises(RuleError, match=message):
        RoomRules({**default_rules(), **change})  # type: ignore[dict-item]


def test_room_rules_refuses_incomplete() -> None:
    values = default_rules()
    del values["timezone"]
    with pytest.raises(RuleError, match="lack timezone"):
        RoomRules(values)


# (a, b): passing under a implies passing under b.
IMPLIED = {
    ("majority", "majority"),
    ("supermajority", "supermajority"),
    ("consent", "consent"),
    ("consensus", "consensus"),
    ("supermajority", "majority"),
    ("consensus", "majority"),
    ("consensus", "supermajority"),
    ("consensus", "consent"),
}


@pytest.mark.parametrize("a", METHODS)
@pytest.mark.parametrize("b", METHODS)
def test_method_order(a: str, b: str) -> None:
    assert at_least_as_strict(a, b) == ((a, b) in IMPLIED)
    stricter = stricter_method(a, b)
    assert stricter == stricter_method(b, a)
    assert at_least_as_strict(stricter, a) and at_least_as_strict(stricter, b)
    if (a, b) in IMPLIED:
        assert stricter == a
    elif (b, a) not in IMPLIED:
        assert stricter == "consensus"
    # The ranks are consistent with implication.
    if at_least_as_strict(a, b):
        assert METHOD_STRENGTH[a] >= METHOD_STRENGTH[b]


def test_method_strength_lists_every_method() -> None:
    assert sorted(METHOD_STRENGTH, key=METHOD_STRENGTH.__getitem__) == list(METHODS)
    assert max(METHOD_STRENGTH, key=METHOD_STRENGTH.__getitem__) == "consensus"
    assert RULES["proposal.method"].parse("consensus") in METHOD_STRENGTH


@pytest.mark.parametrize(
    ("key", "value", "flags", "expected"),
    [
        ("kudos.daily_allowance", 20, {}, ("supermajority", 3)),
        ("kudos.daily_allowance", 20, {"method": "majority"}, ("supermajority", 3)),
        ("kudos.daily_allowance", 20, {"method": "consensus"}, ("consensus", 3)),
        ("kudos.daily_allowance", 20, {"method": "consent"}, ("consensus", 3)),
        ("kudos.daily_allowance", 20, {"quorum": 1}, ("supermajority", 3)),
        ("kudos.daily_allowance", 20, {"quorum": 9}, ("supermajority", 9)),
        ("governance.rule_change_method", "majority", {}, ("supermajority", 3)),
        ("governance.rule_change_method", "consensus", {}, ("consensus", 3)),
        ("governance.rule_change_method", "consent", {}, ("consensus", 3)),
        ("governance.rule_change_quorum", 1, {}, ("supermajority", 3)),
        ("governance.rule_change_quorum", 8, {}, ("supermajority", 8)),
    ],
)
def test_rule_proposal_terms(
    key: str, value: int | str, flags: dict[str, object], expected: tuple[str, int]
) -> None:
    terms = RoomRules.defaults().rule_proposal_terms(key, value, **flags)  # type: ignore[arg-type]
    assert (terms.method, terms.quorum) == expected
    assert terms.duration_ms == 72 * 3_600_000


@given(
    st.sampled_from(sorted(RULES)),
    st.text(max_size=30),
)
def test_parse_never_raises_anything_but_rule_error(key: str, text: str) -> None:
    try:
        value = parse_rule(key, text)
    except RuleError as exc:
        assert str(exc).startswith(key) and "\n" not in str(exc)
    else:
        assert parse_rule(key, value) == value
        RoomRules({**default_rules(), key: value}).hash()


def test_markdown_table_lists_every_rule() -> None:
    table = rules_markdown_table()
    lines = table.splitlines()
    assert lines[0] == "| key | default | meaning | valid values |"
    assert len(lines) == 2 + len(RULES)
    for line, spec in zip(lines[2:], RULES.values(), strict=True):
        assert line.startswith(f"| `{spec.key}` | ")
        assert spec.description in line and spec.requirement in line
    assert "| `report.moderators_room` | (none) |" in table
    assert "| `kudos.half_life` | `off` |" in table


def test_docs_contain_the_generated_table() -> None:
    assert rules_markdown_table() in DOCS.read_text(encoding="utf-8")
