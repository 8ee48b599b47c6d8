from commands.context import Context
from commands.declare import REGISTRY, Command, Permission, Registry
from commands.dispatch import dispatch
from commands.render import Reply, seq, to_plain
from consensus.rules import RoomRules


class Room:
    def __init__(self, levels=None):
        self.levels = levels or {}

    async def members(self):
        return {"@alice:x": "Alice"}

    async def power_level(self, user_id):
        return self.levels.get(user_id, 0)

    async def event_sender(self, event_id):
        return None


def ctx(registry=REGISTRY, room=None, prefix="!"):
    return Context(
        room_id="!r:x",
        sender="@alice:x",
        event_id="$e",
        event_ts=1,
        now_ms=2,
        source_ts=1,
        prefix=prefix,
        bot_user_id="@commons:x",
        room=room or Room(),
        registry=registry,
        store=None,
        services=None,
        rules=RoomRules.defaults(),
    )


async def test_not_a_command():
    assert await dispatch(ctx(), "hello") is None


async def test_help_lists_every_command():
    reply = await dispatch(ctx(), "!help")
    text = to_plain(reply.body)
    for cmd in REGISTRY:
        assert f"!{cmd.name} — {cmd.summary}" in text


async def test_help_for_one_command_uses_the_prefix():
    reply = await dispatch(ctx(prefix="?"), "?help help")
    text = to_plain(reply.body)
    assert "?help [<command>]" in text
    assert "?help kudos" in text


async def test_unknown_command_is_one_sentence():
    reply = await dispatch(ctx(), "!frobnicate now")
    assert to_plain(reply.body) == "I don't know the command !frobnicate; send !help for the list."


async def test_help_for_unknown_command():
    reply = await dispatch(ctx(), "!help nope")
    assert to_plain(reply.body) == "There is no command !nope; send !help for the list."


async def test_parse_error_points_to_help():
    reply = await dispatch(ctx(), "!help a b")
    assert to_plain(reply.body).endswith("See !help help.")


async def test_moderator_commands_check_power():
    registry = Registry()

    async def handler(c, args):
        return Reply(seq("done"))

    registry.add(
        Command(
            name="wipe", section="M", summary="s", handler=handler, permission=Permission.MODERATOR
        )
    )
    refused = await dispatch(ctx(registry=registry), "!wipe")
    assert to_plain(refused.body) == (
        "Only moderators (power level 50 or more) can use !wipe; yours is 0."
    )
    allowed = await dispatch(ctx(registry=registry, room=Room({"@alice:x": 50})), "!wipe")
    assert to_plain(allowed.body) == "done"
