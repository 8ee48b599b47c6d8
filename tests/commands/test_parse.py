from datetime import date

import pytest

from commands.declare import Args, Command, Kind, Option, Param, Reason
from commands.errors import UserError
from commands.parse import parse_args, split_command


async def _noop(ctx, args):  # pragma: no cover - never called by the parser
    raise AssertionError


KUDOS = Command(
    name="kudos",
    section="Kudos",
    summary="gives kudos",
    handler=_noop,
    params=(Param("users", Kind.USERS), Param("n", Kind.INT, required=False)),
    reason=Reason.OPTIONAL,
)
PROPOSE = Command(
    name="propose",
    section="Decisions",
    summary="opens a proposal",
    handler=_noop,
    params=(Param("title", Kind.TEXT),),
    options=(
        Option("method", Kind.WORD, "how", choices=("majority", "consent")),
        Option("closes", Kind.TEXT, "when"),
        Option("quorum", Kind.INT, "how many"),
    ),
)
VOID = Command(
    name="void",
    section="Moderation",
    summary="voids",
    handler=_noop,
    params=(Param("seq", Kind.SEQ),),
    reason=Reason.REQUIRED,
)
SHOW = Command(
    name="show",
    section="Decisions",
    summary="shows",
    handler=_noop,
    params=(Param("item", Kind.ITEM), Param("day", Kind.DATE, required=False)),
)

MEMBERS = {
    "@alice:example.org": "Alice",
    "@bob:example.org": "Bob Smith",
    "@carol:example.org": "Sam",
    "@dave:example.org": "Sam",
    "@erin:example.org": None,
}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("!help", ("help", "")),
        ("!HELP kudos", ("help", " kudos")),
        ("!kudos @a:b 2", ("kudos", " @a:b 2")),
        ("hello !help", None),
        ("!", None),
        ("! help", None),
    ],
)
def test_split_command(body, expected):
    assert split_command(body, "!") == expected


def test_split_command_other_prefix():
    assert split_command("cm help", "cm ") == ("help", "")
    assert split_command("!help", "cm ") is None


@pytest.mark.parametrize(
    ("cmd", "rest", "values", "reason"),
    [
        (KUDOS, " @alice:example.org", {"users": ["@alice:example.org"]}, None),
        (
            KUDOS,
            " @alice:example.org @bob:example.org 3 -- great work",
            {"users": ["@alice:example.org", "@bob:example.org"], "n": 3},
            "great work",
        ),
        (KUDOS, " Alice, Bob Smith", {"users": ["@alice:example.org", "@bob:example.org"]}, None),
        (KUDOS, " bob smith: 2", {"users": ["@bob:example.org"], "n": 2}, None),
        (
            PROPOSE,
            " Paint the shed --method consent --closes tomorrow 10:00\nIt is grey.",
            {
                "title": "Paint the shed\nIt is grey.",
                "method": "consent",
                "closes": "tomorrow 10:00",
            },
            None,
        ),
        (PROPOSE, " Keep  two  spaces", {"title": "Keep  two  spaces"}, None),
        (PROPOSE, " A --quorum 4\nB", {"title": "A\nB", "quorum": 4}, None),
        (VOID, " 42 -- spam ring", {"seq": 42}, "spam ring"),
        (VOID, " 42 --\tmulti word -- with dashes", {"seq": 42}, "multi word -- with dashes"),
        (SHOW, " #3", {"item": 3}, None),
        (SHOW, " 3 2026-11-26", {"item": 3, "day": date(2026, 11, 26)}, None),
    ],
)
def test_parse_ok(cmd, rest, values, reason):
    args = parse_args(cmd, rest, prefix="!", members=MEMBERS)
    assert args == Args(values=values, reason=reason)


@pytest.mark.parametrize(
    ("cmd", "rest", "message"),
    [
        (KUDOS, "", "!kudos needs <users>: !kudos <users…> [<n>] [-- <reason>]"),
        (KUDOS, " Zed", "!kudos needs <users>"),
        (KUDOS, " @alice", "'@alice' is not a Matrix ID; write it like @alice:example.org."),
        (KUDOS, " Sam", "'Sam' could be @carol:example.org or @dave:example.org"),
        (KUDOS, " @alice:example.org 2 potatoes", "!kudos doesn't understand 'potatoes'"),
        (
            KUDOS,
            " @alice:example.org --fast",
            "!kudos has no option --fast (it takes no options).",
        ),
        (PROPOSE, " --method consent", "!propose needs <title>"),
        (PROPOSE, " T --method vibes", "--method must be one of majority, consent, not 'vibes'."),
        (PROPOSE, " T --quorum", "--quorum needs a value."),
        (PROPOSE, " T --quorum many", "--quorum must be a whole number, not 'many'."),
        (PROPOSE, " T --quorum 99999999999", "--quorum must be a whole number"),
        (PROPOSE, " T --quorum 2 --quorum 3", "--quorum is given twice."),
        (PROPOSE, " T -- because", "!propose takes no reason"),
        (VOID, " 42", "!void needs a reason after --"),
        (VOID, " 42 --", "!void needs a reason after --"),
        (VOID, " 0 -- x", "<seq> must be an entry number (1 or more)."),
        (SHOW, " #x", "<item> must be an item number like #3, not '#x'."),
        (SHOW, " 3 2026-13-01", "<day> must be a date like 2026-11-26, not '2026-13-01'."),
        (PROPOSE, " T --quorum 4 B", "--quorum must be a whole number, not '4 B'."),
    ],
)
def test_parse_errors(cmd, rest, message):
    with pytest.raises(UserError) as err:
        parse_args(cmd, rest, prefix="!", members=MEMBERS)
    assert err.value.message.startswith(message)


def test_usage_is_generated_from_the_declaration():
    assert PROPOSE.usage("!") == (
        "!propose <title> [--method majority|consent] [--closes closes] [--quorum quorum]"
    )
    assert VOID.usage("%") == "%void <seq> -- <reason>"
